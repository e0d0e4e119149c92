"""``kedro run --pipeline export`` on a real registry: contract, reproducibility, parity gate.

A small project is run from simulation to a registered champion (real MLflow SQLite store),
then exported (fixture ``exported_project``). The bundle must hold every file of the contract
with checksums that match, pins equal to this environment, and a passed parity gate;
exporting again must give byte-identical files; a bundle whose app does not answer like the
evaluation must not be written, and must leave the previous bundle as it was.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DatasetError
from mlflow import MlflowClient

from churn_mlops.contracts.artifacts import EXPECTED_COLUMN
from churn_mlops.datasets.serving_bundle import ServingBundleDataset
from churn_mlops.pipelines.export.nodes import assemble_serving_bundle
from churn_mlops.release.bundle import file_checksums
from churn_mlops.release.errors import ParityError
from tests.conftest import kedro_env
from tests.pipelines.export.conftest import WHEEL_CACHE, run_export

# The first test builds the shared exported project (minutes on a busy machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

CONTRACT_FILES = {
    "model/model.onnx",
    "model/explainer.json",
    "model_metadata.json",
    "reference_profile.json",
    "model_card.md",
    "Dockerfile",
    "requirements.txt",
    "golden_sample.parquet",
    "manifest.json",
}
#: Training-only libraries that must stay out of the serving image.
# ibis and duckdb are served since the image carries Feast (its repository's DuckDB offline
# store is validated when it opens); the training stack never is.
NOT_SERVED = ("kedro", "mlflow", "shap", "evidently", "optuna", "pandera", "nvidia")


def _dist_entries(project: Path) -> set[str]:
    return {p.name for p in (project / "dist").iterdir()} - {".wheel-cache"}


def test_bundle_holds_the_contract_with_lineage_and_checksums(exported_project):
    bundle = exported_project.bundle
    files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert CONTRACT_FILES <= files
    assert "k8s/base/kustomization.yaml" in files
    assert _dist_entries(exported_project.root) == {"churn_model-v1"}  # nothing half-written

    manifest = exported_project.manifest()
    client = MlflowClient(tracking_uri=kedro_env(exported_project.root)["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias("churn_model", "champion")
    assert manifest["model"]["registry_name"] == "churn_model"
    assert manifest["model"]["version"] == str(champion.version) == "1"
    assert manifest["model"]["run_id"] == champion.run_id
    assert manifest["lineage"]["data_fingerprint"] == champion.tags["data_fingerprint"]
    assert manifest["lineage"]["training_git_commit"] == champion.tags["git_commit"]
    assert manifest["source"]["git_commit"]
    assert manifest["packages"]["serving"]["scikit-learn"] == version("scikit-learn")
    assert manifest["packages"]["serving"]["xgboost-cpu"] == version("xgboost")
    # Every file but the manifest itself is listed, with its real checksum.
    assert manifest["files"] == file_checksums(bundle)
    assert set(manifest["files"]) == files - {"manifest.json"}

    parity = manifest["parity"]
    assert parity["passed"] and parity["rows"] == 200
    assert manifest["golden_sample"]["source"] == "model_version"  # stored by the evaluation
    assert parity["max_abs_diff"] <= parity["tolerance"] == 1e-6

    metadata = json.loads((bundle / "model_metadata.json").read_text())
    assert metadata["model_version"] == "1" and metadata["run_id"] == champion.run_id
    # The feature views the model reads: in its metadata, the manifest and the version's tags.
    needs = manifest["feature_store"]
    assert needs["online_store"] == "redis" and needs["feature_service"] == "churn_model"
    views = [view["name"] for view in needs["feature_views"]]
    assert views == [view["name"] for view in metadata["feature_store"]["feature_views"]]
    assert champion.tags["feature_store.views"] == ",".join(views)
    golden = pd.read_parquet(bundle / "golden_sample.parquet")
    features = [f["name"] for f in metadata["features"]]
    assert list(golden.columns) == ["customer_id", "snapshot_date", *features, EXPECTED_COLUMN]
    assert "model/model.joblib" not in files  # nothing in the bundle runs code when loaded
    # The served ONNX graph answers like the registered Pipeline on the golden sample.
    from churn_mlops.release.onnx_model import onnx_gap

    model = _registered_model(bundle)
    assert onnx_gap((bundle / "model" / "model.onnx").read_bytes(), model, golden) <= 1e-6


def _registered_model(bundle: Path):
    """The champion Pipeline as the registry holds it (the bundle ships ONNX only)."""
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(kedro_env(bundle.parents[1])["MLFLOW_TRACKING_URI"])
    return mlflow.sklearn.load_model("models:/churn_model/1")


def test_requirements_are_pinned_hashed_and_minimal(exported_project):
    bundle = exported_project.bundle
    text = (bundle / "requirements.txt").read_text()
    pins = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\$", text, flags=re.MULTILINE))
    hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})$", text, flags=re.MULTILINE)
    assert len(pins) == len(hashes) > 20
    for name in ("numpy", "pandas", "scikit-learn", "joblib", "fastapi", "uvicorn", "pyjwt"):
        assert pins[name] == version(name), name
    assert pins["xgboost-cpu"] == version("xgboost")
    assert "xgboost" not in pins
    # The model records feature views, so it is served by customer id through Feast and Redis
    # (async-timeout: redis needs it on the base image's Python 3.11.2).
    for name in ("feast", "redis", "async-timeout"):
        assert pins[name] == version(name), name
    assert not [name for name in pins if name.startswith(NOT_SERVED)]

    wheels = sorted(p.name for p in (bundle / "wheelhouse").glob("*.whl"))
    assert len(wheels) == len(pins) + 1
    assert [w for w in wheels if w.startswith("churn_mlops-")]
    assert not [w for w in wheels if w.lower().startswith(NOT_SERVED)]
    manifest = exported_project.manifest()
    on_disk = {f"wheelhouse/{w}": manifest["files"][f"wheelhouse/{w}"]["sha256"] for w in wheels}
    assert set(hashes) <= set(on_disk.values())


def test_the_export_shows_one_progress_bar_over_its_timed_phases(exported_project):
    from churn_mlops.release.bundle import EXPORT_PHASES

    log = exported_project.export_log
    assert log.count("export: 100%") == 1
    assert f"{len(EXPORT_PHASES)}/{len(EXPORT_PHASES)} [" in log and "checksums done" in log
    phases = exported_project.manifest()["export"]["phases_s"]
    assert list(phases) == [*EXPORT_PHASES, "cleanup"]


def test_k8s_manifests_pin_the_image_and_model_version(exported_project):
    kustomization = yaml.safe_load(
        (exported_project.bundle / "k8s" / "release" / "serving" / "kustomization.yaml").read_text()
    )
    image = next(i for i in kustomization["images"] if i["name"] == "churn-serving")
    assert image["newName"] == "churn-serving" and image["newTag"] == "churn_model-v1"
    labels = [group["pairs"] for group in kustomization["labels"]]
    assert {"app.kubernetes.io/version": "1"} in [
        {k: v for k, v in pairs.items() if k == "app.kubernetes.io/version"} for pairs in labels
    ]


def test_exporting_the_same_version_again_gives_identical_files(exported_project):
    first = exported_project.manifest()
    run_export(exported_project.root, exported_project.source_dir)
    second = exported_project.manifest()

    assert second["export"]["created_at"] >= first["export"]["created_at"]
    assert second["files"] == first["files"]
    assert {k: v for k, v in second.items() if k != "export"} == {
        k: v for k, v in first.items() if k != "export"
    }
    assert _dist_entries(exported_project.root) == {"churn_model-v1"}


def _payload_from_bundle(bundle: Path, golden: pd.DataFrame) -> dict:
    """The description ``assemble_serving_bundle`` makes, rebuilt from an exported bundle."""
    metadata = json.loads((bundle / "model_metadata.json").read_text())
    release = {
        "model_name": metadata["model_name"],
        "version": metadata["model_version"],
        "run_id": metadata["run_id"],
        "model_uri": "models:/churn_model/1",
        "tags": {},
        "model": _registered_model(bundle),
        "model_metadata": metadata,
        "model_card": (bundle / "model_card.md").read_text(),
        "reference_profile": json.loads((bundle / "reference_profile.json").read_text()),
    }
    params = yaml.safe_load(
        (bundle.parents[1] / "conf" / "base" / "parameters_export.yml").read_text()
    )["export"]
    params["output_dir"] = str(bundle.parent)
    return assemble_serving_bundle(release, golden, {"rows": len(golden)}, params)


def test_a_parity_failure_fails_the_export_and_keeps_the_previous_bundle(exported_project):
    bundle = exported_project.bundle
    before = file_checksums(bundle, skip=frozenset())
    golden = pd.read_parquet(bundle / "golden_sample.parquet")
    tampered = golden.copy()
    tampered.loc[[3, 17], EXPECTED_COLUMN] += 1e-3  # evaluation "said" something else
    dataset = ServingBundleDataset(
        wheel_cache_dir=str(WHEEL_CACHE),
        project_source_dir=str(exported_project.source_dir),
        parity={"startup_timeout_s": 300},
    )

    with pytest.raises(DatasetError) as failure:
        dataset.save(_payload_from_bundle(bundle, tampered))

    cause = failure.value.__cause__ or failure.value
    assert isinstance(cause, ParityError)
    message = str(cause)
    assert "parity gate failed" in message
    assert "on 2 of 200 golden rows" in message and "worst is golden row" in message
    assert file_checksums(bundle, skip=frozenset()) == before
    assert _dist_entries(exported_project.root) == {"churn_model-v1"}
