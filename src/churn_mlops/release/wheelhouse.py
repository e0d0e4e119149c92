"""Fill a bundle's ``wheelhouse/``: pinned third-party wheels and the project's own wheel.

:func:`fill_wheelhouse` resolves the closure with ``uv pip compile`` (installed versions as
constraints, :mod:`churn_mlops.release.requirements`) against local wheels only, copies those
wheels and hash-pins them. Third-party wheels are byte-identical files from the package index,
so they are kept in a local cache folder keyed by file name; only when the cache lacks some
does ``pip download`` fetch the closure. The project wheel is built with
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

from churn_mlops.release.errors import RequirementsError, WheelhouseError
from churn_mlops.release.requirements import (
    Pin,
    ResolutionInputs,
    compile_requirements,
    pins_of,
)

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


def _download_closure(
    inputs: ResolutionInputs, cache_dir: Path, pip_args: Sequence[str], timeout_s: float
) -> None:
    """``pip download`` the closure of the roots at the installed versions into the cache."""
    with tempfile.TemporaryDirectory(prefix="churn-download-") as scratch:
        roots, constraints = Path(scratch) / "roots.in", Path(scratch) / "constraints.txt"
        roots.write_text("\n".join(inputs.roots) + "\n", encoding="utf-8")
        constraints.write_text("\n".join(inputs.constraints) + "\n", encoding="utf-8")
        _run(
            [
                sys.executable, "-m", "pip", "download", "--only-binary=:all:",
                "--disable-pip-version-check", "--quiet", "--dest", str(cache_dir),
                "--find-links", str(cache_dir), *pip_args,
                "-r", str(roots), "-c", str(constraints),
            ],
            what="pip download of the closure",
            timeout=timeout_s,
        )  # fmt: skip


def fill_wheelhouse(
    inputs: ResolutionInputs,
    destination: Path,
    *,
    cache_dir: Path,
    pip_args: Sequence[str] = (),
    timeout_s: float = 900.0,
) -> tuple[list[Pin], str]:
    """Resolve the closure with uv, copy its wheels into ``destination``, hash-pin it there.

    The closure is resolved against the wheel cache first; when the cache lacks a wheel,
    ``pip download`` fetches the closure into it (pip's configuration and ``pip_args`` choose
    the index) and uv resolves again. The final ``uv pip compile --generate-hashes`` sees only
    ``destination``, so ``requirements.txt`` installs from the wheelhouse alone.

    Returns:
        The pins and the hash-pinned requirements text (uv's, without header).

    Raises:
        RequirementsError: no solution at the installed versions, or a pin is not installed.
        WheelhouseError: a wheel cannot be downloaded for this interpreter.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        closure = compile_requirements(inputs, cache_dir)
    except RequirementsError as first:
        logger.info("the wheel cache %s lacks wheels of the closure (%s)", cache_dir, first)
        _download_closure(inputs, cache_dir, pip_args, timeout_s)
        closure = compile_requirements(inputs, cache_dir)
    pins = pins_of(closure, inputs)
    fetch_wheels(pins, destination, cache_dir=cache_dir, pip_args=pip_args, timeout_s=timeout_s)
    hashed = compile_requirements(inputs, destination, generate_hashes=True)
    if pins_of(hashed, inputs) != pins:
        raise RequirementsError(
            f"uv resolved the wheelhouse {destination} differently from the wheel cache"
            f" {cache_dir}; expected {[p.requirement for p in pins]}"
        )
    return pins, hashed


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
