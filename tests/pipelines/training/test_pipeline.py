"""The training pipeline's wiring, and a run of it on an in-memory catalog."""

from __future__ import annotations

from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from sklearn.pipeline import Pipeline

from churn_mlops.pipelines.training import create_pipeline

EXPECTED_NODES = {
    "validate_training_parameters",
    "split_by_snapshot_month",
    "sample_training_rows",
    "fit_logistic_regression",
    "tune_xgboost",
    "fit_xgboost",
    "score_candidates",
    "select_best_candidate",
    "package_candidate_runs",
}


def test_pipeline_wiring():
    pipeline = create_pipeline()
    assert {n.name for n in pipeline.nodes} == EXPECTED_NODES
    assert pipeline.inputs() == {
        "model_input_table@pandas",
        "params:feature_engineering.features",
        "params:training",
    }
    assert {"trained_model", "candidate_runs", "test_split", "split_summary"} <= set(
        pipeline.all_outputs()
    )


def test_pipeline_runs_on_an_in_memory_catalog(model_input_table, features, params):
    catalog = DataCatalog(
        {
            "model_input_table@pandas": MemoryDataset(model_input_table),
            "params:feature_engineering.features": MemoryDataset(features),
            "params:training": MemoryDataset(params),
            **{
                name: MemoryDataset()
                for name in (
                    "trained_model",
                    "candidate_runs",
                    "test_split",
                    "split_summary",
                )
            },
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    model = catalog.load("trained_model")
    assert isinstance(model, Pipeline) and list(model.named_steps) == ["preprocess", "model"]
    runs = catalog.load("candidate_runs")
    winners = [n for n, c in runs["candidates"].items() if c["tags"]["winner"] == "true"]
    assert len(winners) == 1
    winner = runs["candidates"][winners[0]]["model"]
    test = catalog.load("test_split")[[f["name"] for f in features]]
    assert (winner.predict_proba(test) == model.predict_proba(test)).all()
    assert catalog.load("split_summary")["splits"]["test"]["rows"] == len(
        catalog.load("test_split")
    )
