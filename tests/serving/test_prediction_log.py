"""Prediction and feedback logs: record format, whole lines, rotation by size, thread safety."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from churn_mlops.serving.app import create_app
from churn_mlops.serving.prediction_log import JsonLinesSink
from churn_mlops.serving.settings import ServingSettings


def read_lines(folder: Path, prefix: str) -> list[dict]:
    records = []
    for path in sorted(folder.glob(f"{prefix}-*.jsonl")):
        text = path.read_text()
        assert text == "" or text.endswith("\n"), f"{path} ends in half a line"
        records += [json.loads(line) for line in text.splitlines()]
    return records


def test_rotation_by_size_keeps_whole_lines_and_every_record(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path, "predictions", max_bytes=2048)
    for i in range(300):
        sink.write([{"i": i, "pad": "x" * 40}])
        if i % 37 == 0:
            sink.flush()
    sink.close()
    files = sorted(tmp_path.glob("predictions-*.jsonl"))
    assert len(files) > 5
    assert all(f.stat().st_size <= 2048 for f in files)
    assert sorted(r["i"] for r in read_lines(tmp_path, "predictions")) == list(range(300))


def test_max_files_prunes_the_oldest(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path, "predictions", max_bytes=1024, max_files=3)
    for i in range(200):
        sink.write([{"i": i, "pad": "y" * 60}])
        sink.flush()
    sink.close()
    files = sorted(tmp_path.glob("predictions-*.jsonl"))
    assert len(files) == 3
    assert read_lines(tmp_path, "predictions")[-1]["i"] == 199


def test_concurrent_writers_lose_and_mix_nothing(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path, "predictions", max_bytes=64 * 1024)

    def writer(worker: int) -> None:
        for i in range(500):
            sink.write([{"worker": worker, "i": i, "pad": "z" * 30}])
            if i % 50 == 0:
                sink.flush()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    records = read_lines(tmp_path, "predictions")
    assert len(records) == 3000
    for w in range(6):
        assert [r["i"] for r in records if r["worker"] == w] == list(range(500))


def test_app_writes_the_prediction_and_feedback_logs(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    auth: dict,
    sample_rows: list[dict],
    tmp_path: Path,
) -> None:
    settings = make_settings(xgb_bundle, prediction_log_dir=tmp_path / "log")
    with TestClient(create_app(settings)) as client:
        rows = [dict(sample_rows[0], customer_id=77), sample_rows[1]]
        body = client.post("/v1/predict", json={"rows": rows}, headers=auth).json()
        feedback = {
            "feedback": [
                {"request_id": body["predictions"][0]["request_id"], "label": 1},
                {"customer_id": 77, "label": 0},
            ]
        }
        response = client.post("/v1/feedback", json=feedback, headers=auth)
        assert response.status_code == 202 and response.json() == {"accepted": 2}
        for bad in (
            {"feedback": [{"label": 1}]},
            {"feedback": [{"request_id": "a", "customer_id": 1, "label": 1}]},
            {"feedback": [{"request_id": "a", "label": 2}]},
            {"feedback": [{"request_id": "a b", "label": 1}]},
            {"feedback": []},
        ):
            assert client.post("/v1/feedback", json=bad, headers=auth).status_code == 422
    # Shutdown flushed everything.
    predictions = read_lines(tmp_path / "log", "predictions")
    assert [p["request_id"] for p in predictions] == [p["request_id"] for p in body["predictions"]]
    first, second = predictions
    assert list(first) == [
        "request_id",
        "timestamp",
        "model_version",
        "customer_id",
        "features",
        "score",
        "label",
    ]
    assert "customer_id" not in second
    assert first["customer_id"] == 77 and first["model_version"] == "1"
    assert set(first["features"]) == set(sample_rows[0])
    assert first["features"]["contract"] == sample_rows[0]["contract"]
    assert first["score"] == body["predictions"][0]["probability"]
    assert first["label"] == body["predictions"][0]["label"]
    assert first["timestamp"].endswith("Z")
    labels = read_lines(tmp_path / "log", "feedback")
    assert labels[0]["request_id"] == first["request_id"] and labels[0]["label"] == 1
    assert labels[1]["customer_id"] == 77 and labels[1]["label"] == 0
    assert all("timestamp" in r for r in labels)


def test_prediction_log_can_be_switched_off(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    auth: dict,
    sample_rows: list[dict],
    tmp_path: Path,
) -> None:
    settings = make_settings(
        xgb_bundle, prediction_log_enabled=False, prediction_log_dir=tmp_path / "off"
    )
    with TestClient(create_app(settings)) as client:
        assert (
            client.post("/v1/predict", json={"rows": sample_rows[:1]}, headers=auth).status_code
            == 200
        )
        assert (
            client.post(
                "/v1/feedback", json={"feedback": [{"request_id": "a", "label": 1}]}, headers=auth
            ).status_code
            == 503
        )
    assert not (tmp_path / "off").exists()
