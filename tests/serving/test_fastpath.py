"""The compiled fast path answers exactly like ``Pipeline.predict_proba`` (within 1e-6)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

from churn_mlops.serving.demo import (
    CATEGORICAL,
    CATEGORIES,
    FEATURES,
    NUMERIC,
    build_pipeline,
    make_synthetic_features,
)
from churn_mlops.serving.errors import UnsupportedPipelineError
from churn_mlops.serving.fastpath import (
    SMALL_BATCH_ROWS,
    NumpyTreeEnsemble,
    PipelinePredictor,
    compile_pipeline,
)

TOLERANCE = 1e-6
N_TREES = 80

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def training() -> tuple[pd.DataFrame, np.ndarray]:
    return make_synthetic_features(1200, seed=3)


def random_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Random rows well beyond the training ranges, plus unknown categories now and then."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for name in NUMERIC:
            scale = 10.0 ** rng.integers(0, 7)
            row[name] = float(rng.uniform(-1, 1) * scale) if i % 3 else float(rng.integers(0, 50))
        for name in CATEGORICAL:
            choices = [*CATEGORIES[name], "never_seen"]
            row[name] = choices[rng.integers(0, len(choices))]
        rows.append(row)
    return rows


def edge_rows() -> list[dict[str, Any]]:
    """Zeros, huge and tiny magnitudes, every category, all-unknown categories."""
    base = {name: 0.0 for name in NUMERIC} | {name: CATEGORIES[name][0] for name in CATEGORICAL}
    rows = [dict(base)]
    for magnitude in (1e-12, 1e6, 1e12, -1e12, 1e30):
        rows.append({**base, **{name: magnitude for name in NUMERIC}})
    for name in CATEGORICAL:
        for category in CATEGORIES[name]:
            rows.append({**base, name: category})
    rows.append({**base, **{name: "unknown-value" for name in CATEGORICAL}})
    return rows


def pipeline_proba(pipeline: Pipeline, rows: list[dict[str, Any]]) -> np.ndarray:
    frame = pd.DataFrame.from_records(rows, columns=list(FEATURES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown categories warn by design
        return pipeline.predict_proba(frame)[:, 1]


def assert_parity(pipeline: Pipeline, rows: list[dict[str, Any]]) -> None:
    fast = compile_pipeline(pipeline)
    expected = pipeline_proba(pipeline, rows)
    whole = fast.predict_proba(rows)
    one_by_one = np.concatenate([fast.predict_proba([r]) for r in rows])
    chunked = np.concatenate([fast.predict_proba(rows[i : i + 5]) for i in range(0, len(rows), 5)])
    for got in (whole, one_by_one, chunked):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(
    ("estimator", "scale_numeric"),
    [("xgboost", True), ("xgboost", False), ("logistic_regression", True)],
)
def test_fast_path_matches_pipeline_on_random_and_edge_rows(
    training: tuple[pd.DataFrame, np.ndarray], estimator: str, scale_numeric: bool
) -> None:
    features, label = training
    pipeline = build_pipeline(
        features,
        label,
        estimator=estimator,
        scale_numeric=scale_numeric,
        n_jobs=1,
        n_estimators=N_TREES,
    )
    rows = random_rows(300, seed=5) + edge_rows() + features.head(100).to_dict("records")
    assert_parity(pipeline, rows)


def test_logistic_regression_on_passthrough_numbers(
    training: tuple[pd.DataFrame, np.ndarray],
) -> None:
    features, label = training
    preprocess = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(CATEGORICAL),
            ),
            ("numeric", "passthrough", list(NUMERIC)),
        ]
    )
    # Unscaled numbers: lbfgs stops at max_iter, which is fine, parity is what is tested.
    pipeline = Pipeline(
        [("preprocess", preprocess), ("model", LogisticRegression(max_iter=50))]
    ).fit(features, label)
    assert_parity(pipeline, random_rows(300, seed=6) + edge_rows())


def test_xgboost_early_stopping_uses_best_iteration(
    training: tuple[pd.DataFrame, np.ndarray],
) -> None:
    features, label = training
    pipe = build_pipeline(features, label, n_jobs=1, n_estimators=N_TREES)
    transformed = pipe.named_steps["preprocess"].transform(features)
    model = XGBClassifier(
        n_estimators=200, learning_rate=0.3, max_depth=6, early_stopping_rounds=5, n_jobs=1
    ).fit(
        transformed[:900], label[:900], eval_set=[(transformed[900:], label[900:])], verbose=False
    )
    assert model.best_iteration < 299  # early stopping did cut the model
    pipeline = Pipeline([("preprocess", pipe.named_steps["preprocess"]), ("model", model)])
    assert_parity(pipeline, random_rows(200, seed=9) + edge_rows())


def test_numpy_tree_walk_matches_inplace_predict_with_missing_values(
    training: tuple[pd.DataFrame, np.ndarray],
) -> None:
    features, label = training
    pipeline = build_pipeline(features, label, n_jobs=1, n_estimators=N_TREES)
    booster = pipeline.named_steps["model"].get_booster()
    walker = NumpyTreeEnsemble.from_booster(booster, (0, 0))
    X = pipeline.named_steps["preprocess"].transform(features.head(200))
    X[::3, 5] = np.nan  # numeric columns: follow each node's default direction
    X[1::4, -1] = np.nan
    expected = booster.inplace_predict(X)
    np.testing.assert_allclose(walker.predict_proba(X), expected, atol=TOLERANCE, rtol=0)
    single = np.concatenate([walker.predict_proba(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(single, expected, atol=TOLERANCE, rtol=0)


def test_imputer_and_minmax_pipeline_with_missing_numbers(
    training: tuple[pd.DataFrame, np.ndarray],
) -> None:
    features, label = training
    holes = features.copy()
    holes.loc[holes.index[::7], "monthly_fee"] = np.nan
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", MinMaxScaler())])
    preprocess = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(CATEGORICAL),
            ),
            ("numeric", numeric, list(NUMERIC)),
        ]
    )
    pipeline = Pipeline(
        [("preprocess", preprocess), ("model", LogisticRegression(max_iter=2000))]
    ).fit(holes, label)
    rows = random_rows(100, seed=2) + edge_rows()
    for row in rows[::4]:
        row["monthly_fee"] = None
        row["age"] = None
    assert_parity(pipeline, rows)


def test_drop_first_one_hot_and_generic_estimator(
    training: tuple[pd.DataFrame, np.ndarray],
) -> None:
    features, label = training
    preprocess = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(drop="first", sparse_output=False, handle_unknown="ignore"),
                list(CATEGORICAL),
            ),
            ("numeric", StandardScaler(), list(NUMERIC)),
        ]
    )
    pipeline = Pipeline(
        [
            ("preprocess", preprocess),
            ("model", RandomForestClassifier(n_estimators=10, random_state=0, n_jobs=1)),
        ]
    ).fit(features, label)
    fast = compile_pipeline(pipeline)
    assert fast.kind.startswith("generic")
    assert not fast.can_explain
    assert_parity(pipeline, random_rows(50, seed=4) + edge_rows())


def test_unsupported_steps_are_refused_with_their_name(
    training: tuple[pd.DataFrame, np.ndarray],
) -> None:
    from sklearn.preprocessing import PolynomialFeatures

    features, label = training
    preprocess = ColumnTransformer([("numeric", PolynomialFeatures(), list(NUMERIC))])
    pipeline = Pipeline(
        [("preprocess", preprocess), ("model", LogisticRegression(max_iter=200))]
    ).fit(features, label)
    with pytest.raises(UnsupportedPipelineError, match="PolynomialFeatures"):
        compile_pipeline(pipeline)
    with pytest.raises(UnsupportedPipelineError, match="preprocess"):
        compile_pipeline(Pipeline([("model", LogisticRegression())]))
    # The slow path still serves such a model, exactly.
    slow = PipelinePredictor(pipeline, FEATURES)
    rows = random_rows(5, seed=1)
    np.testing.assert_allclose(slow.predict_proba(rows), pipeline_proba(pipeline, rows))


def test_small_batches_take_the_numpy_walk(training: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, label = training
    fast = compile_pipeline(build_pipeline(features, label, n_jobs=1, n_estimators=N_TREES))
    assert fast.small_batch_rows == SMALL_BATCH_ROWS > 1


@pytest.mark.parametrize("estimator", ["xgboost", "logistic_regression"])
def test_explanations_are_additive_and_sum_one_hot_columns(
    training: tuple[pd.DataFrame, np.ndarray], estimator: str
) -> None:
    features, label = training
    pipeline = build_pipeline(features, label, estimator=estimator, n_jobs=1, n_estimators=N_TREES)
    fast = compile_pipeline(
        pipeline,
        profile_means={n: float(features[n].mean()) for n in NUMERIC},
        category_shares={
            n: features[n].value_counts(normalize=True).to_dict() for n in CATEGORICAL
        },
    )
    rows = features.head(8).to_dict("records")
    explanations = fast.explain(rows, top_k=len(FEATURES))
    expected = pipeline_proba(pipeline, rows)
    for row, explanation, p in zip(rows, explanations, expected, strict=True):
        names = [c.feature for c in explanation.contributions]
        assert sorted(names) == sorted(FEATURES)  # one entry per original feature
        logit = explanation.base_value + sum(c.contribution for c in explanation.contributions)
        assert 1 / (1 + np.exp(-logit)) == pytest.approx(p, abs=1e-5)
        sizes = [abs(c.contribution) for c in explanation.contributions]
        assert sizes == sorted(sizes, reverse=True)
        assert explanation.contributions[0].value == row[names[0]]
    top = fast.explain(rows[:1], top_k=3)[0]
    assert len(top.contributions) == 3


def test_xgboost_contributions_equal_shap_tree_explainer(
    training: tuple[pd.DataFrame, np.ndarray],
) -> None:
    import shap

    features, label = training
    pipeline = build_pipeline(features, label, n_jobs=1, n_estimators=N_TREES)
    fast = compile_pipeline(pipeline)
    rows = features.head(5).to_dict("records")
    transformed = pipeline.named_steps["preprocess"].transform(features.head(5))
    values = shap.TreeExplainer(pipeline.named_steps["model"]).shap_values(transformed)
    encoder = pipeline.named_steps["preprocess"].named_transformers_["categorical"]
    owners = [f for f, cats in zip(CATEGORICAL, encoder.categories_, strict=True) for _ in cats]
    owners += list(NUMERIC)  # output order: one-hot block, then the numeric block
    for i, explanation in enumerate(fast.explain(rows, top_k=len(FEATURES))):
        ours = {c.feature: c.contribution for c in explanation.contributions}
        for feature in FEATURES:
            columns = [j for j, owner in enumerate(owners) if owner == feature]
            assert ours[feature] == pytest.approx(float(values[i, columns].sum()), abs=1e-4)
