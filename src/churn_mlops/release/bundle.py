"""The bundle build: turns the export pipeline's bundle description into a checked folder.

:meth:`ServingBundleBuilder.build` receives what the ``assemble_serving_bundle`` node decided
(model, texts, golden sample, requirement roots, lineage) and does all the I/O of an export,
in a staging folder next to the target (the catalog's ``serving_bundle``,
:class:`churn_mlops.datasets.serving_bundle.ServingBundleDataset`, calls it on save):

1. converts the model to ONNX (:mod:`churn_mlops.release.onnx_model`: ``model/model.onnx``
   plus what explanations need; nothing in the bundle runs code when loaded), writes the
   JSON/Markdown files, ``build-args.txt`` and the golden sample, and copies the static
   ``deploy/docker/serving/Dockerfile`` of the checkout;
2. pins the serving dependency closure at the installed versions with ``uv pip compile``
   against local wheels and fills ``wheelhouse/`` (wheels from a local cache, downloading
   only what is missing) plus the project's own wheel, built reproducibly; writes uv's
   hash-pinned ``requirements.txt``;
3. renders ``k8s/`` with :func:`churn_mlops.release.deploy.render_manifests`;
4. writes ``manifest.json`` with the sha256 of every file (the app refuses to load a file
   that does not match), runs the parity gate (:mod:`churn_mlops.release.parity`: the served
   ONNX graph against the registered Pipeline's golden probabilities) on the staged bundle;
5. rewrites ``manifest.json`` with lineage, package versions and the gate's result, and only
   then renames the staging folder onto the target.

Any failure removes the staging folder and leaves a previous bundle at the target untouched.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from churn_mlops.progress import progress
from churn_mlops.provenance import git_revision
from churn_mlops.release.errors import ExportConfigError, RequirementsError
from churn_mlops.release.parity import ParityResult, check_bundle_parity
from churn_mlops.release.requirements import (
    Pin,
    ResolutionInputs,
    project_extra_requirements,
    resolution_inputs,
)
from churn_mlops.release.serving_image import SERVING_DOCKERFILE
from churn_mlops.release.wheelhouse import build_project_wheel, fill_wheelhouse, source_date_epoch
from churn_mlops.serving.bundle import MANIFEST_FILE as BUNDLE_MANIFEST_FILE
from churn_mlops.serving.bundle import sha256_file

logger = logging.getLogger(__name__)

#: Keys the payload of ``save`` must carry (built by ``assemble_serving_bundle``).
PAYLOAD_KEYS = frozenset(
    {
        "bundle_dir",
        "model",
        "model_version",
        "texts",
        "golden_sample",
        "feature_names",
        "parity_tolerance",
        "requirements",
        "python_version",
        "image",
        "manifest",
    }
)
MANIFEST_FILE = BUNDLE_MANIFEST_FILE.as_posix()
MANIFEST_FORMAT = 2  # 2: the model is model/model.onnx (was model/model.joblib)
_PARITY_DEFAULTS = {"request_rows": 100, "install_timeout_s": 600.0, "startup_timeout_s": 180.0}


EXPORT_PHASES = (
    "model and files",
    "third-party wheels",
    "project wheel",
    "k8s manifests",
    "parity gate",
    "checksums",
)
"""The export's steps, in order: each is timed in the manifest and advances the progress bar."""


def file_checksums(folder: Path, *, skip: frozenset[str] = frozenset({MANIFEST_FILE})) -> dict:
    """``{posix relative path: {"sha256", "bytes"}}`` of every file under ``folder``, sorted."""
    return {
        path.relative_to(folder).as_posix(): {
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
        }
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() not in skip
    }


def _checkout_dir() -> Path:
    """The project checkout this package runs from (editable install), for the wheel build."""
    return Path(__file__).resolve().parents[3]


def _version_of(name: str) -> str | None:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


def _write_requirements(
    data: dict[str, Any], staging: Path, hashed: str, project_wheel: str
) -> None:
    """``requirements.txt``: uv's hash-pinned closure under a header saying how to install."""
    header = (
        f"Serving dependencies of {data['manifest']['model']['registry_name']}"
        f" v{data['model_version']}, pinned to the exporting environment (uv pip compile).\n"
        "Install offline: pip install --no-index --find-links wheelhouse --require-hashes"
        " -r requirements.txt\n"
        f"then: pip install --no-index --no-deps wheelhouse/{project_wheel}"
    )
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    (staging / "requirements.txt").write_text(comments + hashed, encoding="utf-8")


def _packages(pins: list[Pin], project_wheel: str) -> dict[str, Any]:
    """The manifest's ``packages``: interpreter, serving pins, substitutions, build tools."""
    return {
        "python": platform.python_version(),
        "platform": platform.machine(),
        "serving": {pin.name: pin.version for pin in pins},
        "substituted": {pin.name: pin.installed_as for pin in pins if pin.name != pin.installed_as},
        "project_wheel": project_wheel,
        "build_tools": {
            name: _version_of(name)
            for name in ("pip", "setuptools", "onnx", "skl2onnx", "onnxmltools", "pyarrow")
        },
    }


class ServingBundleBuilder:
    """Build a serving bundle atomically, gated by the parity check.

    Args:
        wheel_cache_dir: Folder keeping downloaded third-party wheels between exports.
        pip_download_args: Extra ``pip download`` options for wheels the cache lacks
            (``["--index-url", "https://pypi.internal/simple"]``).
        project_source_dir: Project checkout to build the project wheel from; default: the
            checkout this package is installed from (editable install).
        k8s_source_dir: The kustomize tree to render into ``k8s/``; default:
            ``<project_source_dir>/deploy/k8s``.
        parity: ``request_rows``, ``install_timeout_s``, ``startup_timeout_s`` of the gate.
    """

    def __init__(
        self,
        *,
        wheel_cache_dir: str,
        pip_download_args: list[str] | None = None,
        project_source_dir: str | None = None,
        k8s_source_dir: str | None = None,
        parity: dict[str, float] | None = None,
    ) -> None:
        unknown = set(parity or {}) - set(_PARITY_DEFAULTS)
        if unknown:
            raise ExportConfigError(
                f"serving_bundle: unknown parity option(s) {sorted(unknown)}; expected"
                f" {sorted(_PARITY_DEFAULTS)}"
            )
        self._wheel_cache_dir = Path(wheel_cache_dir)
        self._pip_download_args = list(pip_download_args or [])
        self._source_dir = Path(project_source_dir) if project_source_dir else _checkout_dir()
        self._k8s_source_dir = (
            Path(k8s_source_dir) if k8s_source_dir else self._source_dir / "deploy" / "k8s"
        )
        self._parity = {**_PARITY_DEFAULTS, **(parity or {})}

    def describe(self) -> dict[str, Any]:
        """The options, for logs and kedro-viz."""
        return {
            "wheel_cache_dir": str(self._wheel_cache_dir),
            "project_source_dir": str(self._source_dir),
            "k8s_source_dir": str(self._k8s_source_dir),
            "parity": self._parity,
        }

    def build(self, data: dict[str, Any]) -> Path:
        """Write the bundle described by ``data`` to ``data["bundle_dir"]``; its path.

        Any failure removes the staging folder and leaves a previous bundle untouched.
        """
        missing = PAYLOAD_KEYS - set(data)
        if missing:
            raise ExportConfigError(f"serving bundle payload lacks {sorted(missing)}")
        running = f"{sys.version_info.major}.{sys.version_info.minor}"
        if running != str(data["python_version"]):
            raise ExportConfigError(
                f"export.container.python_version is {data['python_version']!r} but this"
                f" export runs on Python {running}: the wheelhouse holds wheels for the"
                " exporting interpreter, so both must match (export with that Python, or set"
                " the base image and python_version to this one)"
            )
        if not (self._source_dir / "pyproject.toml").is_file():
            raise ExportConfigError(
                f"{self._source_dir} is not a project checkout (no pyproject.toml): the project"
                " wheel is built from the source tree, so point CHURN_PROJECT_SOURCE_DIR (or"
                " serving_bundle.project_source_dir in the catalog) at one"
            )
        target = Path(data["bundle_dir"]).absolute()
        target.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        phases: dict[str, float] = {}
        try:
            with (
                tempfile.TemporaryDirectory(prefix="churn-parity-") as scratch,
                progress(len(EXPORT_PHASES), "export", "step") as bar,
            ):
                manifest = self._build(data, staging, Path(scratch), phases, bar)
                mark = time.monotonic()
            phases["cleanup"] = time.monotonic() - mark
            manifest["export"]["phases_s"] = {k: round(v, 1) for k, v in phases.items()}
            manifest["export"]["duration_s"] = round(time.monotonic() - started, 1)
            (staging / MANIFEST_FILE).write_text(
                json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8"
            )
            staging.chmod(0o755)
            self._swap_in(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info(
            "Exported %s to %s in %.0f s (parity gate: %d rows, largest gap %.2g)",
            data["manifest"]["model"]["registry_name"],
            target,
            time.monotonic() - started,
            manifest["parity"]["rows"],
            manifest["parity"]["max_abs_diff"],
        )
        return target

    def _build(
        self,
        data: dict[str, Any],
        staging: Path,
        scratch: Path,
        phases: dict[str, float],
        bar: Any,
    ) -> dict[str, Any]:
        from churn_mlops.release.deploy import render_manifests

        mark = time.monotonic()

        def phase(name: str) -> None:
            nonlocal mark
            now = time.monotonic()
            phases[name] = now - mark
            logger.info("export: %s done in %.1f s", name, now - mark)
            bar.set_postfix_str(f"{name} done", refresh=False)
            bar.update(1)
            mark = now

        self._write_files(data, staging)
        phase("model and files")
        pins, hashed = fill_wheelhouse(
            self._inputs(data["requirements"]),
            staging / "wheelhouse",
            cache_dir=self._wheel_cache_dir,
            pip_args=self._pip_download_args,
        )
        phase("third-party wheels")
        epoch = source_date_epoch(self._source_dir)
        project_wheel = build_project_wheel(self._source_dir, staging / "wheelhouse", epoch=epoch)
        phase("project wheel")
        _write_requirements(data, staging, hashed, project_wheel.name)
        render_manifests(
            data["image"],
            str(data["model_version"]),
            staging / "k8s",
            source_dir=self._k8s_source_dir,
        )
        phase("k8s manifests")
        parity = self._gate(data, staging, scratch)
        phase("parity gate")
        checksums = file_checksums(staging)
        phase("checksums")
        return {
            "format_version": MANIFEST_FORMAT,
            **data["manifest"],
            "image": {**data["manifest"].get("image", {}), "reference": data["image"]},
            "packages": _packages(pins, project_wheel.name),
            "source": {
                "git_commit": git_revision(self._source_dir),
                "source_date_epoch": epoch,
            },
            "parity": parity.as_dict(),
            "files": checksums,
            "export": {
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        }

    def _write_files(self, data: dict[str, Any], staging: Path) -> None:
        """The ONNX model, the texts, the golden sample and the static serving Dockerfile."""
        from churn_mlops.release.onnx_model import export_model_files

        golden_features = data["golden_sample"][list(data["feature_names"])]
        export_model_files(
            data["model"],
            background=golden_features,
            tolerance=float(data["parity_tolerance"]),
        ).write(staging / "model")
        for name, text in data["texts"].items():
            (staging / name).write_text(text, encoding="utf-8")
        data["golden_sample"].to_parquet(staging / "golden_sample.parquet", index=False)
        dockerfile = self._source_dir / SERVING_DOCKERFILE
        if not dockerfile.is_file():
            raise ExportConfigError(
                f"{dockerfile} is missing: the serving image's Dockerfile comes from the project"
                f" checkout {self._source_dir} ({SERVING_DOCKERFILE.as_posix()})"
            )
        shutil.copyfile(dockerfile, staging / "Dockerfile")

    def _gate(self, data: dict[str, Any], staging: Path, scratch: Path) -> ParityResult:
        """The parity gate on the staged bundle, after a first manifest with the checksums."""
        # The app verifies its files against the manifest before loading them, the gate's
        # app included: a first manifest with the checksums, completed after the gate.
        (staging / MANIFEST_FILE).write_text(
            json.dumps({"format_version": MANIFEST_FORMAT, "files": file_checksums(staging)})
            + "\n",
            encoding="utf-8",
        )
        return check_bundle_parity(
            staging,
            data["golden_sample"],
            feature_names=data["feature_names"],
            model_version=str(data["model_version"]),
            tolerance=float(data["parity_tolerance"]),
            work_dir=scratch,
            request_rows=int(self._parity["request_rows"]),
            install_timeout_s=float(self._parity["install_timeout_s"]),
            startup_timeout_s=float(self._parity["startup_timeout_s"]),
        )

    def _inputs(self, spec: dict[str, Any]) -> ResolutionInputs:
        roots = [
            *project_extra_requirements(self._source_dir / "pyproject.toml", spec["extras"]),
            *spec["distributions"],
        ]
        if not roots:
            raise RequirementsError("the serving dependency closure is empty")
        return resolution_inputs(
            roots, substitutions=spec["substitutions"], exclude=spec["exclude"]
        )

    @staticmethod
    def _swap_in(staging: Path, target: Path) -> None:
        """Replace ``target`` by ``staging`` with renames only (same folder, same filesystem)."""
        if not target.exists():
            staging.rename(target)
            return
        retired = target.with_name(f".{target.name}.retired-{os.getpid()}")
        target.rename(retired)
        try:
            staging.rename(target)
        except BaseException:
            retired.rename(target)
            raise
        shutil.rmtree(retired, ignore_errors=True)


def build_serving_bundle(data: dict[str, Any], **options: Any) -> Path:
    """``ServingBundleBuilder(**options).build(data)``: the bundle's folder."""
    return ServingBundleBuilder(**options).build(data)


__all__ = [
    "MANIFEST_FILE",
    "ServingBundleBuilder",
    "build_serving_bundle",
    "file_checksums",
    "sha256_file",
]
