"""End to end on a small project: `kedro run` → feature_store → batch_scoring.

One small project (simulation → evaluation, ~1-2 min) is built for the module; then the two
pipelines run through the Kedro CLI exactly as a user runs them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from churn_mlops.datasets.monitoring import JsonLinesLogDataset
from churn_mlops.feature_store.repository import FeatureRepository
from tests.notebooks.small_project import build_small_project, run_kedro

pytestmark = pytest.mark.slow  # two `kedro run`s of a small project (about a minute)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small project with a champion, its features registered and materialized, scored."""
    root = tmp_path_factory.mktemp("batch") / "project"
    build_small_project(root)
    run_kedro(root, "run", "--pipeline", "feature_store")
    run_kedro(root, "run", "--pipeline", "batch_scoring")
    return root


def test_feast_training_set_equals_model_input_table_row_for_row(project: Path):
    model_input = pd.read_parquet(project / "data/05_model_input/model_input_table.parquet")
    training_set = pd.read_parquet(
        project / "data/05_model_input/feature_store_training_set.parquet"
    )
    expected = model_input.sort_values(["customer_id", "snapshot_date"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(training_set, expected, check_exact=True)


def test_online_store_serves_the_latest_snapshot_of_every_active_customer(project: Path):
    model_input = pd.read_parquet(project / "data/05_model_input/model_input_table.parquet")
    latest = model_input[model_input.snapshot_date == model_input.snapshot_date.max()]
    repository = FeatureRepository(project / "feature_repo")
    ids = [int(i) for i in latest.customer_id.head(20)]
    online = repository.online_features(ids)
    names = [c for c in model_input.columns if c not in ("customer_id", "snapshot_date", "churned")]
    by_id = latest.set_index("customer_id")
    for cid, row in zip(ids, online.rows, strict=True):
        assert row is not None
        assert row == {
            n: by_id.loc[cid, n].item() if hasattr(by_id.loc[cid, n], "item") else by_id.loc[cid, n]
            for n in names
        }


def test_retention_list_ranks_every_active_customer(project: Path):
    model_input = pd.read_parquet(project / "data/05_model_input/model_input_table.parquet")
    ranked = pd.read_parquet(project / "data/07_model_output/retention_list.parquet")
    latest = model_input[model_input.snapshot_date == model_input.snapshot_date.max()]

    assert sorted(ranked.customer_id) == sorted(latest.customer_id)
    assert ranked.expected_net_value.is_monotonic_decreasing
    assert {"reason_1", "reason_2", "reason_3", "probability", "label"} <= set(ranked.columns)
    log = JsonLinesLogDataset(
        path=str(project / "data/07_model_output"), prefix="predictions"
    ).load()
    assert len(log) == len(ranked)
