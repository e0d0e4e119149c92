"""Benchmark: feature engineering from 1M to 50M events on DuckDB (out of core) and Spark.

For each configuration the script runs the project's ``feature_engineering`` pipeline — the
catalog entries of the environment (``conf/base`` for DuckDB, ``conf/spark`` for Spark), the
committed parameters, Parquet in and out — in a fresh child process, and prints:

- ``time``: wall seconds from the first dataset load to the written ``model_input_table``
  (for Spark, starting the SparkSession is printed separately as ``start``);
- ``peak RSS``: the largest resident memory of the child's whole process tree, sampled every
  50 ms from /proc (for Spark this includes the JVM, which runs the work);
- ``spill``: the largest size DuckDB's ``temp_directory`` reached (data spilled to disk).

Default configurations: DuckDB at 1M, 10M and 50M events and Spark ``local[2]`` at 1M and 10M,
DuckDB with a 1 GB engine memory limit (``CHURN_DUCKDB_MEMORY_LIMIT``) and 2 threads. The
synthetic primary tables (24 months, one customer per 100 events, a third churning) are
written in 1M-row chunks, so generating 50M events needs little memory; they are generated
once per size and reused with ``--workdir``. Growth ratios compare each size with the smallest.

Usage::

    python benchmarks/scale.py                                  # all default configurations
    python benchmarks/scale.py --duckdb 1000000 --spark         # DuckDB 1M only, no Spark
    nice python benchmarks/scale.py --workdir /tmp/scale-bench  # keep the generated data
    python benchmarks/scale.py --repeat 2                       # fastest of 2 on a busy machine

Spark needs Java 17 (``JAVA_HOME``) and the ``spark`` extra; see docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PRIMARY = ("customers_primary", "events_primary", "churn_records_primary")

# The synthetic primary tables are the scale tests' (tests/scaling/synthetic.py: 24 months, one
# customer per 100 events, a third churning, microsecond timestamps, DuckDB's row groups,
# written in 1M-row chunks), drawn here with seed 7.
sys.path.insert(0, str(PROJECT_ROOT))
from tests.scaling.synthetic import in_memory_bytes, write_primary_tables  # noqa: E402


def generate(n_events: int, out_dir: Path, seed: int = 7) -> None:
    """Write the three primary tables with ``n_events`` events."""
    write_primary_tables(n_events, out_dir, seed=seed)


def in_memory_mib(path: Path) -> float:
    """Decoded (Arrow) size of a Parquet file, read one row group at a time."""
    return in_memory_bytes(path) / 2**20


def lay_out_for_spark(data_dir: Path) -> Path:
    """The events as conf/spark stores them: one folder per month (written once, by DuckDB)."""
    target = data_dir / "events_primary_by_month"
    if not target.exists():
        from churn_mlops.datasets.partitioned_parquet import MonthPartitionedParquetDataset

        dataset = MonthPartitionedParquetDataset(
            str(target),
            time_column="event_time",
            partition_column="event_month",
            connection={"backend": "duckdb", "database": ":memory:", "threads": 2},
        )
        dataset.save(dataset.connection.read_parquet(str(data_dir / "events_primary.parquet")))
    return target


# --------------------------------------------------------------------------- worker


def _catalog(env: str, work: Path) -> tuple[object, dict]:
    """The environment's catalog entries for feature_engineering, and its parameters."""
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog, MemoryDataset
    from omegaconf.resolvers import oc

    from churn_mlops.pipelines.feature_engineering import create_pipeline

    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env=env,
        custom_resolvers={"oc.env": oc.env},
        config_patterns={"spark": ["spark*", "spark*/**"]},
    )
    pipeline = create_pipeline()
    entries = {k: v for k, v in loader["catalog"].items() if k in pipeline.datasets()}
    for entry in entries.values():
        entry["filepath"] = str(work / entry["filepath"])
        connection = entry.get("connection", {})
        if connection.get("backend") == "duckdb":
            entry["connection"] = {**connection, "temp_directory": str(work / "duckdb_spill")}
    catalog = DataCatalog.from_config(entries)
    catalog["params:feature_engineering"] = MemoryDataset(
        loader["parameters"]["feature_engineering"]
    )
    spark = loader["spark"] if env == "spark" else {}
    return catalog, spark


def worker(engine: str, data_dir: Path, work: Path) -> None:
    """Run feature_engineering once in this process; print one JSON line of figures."""
    from kedro.runner import SequentialRunner

    from churn_mlops.pipelines.feature_engineering import create_pipeline

    primary = work / "data" / "03_primary"
    primary.mkdir(parents=True)
    for name in PRIMARY:
        source = data_dir / f"{name}.parquet"
        if engine == "spark" and name == "events_primary":
            (primary / name).symlink_to(data_dir / "events_primary_by_month")
        else:
            (primary / f"{name}.parquet").symlink_to(source)
    env = "spark" if engine == "spark" else "local"
    catalog, spark_conf = _catalog(env, work)
    figures: dict[str, float] = {}
    if engine == "spark":
        from churn_mlops.hooks import build_spark_session, spark_properties

        started = time.perf_counter()
        properties = spark_properties(spark_conf)
        properties["spark.ui.showConsoleProgress"] = "false"
        session = build_spark_session(properties)
        session.sparkContext.setLogLevel("ERROR")
        figures["start_s"] = time.perf_counter() - started
    started = time.perf_counter()
    SequentialRunner().run(create_pipeline(), catalog)
    figures["seconds"] = time.perf_counter() - started
    output = work / "data" / "05_model_input" / "model_input_table.parquet"
    import pyarrow.dataset as pads

    figures["rows"] = pads.dataset(output, format="parquet").count_rows()
    print(json.dumps(figures))


# --------------------------------------------------------------------------- driver


def _tree_usage(root: int, cpu_ticks: dict[int, int]) -> int:
    """Resident bytes of ``root`` and its descendants now; records each one's CPU ticks.

    Read from /proc (Linux). ``cpu_ticks`` keeps the latest user+system ticks per process, so
    that processes which have exited (the JVM at the end of a Spark run) still count.
    """
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(entry.name)
        stats[pid] = fields
        children.setdefault(int(fields[1]), []).append(pid)
    total, todo = 0, [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        if pid not in stats:
            continue
        # proc(5) fields 14 and 15 (utime, stime, in ticks) and 24 (rss, in pages).
        fields = stats[pid]
        cpu_ticks[pid] = int(fields[11]) + int(fields[12])
        total += int(fields[21]) * page
    return total


def _folder_bytes(folder: Path) -> int:
    try:
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    except OSError:
        return 0


def measure(engine: str, data_dir: Path, root: Path, memory_limit: str) -> dict:
    """Run one configuration in a child process and sample its memory and spill."""
    work = Path(tempfile.mkdtemp(prefix=f"{engine}-", dir=root))
    env = dict(
        os.environ,
        KEDRO_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        CHURN_DUCKDB_MEMORY_LIMIT=memory_limit,
        CHURN_DUCKDB_THREADS=os.environ.get("CHURN_DUCKDB_THREADS", "2"),
        PYSPARK_PYTHON=sys.executable,
        SPARK_LOCAL_IP=os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
    )
    env.setdefault("KEDRO_LOGGING_CONFIG", str(PROJECT_ROOT / "conf" / "logging.yml"))
    command = [sys.executable, __file__, "--worker", engine, "--data", str(data_dir)]
    proc = subprocess.Popen(
        [*command, "--work", str(work)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
    )
    peak = {"rss": 0, "spill": 0}
    cpu_ticks: dict[int, int] = {}

    def sample() -> None:
        while proc.poll() is None:
            peak["rss"] = max(peak["rss"], _tree_usage(proc.pid, cpu_ticks))
            peak["spill"] = max(peak["spill"], _folder_bytes(work / "duckdb_spill"))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.join()
    shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        return {"error": (stderr or stdout)[-3000:]}
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_mib"] = peak["rss"] / 2**20
    result["cpu_s"] = sum(cpu_ticks.values()) / os.sysconf("SC_CLK_TCK")
    # Spark spills to its own spark.local.dir; only DuckDB's temp_directory is measured.
    result["spill_mib"] = peak["spill"] / 2**20 if engine == "duckdb" else None
    return result


def spilled(result: dict) -> str:
    """The spill column of the table: MiB for DuckDB, n/a for Spark."""
    return "n/a" if result["spill_mib"] is None else f"{result['spill_mib']:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duckdb", type=int, nargs="*", default=[1_000_000, 10_000_000, 50_000_000]
    )
    parser.add_argument("--spark", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB engine memory limit")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per configuration; the fastest is kept"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep generated data here")
    parser.add_argument("--worker", choices=["duckdb", "spark"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.work)
        return

    root = args.workdir or Path(tempfile.mkdtemp(prefix="scale-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(
        f"# Scale benchmark (fastest of {args.repeat}) — {platform.platform()}, "
        f"Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; DuckDB memory_limit={args.memory_limit}, "
        f"threads={os.environ.get('CHURN_DUCKDB_THREADS', '2')}; Spark per conf/spark/spark.yml"
    )
    runs = [("duckdb", n) for n in args.duckdb] + [("spark", n) for n in args.spark]
    results: dict[tuple[str, int], dict] = {}
    for size in sorted({n for _, n in runs}):
        data_dir = root / f"events_{size}"
        if not (data_dir / "events_primary.parquet").exists():
            started = time.perf_counter()
            generate(size, data_dir)
            print(f"generated {size:,} events in {time.perf_counter() - started:.0f} s")
        events = data_dir / "events_primary.parquet"
        print(
            f"{size:,} events: {events.stat().st_size / 2**20:,.0f} MiB Parquet, "
            f"{in_memory_mib(events):,.0f} MiB decoded"
        )
        for engine in ("duckdb", "spark"):
            if (engine, size) not in runs:
                continue
            if engine == "spark":
                lay_out_for_spark(data_dir)  # not timed: conf/spark's month-partitioned layout
            tries = [measure(engine, data_dir, root, args.memory_limit) for _ in range(args.repeat)]
            done = [r for r in tries if "error" not in r]
            result = min(done, key=lambda r: r["seconds"]) if done else tries[0]
            results[(engine, size)] = result
            if "error" in result:
                print(f"{engine:>6} {size:>11,} events: FAILED\n{result['error']}")
                continue
            start = f", start {result['start_s']:.0f} s" if "start_s" in result else ""
            spill = "n/a" if result["spill_mib"] is None else f"{result['spill_mib']:,.0f} MiB"
            print(
                f"{engine:>6} {size:>11,} events: {result['seconds']:6.1f} s{start}, "
                f"CPU {result['cpu_s']:6.1f} s, "
                f"peak RSS {result['peak_mib']:6,.0f} MiB, spill {spill}, "
                f"{result['rows']:,} rows"
            )

    print("\n| engine | events | time (s) | CPU (s) | peak RSS (MiB) | spilled (MiB) | rows |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (engine, size), r in sorted(results.items()):
        if "error" not in r:
            print(
                f"| {engine} | {size:,} | {r['seconds']:.1f} | {r['cpu_s']:.0f} "
                f"| {r['peak_mib']:,.0f} | {spilled(r)} | {r['rows']:,} |"
            )
    for engine in ("duckdb", "spark"):
        sizes = sorted(n for e, n in results if e == engine and "error" not in results[(e, n)])
        for small, large in zip(sizes, sizes[1:], strict=False):
            a, b = results[(engine, small)], results[(engine, large)]
            print(
                f"{engine} growth {small:,} -> {large:,} events (x{large / small:g}): "
                f"time x{b['seconds'] / a['seconds']:.2f}, CPU x{b['cpu_s'] / a['cpu_s']:.2f}, "
                f"peak memory x{b['peak_mib'] / a['peak_mib']:.2f}"
            )
    if args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
