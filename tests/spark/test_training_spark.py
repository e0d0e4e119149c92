"""Distributed XGBoost (``training_spark``): the Spark model becomes the served sklearn Pipeline.

The model is trained once per module with ``xgboost.spark`` on a synthetic model_input_table
(two workers on ``local[2]``), after the real training nodes split it and search the
hyperparameters. The served Pipeline must score every row exactly as the Spark model does,
and evaluation, serving and the registry's skops format must take it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from xgboost import XGBClassifier

from churn_mlops.pipelines.training.errors import (
    FeatureContractError,
    TimeSplitError,
    TrainingConfigError,
)
from churn_mlops.pipelines.training.nodes import (
    split_by_snapshot_month,
    tune_xgboost,
    validate_training_parameters,
)
from churn_mlops.pipelines.training_spark.nodes import (
    assemble_spark_features,
    fit_xgboost_spark,
    select_spark_training_rows,
    train_xgboost_on_spark,
)
from churn_mlops.pipelines.training_spark.params import DistributedTrainingParams
from tests.pipelines.training.synthetic import (
    evaluation_params,
    feature_list,
    make_model_input_table,
    training_params,
)

pytestmark = pytest.mark.spark

KEYS = ["customer_id", "snapshot_date"]


def params() -> dict[str, Any]:
    base = training_params()
    # 31 days purges the last training month when it has 30 days or fewer.
    base["split"] = {**base["split"], "purge_days": 31}
    base["candidates"]["xgboost"]["search"] = {"n_trials": 1, "timeout_s": 60}
    base["candidates"]["xgboost"]["max_estimators"] = 40
    return base


@pytest.fixture(scope="module")
def trained(spark: Any) -> dict[str, Any]:
    table = make_model_input_table(n_customers=250, n_months=9, seed=3)
    # A category the feature list does not know: both sides must encode it as all zeros.
    table.loc[table.index[:5], "region"] = "atlantis"
    cfg, specs = validate_training_parameters(params(), feature_list())
    train, validation, test, summary = split_by_snapshot_month(table, specs, cfg)
    search, _ = tune_xgboost(train, validation, specs, cfg)
    spark_table = spark.createDataFrame(table)
    rows = select_spark_training_rows(spark_table, summary, cfg)
    spark_model, served = train_xgboost_on_spark(
        rows, specs, cfg, DistributedTrainingParams(num_workers=2), search
    )
    return {
        "cfg": cfg,
        "specs": specs,
        "table": table,
        "spark_table": spark_table,
        "train": train,
        "test": test,
        "summary": summary,
        "search": search,
        "rows": rows,
        "spark_model": spark_model,
        "served": served,
    }


def test_spark_training_rows_are_the_training_split(trained: dict[str, Any]):
    rows = trained["rows"].select(*KEYS).toPandas()
    expected = trained["train"][KEYS]
    assert len(rows) == len(expected) == trained["summary"]["splits"]["train"]["rows"]
    merged = rows.merge(expected, on=KEYS, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()


def test_row_count_mismatch_with_the_split_is_an_error(trained: dict[str, Any]):
    summary = {**trained["summary"], "splits": {**trained["summary"]["splits"]}}
    summary["splits"]["train"] = {**summary["splits"]["train"], "rows": 1}
    with pytest.raises(TimeSplitError, match=r"split_summary\.splits\.train\.rows is 1"):
        select_spark_training_rows(trained["spark_table"], summary, trained["cfg"])


def test_served_pipeline_has_the_contract_shape(trained: dict[str, Any]):
    served = trained["served"]
    assert isinstance(served, Pipeline)
    assert [name for name, _ in served.steps] == ["preprocess", "model"]
    preprocess = served.named_steps["preprocess"]
    assert isinstance(preprocess, ColumnTransformer)
    transformers = {name: (step, columns) for name, step, columns in preprocess.transformers_}
    encoder = transformers["categorical"][0]
    assert isinstance(encoder, OneHotEncoder)
    assert encoder.handle_unknown == "ignore"
    assert encoder.sparse_output is False
    # Declared "passthrough" (fitted, sklearn holds it as an identity FunctionTransformer).
    assert dict((name, step) for name, step, _ in preprocess.transformers)["numeric"] == (
        "passthrough"
    )
    specs = trained["specs"]
    assert transformers["categorical"][1] == [s.name for s in specs if s.kind == "categorical"]
    assert [list(c) for c in encoder.categories_] == [
        s.categories for s in specs if s.kind == "categorical"
    ]
    model = served.named_steps["model"]
    assert isinstance(model, XGBClassifier)
    assert model.get_booster().num_boosted_rounds() == trained["search"]["best_n_estimators"]


def test_served_pipeline_scores_exactly_like_the_spark_model(trained: dict[str, Any]):
    specs = trained["specs"]
    scored = (
        trained["spark_model"]
        .transform(assemble_spark_features(trained["spark_table"], specs, keep=KEYS))
        .select(*KEYS, "probability")
        .toPandas()
    )
    scored["spark"] = scored["probability"].map(lambda vector: float(vector[1]))
    table = trained["table"].merge(scored[[*KEYS, "spark"]], on=KEYS)
    assert len(table) == len(trained["table"])  # every row: train, validation, test months
    served = trained["served"].predict_proba(table[[s.name for s in specs]])[:, 1]
    np.testing.assert_allclose(served, table["spark"].to_numpy(), rtol=0, atol=1e-6)
    assert np.ptp(served) > 0.2  # a model that learned something, not a constant


def test_evaluation_serving_and_registry_format_accept_the_model(trained: dict[str, Any]):
    import skops.io

    from churn_mlops.pipelines.evaluation.nodes import (
        check_model_behaviour,
        explain_model,
        validate_evaluation_parameters,
    )
    from churn_mlops.release.onnx_model import convert_pipeline, onnx_gap

    served, test = trained["served"], trained["test"]
    names = [s["name"] for s in feature_list()]
    expected = served.predict_proba(test[names])[:, 1]

    setup = validate_evaluation_parameters(evaluation_params(), params(), feature_list())
    _, _, additivity = explain_model(served, test, setup)
    assert additivity["passed"], additivity
    assert check_model_behaviour(served, test, setup)["checks"]

    # The served format: the ONNX graph of the bundle answers like the Pipeline.
    assert onnx_gap(convert_pipeline(served).SerializeToString(), served, test[names]) <= 1e-6

    trusted = params()["model_logging"].get(
        "skops_trusted_types", ["xgboost.sklearn.XGBClassifier", "xgboost.core.Booster"]
    )
    restored = skops.io.loads(skops.io.dumps(served), trusted=trusted)
    np.testing.assert_array_equal(restored.predict_proba(test[names])[:, 1], expected)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"tree_method": "exact"},
            TrainingConfigError,
            r"tree_method = 'exact' cannot train on Spark",
        ),
        ({"drop": "age"}, FeatureContractError, r"lacks column\(s\) \['age'\]"),
    ],
)
def test_fit_node_rejects_what_spark_cannot_train(
    trained: dict[str, Any], change: dict[str, str], error: type[Exception], message: str
):
    raw_params = params()
    rows = trained["rows"]
    if "tree_method" in change:
        raw_params["candidates"]["xgboost"]["tree_method"] = change["tree_method"]
    else:
        rows = rows.drop(change["drop"])
    cfg, specs = validate_training_parameters(raw_params, feature_list())
    spark_cfg = DistributedTrainingParams(num_workers=2)
    with pytest.raises(error, match=message):
        fit_xgboost_spark(rows, trained["search"], specs, cfg, spark_cfg)
