"""The consumer against a real Kafka-protocol broker (Tansu): exactly once, dead letters,
graceful stop, back-off when the broker is missing, and the pipelines on the landed files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from churn_mlops import settings as project_settings
from churn_mlops.ingestion.broker import PROBE_TIMEOUT_S
from churn_mlops.ingestion.consumer import GROUP_TIMING, IngestionConsumer
from churn_mlops.ingestion.errors import BrokerUnavailableError
from churn_mlops.ingestion.producer import publish_tables
from churn_mlops.pipelines.data_processing import create_pipeline
from tests.ingestion.conftest import (
    PROJECT_ROOT,
    Broker,
    consumer_command,
    consumer_env,
    free_port,
    read_landed,
)
from tests.pipelines.data_processing.conftest import valid_frames, write_raw

pytestmark = [pytest.mark.timeout(240), pytest.mark.kafka]  # a real broker (Tansu)

PRIMARY = ("customers_primary", "events_primary", "churn_records_primary", "quarantine")
SUBPROCESS_TIMEOUT_S = 120


def synthetic_events(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` distinct valid session events (unique per customer and time)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": rng.integers(1, 500, n).astype("int64"),
            "event_time": pd.Timestamp("2023-01-01") + pd.to_timedelta(np.arange(n) * 97, unit="s"),
            "event_type": "session",
            "amount": np.nan,
            "duration_minutes": np.round(rng.uniform(1, 60, n), 2),
        }
    )


def run_until_idle(consumer: IngestionConsumer, idle: float = 2.0) -> None:
    thread = threading.Thread(target=consumer.run, kwargs={"idle_exit_seconds": idle})
    thread.start()
    thread.join(timeout=SUBPROCESS_TIMEOUT_S)
    assert not thread.is_alive(), "consumer did not stop"


def committed(settings, topic: str, partitions: int) -> list[int]:
    probe = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": settings.group_id,
            **GROUP_TIMING,
        }
    )
    try:
        tps = probe.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
        return [tp.offset for tp in tps]
    finally:
        probe.close()


# --------------------------------------------------------------------------------------------
# End to end: publish → ingest → data_processing equals the file path
# --------------------------------------------------------------------------------------------


class KeptMemoryDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so the test can read the outputs."""

    def _release(self) -> None:
        pass


def _raw_catalog(env: str, project_dir: Path, parameters: dict) -> DataCatalog:
    """The project's `<table>@ibis` entries of ``env``, with paths under ``project_dir``."""
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"), env=env, **project_settings.CONFIG_LOADER_ARGS
    )
    entries = {}
    for name, entry in loader["catalog"].items():
        if name.endswith("@ibis") and name.split("@")[0] in (
            "customers",
            "events",
            "churn_records",
        ):
            entry = dict(entry)
            entry["filepath"] = str(project_dir / entry["filepath"])
            entry["connection"] = {"backend": "duckdb", "database": ":memory:"}
            entries[name] = entry
    catalog = DataCatalog.from_config(entries)
    catalog["params:data_processing"] = MemoryDataset(parameters)
    for name in PRIMARY:
        catalog[name] = KeptMemoryDataset()
    return catalog


def _primary_tables(catalog: DataCatalog) -> dict[str, pd.DataFrame]:
    SequentialRunner().run(create_pipeline(), catalog)
    tables = {}
    for name in PRIMARY:
        loaded = catalog.load(name)
        frame = loaded.to_pandas() if isinstance(loaded, ibis.Table) else loaded
        tables[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return tables


@pytest.mark.slow
def test_publish_ingest_then_data_processing_equals_the_file_path(
    broker: Broker, make_settings, project_config, tmp_path: Path
) -> None:
    frames = valid_frames()
    frames["events"].loc[3, "duration_minutes"] = -2.0  # soft rule: quarantined on both paths
    _, params = project_config
    parameters = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        env="streaming",
        **project_settings.CONFIG_LOADER_ARGS,
    )["parameters"]["data_processing"]

    files_dir = tmp_path / "files"
    write_raw(files_dir, frames)
    stream_dir = tmp_path / "stream"
    settings = make_settings(
        broker.bootstrap, landing_dir=stream_dir / "data" / "01_raw" / "stream"
    )

    publish_tables(settings, frames, params)
    run_until_idle(IngestionConsumer(settings, params))

    from_files = _primary_tables(_raw_catalog("local", files_dir, parameters))
    from_stream = _primary_tables(_raw_catalog("streaming", stream_dir, parameters))
    for name in PRIMARY:
        pd.testing.assert_frame_equal(from_stream[name], from_files[name], obj=name)
    assert len(from_stream["events_primary"]) == 11
    assert from_stream["quarantine"]["rule"].tolist() == ["min"]


def test_landed_rows_are_the_published_rows_with_committed_offsets(
    broker: Broker, make_settings, project_config
) -> None:
    _, params = project_config
    events = synthetic_events(3000)
    settings = make_settings(broker.bootstrap, batch_max_events=700)
    publish_tables(settings, {"events": events}, params)

    consumer = IngestionConsumer(settings, params)
    run_until_idle(consumer)

    landed = read_landed(settings, "events")
    key = ["customer_id", "event_time"]
    pd.testing.assert_frame_equal(
        landed.sort_values(key).reset_index(drop=True),
        events.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )
    ends = committed(settings, settings.topics["events"], settings.partitions)
    assert sum(ends) == len(events)
    assert consumer.metrics.rows_written.labels(table="events")._value.get() == len(events)


# --------------------------------------------------------------------------------------------
# Exactly once: SIGKILL at any point, crash between landing and commit
# --------------------------------------------------------------------------------------------


def _land_files(settings) -> list[Path]:
    return list(settings.landing_dir.rglob("*.parquet")) if settings.landing_dir.exists() else []


@pytest.mark.slow
def test_sigkill_during_batches_then_restart_lands_each_event_once(
    broker: Broker, make_settings, project_config
) -> None:
    _, params = project_config
    events = synthetic_events(20_000, seed=1)
    settings = make_settings(broker.bootstrap, batch_max_events=1000, batch_max_seconds=30)
    publish_tables(settings, {"events": events}, params)
    env = consumer_env(settings)

    # Two kills at different points of the stream, then a run to the end.
    for files_before_kill in (3, 10):
        process = subprocess.Popen(consumer_command(settings), env=env, cwd=PROJECT_ROOT)
        try:
            deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
            while len(_land_files(settings)) < files_before_kill:
                assert process.poll() is None, "consumer exited early"
                assert time.monotonic() < deadline, "consumer landed nothing"
                time.sleep(0.02)
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        # A consumer SIGKILLed mid-join keeps its group busy until the session times out.
        time.sleep(GROUP_TIMING["session.timeout.ms"] / 1000 + 1)
    process = subprocess.run(
        [*consumer_command(settings), "--idle-exit", "3"],
        env=env,
        cwd=PROJECT_ROOT,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert process.returncode == 0

    landed = read_landed(settings, "events")
    assert len(landed) == len(events)
    assert not landed.duplicated(["customer_id", "event_time"]).any()
    assert set(landed["event_time"]) == set(events["event_time"])
    assert not list(settings.landing_dir.rglob(".*.tmp"))


def test_crash_after_landing_before_commit_is_replayed_without_duplicates(
    broker: Broker, make_settings, project_config
) -> None:
    """The worst moment: files renamed and fsynced, offsets not committed yet."""
    _, params = project_config
    events = synthetic_events(2500, seed=2)
    settings = make_settings(broker.bootstrap, batch_max_events=800, partitions=1)
    publish_tables(settings, {"events": events}, params)

    crashing = IngestionConsumer(settings, params)
    crashing.connect()

    class Crash(Exception):
        pass

    class CrashAtCommit:
        """The real client, except that the process "dies" when it would commit."""

        def __init__(self, inner: Consumer) -> None:
            self._inner = inner

        def __getattr__(self, name: str):
            return getattr(self._inner, name)

        def commit(self, *args, **kwargs):
            raise Crash

    crashing._consumer = CrashAtCommit(crashing._consumer)  # type: ignore[assignment]
    with pytest.raises(Crash):
        crashing.run()
    landed_before = read_landed(settings, "events")
    assert 0 < len(landed_before) <= 800

    # Different batch boundaries on the replay: the first file cannot simply be overwritten.
    replay = IngestionConsumer(settings.model_copy(update={"batch_max_events": 1100}), params)
    run_until_idle(replay)

    landed = read_landed(settings, "events")
    assert len(landed) == len(events)
    assert not landed.duplicated(["customer_id", "event_time"]).any()


# --------------------------------------------------------------------------------------------
# Malformed events, graceful stop, metrics
# --------------------------------------------------------------------------------------------


def test_malformed_events_go_to_the_dead_letter_topic_and_quarantine_with_reason(
    broker: Broker, make_settings, project_config
) -> None:
    _, params = project_config
    settings = make_settings(broker.bootstrap, partitions=1)
    publish_tables(settings, {"events": valid_frames()["events"]}, params)
    topic = settings.topics["events"]
    bad = [
        (b"1", b"{oops", "json"),
        (b"1", b'{"customer_id": 1, "event_time": "2023-02-01T00:00:00"}', "required"),
        (
            b"1",
            b'{"customer_id": 1, "event_time": "2023-02-01T00:00:00", "event_type": "dance"}',
            "event_type.categories",
        ),
        (
            b"3",
            b'{"customer_id": 1, "event_time": "2023-02-01T00:00:00", "event_type": "session",'
            b' "duration_minutes": 5}',
            "key",
        ),
    ]
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for key, value, _ in bad:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    consumer = IngestionConsumer(settings, params)
    run_until_idle(consumer)

    assert len(read_landed(settings, "events")) == len(valid_frames()["events"])
    (quarantine_file,) = (settings.landing_dir / "_quarantine").glob("*.jsonl")
    records = pd.read_json(quarantine_file, lines=True)
    assert records["rule"].tolist() == [rule for _, _, rule in bad]
    assert records["offset"].tolist() == list(range(12, 16))
    assert "'dance'" in records.loc[2, "reason"]

    reader = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"{settings.group_id}-dlq",
            "auto.offset.reset": "earliest",
            **GROUP_TIMING,
        }
    )
    reader.subscribe([settings.dead_letter_topic])
    dead = []
    deadline = time.monotonic() + 60
    while len(dead) < len(bad) and time.monotonic() < deadline:
        message = reader.poll(0.5)
        if message is not None and message.error() is None:
            dead.append(message)
    reader.close()
    assert sorted(m.value() for m in dead) == sorted(value for _, value, _ in bad)
    rules = {dict(m.headers())["churn.rule"].decode() for m in dead}
    assert rules == {rule for _, _, rule in bad}
    assert all(dict(m.headers())["churn.source"].decode().startswith(topic) for m in dead)
    assert consumer.metrics.dead_letters.labels(topic=topic, rule="json")._value.get() == 1


def test_sigterm_lands_the_open_batch_and_commits(
    broker: Broker, make_settings, project_config
) -> None:
    _, params = project_config
    events = synthetic_events(500, seed=3)
    # A batch that would only be landed after 10 minutes: SIGTERM must land it.
    settings = make_settings(broker.bootstrap, batch_max_events=100_000, batch_max_seconds=600)
    publish_tables(settings, {"events": events}, params)
    port = free_port()
    process = subprocess.Popen(
        [*consumer_command(settings), "--metrics-port", str(port)],
        env=consumer_env(settings),
        cwd=PROJECT_ROOT,
    )
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
        while True:
            assert time.monotonic() < deadline, "the consumer never read the whole topic"
            assert process.poll() is None, "consumer exited early"
            time.sleep(0.3)
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
                text = text.read().decode()
            except OSError:
                continue
            if f"churn_ingest_batch_buffered {float(len(events))}" in text:
                break
        assert not _land_files(settings), "landed before the batch was full or due"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert len(read_landed(settings, "events")) == len(events)
    assert sum(committed(settings, settings.topics["events"], settings.partitions)) == len(events)


def test_metrics_endpoint_serves_lag_rows_and_dead_letters(
    broker: Broker, make_settings, project_config
) -> None:
    from prometheus_client import generate_latest

    _, params = project_config
    settings = make_settings(broker.bootstrap)
    publish_tables(settings, {"events": synthetic_events(300, seed=4)}, params)
    consumer = IngestionConsumer(settings, params)
    run_until_idle(consumer)
    text = generate_latest(consumer.metrics.registry).decode()
    assert 'churn_ingest_rows_written_total{table="events"} 300.0' in text
    assert "churn_ingest_consumer_lag{" in text
    lags = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("churn_ingest_consumer_lag{")
    ]
    assert lags and all(lag == 0 for lag in lags)
    assert "churn_ingest_last_commit_timestamp_seconds" in text


# --------------------------------------------------------------------------------------------
# Broker unavailable at start
# --------------------------------------------------------------------------------------------


def test_no_broker_gives_a_clear_error_after_backing_off(make_settings, project_config) -> None:
    _, params = project_config
    port = free_port()
    settings = make_settings(
        f"127.0.0.1:{port}", connect_attempts=2, connect_backoff_max_seconds=0.5
    )
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError) as caught:
        IngestionConsumer(settings, params).connect()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "after 2 attempts" in message
    assert "CHURN_INGEST_BOOTSTRAP_SERVERS" in message
    assert time.monotonic() - started >= 2 * PROBE_TIMEOUT_S * 0.9  # two full probes


def test_cli_exits_with_the_error_when_no_broker(make_settings) -> None:
    settings = make_settings(
        f"127.0.0.1:{free_port()}", connect_attempts=1, connect_backoff_max_seconds=0.5
    )
    result = subprocess.run(
        consumer_command(settings),
        env=consumer_env(settings),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert result.returncode == 1
    assert "no Kafka broker answered" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_consumer_retries_until_a_late_broker_starts(
    make_settings, project_config, tmp_path: Path
) -> None:
    _, params = project_config
    late = Broker()
    settings = make_settings(late.bootstrap, connect_attempts=10, connect_backoff_max_seconds=1.0)
    process = subprocess.Popen(
        [*consumer_command(settings), "--idle-exit", "3"],
        env=consumer_env(settings),
        cwd=PROJECT_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
        while not any("retrying in" in line for line in lines):
            assert process.poll() is None, "the consumer gave up instead of retrying"
            assert time.monotonic() < deadline, "no retry logged"
            time.sleep(0.2)
        late.start()
        publish_tables(settings, {"events": synthetic_events(200, seed=5)}, params)
        process.wait(timeout=SUBPROCESS_TIMEOUT_S)
        reader.join(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        late.stop()
    stderr = "".join(lines)
    assert process.returncode == 0, stderr[-2000:]
    assert f"no Kafka broker answered at {late.bootstrap} (attempt 1 of 10" in stderr
    assert "retrying in" in stderr
    assert len(read_landed(settings, "events")) == 200


def test_cli_publish_sends_the_catalogs_raw_tables_in_time_order(
    broker: Broker, make_settings, project_config, tmp_path: Path
) -> None:
    """``kedro stream publish`` reads <table>@pandas of the project and publishes every row."""
    _, params = project_config
    frames = valid_frames()
    project = tmp_path / "project"
    write_raw(project, frames)
    (project / "conf").symlink_to(PROJECT_ROOT / "conf")
    settings = make_settings(broker.bootstrap, partitions=1)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from churn_mlops.ingestion.cli import stream; stream()",
            "publish",
            "--project-path",
            str(project),
        ],
        env=consumer_env(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "published {'customers': 6, 'events': 12, 'churn_records': 2}" in result.stdout

    run_until_idle(IngestionConsumer(settings, params))
    for table, frame in frames.items():
        assert len(read_landed(settings, table)) == len(frame), table
