"""Crash-safe datasets: a save that dies half-way (error or SIGKILL) leaves the previous file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import ibis
import pandas as pd
import pytest
from kedro.io import DatasetError, Version

from churn_mlops.datasets import atomic


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": range(rows), "value": [float(i) for i in range(rows)]})


def test_save_replaces_the_file_and_leaves_no_temporary(tmp_path: Path):
    dataset = atomic.ParquetDataset(filepath=str(tmp_path / "table.parquet"))
    dataset.save(_frame(3))
    dataset.save(_frame(5))
    assert len(dataset.load()) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]


def test_a_failing_save_keeps_the_previous_file(tmp_path: Path):
    dataset = atomic.JSONDataset(filepath=str(tmp_path / "report.json"))
    dataset.save({"version": 1})
    with pytest.raises(DatasetError, match="not JSON serializable"):
        dataset.save({"version": 2, "bad": object()})
    assert json.loads((tmp_path / "report.json").read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_an_interrupted_versioned_save_never_becomes_the_latest(tmp_path: Path):
    path = str(tmp_path / "model.pkl")
    atomic.PickleDataset(filepath=path, version=Version(None, None)).save({"model": 1})
    failing = atomic.PickleDataset(filepath=path, version=Version(None, "2999-01-01T00.00.00.000Z"))
    with pytest.raises(DatasetError):
        failing.save(lambda: None)  # pickle cannot serialise a lambda
    latest = atomic.PickleDataset(filepath=path, version=Version(None, None))
    assert latest.load() == {"model": 1}


def test_ibis_table_save_is_atomic_too(tmp_path: Path):
    connection = {"backend": "duckdb", "database": ":memory:"}
    dataset = atomic.IbisFileDataset(
        filepath=str(tmp_path / "t.parquet"),
        file_format="parquet",
        table_name="t",
        connection=connection,
    )
    dataset.save(ibis.memtable(_frame(4)))
    dataset.save(ibis.memtable(_frame(2)))
    assert dataset.load().count().execute() == 2
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


SAVE_FOREVER = textwrap.dedent(
    """
    import sys, time
    import pandas as pd
    from churn_mlops.datasets import atomic

    def write_slowly(self, target, **kwargs):
        target.write(b"PAR1 half a table")
        target.flush()
        print("writing", flush=True)
        time.sleep(600)

    pd.DataFrame.to_parquet = write_slowly
    atomic.ParquetDataset(filepath=sys.argv[1]).save(pd.DataFrame({"a": [1]}))
    """
)


def test_sigkill_in_the_middle_of_a_save_keeps_the_previous_table(tmp_path: Path):
    target = tmp_path / "table.parquet"
    atomic.ParquetDataset(filepath=str(target)).save(_frame(10))
    before = target.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVE_FOREVER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == before
    assert len(pd.read_parquet(target)) == 10
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "table.parquet"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".table.parquet.tmp-")
