"""Fill a bundle's ``wheelhouse/``: pinned third-party wheels and the project's own wheel.

Third-party wheels are byte-identical files from the package index, so they are kept in a
local cache folder keyed by file name; only the pins the cache lacks are downloaded (one
``pip download --no-deps --only-binary=:all:`` call). The project wheel is built with
``pip wheel --no-build-isolation`` from a clean copy of the source tree, with
``SOURCE_DATE_EPOCH`` fixed to the last commit's time, so two builds of the same source give
the same bytes.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from packaging.tags import Tag, sys_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from churn_mlops.release.errors import WheelhouseError
from churn_mlops.release.requirements import Pin

logger = logging.getLogger(__name__)

#: Earliest time a zip file can hold; used when the source is not a git checkout.
ZIP_EPOCH = 315532800

#: Source-tree entries never copied into the project wheel's build folder.
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "*.egg-info", ".*")


def _tag_rank() -> dict[Tag, int]:
    return {tag: rank for rank, tag in enumerate(sys_tags())}


def find_wheel(folder: Path, pin: Pin, ranks: dict[Tag, int] | None = None) -> Path | None:
    """The best wheel for ``pin`` in ``folder`` that this interpreter can install, or None."""
    ranks = ranks if ranks is not None else _tag_rank()
    best: tuple[int, Path] | None = None
    wanted = Version(pin.version)
    for path in folder.glob("*.whl") if folder.is_dir() else ():
        try:
            name, version, _, tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if canonicalize_name(name) != pin.name or version != wanted:
            continue
        rank = min((ranks[t] for t in tags if t in ranks), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, path)
    return best[1] if best else None


def _run(command: Sequence[str], *, what: str, timeout: float, **kwargs: object) -> None:
    logger.debug("running %s", " ".join(command))
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
            list(command), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except subprocess.TimeoutExpired as exc:
        raise WheelhouseError(f"{what} did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip()[-3000:]
        raise WheelhouseError(f"{what} failed (exit code {proc.returncode}):\n{tail}")


def fetch_wheels(
    pins: Iterable[Pin],
    destination: Path,
    *,
    cache_dir: Path,
    pip_args: Sequence[str] = (),
    timeout_s: float = 900.0,
) -> dict[str, Path]:
    """Copy one wheel per pin into ``destination``, downloading only what the cache lacks.

    Args:
        pins: The pinned distributions.
        destination: The wheelhouse folder (created if needed).
        cache_dir: Folder of previously downloaded wheels (created if needed).
        pip_args: Extra ``pip download`` options (``--index-url``, ``--find-links``, ...).
        timeout_s: Limit for the download.

    Returns:
        Canonical name -> wheel path inside ``destination``.

    Raises:
        WheelhouseError: a pin has no wheel for this interpreter (pip's message says why:
            offline, no such version, only a source distribution...).
    """
    pins = list(pins)
    cache_dir.mkdir(parents=True, exist_ok=True)
    destination.mkdir(parents=True, exist_ok=True)
    ranks = _tag_rank()
    missing = [pin for pin in pins if find_wheel(cache_dir, pin, ranks) is None]
    if missing:
        logger.info(
            "downloading %d of %d serving wheels into the cache %s: %s",
            len(missing),
            len(pins),
            cache_dir,
            ", ".join(p.requirement for p in missing),
        )
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--quiet",
                "--dest",
                str(cache_dir),
                *pip_args,
                *(p.requirement for p in missing),
            ],
            what=f"pip download of {', '.join(p.requirement for p in missing)}",
            timeout=timeout_s,
        )
    found: dict[str, Path] = {}
    for pin in pins:
        wheel = find_wheel(cache_dir, pin, ranks)
        if wheel is None:
            raise WheelhouseError(
                f"no wheel of {pin.requirement} for this interpreter in {cache_dir} after the"
                " download; a source-only release cannot go into an offline wheelhouse"
            )
        target = destination / wheel.name
        shutil.copyfile(wheel, target)
        found[pin.name] = target
    return found


def source_date_epoch(source_dir: Path) -> int:
    """Commit time of ``HEAD`` in ``source_dir`` (the reproducible-builds convention)."""
    try:
        proc = subprocess.run(  # noqa: S603
            ["git", "-C", str(source_dir), "log", "-1", "--format=%ct"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return max(int(proc.stdout.strip()), ZIP_EPOCH)
    except (OSError, ValueError, subprocess.SubprocessError):
        return ZIP_EPOCH


def build_project_wheel(
    source_dir: Path,
    destination: Path,
    *,
    epoch: int,
    timeout_s: float = 600.0,
) -> Path:
    """Build the project's wheel from a clean copy of ``source_dir`` into ``destination``.

    Only ``pyproject.toml``, ``README.md``, license files and ``src/`` are copied (without
    caches and egg-info), so stale build folders or local files never leak into the wheel.

    Args:
        source_dir: The project checkout (holds ``pyproject.toml`` and ``src/``).
        destination: Folder that receives the ``.whl``.
        epoch: ``SOURCE_DATE_EPOCH``: the time stamped on every file of the wheel.
        timeout_s: Limit for the build.

    Returns:
        The wheel's path.

    Raises:
        WheelhouseError: the source is not a project checkout or the build fails.
    """
    if not (source_dir / "pyproject.toml").is_file() or not (source_dir / "src").is_dir():
        raise WheelhouseError(
            f"{source_dir} is not a project checkout (expected pyproject.toml and src/ there)"
        )
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="churn-wheel-") as tmp:
        tree = Path(tmp) / "project"
        tree.mkdir()
        for path in sorted(source_dir.iterdir()):
            if path.name in {"pyproject.toml", "README.md"} or path.name.startswith("LICENSE"):
                shutil.copy2(path, tree / path.name)
        shutil.copytree(source_dir / "src", tree / "src", ignore=_IGNORED)
        out = Path(tmp) / "out"
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "PYTHONHASHSEED": "0"}
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--disable-pip-version-check",
                "--quiet",
                "--wheel-dir",
                str(out),
                str(tree),
            ],
            what=f"building the project wheel from {source_dir}",
            timeout=timeout_s,
            env=env,
        )
        wheels = sorted(out.glob("*.whl"))
        if len(wheels) != 1:
            raise WheelhouseError(f"building the project wheel produced {len(wheels)} wheels")
        target = destination / wheels[0].name
        shutil.copyfile(wheels[0], target)
    return target
