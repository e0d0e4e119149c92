"""Batch scoring nodes on a real Feast repository and a fitted contract Pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from churn_mlops.datasets.monitoring import JsonLinesLogDataset
from churn_mlops.pipelines.batch_scoring import nodes
from churn_mlops.release.demo import build_pipeline, make_synthetic_features
from tests.feature_store.support import build_repository, store_config
from tests.pipelines.training.synthetic import make_model_input_table

BUSINESS = {"retained_customer_value": 500.0, "offer_cost": 40.0, "offer_success_rate": 0.3}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """60 customers x 4 monthly snapshots (2023-04-01 .. 2023-07-01)."""
    return make_model_input_table(n_customers=60, n_months=4, seed=9)


@pytest.fixture(scope="module", params=["xgboost", "logistic_regression"])
def champion(request: pytest.FixtureRequest) -> dict:
    """A fitted contract Pipeline in the shape ``monitoring_champion`` loads."""
    features, label = make_synthetic_features(800, seed=2)
    pipeline = build_pipeline(features, label, estimator=request.param, n_estimators=40)
    return {
        "model_name": "churn_model",
        "version": "7",
        "model": pipeline,
        "model_metadata": {"threshold": 0.3},
    }


@pytest.fixture
def scored(tmp_path: Path, table: pd.DataFrame, champion: dict):
    repository = build_repository(tmp_path, table)
    config = store_config()
    spine = ibis.memtable(table[["customer_id", "snapshot_date", "churned"]])
    active = nodes.select_active_customers(spine, {"as_of": "2023-06-15"}, config)
    features = nodes.fetch_scoring_features(repository, active, config)
    ranked = nodes.score_customers(
        features, champion, BUSINESS, {"top_reasons": 3, "reasons_for": "all"}, config
    )
    return active, features, ranked


def test_scores_customers_active_at_the_date_with_point_in_time_features(scored, table, champion):
    active, features, ranked = scored
    at_snapshot = table[table.snapshot_date == pd.Timestamp("2023-06-01")]
    assert sorted(active.customer_id) == sorted(at_snapshot.customer_id)
    assert (active.snapshot_date == pd.Timestamp("2023-06-15")).all()
    names = store_config().feature_names
    expected = at_snapshot.set_index("customer_id")[names].sort_index()
    got = features.set_index("customer_id")[names].sort_index()
    pd.testing.assert_frame_equal(got, expected)
    probability = champion["model"].predict_proba(expected)[:, 1]
    by_id = ranked.set_index("customer_id").loc[expected.index]
    np.testing.assert_allclose(by_id.probability, probability, rtol=0, atol=0)


def test_ranked_by_expected_net_value_with_labels_at_the_threshold(scored):
    _, _, ranked = scored
    assert list(ranked["rank"]) == list(range(1, len(ranked) + 1))
    assert ranked.expected_net_value.is_monotonic_decreasing
    np.testing.assert_allclose(
        ranked.expected_net_value, ranked.probability * 0.3 * 500.0 - 40.0, rtol=1e-12
    )
    assert (ranked.label == (ranked.probability >= 0.3).astype(int)).all()
    assert (ranked.model_version == "7").all()


def test_top_three_reasons_are_the_largest_shap_contributions(scored, champion):
    _, features, ranked = scored
    names = store_config().feature_names
    contributions, owners = nodes._contributions(
        champion["model"], features[names], features[names]
    )
    first = ranked.set_index("customer_id").loc[features.customer_id]
    for row, values in zip(first.itertuples(), contributions, strict=True):
        top = np.argsort(-values, kind="stable")[:3]
        assert [row.reason_1, row.reason_2, row.reason_3] == [owners[i] for i in top]
        assert row.reason_1_contribution >= row.reason_2_contribution >= row.reason_3_contribution
    assert set(owners) == set(store_config().feature_names)


def test_by_default_only_worthwhile_offers_are_explained(scored, champion):
    _, features, ranked_all = scored
    ranked = nodes.score_customers(features, champion, BUSINESS, {}, store_config())
    worthwhile = ranked.expected_net_value > 0
    assert 0 < worthwhile.sum() < len(ranked)
    assert ranked.loc[worthwhile, "reason_1"].notna().all()
    assert ranked.loc[~worthwhile, ["reason_1", "reason_3"]].isna().all().all()
    assert ranked.loc[~worthwhile, "reason_1_contribution"].isna().all()
    same = ranked_all.set_index("customer_id").loc[ranked.customer_id[worthwhile]]
    assert list(same.reason_1) == list(ranked.reason_1[worthwhile])


def test_prediction_log_is_read_by_monitoring(scored, tmp_path: Path):
    _, features, ranked = scored
    log = nodes.build_prediction_log(ranked, features, store_config())
    folder = tmp_path / "logs"
    folder.mkdir()
    log.to_json(folder / "predictions-batch.jsonl", orient="records", lines=True)

    loaded = JsonLinesLogDataset(path=str(folder), prefix="predictions").load()
    assert len(loaded) == len(ranked)
    first = json.loads((folder / "predictions-batch.jsonl").read_text().splitlines()[0])
    assert set(first) == {
        "request_id", "timestamp", "model_version", "customer_id", "features", "score", "label"
    }  # fmt: skip
    assert first["customer_id"] == ranked.customer_id.iloc[0]
    assert first["score"] == pytest.approx(ranked.probability.iloc[0])
    assert set(first["features"]) == set(store_config().feature_names)


def test_a_date_before_every_snapshot_is_refused(table):
    spine = ibis.memtable(table[["customer_id", "snapshot_date", "churned"]])
    with pytest.raises(nodes.BatchScoringError, match="no snapshot on or before it"):
        nodes.select_active_customers(spine, {"as_of": "2020-01-01"}, store_config())


def test_metrics_summarize_the_list(scored):
    _, _, ranked = scored
    metrics = nodes.summarize_batch_scores(ranked)
    assert metrics["customers_scored"]["value"] == len(ranked)
    assert metrics["customers_flagged"]["value"] == ranked.label.sum()
    assert metrics["offers_worth_making"]["value"] == (ranked.expected_net_value > 0).sum()
