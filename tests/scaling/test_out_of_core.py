"""Out of core on one machine: feature engineering under a DuckDB memory limit far below the data.

``kedro run --pipeline feature_engineering`` runs with ``CHURN_DUCKDB_MEMORY_LIMIT`` (read by
``conf/base/globals.yml``) set to 64 MB, on an events table several times that size. It must
complete by spilling to ``temp_directory``; the same run with spilling disabled must fail with
DuckDB's out-of-memory error, which shows that the limit really binds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.dataset as pads
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro.runner import SequentialRunner
from omegaconf.resolvers import oc

from churn_mlops.pipelines.feature_engineering import create_pipeline
from tests.conftest import make_project_copy
from tests.scaling.synthetic import in_memory_bytes, write_primary_tables

pytestmark = pytest.mark.slow

MEMORY_LIMIT = "64MB"
LIMIT_BYTES = 64 * 1000**2  # DuckDB reads "MB" as 10^6 bytes
N_EVENTS = 5_000_000
SPILL_DIR = Path("data/02_intermediate/duckdb_spill")  # temp_directory in conf/base/globals.yml


class FolderSizeWatcher:
    """Largest total size a folder reaches while the ``with`` block runs (polled)."""

    def __init__(self, folder: Path, interval_s: float = 0.05) -> None:
        self.folder, self.interval_s, self.peak_bytes = folder, interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                size = sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
            except OSError:  # a spill file vanished while being listed
                size = 0
            self.peak_bytes = max(self.peak_bytes, size)
            time.sleep(self.interval_s)

    def __enter__(self) -> FolderSizeWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def large_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    project = make_project_copy(tmp_path_factory.mktemp("out_of_core") / "project")
    write_primary_tables(N_EVENTS, project / "data" / "03_primary")
    yield project


def test_events_table_is_several_times_the_memory_limit(large_project: Path):
    events = large_project / "data" / "03_primary" / "events_primary.parquet"
    assert in_memory_bytes(events) > 3 * LIMIT_BYTES


def test_feature_engineering_spills_to_disk_under_a_low_memory_limit(
    large_project: Path,
    run_kedro: Callable[..., object],
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("CHURN_DUCKDB_MEMORY_LIMIT", MEMORY_LIMIT)
    # DuckDB needs some memory per thread that it cannot spill; one thread fits in 64 MB.
    monkeypatch.setenv("CHURN_DUCKDB_THREADS", "1")
    with FolderSizeWatcher(large_project / SPILL_DIR) as spill:
        run_kedro(large_project, "run", "--pipeline", "feature_engineering")

    assert spill.peak_bytes > LIMIT_BYTES, "the run should have spilled more than fits in memory"
    features = pads.dataset(large_project / "data" / "05_model_input" / "model_input_table.parquet")
    spine = pads.dataset(large_project / "data" / "04_feature" / "snapshot_spine.parquet")
    assert features.count_rows() == spine.count_rows() > 100_000
    sessions = features.to_table(columns=["sessions_90d"]).column(0)
    assert sessions.null_count == 0


def test_the_same_run_without_spilling_runs_out_of_memory(
    large_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The control: the limit binds, so with temp_directory disabled DuckDB must give up."""
    monkeypatch.setenv("CHURN_DUCKDB_MEMORY_LIMIT", MEMORY_LIMIT)
    monkeypatch.setenv("CHURN_DUCKDB_THREADS", "1")
    monkeypatch.chdir(large_project)
    loader = OmegaConfigLoader(
        conf_source=str(large_project / "conf"),
        base_env="base",
        default_run_env="local",
        custom_resolvers={"oc.env": oc.env},
    )
    pipeline = create_pipeline()
    entries = {
        name: entry for name, entry in loader["catalog"].items() if name in pipeline.datasets()
    }
    for name, entry in entries.items():
        assert entry["connection"]["memory_limit"] == MEMORY_LIMIT
        entry["connection"] = {**entry["connection"], "temp_directory": ""}
        if name not in pipeline.inputs():  # same primary tables in, outputs elsewhere
            entry["filepath"] = str(tmp_path / Path(entry["filepath"]).name)
    catalog = DataCatalog.from_config(entries)
    for name in pipeline.inputs():  # every parameter the pipeline reads, as `kedro run` feeds them
        if name.startswith("params:"):
            value = loader["parameters"]
            for key in name.removeprefix("params:").split("."):
                value = value[key]
            catalog[name] = MemoryDataset(value)
    with pytest.raises(DatasetError, match="Out of Memory"):
        SequentialRunner().run(pipeline, catalog)
