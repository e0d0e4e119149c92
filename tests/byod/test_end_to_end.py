"""Bring your own data, as a new user: a one-row-per-customer CSV -> scaffold -> ``kedro run``
-> registered champion -> export -> a served prediction, with no file outside ``conf/`` edited.

The table is made here, with column names, categories, a text id and a Yes/No label that the
simulator never produces.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from tests.conftest import kedro_env
from tests.pipelines.export.conftest import run_export, snapshot_source

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ENV = "mydata"
TABLE = Path("data/01_raw/shop/accounts.csv")


def accounts_table(rows: int = 1500, seed: int = 3) -> pd.DataFrame:
    """A shop's CRM export: one row per account, churn flag as text, its own vocabulary."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(["Bronze", "Silver", "Gold"], rows, p=[0.5, 0.3, 0.2])
    channel = rng.choice(["Web Shop", "Call-Centre", "Retail Store"], rows)
    months = rng.integers(1, 72, rows)
    bill = rng.uniform(10, 200, rows).round(2)
    autopay = rng.choice(["Yes", "No"], rows)
    logit = -2.6 + 2.2 * (tier == "Bronze") - 0.04 * months + 0.012 * bill + 1.2 * (autopay == "No")
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "AcctRef": [f"AC-{i:05d}" for i in range(rows)],
            "ServiceTier": tier,
            "SalesChannel": channel,
            "MonthsActive": months,
            "AvgBill": bill,
            "AutoPay": autopay,
            "Attrited": np.where(churned, "Yes", "No"),
        }
    )


def _outside_conf(project: Path) -> dict[str, str]:
    """Checksums of every file of the project outside conf/ and the data outputs."""
    return {
        path.relative_to(project).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(project.rglob("*"))
        if path.is_file() and path.relative_to(project).parts[0] not in ("conf",)
    }


def test_customer_table_to_served_prediction(
    project_copy: Path, run_kedro: Callable, tmp_path: Path
):
    table = accounts_table()
    (project_copy / TABLE).parent.mkdir(parents=True)
    table.to_csv(project_copy / TABLE, index=False)
    before = _outside_conf(project_copy)

    scaffold = subprocess.run(
        [
            str(Path(sys.executable).with_name("churn-mlops")),
            "byod",
            "init",
            "--from",
            str(TABLE),
            "--env",
            ENV,
            "--as-of",
            "2025-06-30",
        ],
        cwd=project_copy,
        env=kedro_env(project_copy),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert scaffold.returncode == 0, scaffold.stderr[-3000:]
    assert "label  Attrited" in scaffold.stdout and "id     AcctRef" in scaffold.stdout
    assert _outside_conf(project_copy) == before  # the scaffold wrote conf/shop only
    dp = yaml.safe_load(
        (project_copy / "conf" / ENV / "parameters_data_processing.yml").read_text()
    )
    assert dp["data_processing"]["customer_table"]["columns"]["service_tier"]["categories"] == [
        "bronze",
        "gold",
        "silver",
    ]

    run_kedro(project_copy, "run", "--env", ENV, timeout=1500)

    model_input = pd.read_parquet(project_copy / "data/05_model_input/model_input_table.parquet")
    assert len(model_input) == len(table)
    assert model_input["churned"].sum() == (table["Attrited"] == "Yes").sum()
    assert set(model_input.columns) == {
        "customer_id",
        "snapshot_date",
        "churned",
        "service_tier",
        "sales_channel",
        "months_active",
        "avg_bill",
        "auto_pay",
    }
    client = MlflowClient(tracking_uri=kedro_env(project_copy)["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias("churn_model", "champion")
    assert str(champion.version) == "1"

    source = snapshot_source(tmp_path / "source")
    run_export(project_copy, source, "--env", ENV)
    bundle = project_copy / "dist" / "churn_model-v1"
    card = (bundle / "model_card.md").read_text()
    assert "stratified random split" in card and "seed 42" in card

    from churn_mlops.serving.app import create_app  # noqa: PLC0415
    from churn_mlops.serving.settings import ServingSettings  # noqa: PLC0415

    settings = ServingSettings(
        model_dir=bundle, auth_enabled=False, prediction_log_dir=tmp_path / "logs"
    )
    risky = {
        "service_tier": "bronze",
        "sales_channel": "web_shop",
        "months_active": 2,
        "avg_bill": 190.0,
        "auto_pay": 0,
    }
    loyal = {**risky, "service_tier": "gold", "months_active": 70, "avg_bill": 20.0, "auto_pay": 1}
    with TestClient(create_app(settings)) as http:
        response = http.post("/v1/predict", json={"rows": [risky, loyal]})
        assert response.status_code == 200, response.text
        scores = [p["probability"] for p in response.json()["predictions"]]
        assert scores[0] > scores[1]
        # The simulator's features are not part of this model's contract.
        unknown = http.post("/v1/predict", json={"rows": [{**risky, "sessions_30d": 3}]})
        assert unknown.status_code == 422
