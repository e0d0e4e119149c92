"""The evaluation pipeline's wiring, and runs of it against a real MLflow registry (SQLite)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from churn_mlops.datasets import MlflowChampionDataset, MlflowModelRegistrationDataset
from churn_mlops.pipelines.evaluation import create_pipeline
from churn_mlops.pipelines.training import nodes as training_nodes
from churn_mlops.registry import ChampionRegistry
from tests.feature_store.support import store_parameters


def test_pipeline_wiring():
    pipeline = create_pipeline()
    assert len({n.name for n in pipeline.nodes}) == len(pipeline.nodes) == 22
    assert pipeline.inputs() == {
        "trained_model",
        "train_split",
        "validation_split",
        "test_split",
        "split_summary",
        "model_selection",
        "candidate_scores",
        "champion_model",
        "params:feature_engineering.features",
        "params:feature_store",
        "params:evaluation",
        "params:training",
    }
    assert pipeline.outputs() >= {
        "registered_model",
        "test_metrics_tracking",
        "calibration_plot",
        "shap_summary_plot",
        "net_value_curve_plot",
    }
    assert "reference_profile" in pipeline.all_outputs()


def _catalog(model, splits, features, params, eval_params, name, tmp_path) -> DataCatalog:
    train, validation, test, summary = splits
    scores = {
        "logistic_regression": {"pr_auc": 0.1, "roc_auc": 0.6, "brier": 0.1, "log_loss": 0.3},
        "xgboost": {"pr_auc": 0.2, "roc_auc": 0.7, "brier": 0.1, "log_loss": 0.3},
    }
    selection = {
        "winner": "xgboost",
        "metric": "pr_auc",
        "value": 0.2,
        "lead": 0.1,
        "runner_up": "logistic_regression",
    }
    registry = {**eval_params["registry"], "model_name": name}
    return DataCatalog(
        {
            "trained_model": MemoryDataset(model),
            "train_split": MemoryDataset(train),
            "validation_split": MemoryDataset(validation),
            "test_split": MemoryDataset(test),
            "split_summary": MemoryDataset(summary),
            "model_selection": MemoryDataset(selection),
            "candidate_scores": MemoryDataset(scores),
            "params:feature_engineering.features": MemoryDataset(features),
            "params:feature_store": MemoryDataset(store_parameters()),
            "params:evaluation": MemoryDataset({**eval_params, "registry": registry}),
            "params:training": MemoryDataset(params),
            "champion_model": MlflowChampionDataset(
                model_name=name, required_files=[], if_missing="none"
            ),
            "registered_model": MlflowModelRegistrationDataset(
                model_name=name,
                metadata_filepath=str(tmp_path / "model_metadata.json"),
                model_card_filepath=str(tmp_path / "model_card.md"),
            ),
        }
    )


@pytest.mark.slow
def test_first_model_is_promoted_and_a_shuffled_label_model_is_refused(
    xgboost_model,
    xgboost_search,
    splits,
    features,
    params,
    specs,
    cfg,
    eval_params,
    model_name,
    tmp_path,
):
    runner = SequentialRunner()
    first = _catalog(xgboost_model, splits, features, params, eval_params, model_name, tmp_path)
    runner.run(create_pipeline(), first)
    registry = ChampionRegistry(model_name)
    assert registry.champion_version() == "1" and registry.alias_version("challenger") == "1"
    metadata = json.loads((tmp_path / "model_metadata.json").read_text())
    assert metadata["model_version"] == "1" and metadata["features"]
    assert "v1" in (tmp_path / "model_card.md").read_text().splitlines()[0]
    # The version records the Feast feature service and views its features come from.
    views = store_parameters()["feature_views"]
    assert [v["name"] for v in metadata["feature_store"]["feature_views"]] == list(views)
    first_tags = registry.client.get_model_version(model_name, "1").tags
    assert first_tags["feature_store.service"] == "churn_model"
    assert first_tags["feature_store.views"] == ",".join(views)
    assert all(first_tags[f"feature_store.view.{view}"] == "latest" for view in views)

    train = splits[0]
    shuffled = train.assign(churned=np.random.default_rng(1).permutation(train.churned.values))
    noise = training_nodes.fit_xgboost(shuffled, xgboost_search[0], specs, cfg)
    second = _catalog(noise, splits, features, params, eval_params, model_name, tmp_path)
    runner.run(create_pipeline(), second)
    outcome = second.load("registered_model")
    assert outcome["version"] == "2" and outcome["outcome"] == "refused"
    assert outcome["reason"].startswith("refused: ") and "vs champion v1" in outcome["reason"]
    assert registry.champion_version() == "1"  # the champion stays
    assert registry.alias_version("challenger") == "2"
    tags = registry.client.get_model_version(model_name, "2").tags
    assert tags["gate.decision"] == "refuse" and tags["gate.reason"] == outcome["reason"]
