"""Crash-safe file datasets: write to a hidden temporary name, then rename onto the target.

Each class is the kedro-datasets class of the same name with one change: ``save`` writes the
whole file under ``.<name>.tmp-<random>`` next to the target and renames it onto the target only
once the write returned. On a local disk (POSIX) the rename is atomic, so a run killed at any
moment, even by SIGKILL, leaves either the previous file or the new one, never half a file.

For a versioned dataset the temporary file sits in the new version's folder under a name that
Kedro's ``<filepath>/*/<name>`` look-up does not match, so an interrupted save never becomes
the "latest" version. On object stores (``s3://``...) fsspec's move is a copy then a delete:
readers still never see a partial object, but the rename is not atomic (docs/architecture.md,
"Crash safety"). Spark writes folders of part files, which no rename can swap atomically; see
the same page for what remains and how Delta Lake or Iceberg tables would fix it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from importlib import import_module
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import get_filepath_str

#: Prefix and marker of the temporary names (hidden files, never matched by version look-ups).
TEMPORARY_MARKER = ".tmp-"


def temporary_sibling(path: PurePosixPath) -> PurePosixPath:
    """A unique hidden name in the folder of ``path`` for writing it before the rename."""
    return path.with_name(f".{path.name}{TEMPORARY_MARKER}{uuid.uuid4().hex}")


def _unwrapped(method: Any) -> Any:
    """The bare function behind a (bound) dataset ``save``, called as ``f(self, data)``.

    Kedro wraps every dataset's save in logging and version handling; the wrapped parent would
    resolve a second save version, so the bare function is called.
    """
    return getattr(method, "__wrapped__", method.__func__)


class _AtomicSave:
    """Mixin for kedro-datasets file datasets whose ``save`` writes ``_get_save_path()``."""

    _atomic_target: PurePosixPath | None = None

    def _get_save_path(self) -> PurePosixPath:
        if self._atomic_target is not None:
            return self._atomic_target
        return super()._get_save_path()  # type: ignore[misc]

    def save(self, data: Any) -> None:
        final = self._get_save_path()
        temporary = temporary_sibling(final)
        protocol = getattr(self, "_protocol", "file")
        fs = self._fs  # type: ignore[attr-defined]
        parent_save = _unwrapped(super().save)  # type: ignore[misc]
        self._atomic_target = temporary
        try:
            parent_save(self, data)
            _replace(fs, protocol, temporary, final)
        except BaseException:
            temp = get_filepath_str(temporary, protocol)
            if fs.exists(temp):
                fs.rm(temp, recursive=True)
            raise
        finally:
            self._atomic_target = None


def _replace(fs: Any, protocol: str, source: PurePosixPath, target: PurePosixPath) -> None:
    src, dst = get_filepath_str(source, protocol), get_filepath_str(target, protocol)
    if protocol == "file":
        os.replace(src, dst)  # atomic on POSIX, also over an existing file
    else:
        fs.mv(src, dst)


class _AtomicIbisSave:
    """Mixin for ``ibis.FileDataset``: the engine writes a temporary file or folder, renamed after.

    A single file (DuckDB) replaces the previous one atomically. A folder of part files
    (Spark) cannot be swapped in one step: the previous folder is renamed aside, the new one
    renamed in, and the old one deleted, so an interruption between the two renames leaves the
    previous folder under ``.<name>.old-<random>`` instead of at its path. Only local paths
    get this treatment; remote ones are written in place by the engine.
    """

    _atomic_target: PurePosixPath | None = None

    def _get_save_path(self) -> PurePosixPath:
        if self._atomic_target is not None:
            return self._atomic_target
        return super()._get_save_path()  # type: ignore[misc]

    def save(self, data: Any) -> None:
        parent_save = _unwrapped(super().save)  # type: ignore[misc]
        if self._fs_prefix:  # type: ignore[attr-defined]
            parent_save(self, data)
            return
        final = self._get_save_path()
        temporary = temporary_sibling(final)
        self._atomic_target = temporary
        try:
            parent_save(self, data)
            _swap_local(Path(str(temporary)), Path(str(final)))
        except BaseException:
            _remove(Path(str(temporary)))
            raise
        finally:
            self._atomic_target = None


def _swap_local(source: Path, target: Path) -> None:
    if source.is_file() or not target.is_dir():
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(source, target)
        return
    aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
    os.replace(target, aside)
    os.replace(source, target)
    shutil.rmtree(aside, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


#: ``name: (kedro-datasets module, class, mixin)`` of the crash-safe datasets this module offers.
_ATOMIC = {
    "ParquetDataset": ("kedro_datasets.pandas", "ParquetDataset", _AtomicSave),
    "CSVDataset": ("kedro_datasets.pandas", "CSVDataset", _AtomicSave),
    "JSONDataset": ("kedro_datasets.json", "JSONDataset", _AtomicSave),
    # A DataFrame as JSON (``lines: true``: JSON Lines, the prediction-log format).
    "PandasJSONDataset": ("kedro_datasets.pandas", "JSONDataset", _AtomicSave),
    "PickleDataset": ("kedro_datasets.pickle", "PickleDataset", _AtomicSave),
    "TextDataset": ("kedro_datasets.text", "TextDataset", _AtomicSave),
    "MatplotlibDataset": ("kedro_datasets.matplotlib", "MatplotlibDataset", _AtomicSave),
    "IbisFileDataset": ("kedro_datasets.ibis", "FileDataset", _AtomicIbisSave),
}

__all__ = sorted(_ATOMIC)


def __getattr__(name: str) -> type:
    """Build ``churn_mlops.datasets.atomic.<name>`` on first use.

    Lazily, so that naming one of them in the catalog imports only its own library (pandas,
    matplotlib or Ibis), as the kedro-datasets class would.
    """
    if name not in _ATOMIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, base_name, mixin = _ATOMIC[name]
    base = getattr(import_module(module), base_name)
    atomic = type(
        name,
        (mixin, base),
        {
            "__module__": __name__,
            "__qualname__": name,
            "__doc__": f"``{module.rsplit('.', 1)[-1]}.{base_name}`` whose save writes a "
            "temporary file and renames it onto the target (crash-safe).",
        },
    )
    globals()[name] = atomic
    return atomic
