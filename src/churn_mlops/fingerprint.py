"""Content fingerprints of tables and of the installed packages, for lineage and rebuilds.

A table's fingerprint hashes its *content*: column names, logical types and the multiset of
rows. Row order, column order, file layout (one Parquet file or a folder of part files), row
groups, dictionary encoding and the timestamp unit (DuckDB writes nanoseconds, Spark
microseconds) do not change it; one changed value, row or column does. See
docs/experiment_tracking.md ("What each version records").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Version of the canonical form below; part of every fingerprint, bumped when it changes.
FINGERPRINT_SCHEME = "churn-content-v1"
#: Run artifact listing the installed packages (``name==version``); the run and version tag
#: holding its hash.
PACKAGES_ARTIFACT = "provenance/packages.txt"
PACKAGE_LOCK_TAG = "package_lock"
#: Tag of an MLflow dataset input holding the full fingerprint (MLflow's digest keeps 36 chars).
FINGERPRINT_INPUT_TAG = "fingerprint"


def _canonical_type(dtype: pa.DataType) -> pa.DataType:
    """One logical type per kind of column, so physical encodings hash alike."""
    if pa.types.is_dictionary(dtype):
        return _canonical_type(dtype.value_type)
    if pa.types.is_integer(dtype):
        return pa.int64()
    if pa.types.is_floating(dtype):
        return pa.float64()
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return pa.large_string()
    if pa.types.is_timestamp(dtype):
        return pa.timestamp("ns", tz=dtype.tz)
    if pa.types.is_date(dtype):
        return pa.date32()
    return dtype


def _canonical_batch(batch: pa.RecordBatch | pa.Table, columns: list[str]) -> pd.DataFrame:
    arrays = {}
    for name in columns:
        column = batch.column(name)
        target = _canonical_type(column.type)
        arrays[name] = pc.cast(column, target) if column.type != target else column
    table = pa.table(arrays)
    # Nullable integers stay integers (Int64): a null must not turn a column into floats.
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    if frame.empty:
        return np.empty(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(frame, index=False, categorize=False).to_numpy(np.uint64)


def fingerprint_batches(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> str:
    """The content fingerprint of a table given as Arrow record batches.

    Args:
        schema: The table's schema (names and types).
        batches: Its rows, in any order and any batching.

    Returns:
        A SHA-256 hex digest of the scheme, the sorted column names with their canonical
        types, and the sorted 64-bit hashes of every row.
    """
    columns = sorted(schema.names)
    hashes = [_row_hashes(_canonical_batch(batch, columns)) for batch in batches]
    rows = np.sort(np.concatenate(hashes)) if hashes else np.empty(0, dtype=np.uint64)
    digest = hashlib.sha256(FINGERPRINT_SCHEME.encode())
    described = [(name, str(_canonical_type(schema.field(name).type))) for name in columns]
    digest.update(repr(described).encode())
    digest.update(len(rows).to_bytes(8, "little"))
    digest.update(rows.astype("<u8").tobytes())
    return digest.hexdigest()


def fingerprint_table(data: Any) -> str:
    """The content fingerprint of a pandas DataFrame, an Arrow table or an Ibis table.

    An Ibis table is executed on its backend (DuckDB or Spark) and read as Arrow, so the
    fingerprint of a table read by the pipelines is the fingerprint of what they read.

    Raises:
        TypeError: ``data`` is none of these.
    """
    if isinstance(data, pd.DataFrame):
        table = pa.Table.from_pandas(data, preserve_index=False)
        return fingerprint_batches(table.schema, table.to_batches())
    if isinstance(data, pa.Table):
        return fingerprint_batches(data.schema, data.to_batches())
    to_pyarrow = getattr(data, "to_pyarrow", None)
    if to_pyarrow is None:
        raise TypeError(
            f"cannot fingerprint a {type(data).__name__}; expected a pandas DataFrame, a "
            "pyarrow Table or an Ibis table"
        )
    # to_pyarrow, not to_pyarrow_batches: the latter fails on the pinned DuckDB client.
    table = to_pyarrow()
    return fingerprint_batches(table.schema, table.to_batches())


def fingerprint_parquet(path: str | Path) -> str:
    """The content fingerprint of a Parquet file or folder of part files, streamed in batches.

    Equal to :func:`fingerprint_table` of the table it holds, in bounded memory (one record
    batch at a time plus 8 bytes per row), so a table larger than memory can be fingerprinted.
    Hive partition folders are not turned into columns (the partition column is not part of
    the table's content, see ``MonthPartitionedParquetDataset``).
    """
    import pyarrow.dataset as pads

    dataset = pads.dataset(str(path), format="parquet")
    return fingerprint_batches(dataset.schema, dataset.to_batches())


def installed_packages() -> list[str]:
    """``name==version`` of every distribution in the running environment, sorted.

    This is the environment's package lock as it actually is (not as a file says it should
    be); its hash goes on every model version and ``kedro models rebuild`` compares it.
    """
    found = {
        (dist.metadata["Name"] or "").lower().replace("_", "-"): dist.version
        for dist in metadata.distributions()
    }
    return sorted(f"{name}=={version}" for name, version in found.items() if name)


def packages_fingerprint(packages: Iterable[str]) -> str:
    """SHA-256 of a package list (one ``name==version`` per line, sorted)."""
    return hashlib.sha256("\n".join(sorted(packages)).encode()).hexdigest()
