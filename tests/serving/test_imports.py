"""The serving app runs without Kedro, MLflow, SHAP or Ibis: none of them is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = ("kedro", "mlflow", "shap", "ibis")

SCRIPT = """
import json, sys
from fastapi.testclient import TestClient
from churn_mlops.serving.app import create_app
from churn_mlops.serving.settings import ServingSettings
settings = ServingSettings(model_dir=sys.argv[1], auth_enabled=False,
                           prediction_log_enabled=False)
with TestClient(create_app(settings)) as client:
    row = json.loads(sys.argv[2])
    assert client.post("/v1/predict", json={"rows": [row]}).status_code == 200
    assert client.post("/v1/explain", json={"rows": [row]}).status_code == 200
    client.get("/metrics")
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


@pytest.mark.slow
def test_serving_imports_no_training_stack(xgb_bundle: Path, sample_rows: list[dict]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(xgb_bundle), json.dumps(sample_rows[0])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert not loaded & set(FORBIDDEN), sorted(loaded & set(FORBIDDEN))
