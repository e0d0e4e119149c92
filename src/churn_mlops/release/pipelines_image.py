"""Build the pipelines image (``churn-mlops-pipelines``) that the Kubernetes Jobs run.

The Jobs of ``deploy/k8s/jobs`` (continuous training, export) run the Kedro project itself:
``kedro`` and ``python`` on ``PATH``, the project with its ``conf/`` at ``/app``, uid 10001, a
read-only root filesystem with volumes on ``/app/data``, ``/app/dist`` and ``/tmp``. The image
is built offline, like the serving image of an export bundle, in two steps:

1. :func:`prepare_context` writes a build context folder (default ``dist/pipelines-image/``):
   ``deploy/docker/pipelines/Dockerfile``; ``requirements.txt``, the project's whole runtime
   (``dependencies`` plus the ``serving`` extra, which the export pipeline pins from the
   installed distributions) pinned to the versions installed *here* by ``uv pip compile``,
   with each wheel's sha256;
   ``wheelhouse/`` with those wheels, taken from the export's wheel cache (only missing ones are
   downloaded); and ``app/``: ``pyproject.toml``, ``README.md``, ``src/``, ``conf/`` (never the
   contents of ``conf/local``, where credentials live), ``deploy/k8s`` (the export renders it),
   ``deploy/docker/serving`` (the export copies its Dockerfile) and the empty ``data/`` layers.
2. :func:`build_image` runs ``docker build`` on that folder; nothing is fetched from a package
   index during the build.

Command line (``make pipelines-image`` runs it)::

    python -m churn_mlops.release.pipelines_image \\
        --tag registry.example.com/ml/churn-mlops-pipelines:1
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from churn_mlops.provenance import UNKNOWN, git_revision
from churn_mlops.release.deploy import PIPELINES_IMAGE_PLACEHOLDER
from churn_mlops.release.errors import ExportError
from churn_mlops.release.requirements import (
    Pin,
    ResolutionInputs,
    project_requirements,
    resolution_inputs,
)
from churn_mlops.release.wheelhouse import fill_wheelhouse

logger = logging.getLogger(__name__)

#: Repository of the default tag (the placeholder the manifests of deploy/k8s/jobs use).
DEFAULT_REPOSITORY = PIPELINES_IMAGE_PLACEHOLDER
#: Default ``BASE_IMAGE``: made by deploy/docker/make_base_image.sh where Docker Hub is out of
#: reach; ``python:3.11-slim`` or any Debian-based CPython 3.11 image works as well.
DEFAULT_BASE_IMAGE = "local/python:3.11"
#: Optional-dependency groups installed besides ``dependencies``: the export pipeline pins the
#: serving app's closure from the installed distributions, so they must be in the image.
EXTRAS: tuple[str, ...] = ("serving",)
#: Distributions left out of the closure: xgboost's GPU collective library (300 MB, unused on
#: CPU; the image installs with ``--no-deps``).
EXCLUDE: tuple[str, ...] = ("nvidia-nccl-cu12",)
#: The Dockerfile, relative to the project checkout.
DOCKERFILE = Path("deploy") / "docker" / "pipelines" / "Dockerfile"
#: Project files and folders copied into ``app/`` besides ``conf/`` and the data layers.
PROJECT_FILES = ("pyproject.toml", "README.md")
PROJECT_TREES = ("src", "deploy/k8s", "deploy/docker/serving", "feature_repo")
#: File marking a folder as a build context this module wrote (and may therefore empty).
CONTEXT_MARKER = ".churn-pipelines-image"

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "*.egg-info", ".*")
# Never copied from conf/, whatever the environment folder: credentials and keys.
_SECRETS = shutil.ignore_patterns("credentials*", "*.pem", "*.key", ".env", "__pycache__")


class PipelinesImageError(RuntimeError):
    """The build context or the image could not be made; the message says which step and why."""


@dataclass(frozen=True)
class PreparedContext:
    """A build context written by :func:`prepare_context`.

    Attributes:
        path: The context folder (holds ``Dockerfile``).
        pins: The pinned third-party distributions in ``requirements.txt``.
        revision: Git commit of the source (``<sha>`` or ``<sha>+dirty``; ``unknown``).
    """

    path: Path
    pins: tuple[Pin, ...]
    revision: str


def checkout_dir() -> Path:
    """The project checkout this package runs from (``src/churn_mlops/release/..`` -> the root)."""
    return Path(__file__).resolve().parents[3]


def default_tag(revision: str, repository: str = DEFAULT_REPOSITORY) -> str:
    """``<repository>:<short sha>`` (``-dirty`` appended for uncommitted changes)."""
    if revision == UNKNOWN:
        return f"{repository}:dev"
    sha, _, dirty = revision.partition("+")
    return f"{repository}:{sha[:7]}{'-dirty' if dirty else ''}"


def image_inputs(
    pyproject: Path, extras: Iterable[str] = EXTRAS, exclude: Iterable[str] = EXCLUDE
) -> ResolutionInputs:
    """What ``uv pip compile`` resolves for the image: the project's runtime (``dependencies``
    + ``extras``) with the installed versions as constraints.

    Raises:
        RequirementsError: ``pyproject`` has no such extra or an invalid requirement.
    """
    return resolution_inputs(project_requirements(pyproject, extras), exclude=exclude)


def copy_project(source_dir: Path, app_dir: Path) -> None:
    """Copy what the image needs of the checkout into ``app_dir`` (the future ``/app``).

    ``conf/`` is copied without the contents of ``conf/local`` (kept as an empty folder, as
    Kedro expects it) and without credential or key files in any environment; ``data/`` only
    as its empty layer folders (those the checkout tracks with a ``.gitkeep``).

    Raises:
        PipelinesImageError: ``source_dir`` is not a project checkout.
    """
    missing = [
        name
        for name in (*PROJECT_FILES, *PROJECT_TREES, "conf/base", "data")
        if not (source_dir / name).exists()
    ]
    if missing:
        raise PipelinesImageError(
            f"{source_dir} is not a project checkout: {', '.join(missing)} missing there"
        )
    app_dir.mkdir(parents=True)
    for name in PROJECT_FILES:
        shutil.copy2(source_dir / name, app_dir / name)
    for tree in PROJECT_TREES:
        shutil.copytree(source_dir / tree, app_dir / tree, ignore=_IGNORED)
    conf = source_dir / "conf"

    def conf_ignore(folder: str, names: list[str]) -> set[str]:
        if Path(folder).resolve() == (conf / "local").resolve():
            return set(names)
        return set(_SECRETS(folder, names))

    shutil.copytree(conf, app_dir / "conf", ignore=conf_ignore)
    (app_dir / "conf" / "local").mkdir(exist_ok=True)
    for keep in sorted((source_dir / "data").glob("*/.gitkeep")):
        layer = app_dir / "data" / keep.parent.name
        layer.mkdir(parents=True)
        (layer / ".gitkeep").touch()


def _empty_context(context_dir: Path) -> None:
    """Remove a previous context; refuse to touch a non-empty folder this module did not write."""
    if context_dir.exists():
        if any(context_dir.iterdir()) and not (context_dir / CONTEXT_MARKER).is_file():
            raise PipelinesImageError(
                f"{context_dir} is not empty and is not a pipelines-image build context"
                f" (no {CONTEXT_MARKER}); choose another --context-dir"
            )
        shutil.rmtree(context_dir)
    context_dir.mkdir(parents=True)
    (context_dir / CONTEXT_MARKER).write_text(
        "Build context written by python -m churn_mlops.release.pipelines_image;"
        " rewritten each build.\n",
        encoding="utf-8",
    )


def prepare_context(
    source_dir: Path,
    context_dir: Path,
    *,
    cache_dir: Path,
    pip_args: Sequence[str] = (),
    extras: Iterable[str] = EXTRAS,
    exclude: Iterable[str] = EXCLUDE,
) -> PreparedContext:
    """Write the image's build context: Dockerfile, pinned requirements, wheelhouse, app/.

    Args:
        source_dir: The project checkout (pyproject.toml, src/, conf/, deploy/).
        context_dir: Folder to (re)write; emptied first if a previous run wrote it.
        cache_dir: The wheel cache shared with the export (only missing wheels are
            downloaded into it).
        pip_args: Extra ``pip download`` options (``--index-url`` of a mirror, ...).
        extras: Optional-dependency groups installed besides ``dependencies``.
        exclude: Distributions left out of the closure.

    Returns:
        What was written.

    Raises:
        PipelinesImageError: the checkout is incomplete.
        RequirementsError: a dependency is not installed in this environment.
        WheelhouseError: a wheel cannot be fetched for this interpreter.
    """
    dockerfile = source_dir / DOCKERFILE
    if not dockerfile.is_file():
        raise PipelinesImageError(f"{dockerfile} is missing: {source_dir} is not a checkout")
    inputs = image_inputs(source_dir / "pyproject.toml", extras, exclude)
    _empty_context(context_dir)
    pins, hashed = fill_wheelhouse(
        inputs, context_dir / "wheelhouse", cache_dir=cache_dir, pip_args=pip_args
    )
    revision = git_revision(source_dir)
    # No commit or date in here: the file keys Docker's cache of the dependency layer.
    header = (
        f"Runtime of the {DEFAULT_REPOSITORY} image, pinned to the environment that"
        " prepared it.\n"
        "Installed offline: pip install --no-index --no-deps --find-links wheelhouse"
        " --require-hashes -r requirements.txt"
    )
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    (context_dir / "requirements.txt").write_text(comments + hashed, encoding="utf-8")
    shutil.copyfile(dockerfile, context_dir / "Dockerfile")
    copy_project(source_dir, context_dir / "app")
    logger.info("build context %s: %d pinned wheels, project %s", context_dir, len(pins), revision)
    return PreparedContext(path=context_dir, pins=tuple(pins), revision=revision)


def _docker(args: Sequence[str], *, timeout_s: float, what: str, stream: bool = False) -> str:
    env = {**os.environ}
    env.setdefault("DOCKER_BUILDKIT", "0")  # the Dockerfile needs nothing of BuildKit
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
            ["docker", *args],  # noqa: S607
            stdout=None if stream else subprocess.PIPE,
            stderr=None if stream else subprocess.PIPE,
            text=True,
            timeout=timeout_s,
            check=False,
            env=env,
        )
    except FileNotFoundError as exc:
        raise PipelinesImageError(f"{what}: the docker command is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise PipelinesImageError(f"{what} did not finish within {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        tail = "" if stream else (proc.stdout or "")[-3000:] + (proc.stderr or "")[-3000:]
        raise PipelinesImageError(f"{what} failed (exit code {proc.returncode}):\n{tail}")
    return proc.stdout or ""


def check_base_python(base_image: str) -> None:
    """Fail unless ``base_image``'s ``python3`` has this interpreter's minor version.

    The wheelhouse holds wheels for the Python that prepared it (``cp311``...), so the image
    must run the same minor version.
    """
    wanted = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = _docker(
        [
            "run",
            "--rm",
            "--network",
            "host",
            "--entrypoint",
            "python3",
            base_image,
            "-c",
            "import sys; print('%d.%d' % sys.version_info[:2])",
        ],
        timeout_s=120,
        what=f"running python3 in the base image {base_image}",
    ).strip()
    if found != wanted:
        raise PipelinesImageError(
            f"base image {base_image} has Python {found}, but the wheelhouse is for Python"
            f" {wanted} (the interpreter preparing it); use a Python {wanted} base image"
        )


def build_image(
    context: PreparedContext,
    tag: str,
    *,
    base_image: str = DEFAULT_BASE_IMAGE,
    timeout_s: float = 1800.0,
    stream: bool = False,
) -> str:
    """``docker build`` the prepared context (host network, classic builder by default).

    Args:
        context: What :func:`prepare_context` wrote.
        tag: The image reference to tag (``registry/path/churn-mlops-pipelines:tag``).
        base_image: ``BASE_IMAGE`` build argument (CPython of the preparing minor version).
        timeout_s: Limit for the build.
        stream: Show docker's output as it comes instead of capturing it.

    Returns:
        The image id (``sha256:...``).

    Raises:
        PipelinesImageError: Docker is missing, the base image does not fit, or the build fails.
    """
    check_base_python(base_image)
    with tempfile.TemporaryDirectory(prefix="churn-pipelines-image-") as tmp:
        iidfile = Path(tmp) / "iid"
        _docker(
            [
                "build",
                "--network",
                "host",
                "--force-rm",
                "--build-arg",
                f"BASE_IMAGE={base_image}",
                "--build-arg",
                f"REVISION={context.revision}",
                "--iidfile",
                str(iidfile),
                "--tag",
                tag,
                str(context.path),
            ],
            timeout_s=timeout_s,
            what=f"docker build of {tag}",
            stream=stream,
        )
        image_id = iidfile.read_text(encoding="utf-8").strip()
    logger.info("built %s (%s)", tag, image_id)
    return image_id


@click.command(name="pipelines-image")
@click.option(
    "--tag", default=None, help="Image reference (default: churn-mlops-pipelines:<git short sha>)."
)
@click.option(
    "--base-image",
    default=DEFAULT_BASE_IMAGE,
    show_default=True,
    help="BASE_IMAGE: a Debian-based image with CPython of this interpreter's version.",
)
@click.option(
    "--source-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Project checkout to build from (default: this package's).",
)
@click.option(
    "--context-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Build context folder (default: <checkout>/dist/pipelines-image).",
)
@click.option(
    "--wheel-cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Wheel cache shared with the export (default: $CHURN_WHEEL_CACHE_DIR or"
    " <checkout>/dist/.wheel-cache).",
)
@click.option(
    "--pip-download-arg",
    multiple=True,
    help="Extra `pip download` option for missing wheels (repeatable).",
)
@click.option("--prepare-only", is_flag=True, help="Write the build context; do not build.")
def pipelines_image(
    tag: str | None,
    base_image: str,
    source_dir: Path | None,
    context_dir: Path | None,
    wheel_cache_dir: Path | None,
    pip_download_arg: tuple[str, ...],
    prepare_only: bool,
) -> None:
    """Prepare the offline build context of the pipelines image and build it."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s - %(message)s")
    source = (source_dir or checkout_dir()).resolve()
    cache = wheel_cache_dir or Path(
        os.environ.get("CHURN_WHEEL_CACHE_DIR") or source / "dist" / ".wheel-cache"
    )
    try:
        context = prepare_context(
            source,
            context_dir or source / "dist" / "pipelines-image",
            cache_dir=cache,
            pip_args=pip_download_arg,
        )
        click.echo(f"build context: {context.path} ({len(context.pins)} pinned wheels)")
        if prepare_only:
            return
        reference = tag or default_tag(context.revision)
        image_id = build_image(context, reference, base_image=base_image, stream=True)
    except (PipelinesImageError, ExportError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"built {reference} ({image_id})")


if __name__ == "__main__":
    pipelines_image()
