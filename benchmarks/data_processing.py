"""Time and peak memory of the data_processing pipeline on 1M and 10M synthetic events.

The raw tables come from the generator of ``benchmarks/features.py`` (contract columns, 24
months from 2023-01-01, one customer per 100 events). Each size runs in its own subprocess: the
project's ``data_processing`` pipeline (``create_pipeline()``, the resolved parameters of
``conf/base``, the committed catalog entries with paths moved to a temporary folder) on DuckDB
with the table-engine settings of ``conf/base/globals.yml``: raw Parquet → validation report →
primary tables and quarantine as Parquet. It prints wall time, CPU time (all threads) and peak
resident memory (``getrusage`` max RSS, interpreter and imports included).

    python benchmarks/data_processing.py                    # 1M and 10M events
    python benchmarks/data_processing.py --sizes 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

from features import generate  # noqa: E402  (the shared synthetic-table generator)

TABLES = ("customers", "events", "churn_records")


def _engine(work_dir: Path) -> dict:
    engine = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "globals.yml").read_text())
    engine = engine["table_engine"]
    return {
        "backend": engine["backend"],
        "database": engine["database"],
        "memory_limit": os.environ.get("CHURN_DUCKDB_MEMORY_LIMIT", "4GB"),
        "threads": int(os.environ.get("CHURN_DUCKDB_THREADS", "2")),
        "temp_directory": str(work_dir / "duckdb_spill"),
    }


def run_pipeline(data_dir: Path, work_dir: Path) -> dict:
    """Run data_processing on the raw Parquet files in ``data_dir``; return row counts."""
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog
    from kedro.runner import SequentialRunner

    from churn_mlops import settings
    from churn_mlops.pipelines.data_processing import create_pipeline

    conf = PROJECT_ROOT / "conf"
    loader = OmegaConfigLoader(conf_source=str(conf), env="local", **settings.CONFIG_LOADER_ARGS)
    engine = _engine(work_dir)
    outputs = yaml.safe_load((conf / "base" / "catalog_data_processing.yml").read_text())
    datasets = {}
    for name in TABLES:
        datasets[f"{name}@ibis"] = {
            "type": "ibis.FileDataset",
            "filepath": str(data_dir / f"{name}_primary.parquet"),  # the generator's names
            "file_format": "parquet",
            "table_name": f"raw_{name}",
            "connection": engine,
        }
    for name, entry in outputs.items():
        entry = dict(entry, filepath=str(work_dir / Path(entry["filepath"]).name))
        if entry["type"].startswith("ibis."):
            entry["connection"] = engine
        entry.pop("versioned", None)
        datasets[name] = entry
    catalog = DataCatalog.from_config(datasets)
    catalog["params:data_processing"] = loader["parameters"]["data_processing"]
    SequentialRunner().run(create_pipeline(), catalog)
    report = json.loads((work_dir / "validation_report.json").read_text())
    return {
        "events_primary": pq.ParquetFile(work_dir / "events_primary.parquet").metadata.num_rows,
        "passed": report["passed"],
    }


def worker(data_dir: Path) -> None:
    """Run the pipeline in this process and print its figures as one JSON line."""
    with tempfile.TemporaryDirectory(prefix="dp-bench-") as work:
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        rows = run_pipeline(data_dir, Path(work))
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(
        json.dumps(
            {"seconds": seconds, "cpu_seconds": cpu, "peak_mib": after.ru_maxrss / 1024, **rows}
        )
    )


def measure(data_dir: Path) -> dict:
    env = dict(
        os.environ,
        KEDRO_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    env.setdefault("KEDRO_LOGGING_CONFIG", str(PROJECT_ROOT / "conf" / "logging.yml"))
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", "--data", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout)[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=1, help="best of N (wall time)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.data)
        return
    print(f"{'events':>12} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9} {'primary events':>15}")
    results = {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="dp-bench-data-") as data:
            generate(size, Path(data))
            runs = [measure(Path(data)) for _ in range(args.repeat)]
        if any("error" in r for r in runs):
            print(f"{size:>12,} failed:\n{next(r for r in runs if 'error' in r)['error']}")
            continue
        best = min(runs, key=lambda r: r["seconds"])
        results[size] = best
        print(
            f"{size:>12,} {best['seconds']:>8.1f} {best['cpu_seconds']:>8.1f} "
            f"{best['peak_mib']:>9.0f} {best['events_primary']:>15,}"
        )
    if len(results) >= 2:
        small, large = min(results), max(results)
        print(
            f"growth {small:,} -> {large:,} events (x{large / small:g}): "
            f"time x{results[large]['seconds'] / results[small]['seconds']:.1f}, "
            f"memory x{results[large]['peak_mib'] / results[small]['peak_mib']:.1f}"
        )


if __name__ == "__main__":
    main()
