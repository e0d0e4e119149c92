"""The event contract and the landing area, without a broker."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from pydantic import ValidationError

from churn_mlops.ingestion.contract import (
    EventDecoder,
    HardRuleChecker,
    encode_rows,
    event_time_column,
    rows_to_arrow,
)
from churn_mlops.ingestion.errors import InvalidEvent
from churn_mlops.ingestion.landing import Landing, OffsetRange
from churn_mlops.ingestion.producer import time_order
from churn_mlops.ingestion.settings import IngestionSettings
from churn_mlops.pipelines.data_processing.params import TABLES
from tests.pipelines.data_processing.conftest import valid_frames


@pytest.fixture(scope="module")
def params(project_config):
    return project_config[1]


def _decode_all(params, table: str, frame: pd.DataFrame) -> pa.Table:
    spec = params.tables[table]
    decoder = EventDecoder(table, spec)
    return rows_to_arrow([decoder.decode(k, v) for k, v in encode_rows(frame, spec)], spec)


@pytest.mark.parametrize("table", TABLES)
def test_encode_decode_round_trip_keeps_every_value(params, table: str) -> None:
    frame = valid_frames()[table]
    landed = _decode_all(params, table, frame).to_pandas()
    expected = frame[list(params.tables[table].columns)]
    pd.testing.assert_frame_equal(landed, expected, check_dtype=False)
    assert list(landed.columns) == list(params.tables[table].columns)


def test_message_key_is_the_customer_id(params) -> None:
    frame = valid_frames()["events"]
    keys = [key for key, _ in encode_rows(frame, params.tables["events"])]
    assert keys == [str(c).encode() for c in frame["customer_id"]]


def test_event_dates_come_from_the_period_checked_timestamp(params) -> None:
    columns = {t: event_time_column(params.tables[t], t) for t in TABLES}
    assert columns == {
        "customers": "signup_date",
        "events": "event_time",
        "churn_records": "churn_date",
    }


@pytest.mark.parametrize(
    ("key", "value", "rule", "says"),
    [
        (b"1", b"{not json", "json", "not valid JSON"),
        (b"1", b"[1, 2]", "json", "expected a JSON object"),
        (b"1", None, "json", "empty message"),
        (
            b"1",
            b'{"customer_id": 1, "event_time": "2023-02-01T00:00:00", "event_type": "session",'
            b' "colour": "red"}',
            "unknown_field",
            "['colour']",
        ),
        (b"1", b'{"customer_id": 1, "event_type": "session"}', "required", "['event_time']"),
        (
            b"1",
            b'{"customer_id": "one", "event_time": "2023-02-01T00:00:00", "event_type": "session"}',
            "customer_id.dtype",
            "expected int64, got 'one'",
        ),
        (
            b"1",
            b'{"customer_id": 1, "event_time": "yesterday", "event_type": "session"}',
            "event_time.dtype",
            "ISO 8601",
        ),
        (
            b"2",
            b'{"customer_id": 1, "event_time": "2023-02-01T00:00:00", "event_type": "session"}',
            "key",
            "message key '2' is not the event's customer_id '1'",
        ),
    ],
)
def test_decoder_names_the_broken_rule_and_the_value(params, key, value, rule, says) -> None:
    with pytest.raises(InvalidEvent) as caught:
        EventDecoder("events", params.tables["events"]).decode(key, value)
    assert caught.value.rule == rule
    assert says in caught.value.reason


def test_timestamps_with_an_offset_are_stored_as_utc(params) -> None:
    row = EventDecoder("churn_records", params.tables["churn_records"]).decode(
        b"2", b'{"customer_id": 2, "churn_date": "2023-09-01T02:00:00+02:00"}'
    )
    assert row["churn_date"] == pd.Timestamp("2023-09-01T00:00:00").to_pydatetime()


def test_hard_rules_of_data_processing_refuse_rows_and_soft_ones_pass(params) -> None:
    frames = valid_frames()
    frames["customers"].loc[1, "age"] = -3  # hard: age.min
    frames["customers"].loc[2, "contract"] = "weekly"  # hard: contract.categories
    frames["customers"].loc[3, "contract"] = "One-Year"  # normalised like data_processing
    batch = _decode_all(params, "customers", frames["customers"])
    failures = HardRuleChecker(params).failures("customers", batch)
    assert {i: e.rule for i, e in failures.items()} == {1: "age.min", 2: "contract.categories"}
    assert "'weekly'" in failures[2].reason and "one_year" in failures[2].reason

    frames["events"].loc[3, "duration_minutes"] = -2.0  # soft in conf: data_processing quarantines
    events = _decode_all(params, "events", frames["events"])
    assert HardRuleChecker(params).failures("events", events) == {}


def test_time_order_merges_tables_sign_ups_first(params) -> None:
    frames = valid_frames()
    order = time_order(frames, params)
    assert len(order) == sum(len(f) for f in frames.values())
    times = [frames[t].iloc[i][event_time_column(params.tables[t], t)] for t, i in order]
    assert times == sorted(times)
    # Customer 2 signs up on 2023-01-01 before any event of that day.
    first_2023 = [(t, i) for (t, i), when in zip(order, times, strict=True) if when.year == 2023]
    assert first_2023[0][0] == "customers"


def test_landed_names_carry_the_offsets_and_discard_removes_uncommitted(tmp_path, params) -> None:
    landing = Landing(tmp_path)
    batch = _decode_all(params, "events", valid_frames()["events"])
    first = landing.write_rows(
        "events", OffsetRange("ev", 0, 0, 5), batch.slice(0, 6), "event_time"
    )
    second = landing.write_rows("events", OffsetRange("ev", 0, 6, 11), batch.slice(6), "event_time")
    other = landing.write_rows("events", OffsetRange("ev", 1, 6, 11), batch.slice(6), "event_time")
    assert all(p.name.startswith("ev+0+00000000000000000000-00000000000000000005") for p in first)
    assert {p.parent.name for p in first} == {
        f"event_date={d}"
        for d in (
            "2023-01-03",
            "2023-01-20",
            "2023-02-01",
            "2023-02-11",
            "2023-03-01",
            "2023-03-05",
        )
    }
    stray = first[0].with_name(".stray.parquet.tmp")
    stray.write_bytes(b"half")
    stray_named = first[0].with_name(f".{second[0].name}.tmp")
    stray_named.write_bytes(b"half")

    removed = landing.discard_uncommitted("ev", 0, committed=6)

    assert set(removed) == {*second, stray_named}
    assert all(p.exists() for p in (*first, *other))
    assert not any(p.exists() for p in second)


def test_settings_reject_unknown_tables_and_sasl_without_mechanism(project_config) -> None:
    base, _ = project_config
    with pytest.raises(ValidationError, match="unknown"):
        IngestionSettings(**{**base.model_dump(), "topics": {"orders": "t"}})
    with pytest.raises(ValidationError, match="sasl_mechanism"):
        IngestionSettings(**{**base.model_dump(), "security_protocol": "SASL_SSL"})


def test_environment_variables_override_conf(project_config, monkeypatch) -> None:
    base, _ = project_config
    monkeypatch.setenv("CHURN_INGEST_BOOTSTRAP_SERVERS", "kafka-0.kafka:9093")
    monkeypatch.setenv("CHURN_INGEST_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CHURN_INGEST_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("CHURN_INGEST_SASL_USERNAME", "ingest")
    monkeypatch.setenv("CHURN_INGEST_SASL_PASSWORD", "s3cret")
    settings = IngestionSettings(**base.model_dump())
    config = settings.kafka_config()
    assert config["bootstrap.servers"] == "kafka-0.kafka:9093"
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.password"] == "s3cret"
    assert "s3cret" not in repr(settings)


def test_batch_decoding_at_once_and_message_by_message_agree(params) -> None:
    frame = valid_frames()["events"]
    spec = params.tables["events"]
    decoder = EventDecoder("events", spec)
    messages = list(encode_rows(frame, spec))
    keys, values = [k for k, _ in messages], [v for _, v in messages]

    at_once, positions, refused = decoder.decode_batch(keys, values)
    assert positions == list(range(len(frame))) and refused == []
    assert at_once.equals(_decode_all(params, "events", frame))

    # One bad message: the batch is decoded message by message and only that one is refused.
    values[4] = values[4].replace(b'"customer_id":2', b'"customer_id":"2"')
    keys[7] = b"999"
    rows, positions, refused = decoder.decode_batch(keys, values)
    assert [(i, e.rule) for i, e in refused] == [(4, "customer_id.dtype"), (7, "key")]
    assert positions == [i for i in range(len(frame)) if i not in (4, 7)]
    assert rows.equals(at_once.take(positions))
