"""Same data and code give the same tables, fingerprints and model; a version can be rebuilt;
a run killed while saving leaves every previous output and the registry as they were.

Two temporary copies of the project run the default pipeline (``kedro run``) on the same small
simulated data; then ``kedro models rebuild`` retrains a version, and a run is SIGKILLed in
the middle of saving the model.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import Version
from mlflow import MlflowClient

from churn_mlops.datasets.atomic import PickleDataset
from churn_mlops.fingerprint import fingerprint_table
from tests.conftest import kedro_env, make_project_copy

pytestmark = pytest.mark.slow

SMALL = {
    "simulation.n_months": 12,
    "simulation.population.initial_customers": 800,
    "simulation.population.monthly_signups": 60,
    "simulation.scenario.start_month": 6,
    "training.candidates.xgboost.search.n_trials": 3,
    "training.candidates.xgboost.max_estimators": 60,
    "evaluation.shap.sample_rows": 200,
}
PARAMS = ",".join(f"{key}={value}" for key, value in SMALL.items())
TABLES = (
    "data/03_primary/customers_primary.parquet",
    "data/03_primary/events_primary.parquet",
    "data/03_primary/churn_records_primary.parquet",
    "data/04_feature/snapshot_spine.parquet",
    "data/05_model_input/model_input_table.parquet",
)
REPORTS = ("split_summary.json", "xgboost_search.json", "test_metrics.json")


def _client(project: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=kedro_env(project)["MLFLOW_TRACKING_URI"])


def _model(project: Path):
    """The latest ``trained_model`` version as Kedro resolves it, and that version."""
    dataset = PickleDataset(
        filepath=str(project / "data/06_models/trained_model.joblib"),
        backend="joblib",
        version=Version(None, None),
    )
    return dataset.load(), dataset.resolve_load_version()


def _inputs(project: Path) -> dict[str, str]:
    client = _client(project)
    run = client.get_run(client.get_model_version("churn_model", "1").run_id)
    return {
        i.dataset.name: {t.key: t.value for t in i.tags}["fingerprint"]
        for i in run.inputs.dataset_inputs
    }


def _kedro(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``kedro ARGS`` of this venv in ``project`` (module-scoped fixtures cannot use run_kedro)."""
    kedro = Path(sys.executable).with_name("kedro")
    return subprocess.run(
        [str(kedro), *args],
        cwd=project,
        env=kedro_env(project),
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The default pipeline, run in two fresh copies of the project on the same parameters."""
    projects = []
    for name in ("first", "second"):
        project = make_project_copy(tmp_path_factory.mktemp(name) / "project")
        proc = _kedro(project, "run", "--params", PARAMS)
        assert proc.returncode == 0, proc.stderr[-4000:]
        projects.append(project)
    return projects[0], projects[1]


def test_two_runs_write_byte_identical_tables(two_runs):
    first, second = two_runs
    for table in TABLES:
        assert (first / table).read_bytes() == (second / table).read_bytes(), table
    # Canonical order: the feature table is sorted by its key.
    table = pd.read_parquet(first / TABLES[-1])
    keys = table[["customer_id", "snapshot_date"]]
    assert keys.equals(keys.sort_values(["customer_id", "snapshot_date"]).reset_index(drop=True))


def test_two_runs_record_the_same_fingerprints_model_and_metrics(two_runs):
    first, second = two_runs
    for name in REPORTS:
        a = json.loads((first / "data/08_reporting" / name).read_text())
        b = json.loads((second / "data/08_reporting" / name).read_text())
        if name == "xgboost_search.json":  # wall-clock durations are the only difference
            for trials in (a["trials"], b["trials"]):
                for trial in trials:
                    trial.pop("fit_seconds", None)
        assert a == b, name
    inputs = _inputs(first)
    assert set(inputs) == {"customers", "events", "churn_records", "model_input_table"}
    assert inputs == _inputs(second)
    table = pd.read_parquet(first / TABLES[-1])
    assert inputs["model_input_table"] == fingerprint_table(table)

    (model_a, _), (model_b, _) = _model(first), _model(second)
    test = pd.read_parquet(first / "data/05_model_input/test_split.parquet")
    features = list(model_a.feature_names_in_)
    proba_a = model_a.predict_proba(test[features])
    assert np.array_equal(proba_a, model_b.predict_proba(test[features]))
    booster_a = getattr(model_a.named_steps["model"], "get_booster", None)
    if booster_a is not None:  # XGBoost won: the trees themselves are identical
        booster_b = model_b.named_steps["model"].get_booster()
        assert booster_a().save_raw("ubj") == booster_b.save_raw("ubj")
    tags = [_client(p).get_model_version("churn_model", "1").tags for p in two_runs]
    for key in ("data_fingerprint", "package_lock", "test.pr_auc", "test.roc_auc"):
        assert tags[0][key] == tags[1][key], key


def test_rebuild_reproduces_a_registered_version(two_runs, run_kedro):
    first, _ = two_runs
    proc = run_kedro(first, "models", "rebuild", "v1")
    assert "churn_model v1 rebuilt: identical predictions on" in proc.stdout


KILL_DURING_MODEL_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path

    import joblib

    def dump_half_then_die(value, target, *args, **kwargs):
        target.write(b"half a model")
        target.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    joblib.dump = dump_half_then_die  # PickleDataset(backend=joblib) calls joblib.dump

    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    params = {}
    for item in sys.argv[1].split(","):
        key, value = item.split("=")
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = int(value)
    bootstrap_project(Path.cwd())
    with KedroSession.create(project_path=Path.cwd(), runtime_params=params) as session:
        session.run(pipeline_names=["training"])
    """
)


def test_sigkill_while_saving_the_model_leaves_outputs_and_registry_intact(two_runs):
    _, project = two_runs
    before_tables = {t: (project / t).read_bytes() for t in TABLES}
    before_model, before_version = _model(project)
    client = _client(project)
    aliases = {
        a: client.get_model_version_by_alias("churn_model", a).version
        for a in ("champion", "challenger")
    }
    versions = len(client.search_model_versions("name='churn_model'"))

    proc = subprocess.run(
        [sys.executable, "-c", KILL_DURING_MODEL_SAVE, PARAMS],
        cwd=project,
        env=kedro_env(project),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == -9, proc.stderr[-3000:]

    folders = list((project / "data/06_models/trained_model.joblib").iterdir())
    assert len(folders) == 2, "the killed save started a new version folder"
    killed = next(f for f in folders if f.name != before_version)
    assert not (killed / "trained_model.joblib").exists()
    assert [p.name.startswith(".trained_model.joblib.tmp-") for p in killed.iterdir()] == [True]
    model, version = _model(project)  # the latest *complete* version is still the old one
    assert version == before_version
    test = pd.read_parquet(project / "data/05_model_input/test_split.parquet")
    features = list(model.feature_names_in_)
    assert np.array_equal(
        model.predict_proba(test[features]), before_model.predict_proba(test[features])
    )
    assert {t: (project / t).read_bytes() for t in TABLES} == before_tables
    for alias, version in aliases.items():
        assert client.get_model_version_by_alias("churn_model", alias).version == version
    assert len(client.search_model_versions("name='churn_model'")) == versions


def test_rebuild_names_the_data_when_the_training_table_changed(two_runs, run_kedro):
    _, project = two_runs
    path = project / "data/05_model_input/model_input_table.parquet"
    table = pd.read_parquet(path)
    table.loc[0, "sessions_30d"] += 1
    table.to_parquet(path)
    proc = run_kedro(project, "models", "rebuild", "1", check=False)
    assert proc.returncode != 0
    assert "data differs: model_input_table (recorded" in proc.stderr + proc.stdout
