"""deploy/docker/serving/Dockerfile and its build arguments (churn_mlops.release.serving_image).

The file is static: every value an export varies is a build argument, so the checks here are
that each argument the export writes is declared, that the file keeps the offline, two-stage,
non-root shape, and (with Docker) that an image built with non-default arguments really runs
as that user, on that port, with a health check that follows TLS. The full bundle image is
built and run in tests/pipelines/export/test_container.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from churn_mlops.release.errors import BundleContractError
from churn_mlops.release.serving_image import (
    BUILD_ARGS_FILE,
    SERVING_DOCKERFILE,
    render_build_args,
    serving_build_args,
)
from tests.conftest import PROJECT_ROOT
from tests.tools import missing

DOCKERFILE = PROJECT_ROOT / SERVING_DOCKERFILE
BASE_IMAGE = os.environ.get("CHURN_TEST_BASE_IMAGE", "local/python:3.11")
CONTAINER = SimpleNamespace(
    base_image="python:3.11-slim",
    uid=20002,
    port=9090,
    model_dir="/srv/churn/bundle",
    prediction_log_dir="/var/lib/churn/log",
)


def _args() -> dict[str, str]:
    return serving_build_args(
        CONTAINER, model_name="churn_model", model_version="7", run_id="r1", revision="abc"
    )


def declared_args(text: str) -> dict[str, str]:
    """``{name: default}`` of every ``ARG`` of a Dockerfile."""
    return dict(re.findall(r"^ARG ([A-Z_]+)=(\S*)$", text, flags=re.M))


def stages(text: str) -> list[str]:
    """The Dockerfile's stages without comments, each from its ``FROM`` line."""
    code = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    return re.split(r"^(?=FROM )", code, flags=re.M)[1:]


def test_every_build_arg_the_export_writes_is_declared() -> None:
    declared = declared_args(DOCKERFILE.read_text())
    assert set(_args()) == set(declared)
    # The defaults are the export's defaults, so a bare `docker build` gives the same image.
    assert declared["BASE_IMAGE"] == "python:3.11-slim"
    assert declared["APP_UID"] == "10001" and declared["PORT"] == "8080"


def test_the_dockerfile_installs_offline_in_a_build_stage_the_image_does_not_keep() -> None:
    text = DOCKERFILE.read_text()
    build, final = stages(text)
    assert build.startswith("FROM ${BASE_IMAGE} AS build")
    assert "--no-index --find-links /tmp/bundle/wheelhouse" in build
    assert "--require-hashes -r /tmp/bundle/requirements.txt" in build
    assert "wheelhouse" not in final
    assert re.search(r"^USER \$\{APP_UID\}:\$\{APP_UID\}$", final, flags=re.M)
    assert "/health/ready" in final and "CHURN_SSL_CERTFILE" in final and "curl" not in final
    assert final.rstrip().splitlines()[-1] == 'CMD ["python", "-m", "churn_mlops.serving"]'


def test_build_args_file_is_one_flag_per_line() -> None:
    text = render_build_args(_args())
    assert "--build-arg=APP_UID=20002\n" in text
    assert "--build-arg=RELOAD_ROOT=/srv/churn\n" in text
    assert len(text.splitlines()) == len(_args())


@pytest.mark.parametrize("value", ["", "two words", "it's", "a$b", "x\ny"])
def test_a_value_the_shell_would_change_is_refused(value: str) -> None:
    with pytest.raises(BundleContractError, match=rf"MODEL_NAME={re.escape(repr(value))}"):
        render_build_args({**_args(), "MODEL_NAME": value})


# --------------------------------------------------------------------------- real build


def _docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )


def _stub_context(root: Path) -> Path:
    """A bundle-shaped build context: no third-party pins, a stub project wheel, stub files."""
    (root / "wheelhouse").mkdir(parents=True)
    (root / "requirements.txt").write_text("")
    dist_info = "churn_mlops-0.0.0.dist-info"
    with zipfile.ZipFile(root / "wheelhouse" / "churn_mlops-0.0.0-py3-none-any.whl", "w") as whl:
        whl.writestr("churn_mlops_stub.py", "")
        whl.writestr(
            f"{dist_info}/METADATA", "Metadata-Version: 2.1\nName: churn-mlops\nVersion: 0.0.0\n"
        )
        whl.writestr(
            f"{dist_info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        whl.writestr(f"{dist_info}/RECORD", "")
    (root / "model").mkdir()
    (root / "model" / "model.onnx").write_bytes(b"stub")
    for name in ("model_metadata.json", "reference_profile.json", "model_card.md", "manifest.json"):
        (root / name).write_text("{}")
    (root / "Dockerfile").write_text(DOCKERFILE.read_text())
    (root / BUILD_ARGS_FILE).write_text(render_build_args(_args()))
    return root


@pytest.fixture(scope="module")
def built_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``docker image inspect`` of the static Dockerfile built with the bundle's build args."""
    try:
        _docker("info", timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        missing(f"`docker info` fails, no Docker daemon to build the serving image: {exc}")
    if _docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        missing(f"base image {BASE_IMAGE} is missing: deploy/docker/make_base_image.sh makes it")
    context = _stub_context(tmp_path_factory.mktemp("bundle"))
    tag = f"churn-serving-test:{os.getpid()}"
    # Exactly the documented command, with the base image of this machine appended.
    flags = (context / BUILD_ARGS_FILE).read_text().split()
    before = _image_ids()
    build = _docker(
        "build", *flags, "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--force-rm", "-t", tag,
        str(context), timeout=600, check=False,
    )  # fmt: skip
    # The images of both stages this build made: new, and named in its own output.
    steps = re.findall(r"^ ---> ([0-9a-f]{12})$", build.stdout, flags=re.M)
    made = [i for i in _image_ids() - before if i.removeprefix("sha256:")[:12] in steps]
    try:
        assert build.returncode == 0, f"docker build failed:\n{build.stdout[-3000:]}{build.stderr}"
        yield json.loads(_docker("image", "inspect", tag).stdout)[0]
    finally:
        _docker("rmi", "--force", tag, check=False)
        for image in made:
            _docker("rmi", image, check=False)


def _image_ids() -> set[str]:
    return set(_docker("images", "--all", "--quiet", "--no-trunc").stdout.split())


@pytest.mark.docker
@pytest.mark.slow
def test_the_built_image_runs_as_the_user_on_the_port_of_its_build_args(built_image) -> None:
    config = built_image["Config"]
    assert config["User"] == "20002:20002"
    assert set(config["ExposedPorts"]) == {"9090/tcp"}
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["CHURN_PORT"] == "9090"
    assert env["CHURN_MODEL_DIR"] == "/srv/churn/bundle"
    assert env["CHURN_RELOAD_ROOT"] == "/srv/churn"
    assert env["CHURN_PREDICTION_LOG_DIR"] == "/var/lib/churn/log"
    assert config["Labels"]["io.churn-mlops.model.version"] == "7"
    assert config["Labels"]["org.opencontainers.image.title"] == "churn_model serving"
    health = config["Healthcheck"]
    assert health["Test"][0] == "CMD" and "/health/ready" in health["Test"][-1]
    assert "CHURN_SSL_CERTFILE" in health["Test"][-1]
    assert health["Interval"] == 15 * 10**9 and health["Retries"] == 3


@pytest.mark.docker
@pytest.mark.slow
def test_the_image_holds_the_model_files_and_a_writable_log_folder(built_image) -> None:
    tag = built_image["RepoTags"][0]
    listing = _docker(
        "run", "--rm", "--entrypoint", "sh", tag, "-c",
        "ls /srv/churn/bundle /srv/churn/bundle/model && test -w /var/lib/churn/log && id -u"
        " && ! ls /tmp/bundle 2>/dev/null",
    )  # fmt: skip
    lines = listing.stdout.split()
    assert {"manifest.json", "model_metadata.json", "model.onnx"} <= set(lines)
    assert lines[-1] == "20002"
