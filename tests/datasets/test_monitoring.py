"""Tests of the monitoring datasets: logs, optional inputs, the clock and the MLflow readers."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import mlflow
import pytest
from kedro.io import DatasetError

from churn_mlops.datasets.monitoring import (
    ClockDataset,
    JsonLinesLogDataset,
    MlflowRecentRunsDataset,
    OptionalDataset,
)


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_prediction_log_is_flattened_and_bad_lines_are_kept(tmp_path):
    record = {
        "request_id": "a",
        "timestamp": "2024-01-01T10:00:00.000Z",
        "model_version": "3",
        "customer_id": 7,
        "features": {"age": 30, "contract": "one_year"},
        "score": 0.2,
        "label": 0,
    }
    write_lines(tmp_path / "predictions-20240101T100000Z.jsonl", [json.dumps(record), ""])
    write_lines(
        tmp_path / "predictions-20240102T100000Z.jsonl",
        [json.dumps({**record, "request_id": "b"}), "{not json", "[1, 2]"],
    )
    write_lines(tmp_path / "feedback-20240103T100000Z.jsonl", [json.dumps({"request_id": "a"})])
    dataset = JsonLinesLogDataset(path=str(tmp_path), prefix="predictions")
    assert dataset.exists()
    frame = dataset.load()
    assert len(frame) == 4
    good = frame.loc[frame["parse_error"].isna()]
    assert good["request_id"].tolist() == ["a", "b"]
    assert good["features.age"].tolist() == [30, 30]
    assert good["features.contract"].tolist() == ["one_year", "one_year"]
    assert str(good["timestamp"].dt.tz) == "UTC"
    errors = frame["parse_error"].dropna().tolist()
    assert errors[0].startswith("predictions-20240102T100000Z.jsonl:2: ")
    assert "a JSON list, not an object" in errors[1]
    feedback = JsonLinesLogDataset(path=str(tmp_path), prefix="feedback").load()
    assert feedback["request_id"].tolist() == ["a"]


def test_missing_log_folder_is_an_empty_table(tmp_path):
    dataset = JsonLinesLogDataset(path=str(tmp_path / "nope"), prefix="predictions")
    assert not dataset.exists()
    frame = dataset.load()
    assert frame.empty and {"request_id", "timestamp", "score", "parse_error"} <= set(frame)
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save(frame)


def test_optional_dataset(tmp_path):
    config = {"type": "json.JSONDataset", "filepath": str(tmp_path / "report.json")}
    assert OptionalDataset(dataset=config).load() is None
    (tmp_path / "report.json").write_text('{"passed": true}')
    assert OptionalDataset(dataset=config).load() == {"passed": True}


def test_clock_dataset():
    fixed = ClockDataset(fixed="2024-03-01T12:00:00").load()
    assert fixed == datetime(2024, 3, 1, 12, tzinfo=timezone.utc)
    now = ClockDataset().load()
    assert abs((datetime.now(timezone.utc) - now).total_seconds()) < 5


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    mlflow.set_experiment("monitoring_datasets")
    yield folder
    mlflow.set_tracking_uri(previous)


def test_recent_runs_lists_finished_and_failed_newest_first(tracking):
    with mlflow.start_run(run_name="feature_engineering"):
        pass
    time.sleep(0.01)
    run = mlflow.start_run(run_name="training")
    mlflow.end_run("FAILED")
    with mlflow.start_run(run_name="still_running"):
        runs = MlflowRecentRunsDataset(max_runs=5).load()
    assert runs["run_name"].tolist()[:2] == ["training", "feature_engineering"]
    assert runs["status"].tolist()[:2] == ["FAILED", "FINISHED"]
    assert "still_running" not in runs["run_name"].tolist()
    assert runs.loc[runs["run_id"] == run.info.run_id, "start_time"].iloc[0].tzinfo is not None


def test_reads_what_the_serving_app_writes(tmp_path):
    """The prediction and feedback logs written by the serving sink load as one table each."""
    from churn_mlops.serving.prediction_log import JsonLinesSink

    predictions = JsonLinesSink(tmp_path, "predictions", max_bytes=400)  # rotates
    predictions.write_predictions(
        "2024-02-01T10:00:00.000Z",
        "4",
        ["r1", "r2", "r3"],
        [
            {"customer_id": 11, "age": 40, "contract": "one_year"},
            {"age": 52, "contract": "two_year"},
            {"customer_id": 13, "age": 33, "contract": "month_to_month"},
        ],
        [0.1, 0.7, 0.4],
        [0, 1, 0],
    )
    predictions.close()
    feedback = JsonLinesSink(tmp_path, "feedback", max_bytes=10_000)
    feedback.write([{"request_id": "r2", "label": 1, "timestamp": "2024-02-20T00:00:00Z"}])
    feedback.close()
    assert len(list(tmp_path.glob("predictions-*.jsonl"))) >= 2
    frame = JsonLinesLogDataset(path=str(tmp_path), prefix="predictions").load()
    frame = frame.sort_values("request_id").reset_index(drop=True)
    assert frame["request_id"].tolist() == ["r1", "r2", "r3"]
    assert frame["features.age"].tolist() == [40, 52, 33]
    assert frame["customer_id"].isna().tolist() == [False, True, False]
    assert frame["model_version"].tolist() == ["4", "4", "4"]
    assert frame["parse_error"].isna().all()
    labels = JsonLinesLogDataset(path=str(tmp_path), prefix="feedback").load()
    assert labels[["request_id", "label"]].to_dict("records") == [{"request_id": "r2", "label": 1}]
