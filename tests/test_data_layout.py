"""DuckDB and Spark outputs keep apart on disk, and `make clean-data` removes both layouts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import DATA_LAYERS, PROJECT_ROOT


def _filepaths(folder: Path) -> dict[str, str]:
    """``{entry: filepath}`` of a conf folder's catalog files (nested ``dataset:`` included)."""

    def find(config: Any) -> str | None:
        if not isinstance(config, dict):
            return None
        if "filepath" in config:
            return str(config["filepath"])
        return find(config.get("dataset"))

    paths: dict[str, str] = {}
    for path in sorted(folder.glob("catalog*.yml")):
        for name, config in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            found = find(config)
            if found is not None:
                paths[name] = found
    return paths


BASE = _filepaths(PROJECT_ROOT / "conf" / "base")
SPARK = _filepaths(PROJECT_ROOT / "conf" / "spark")
#: Tables the spark environment writes itself (raw files are written by pandas in both).
SPARK_TABLES = {name: path for name, path in SPARK.items() if not path.startswith("data/01_raw")}


def test_spark_tables_never_take_the_path_of_a_duckdb_file() -> None:
    assert SPARK_TABLES, "conf/spark overrides no table"
    clashes = {name: path for name, path in SPARK_TABLES.items() if path in set(BASE.values())}
    assert not clashes, (
        f"conf/spark writes {clashes} where conf/base keeps a DuckDB file: a plain `kedro run` "
        "after `kedro run --env spark` would fail with 'File exists'"
    )


def test_every_reader_of_a_moved_table_is_moved_too() -> None:
    moved = {BASE[name] for name in SPARK_TABLES if name in BASE}
    stale = sorted(name for name, path in BASE.items() if path in moved and name not in SPARK)
    assert not stale, f"{stale} would read DuckDB's file in the spark environment"


def test_clean_data_removes_files_and_spark_folders(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for layer in DATA_LAYERS:
        (data / layer).mkdir(parents=True)
        (data / layer / ".gitkeep").touch()
    spark_table = data / "05_model_input" / "model_input_table"
    spark_table.mkdir()
    (spark_table / "part-0000.snappy.parquet").write_bytes(b"x")
    (spark_table / "_SUCCESS").touch()
    partition = data / "03_primary" / "events_primary" / "event_month=2024-01"
    partition.mkdir(parents=True)
    (partition / "part-0.parquet").write_bytes(b"x")
    (data / "03_primary" / "customers_primary.parquet").write_bytes(b"x")
    versioned = data / "06_models" / "trained_model.joblib" / "2026-01-01T00.00.00.000Z"
    versioned.mkdir(parents=True)
    (versioned / "trained_model.joblib").write_bytes(b"x")

    subprocess.run(
        ["make", "-f", str(PROJECT_ROOT / "Makefile"), "-C", str(tmp_path), "clean-data"],
        check=True,
        capture_output=True,
    )
    left = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    expected = sorted([*DATA_LAYERS, *(f"{layer}/.gitkeep" for layer in DATA_LAYERS)])
    assert left == expected
