"""ONNX conversion of the served Pipeline: exact for both estimators, refused when it can't be."""

from __future__ import annotations

import json

import onnxruntime as ort
import pytest

from churn_mlops.release.demo import CATEGORICAL, NUMERIC, build_pipeline, make_synthetic_features
from churn_mlops.release.onnx_model import (
    OnnxConversionError,
    convert_pipeline,
    export_model_files,
    onnx_gap,
)


@pytest.fixture(scope="module")
def data():
    train, label = make_synthetic_features(1500, seed=2)
    test, _ = make_synthetic_features(400, seed=9)
    return train, label, test


@pytest.mark.parametrize("estimator", ["xgboost", "logistic_regression"])
def test_the_graph_answers_like_the_pipeline(data, estimator: str) -> None:
    train, label, test = data
    pipeline = build_pipeline(train, label, estimator=estimator, n_estimators=80)
    content = convert_pipeline(pipeline).SerializeToString()
    assert convert_pipeline(pipeline).SerializeToString() == content  # same model, same bytes
    assert onnx_gap(content, pipeline, test) <= 1e-6
    # Unknown categories are encoded like handle_unknown="ignore" (all-zero block).
    odd = test.assign(region="atlantis")
    assert onnx_gap(content, pipeline, odd) <= 1e-6
    session = ort.InferenceSession(content, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["numeric_features"]) == list(NUMERIC)
    assert json.loads(meta["categorical_features"]) == list(CATEGORICAL)
    assert {o.name for o in session.get_outputs()} == {"probability", "features"}


def test_export_files_and_explainer(data) -> None:
    train, label, test = data
    xgb = export_model_files(build_pipeline(train, label, n_estimators=30), background=test)
    assert set(xgb.files) == {"model.onnx", "explainer.json", "booster.ubj"}
    assert xgb.files["booster.ubj"][:1] == b"{"  # UBJSON: XGBoost's data format, no pickle
    lr = export_model_files(
        build_pipeline(train, label, estimator="logistic_regression"), background=test
    )
    spec = json.loads(lr.files["explainer.json"])
    assert spec["kind"] == "linear" and len(spec["coef"]) == len(spec["columns"])


def test_an_estimator_without_conversion_is_named(data) -> None:
    from sklearn.ensemble import RandomForestClassifier

    train, label, _ = data
    pipeline = build_pipeline(train, label, estimator="logistic_regression")
    pipeline.steps[-1] = (
        "model",
        RandomForestClassifier(n_estimators=2).fit(
            pipeline.named_steps["preprocess"].transform(train), label
        ),
    )
    with pytest.raises(OnnxConversionError, match="RandomForestClassifier has no ONNX conversion"):
        convert_pipeline(pipeline)
