"""Helpers for the monitoring tests: simulated scenario tables, a quick champion, pipeline runs.

The scenario tables come from the real ``simulation``, ``data_processing`` and
``feature_engineering`` pipelines run in a throw-away project copy; the champion is a small
scikit-learn Pipeline trained on the months before the scenario starts, with a reference
profile built the way the evaluation pipeline builds it.
"""

from __future__ import annotations

import copy
import functools
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from kedro.io import AbstractDataset, DataCatalog
from kedro.runner import SequentialRunner
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from churn_mlops.contracts.profile import profile_to_dict
from churn_mlops.model_metrics import ranking_metrics
from churn_mlops.monitoring.profile import build_reference_profile
from churn_mlops.pipelines.monitoring.pipeline import create_pipeline
from tests.conftest import PROJECT_ROOT, make_project_copy

CONF = PROJECT_ROOT / "conf" / "base"

#: Small simulated business: 16 months from 2023-01, the scenario starts in month 12
#: (2024-01), snapshots 2023-04 .. 2024-04; the champion learns from snapshots before 2023-12.
SCENARIO_START = "2024-01-01"
TRAIN_END = "2023-11-01"
TEST_MONTH = "2023-11-01"
SIMULATION_OVERRIDES = {
    "simulation": {
        "population": {"initial_customers": 1500, "monthly_signups": 120},
        "n_months": 16,
        "scenario": {"start_month": 12},
    },
}
CHAMPION_NOW = datetime(2024, 1, 15, tzinfo=timezone.utc)


@functools.lru_cache(maxsize=1)
def _project_parameters() -> dict[str, Any]:
    from kedro.config import OmegaConfigLoader

    from churn_mlops.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        **{**CONFIG_LOADER_ARGS, "default_run_env": "base"},
    )
    return dict(loader["parameters"])


def base_parameters(name: str) -> dict[str, Any]:
    """The ``name`` block of the project's parameters (conf/base), as Kedro resolves them."""
    return copy.deepcopy(_project_parameters()[name])


def monitoring_parameters(**overrides: Any) -> dict[str, Any]:
    """conf/base monitoring parameters with ``section.key`` overrides (dotted keys)."""
    params = copy.deepcopy(base_parameters("monitoring"))
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return params


def feature_contract() -> list[dict[str, Any]]:
    """The feature list of conf/base/parameters_feature_engineering.yml."""
    raw = yaml.safe_load((CONF / "parameters_feature_engineering.yml").read_text())
    return raw["feature_engineering"]["features"]


def simulate_scenario(scenario: str, workdir: Path, **extra: Any) -> dict[str, Any]:
    """Run simulation + data_processing + feature_engineering for ``scenario`` in a copy.

    Returns:
        ``model_input_table`` (pandas), ``validation_report`` and ``churn_records``.
    """
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = make_project_copy(workdir)
    (project / "src").mkdir(exist_ok=True)
    overrides = copy.deepcopy(SIMULATION_OVERRIDES)
    overrides["simulation"]["scenario"]["name"] = scenario
    for key, value in extra.items():
        overrides["simulation"]["scenario"][key] = value
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    try:
        bootstrap_project(project)
        with KedroSession.create(project_path=project, runtime_params=overrides) as session:
            session.run(pipeline_names=["simulation", "data_processing", "feature_engineering"])
    finally:
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run()
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    import json

    reports = sorted((project / "data/08_reporting/validation_report.json").glob("*/*.json"))
    return {
        "model_input_table": pd.read_parquet(
            project / "data/05_model_input/model_input_table.parquet"
        ),
        "validation_report": json.loads(reports[-1].read_text()) if reports else None,
        "churn_records": pd.read_parquet(project / "data/01_raw/churn_records.parquet"),
    }


def train_champion(
    table: pd.DataFrame, *, train_end: str = TRAIN_END, test_month: str = TEST_MONTH
) -> dict[str, Any]:
    """A quick champion (one-hot + gradient boosting) with metadata and reference profile."""
    features = feature_contract()
    names = [f["name"] for f in features]
    categorical = [f["name"] for f in features if f["kind"] == "categorical"]
    numeric = [n for n in names if n not in categorical]
    snapshots = pd.to_datetime(table["snapshot_date"])
    train = table.loc[snapshots < train_end]
    test = table.loc[snapshots == test_month]
    model = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        ("numeric", "passthrough", numeric),
                        ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
                    ]
                ),
            ),
            ("model", HistGradientBoostingClassifier(max_iter=40, random_state=0)),
        ]
    )
    model.fit(train[names], train["churned"])
    test_scores = model.predict_proba(test[names])[:, 1]
    # Held-out scores: in-sample scores of a small boosted model are more extreme than the
    # scores it gives new customers, which would read as score drift on every window.
    profile = build_reference_profile(
        train[names],
        {f["name"]: f["kind"] for f in features},
        n_bins=10,
        scores=test_scores,
    )
    metadata = {
        "model_name": "churn_model",
        "model_version": "1",
        "run_id": "test-run",
        "threshold": float(np.quantile(test_scores, 0.8)),
        "metrics": ranking_metrics(test["churned"].to_numpy(), test_scores),
        "features": features,
    }
    return {
        "model_name": "churn_model",
        "version": "1",
        "run_id": "test-run",
        "model": model,
        "model_metadata": metadata,
        "reference_profile": profile_to_dict(profile),
        "registered_at": datetime(2024, 1, 1, tzinfo=timezone.utc),
    }


class _Kept(AbstractDataset):
    """Holds any value, ``None`` included, and is never released: tests read every output."""

    def __init__(self, value: Any = None) -> None:
        self._value = value

    def _load(self) -> Any:
        return self._value

    def _save(self, data: Any) -> None:
        self._value = data

    def _describe(self) -> dict[str, Any]:
        return {}


MONITORING_OUTPUTS = (
    "monitoring_config",
    "monitoring_rows",
    "monitoring_window",
    "monitoring_drift_table",
    "monitoring_drift_summary",
    "monitoring_performance",
    "monitoring_performance_summary",
    "monitoring_data_quality",
    "monitoring_freshness",
    "monitoring_diagnosis",
    "retrain_decision",
    "monitoring_diagnosis_report",
    "monitoring_metrics",
    "evidently_report",
)


def run_monitoring(
    champion: dict[str, Any],
    *,
    model_input_table: pd.DataFrame | None = None,
    prediction_log: pd.DataFrame | None = None,
    feedback_log: pd.DataFrame | None = None,
    churn_records: pd.DataFrame | None = None,
    validation_report: dict[str, Any] | None = None,
    recent_runs: pd.DataFrame | None = None,
    clock: datetime = CHAMPION_NOW,
    params: dict[str, Any] | None = None,
    evidently: bool = False,
) -> dict[str, Any]:
    """Run the real ``monitoring`` pipeline on in-memory inputs; return every output."""
    params = params or monitoring_parameters()
    params = copy.deepcopy(params)
    params["evidently"]["enabled"] = evidently
    empty_log = pd.DataFrame(columns=["request_id", "timestamp", "parse_error"])
    inputs = {
        "params:monitoring": params,
        "params:evaluation.business": base_parameters("evaluation")["business"],
        "monitoring_champion": champion,
        "monitoring_model_input_table": model_input_table,
        "monitoring_prediction_log": prediction_log if prediction_log is not None else empty_log,
        "monitoring_feedback_log": feedback_log if feedback_log is not None else empty_log,
        "monitoring_churn_records": churn_records,
        "monitoring_validation_report": validation_report,
        "monitoring_recent_runs": recent_runs
        if recent_runs is not None
        else pd.DataFrame(columns=["run_id", "run_name", "status", "start_time", "end_time"]),
        "monitoring_clock": clock,
    }
    catalog = DataCatalog(
        datasets={
            **{name: _Kept(value) for name, value in inputs.items()},
            **{name: _Kept() for name in MONITORING_OUTPUTS},
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in MONITORING_OUTPUTS}


def synthetic_table(
    months: list[str],
    rows_per_month: int,
    *,
    seed: int = 0,
    age_shift: float = 0.0,
    spend_multiplier: float = 1.0,
    flip_spend_effect: bool = False,
) -> pd.DataFrame:
    """A small model_input_table with every contract feature and a label that depends on them.

    Fast stand-in for the simulator in node tests: ``age_shift`` moves ages, ``spend_multiplier``
    scales ``online_spend_90d`` after the label is drawn (a unit change), ``flip_spend_effect``
    reverses how spend relates to churn (concept drift).
    """
    rng = np.random.default_rng(seed)
    frames = []
    for i, month in enumerate(months):
        n = rows_per_month
        sessions_90d = rng.poisson(12, n)
        sessions_30d = rng.binomial(sessions_90d, 1 / 3)
        purchases = rng.poisson(1.2, n)
        spend = np.round(rng.gamma(2.0, 20.0, n) * purchases, 2)
        contract = rng.choice(["month_to_month", "one_year", "two_year"], n, p=[0.5, 0.25, 0.25])
        tickets = rng.poisson(0.4, n)
        late = rng.poisson(0.2, n)
        spend_effect = 0.35 if flip_spend_effect else -0.35
        logit = (
            -3.0
            + 1.2 * (contract == "month_to_month")
            + 0.8 * tickets
            + 0.6 * late
            + spend_effect * (np.log1p(spend) - 2.0)
            - 0.05 * sessions_30d
        )
        churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": np.arange(n, dtype=np.int64) + 1 + i * n,
                    "snapshot_date": pd.Timestamp(month),
                    "churned": churned,
                    "tenure_days": rng.integers(30, 2000, n).astype(np.int64),
                    "age": np.clip(np.round(rng.normal(35 + age_shift, 6, n)), 18, 100).astype(
                        np.int64
                    ),
                    "monthly_fee": np.round(rng.choice([29.99, 59.99, 99.99], n), 2),
                    "paperless_billing": (rng.random(n) < 0.6).astype(np.int64),
                    "region": rng.choice(["north", "south", "east", "west", "central"], n),
                    "plan": rng.choice(["basic", "standard", "premium"], n),
                    "contract": contract,
                    "payment_method": rng.choice(
                        ["credit_card", "bank_transfer", "electronic_check", "mailed_check"], n
                    ),
                    "sessions_30d": sessions_30d.astype(np.int64),
                    "sessions_90d": sessions_90d.astype(np.int64),
                    "session_minutes_30d": np.round(rng.gamma(2, 7, n) * sessions_30d, 1),
                    "usage_trend": np.round(sessions_30d / np.maximum(sessions_90d / 3, 1), 3),
                    "days_since_last_session": rng.integers(0, 91, n).astype(np.int64),
                    "support_tickets_30d": tickets.astype(np.int64),
                    "support_tickets_90d": (tickets + rng.poisson(0.6, n)).astype(np.int64),
                    "late_payments_90d": late.astype(np.int64),
                    "payments_90d": rng.poisson(3, n).astype(np.int64),
                    "online_purchases_90d": purchases.astype(np.int64),
                    "online_spend_90d": spend * spend_multiplier,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
