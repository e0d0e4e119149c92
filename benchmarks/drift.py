"""Benchmark: the monitoring pipeline's drift node vs evidently's DataDriftPreset on the same data.

The data mimic the model's inputs: the 19 features of docs/data_model.md (integer counts,
continuous amounts, 0/1 flags and four categorical columns) plus the prediction score, 20
columns in all. The current window drifts on a few columns (age +6 years, monthly fee x1.15,
support tickets doubled, contract mix, score shifted) and is drawn afresh from the reference
distribution on the others.

For each statistic that both implement (PSI, KL, Wasserstein normed by the reference std and
the KS p-value on numeric columns; PSI, KL and the chi² p-value on categorical ones) evidently
runs its DataDriftPreset with that method and threshold on every column it applies to, and the
script prints whether the per-column verdicts agree with ours. Our figure is the time of what the
monitoring pipeline runs: its ``compute_drift`` node on the window, against the champion's
reference profile (built from the reference side beforehand, as evaluation does; its build time
is printed apart), computing ALL statistics for all 20 columns; evidently's is per method.

Usage::

    python benchmarks/drift.py                       # 1M vs 1M ours; evidently on 50k vs 50k
    python benchmarks/drift.py --rows 1000000 --evidently-rows 1000000   # evidently on 1M too
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn_mlops.contracts.profile import profile_to_dict
from churn_mlops.monitoring.drift import DriftConfig
from churn_mlops.monitoring.profile import build_reference_profile
from churn_mlops.pipelines.monitoring.nodes import compute_drift
from churn_mlops.pipelines.monitoring.params import MonitoringParams, parse_monitoring_params

ROOT = Path(__file__).resolve().parents[1]

CATEGORIES = {
    "region": (["north", "south", "east", "west", "central"], [0.25, 0.2, 0.2, 0.2, 0.15]),
    "plan": (["basic", "standard", "premium"], [0.5, 0.35, 0.15]),
    "contract": (["month_to_month", "one_year", "two_year"], [0.55, 0.25, 0.2]),
    "payment_method": (
        ["credit_card", "bank_transfer", "electronic_check", "mailed_check"],
        [0.35, 0.3, 0.25, 0.1],
    ),
}
DRIFTED_CONTRACT = [0.4, 0.3, 0.3]

# Same thresholds as evidently's defaults, so that the verdicts are comparable.
THRESHOLDS = {"psi": 0.1, "kl_div": 0.1, "wasserstein": 0.1, "ks": 0.05, "chisquare": 0.05}


def make_frame(rows: int, *, drifted: bool, seed: int) -> pd.DataFrame:
    """One window of synthetic model inputs plus score; ``drifted`` shifts a few columns."""
    rng = np.random.default_rng(seed)
    shift = 1.0 if drifted else 0.0
    sessions_90d = rng.poisson(36, rows)
    sessions_30d = rng.binomial(sessions_90d, 1 / 3)
    purchases = rng.poisson(1.5, rows)
    frame = {
        "tenure_days": rng.integers(0, 3000, rows).astype(np.int64),
        "age": np.clip(np.round(rng.normal(45 + 6 * shift, 14, rows)), 18, 100).astype(np.int64),
        "monthly_fee": np.round(rng.lognormal(3.6, 0.35, rows) * (1 + 0.15 * shift), 2),
        "paperless_billing": (rng.random(rows) < 0.6).astype(np.int64),
        "sessions_30d": sessions_30d.astype(np.int64),
        "sessions_90d": sessions_90d.astype(np.int64),
        "session_minutes_30d": rng.gamma(2.0, 12.0, rows) * sessions_30d,
        "usage_trend": sessions_30d / np.maximum(sessions_90d / 3, 1e-9),
        "days_since_last_session": np.minimum(rng.geometric(0.2, rows), 365).astype(np.int64),
        "support_tickets_30d": rng.poisson(0.3 * (1 + shift), rows).astype(np.int64),
        "support_tickets_90d": rng.poisson(0.9, rows).astype(np.int64),
        "late_payments_90d": rng.poisson(0.2, rows).astype(np.int64),
        "payments_90d": rng.poisson(3, rows).astype(np.int64),
        "online_purchases_90d": purchases.astype(np.int64),
        "online_spend_90d": np.round(rng.gamma(2.0, 20.0, rows) * purchases, 2),
        "score": rng.beta(2 + 0.8 * shift, 6, rows),
    }
    for name, (values, probs) in CATEGORIES.items():
        if name == "contract" and drifted:
            probs = DRIFTED_CONTRACT
        frame[name] = pd.Categorical(rng.choice(values, rows, p=probs), categories=values)
    return pd.DataFrame(frame)


def kinds_of(frame: pd.DataFrame) -> dict[str, str]:
    """Feature kinds: categorical for the four attribute columns, numeric otherwise."""
    return {c: "categorical" if c in CATEGORIES else "numeric" for c in frame.columns}


def our_config(workers: int) -> DriftConfig:
    """Our thresholds set to evidently's defaults (no minimum effect size on the tests)."""
    return DriftConfig(
        statistics={
            "psi": {"threshold": THRESHOLDS["psi"]},
            "kl": {"threshold": THRESHOLDS["kl_div"]},
            "wasserstein": {"threshold": THRESHOLDS["wasserstein"]},
            "ks": {"alpha": THRESHOLDS["ks"], "min_statistic": 0.0},
            "chi2": {"alpha": THRESHOLDS["chisquare"], "min_effect": 0.0},
        },
        epsilon=1e-4,
        feature_vote_share=0.5,
        dataset_drift_share=0.5,
        workers=workers,
    )


def monitoring_params(workers: int) -> MonitoringParams:
    """The committed monitoring parameters with the drift thresholds set to evidently's."""
    from kedro.config import OmegaConfigLoader

    from churn_mlops.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        str(ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": "base"}
    )
    raw = dict(loader["parameters"]["monitoring"])
    raw["drift"] = {**raw["drift"], **our_config(workers).model_dump()}
    raw["window"] = {**raw["window"], "min_rows": 1}
    return parse_monitoring_params(raw)


def champion_of(reference: pd.DataFrame, kinds: dict[str, str]) -> dict[str, Any]:
    """What the champion dataset hands the node: the feature list and the reference profile."""
    features = [c for c in kinds if c != "score"]
    specs = [
        {"name": c, "kind": "categorical", "categories": CATEGORIES[c][0]}
        if kinds[c] == "categorical"
        else {"name": c, "kind": "numeric"}
        for c in features
    ]
    profile = build_reference_profile(
        reference[features], {c: kinds[c] for c in features}, n_bins=10, scores=reference["score"]
    )
    return {"model_metadata": {"features": specs}, "reference_profile": profile_to_dict(profile)}


def monitoring_rows(current: pd.DataFrame) -> pd.DataFrame:
    """The window as ``assemble_monitoring_rows`` hands it on: features, score, in_window."""
    return current.assign(in_window=True)


def drift_table(rows: pd.DataFrame, champion: dict[str, Any], params: MonitoringParams) -> Any:
    """The monitoring pipeline's drift node, as the pipeline runs it."""
    return compute_drift(rows, champion, params)[0]


def best_of(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Best wall time and best process CPU time of ``repeats`` calls, and the last result.

    CPU time is reported too because this machine is shared: wall time includes waiting for
    a core, CPU time does not (with several threads it is the sum over them).
    """
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def our_verdicts(table: pd.DataFrame) -> dict[str, dict[str, bool]]:
    """Our per-column verdicts keyed by evidently's method names."""
    by = table.set_index("feature")
    out: dict[str, dict[str, bool]] = {}
    for method, flag in [
        ("psi", "psi_drift"),
        ("kl_div", "kl_drift"),
        ("wasserstein", "wasserstein_drift"),
        ("ks", "ks_drift"),
        ("chisquare", "chi2_drift"),
    ]:
        applicable = by["chi2_p_value" if method == "chisquare" else "psi"].notna()
        if method in ("wasserstein", "ks"):
            applicable = by["ks_p_value"].notna()
        out[method] = by.loc[applicable, flag].astype(bool).to_dict()
    return out


def run_evidently(
    reference: pd.DataFrame, current: pd.DataFrame, method: str | None, columns: list[str]
) -> tuple[tuple[float, float], dict[str, bool]]:
    """Time evidently's DataDriftPreset with one method (None: its defaults) on ``columns``."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric = [c for c in columns if c not in CATEGORIES]
    categorical = [c for c in columns if c in CATEGORIES]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    if method is None:
        preset = DataDriftPreset(columns=columns)
    else:
        preset = DataDriftPreset(
            columns=columns,
            per_column_method=dict.fromkeys(columns, method),
            per_column_threshold=dict.fromkeys(columns, THRESHOLDS[method]),
        )
    wall, cpu = time.perf_counter(), time.process_time()
    ref_ds = Dataset.from_pandas(reference[columns], data_definition=definition)
    cur_ds = Dataset.from_pandas(current[columns], data_definition=definition)
    snapshot = Report([preset]).run(reference_data=ref_ds, current_data=cur_ds)
    elapsed = (time.perf_counter() - wall, time.process_time() - cpu)
    verdicts: dict[str, bool] = {}
    if method is None:
        return elapsed, verdicts
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        value = float(metric["value"])
        threshold = THRESHOLDS[method]
        if method == "ks":
            verdicts[config["column"]] = value <= threshold
        elif method == "chisquare":
            verdicts[config["column"]] = value < threshold
        else:
            verdicts[config["column"]] = value >= threshold
    return elapsed, verdicts


def main() -> None:
    """Run the comparison and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side, ours")
    parser.add_argument(
        "--evidently-rows", type=int, default=50_000, help="rows per side, evidently"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    args = parser.parse_args()

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), "
        f"load average {os.getloadavg()[0]:.1f}, python {platform.python_version()}, "
        f"numpy {np.__version__}"
    )
    reference = make_frame(args.rows, drifted=False, seed=1)
    current = make_frame(args.rows, drifted=True, seed=2)
    kinds = kinds_of(reference)
    print(
        f"columns: {len(kinds)} ({sum(k == 'numeric' for k in kinds.values())} numeric, "
        f"{sum(k == 'categorical' for k in kinds.values())} categorical)"
    )

    wall, cpu, champion = best_of(lambda: champion_of(reference, kinds), 1)
    print(
        f"reference profile of {args.rows:,} rows (built once, at evaluation): {wall:.3f} s wall,"
        f" {cpu:.3f} s CPU"
    )
    rows = monitoring_rows(current)
    for workers in sorted({1, args.workers}):
        params = monitoring_params(workers)
        wall, cpu, table = best_of(lambda p=params: drift_table(rows, champion, p), args.repeats)
        print(
            f"monitoring compute_drift, {args.rows:,} window rows, all statistics, "
            f"{workers} thread(s): {wall:.3f} s wall, {cpu:.3f} s CPU"
        )
    drifted = table.loc[table["drifted"], "feature"].tolist()
    print(f"ours: drifted features (vote of the statistics): {drifted}")

    small_ref = reference.iloc[: args.evidently_rows].reset_index(drop=True)
    small_cur = current.iloc[: args.evidently_rows].reset_index(drop=True)
    small_champion = champion_of(small_ref, kinds)
    params = monitoring_params(1)
    small_rows = monitoring_rows(small_cur)
    s_wall, s_cpu, small_table = best_of(
        lambda: drift_table(small_rows, small_champion, params), args.repeats
    )
    print(
        f"monitoring compute_drift, {args.evidently_rows:,} window rows (profile of "
        f"{args.evidently_rows:,}), all statistics, 1 thread: {s_wall:.3f} s wall, "
        f"{s_cpu:.3f} s CPU"
    )
    ours = our_verdicts(small_table)

    numeric = [c for c, k in kinds.items() if k == "numeric"]
    categorical = [c for c, k in kinds.items() if k == "categorical"]
    plan = [
        ("wasserstein", numeric),
        ("ks", numeric),
        ("psi", numeric + categorical),
        ("kl_div", numeric + categorical),
        ("chisquare", categorical),
    ]
    total_wall = total_cpu = 0.0
    all_agree = True
    for method, columns in plan:
        (wall, cpu), theirs = run_evidently(small_ref, small_cur, method, columns)
        total_wall += wall
        total_cpu += cpu
        mismatch = sorted(c for c in columns if theirs.get(c) != ours[method].get(c))
        all_agree &= not mismatch
        fired = sorted(c for c in columns if theirs.get(c))
        print(
            f"evidently {method:<11} on {len(columns):>2} columns: {wall:6.2f} s wall, "
            f"{cpu:6.2f} s CPU; drift on {fired}; verdicts agree: "
            f"{'yes' if not mismatch else f'NO {mismatch}'}"
        )
    (d_wall, d_cpu), _ = run_evidently(small_ref, small_cur, None, numeric + categorical)
    print(
        f"evidently DataDriftPreset() with its default tests, {len(kinds)} columns, "
        f"{args.evidently_rows:,} rows: {d_wall:.2f} s wall, {d_cpu:.2f} s CPU -> "
        f"{d_wall / s_wall:.0f}x (wall) / {d_cpu / s_cpu:.0f}x (CPU) the time ours takes for "
        "all statistics"
    )
    print(
        f"evidently, the five shared statistics (sum of the runs above): {total_wall:.2f} s wall,"
        f" {total_cpu:.2f} s CPU -> {total_wall / s_wall:.0f}x (wall) / "
        f"{total_cpu / s_cpu:.0f}x (CPU) ours"
    )
    print(f"verdicts agree on every shared statistic and column: {'yes' if all_agree else 'NO'}")


if __name__ == "__main__":
    main()
