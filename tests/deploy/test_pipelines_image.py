"""The pipelines image (``churn-mlops-pipelines``) that the Kubernetes Jobs run.

Fast checks (no Docker): the pins are the installed versions of the project's runtime, the
copied project holds no credentials or caches, and the Dockerfile agrees with the Job
manifests. Then the real thing: the build context is prepared from the shared wheel cache,
built offline with the local base image (CI makes it with deploy/docker/make_base_image.sh),
and containers run the way the Jobs run them (uid 10001, read-only root filesystem, a tmpfs
on /tmp, volumes only on /app/data and /app/dist, every capability dropped): a small
``kedro run`` writes its tables on the data volume, continuous training runs its refresh
pipelines, and ``docker diff`` shows nothing written outside /tmp. Every image and container
the test creates is removed by id.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from churn_mlops.release.bundle import sha256_file
from churn_mlops.release.pipelines_image import (
    CONTEXT_MARKER,
    DEFAULT_BASE_IMAGE,
    DOCKERFILE,
    PipelinesImageError,
    PreparedContext,
    build_image,
    copy_project,
    default_tag,
    image_inputs,
    prepare_context,
)
from churn_mlops.release.wheelhouse import fill_wheelhouse
from tests.deploy.conftest import PROJECT_ROOT
from tests.pipelines.export.conftest import WHEEL_CACHE
from tests.tools import missing

BASE_IMAGE = os.environ.get("CHURN_TEST_BASE_IMAGE", DEFAULT_BASE_IMAGE)
DOCKER_ENV = {**os.environ, "DOCKER_BUILDKIT": "0"}
UID = 10001
JOB_MANIFESTS = {
    "training": PROJECT_ROOT / "deploy" / "k8s" / "jobs" / "training" / "cronjob.yaml",
    "export": PROJECT_ROOT / "deploy" / "k8s" / "jobs" / "export" / "job.yaml",
}
# A small simulation (420 customers over 6 months): the run takes seconds.
SMALL_SIMULATION = ",".join(
    [
        "simulation.n_months=6",
        "simulation.population.initial_customers=300",
        "simulation.population.monthly_signups=20",
        "simulation.scenario.start_month=3",
    ]
)


# ------------------------------------------------------------------------ without Docker


@pytest.mark.slow  # resolves the runtime closure with pip (about 30 s)
def test_pins_are_the_installed_runtime_without_dev_spark_or_gpu_extras(tmp_path: Path) -> None:
    inputs = image_inputs(PROJECT_ROOT / "pyproject.toml")
    pins, _ = fill_wheelhouse(inputs, tmp_path / "wheelhouse", cache_dir=WHEEL_CACHE)
    names = {pin.name for pin in pins}

    for pin in pins:
        assert pin.name == pin.installed_as  # no twin: the export needs `xgboost` itself
        assert pin.version == metadata.version(pin.name), pin
    # The project's dependencies and the serving extra (the export pins it from these).
    assert {"kedro", "kedro-datasets", "kedro-mlflow", "mlflow", "duckdb", "xgboost"} <= names
    assert {"fastapi", "uvicorn", "pydantic-settings", "pyjwt", "orjson"} <= names
    assert not names & {"pyspark", "pytest", "ruff", "jupyterlab", "nvidia-nccl-cu12"}


def _fake_checkout(root: Path) -> Path:
    """The smallest tree copy_project accepts, with secrets and caches that must stay out."""
    for name in ("pyproject.toml", "README.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    files = {
        "src/churn_mlops/__init__.py": "",
        "src/churn_mlops/__pycache__/x.cpython-311.pyc": "",
        "src/churn_mlops.egg-info/PKG-INFO": "",
        "deploy/k8s/jobs/export/job.yaml": "kind: Job",
        "deploy/docker/serving/Dockerfile": "FROM x",
        "feature_repo/feature_store.yaml": "project: x",
        "conf/base/parameters.yml": "a: 1",
        "conf/base/credentials.yml": "token: nope",
        "conf/prod/tls.key": "nope",
        "conf/local/credentials.yml": "token: nope",
        "conf/local/mlflow.yml": "server: {}",
        "conf/logging.yml": "version: 1",
        "data/01_raw/.gitkeep": "",
        "data/01_raw/customers.parquet": "rows",
        "data/08_reporting/.gitkeep": "",
        "data/scratch/notes.txt": "untracked",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_copy_project_leaves_out_credentials_caches_and_data(tmp_path: Path) -> None:
    source = _fake_checkout(tmp_path / "checkout")
    app = tmp_path / "app"

    copy_project(source, app)

    copied = sorted(p.relative_to(app).as_posix() for p in app.rglob("*") if p.is_file())
    assert copied == [
        "README.md",
        "conf/base/parameters.yml",
        "conf/logging.yml",
        "data/01_raw/.gitkeep",
        "data/08_reporting/.gitkeep",
        "deploy/docker/serving/Dockerfile",
        "deploy/k8s/jobs/export/job.yaml",
        "feature_repo/feature_store.yaml",
        "pyproject.toml",
        "src/churn_mlops/__init__.py",
    ]
    assert (app / "conf" / "local").is_dir()  # empty, as Kedro expects it


def test_copy_project_of_the_checkout_has_what_the_jobs_need(tmp_path: Path) -> None:
    app = tmp_path / "app"
    copy_project(PROJECT_ROOT, app)

    for name in (
        "pyproject.toml",
        "README.md",
        "src/churn_mlops/orchestration/continuous_training.py",
        "conf/base/catalog_export.yml",
        "conf/logging.yml",
        "deploy/k8s/base/kustomization.yaml",  # the export renders k8s/ from it
        "deploy/docker/serving/Dockerfile",  # the export copies it into the bundle
        "feature_repo/feature_store.redis.yaml",  # the batch-scoring CronJob's repository
        "data/01_raw/.gitkeep",
    ):
        assert (app / name).is_file(), name
    assert not list((app / "conf" / "local").iterdir())
    assert not [p for p in app.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]


def test_copy_project_refuses_a_tree_that_is_not_a_checkout(tmp_path: Path) -> None:
    with pytest.raises(PipelinesImageError, match=r"not a project checkout: .*src"):
        copy_project(tmp_path, tmp_path / "app")


def test_prepare_context_never_empties_a_folder_it_did_not_write(tmp_path: Path) -> None:
    foreign = tmp_path / "context"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")

    with pytest.raises(PipelinesImageError, match=CONTEXT_MARKER):
        prepare_context(PROJECT_ROOT, foreign, cache_dir=tmp_path / "cache")
    assert (foreign / "keep.txt").read_text() == "mine"


def test_default_tag_is_the_short_commit() -> None:
    sha = "e9559eacaf87d1e00588af91be246124d60444b5"
    assert default_tag(sha) == "churn-mlops-pipelines:e9559ea"
    assert default_tag(f"{sha}+dirty") == "churn-mlops-pipelines:e9559ea-dirty"
    assert default_tag("unknown") == "churn-mlops-pipelines:dev"


def _pod_spec(manifest: Path) -> dict:
    obj = yaml.safe_load(manifest.read_text())
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


@pytest.mark.parametrize("job", sorted(JOB_MANIFESTS))
def test_dockerfile_fits_the_job_manifest(job: str) -> None:
    dockerfile = (PROJECT_ROOT / DOCKERFILE).read_text()
    pod = _pod_spec(JOB_MANIFESTS[job])
    (container,) = pod["containers"]
    user = pod["securityContext"]["runAsUser"]

    assert container["image"] == "churn-mlops-pipelines"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert re.search(rf"^USER {user}:{user}$", dockerfile, flags=re.M)
    assert re.search(rf"^WORKDIR {container['workingDir']}$", dockerfile, flags=re.M)
    assert container["command"][0] in {"kedro", "python"}  # both in /opt/venv/bin on PATH
    # The writable mounts are the folders the image leaves to uid 10001 (and /tmp).
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/app/data", "/app/dist", "/tmp"}
    assert f"chown -R {user}:{user} /app/data /app/dist" in dockerfile
    # Offline install of exactly the pinned wheels.
    assert "--no-index" in dockerfile and "--require-hashes" in dockerfile
    for setting in (
        "KEDRO_DISABLE_TELEMETRY=true",
        "DO_NOT_TRACK=1",
        "MLFLOW_DISABLE_TELEMETRY=true",
        "HOME=/tmp",
    ):
        assert setting in dockerfile
    assert not re.search(r"(PASSWORD|TOKEN|SECRET|_KEY)\s*=", dockerfile)


# ---------------------------------------------------------------------- the build context


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreparedContext]:
    """The build context, from the export's wheel cache (downloads only what it lacks)."""
    folder = tmp_path_factory.mktemp("pipelines-image") / "context"
    yield prepare_context(PROJECT_ROOT, folder, cache_dir=WHEEL_CACHE)
    shutil.rmtree(folder, ignore_errors=True)  # ~0.5 GB of wheels: not kept with the tmp dirs


@pytest.mark.slow
def test_context_pins_every_wheel_by_hash_and_holds_no_secrets(context: PreparedContext) -> None:
    root = context.path
    wheels = {p.name: p for p in (root / "wheelhouse").glob("*.whl")}
    requirements = (root / "requirements.txt").read_text()
    pinned = re.findall(
        r"^([A-Za-z0-9._-]+)==(\S+) \\\n +--hash=sha256:([0-9a-f]{64})$", requirements, flags=re.M
    )

    assert len(pinned) == len(context.pins) == len(wheels)
    assert {(n, v) for n, v, _ in pinned} == {(p.name, p.version) for p in context.pins}
    assert {h for *_, h in pinned} == {sha256_file(p) for p in wheels.values()}
    # Nothing that changes with each commit: the file keys Docker's cache of the venv layer.
    assert context.revision.split("+")[0] not in requirements
    assert (root / "Dockerfile").read_bytes() == (PROJECT_ROOT / DOCKERFILE).read_bytes()
    assert (root / CONTEXT_MARKER).is_file()
    files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    assert not [f for f in files if re.search(r"credentials|\.pem$|\.key$|(^|/)\.env$", f)]
    assert not list((root / "app" / "conf" / "local").iterdir())
    assert not [f for f in files if f.startswith("app/data/") and not f.endswith(".gitkeep")]


# ------------------------------------------------------------------------------ with Docker


def _docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        env=DOCKER_ENV,
    )


def _image_ids() -> set[str]:
    return set(_docker("images", "--all", "--quiet", "--no-trunc").stdout.split())


@pytest.fixture(scope="module")
def docker_daemon() -> None:
    """Skip (fail under CI) before the context is prepared when Docker or the base image is
    missing."""
    try:
        _docker("info", timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        missing(f"`docker info` fails, no Docker daemon to build the image: {exc}")
    if _docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        missing(
            f"base image {BASE_IMAGE} is missing: build it with"
            " deploy/docker/make_base_image.sh (or set CHURN_TEST_BASE_IMAGE)"
        )


@pytest.fixture(scope="module")
def image(docker_daemon, context: PreparedContext) -> Iterator[str]:
    """The image, built offline from the prepared context; removed with its build stages."""
    tag = f"churn-mlops-pipelines:test-{secrets.token_hex(4)}"
    before = _image_ids()
    try:
        yield build_image(context, tag, base_image=BASE_IMAGE, timeout_s=1200)
    finally:
        # Layers an earlier build had already cached are not this test's to remove: untag only.
        _docker("rmi", tag, check=False)
        left = _image_ids() - before
        for _ in range(10):  # children before parents: retry what a child still held
            for full in sorted(left):
                _docker("rmi", "--force", full, check=False)
            left &= _image_ids()
            if not left:
                break


def _writable_by_uid(path: Path) -> None:
    """Give ``path`` to uid 10001 (what fsGroup does in the pods), or open it when not root."""
    try:
        os.chown(path, UID, UID)
    except PermissionError:
        path.chmod(0o777)


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Host folders for /app/data and /app/dist, writable by uid 10001 (like fsGroup)."""
    root = tmp_path_factory.mktemp("pipelines-volumes")
    for name in ("data", "dist"):
        (root / name).mkdir()
        _writable_by_uid(root / name)
    return root


def _job_flags(volumes: Path, *, read_only: bool = True) -> list[str]:
    """``docker run`` options that mirror the Jobs' pod and container security settings."""
    flags = [
        "--network",
        "host",
        "--user",
        f"{UID}:{UID}",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-v",
        f"{volumes / 'data'}:/app/data",
        "-v",
        f"{volumes / 'dist'}:/app/dist",
    ]
    if read_only:
        flags += ["--read-only", "--tmpfs", "/tmp:rw,exec,mode=1777"]
    return flags


@pytest.mark.docker
@pytest.mark.slow
def test_image_runs_as_10001_with_kedro_and_the_project_on_path(
    image: str, context: PreparedContext
) -> None:
    config = yaml.safe_load(_docker("inspect", "--format", "{{json .Config}}", image).stdout)
    env = dict(item.split("=", 1) for item in config["Env"])
    assert config["User"] == f"{UID}:{UID}" and config["WorkingDir"] == "/app"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["KEDRO_DISABLE_TELEMETRY"] == "true" and env["DO_NOT_TRACK"] == "1"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert not [k for k in env if re.search(r"PASSWORD|TOKEN|SECRET|_KEY$", k)]

    # The image's own user (no --user), read-only like the pods.
    script = (
        'echo "ids=$(id -u):$(id -g)"; kedro --version;'
        " python -c 'import churn_mlops; print(\"package=\" + churn_mlops.__file__)';"
        " python -c 'from churn_mlops.provenance import git_revision as g;"
        ' print("commit=" + g())\';'
        " python -m churn_mlops.orchestration.continuous_training --help"
    )
    proc = _docker(
        "run",
        "--rm",
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp:rw,exec,mode=1777",
        image,
        "sh",
        "-c",
        script,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert f"ids={UID}:{UID}" in lines
    assert f"kedro, version {metadata.version('kedro')}" in lines
    assert "package=/app/src/churn_mlops/__init__.py" in lines  # the editable install in /app
    # No .git in the image: models trained and bundles exported here name the image's commit.
    assert f"commit={context.revision}" in lines
    assert "--dry-run" in proc.stdout and "--params" in proc.stdout


@pytest.fixture(scope="module")
def simulated(image: str, volumes: Path) -> subprocess.CompletedProcess:
    """``kedro run --pipelines simulation,data_processing`` exactly as a Job would run it."""
    return _docker(
        "run",
        "--rm",
        *_job_flags(volumes),
        image,
        "kedro",
        "run",
        "--pipelines",
        "simulation,data_processing",
        "--params",
        SMALL_SIMULATION,
        timeout=300,
        check=False,
    )


@pytest.mark.docker
@pytest.mark.slow
def test_kedro_run_on_a_read_only_root_writes_its_tables_on_the_data_volume(
    simulated: subprocess.CompletedProcess, volumes: Path
) -> None:
    assert simulated.returncode == 0, simulated.stdout[-4000:] + simulated.stderr[-2000:]
    data = volumes / "data"
    for table in (
        "01_raw/customers.parquet",
        "01_raw/events.parquet",
        "03_primary/customers_primary.parquet",
        "03_primary/events_primary.parquet",
        "02_intermediate/quarantine.parquet",
        "mlflow.db",  # the image's default MLflow store lives on the volume
    ):
        path = data / table
        assert path.is_file(), table
        assert path.stat().st_uid == UID, table
    assert "Pipeline execution completed" in simulated.stdout


@pytest.mark.docker
@pytest.mark.slow
def test_continuous_training_runs_in_the_image_and_writes_only_to_volumes_and_tmp(
    image: str, simulated: subprocess.CompletedProcess, volumes: Path
) -> None:
    assert simulated.returncode == 0
    # A writable root this time, so that `docker diff` can show any write outside the volumes.
    cid = _docker(
        "create",
        *_job_flags(volumes, read_only=False),
        image,
        "python",
        "-m",
        "churn_mlops.orchestration.continuous_training",
        "--dry-run",
    ).stdout.strip()
    try:
        _docker("start", "--attach", cid, timeout=300, check=False)
        logs = _docker("logs", cid)
        output = logs.stdout + logs.stderr
        status = _docker("inspect", "--format", "{{.State.ExitCode}}", cid).stdout.strip()
        changed = _docker("diff", cid).stdout.split("\n")
    finally:
        _docker("rm", "--force", cid, check=False)

    # The refresh pipelines ran (new features on the volume); monitoring then stops because
    # this fresh store has no champion yet, with the message saying what to do.
    assert (volumes / "data" / "05_model_input" / "model_input_table.parquet").is_file(), output
    assert status == "1"
    assert "has no version with alias 'champion'" in output
    paths = [line.split(" ", 1)[1] for line in changed if line.strip()]
    assert paths, "docker diff saw nothing: /tmp was expected to change"
    assert [p for p in paths if p != "/tmp" and not p.startswith("/tmp/")] == []


@pytest.mark.docker
@pytest.mark.slow
def test_a_local_mlflow_store_keeps_artifacts_on_the_data_volume(image: str, volumes: Path) -> None:
    # A local store's ./mlruns is data/mlruns (docs/handoff.md: create it once on the volume).
    (volumes / "data" / "mlruns").mkdir(exist_ok=True)
    _writable_by_uid(volumes / "data" / "mlruns")
    script = (
        "import mlflow\n"
        "mlflow.set_experiment('pipelines-image-test')\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_text('ok', 'check.txt')\n"
        "print(run.info.run_id)\n"
    )
    proc = _docker(
        "run",
        "--rm",
        *_job_flags(volumes),
        image,
        "python",
        "-c",
        script,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = proc.stdout.strip().splitlines()[-1]
    (artifact,) = (volumes / "data" / "mlruns").glob(f"*/{run_id}/artifacts/check.txt")
    assert artifact.read_text() == "ok"
