"""Unit tests of the training nodes on a small synthetic model input table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

from churn_mlops.fingerprint import fingerprint_table
from churn_mlops.pipelines.training import nodes
from churn_mlops.pipelines.training.errors import (
    FeatureContractError,
    TimeSplitError,
    TrainingConfigError,
)
from tests.pipelines.training.synthetic import feature_list, training_config, training_params

# --------------------------------------------------------------------------- split


def test_split_assigns_last_months_to_test_and_validation(splits, model_input_table):
    train, validation, test, summary = splits
    months = sorted(model_input_table.snapshot_date.dt.to_period("M").unique())
    assert sorted(test.snapshot_date.dt.to_period("M").unique()) == months[-2:]
    assert sorted(validation.snapshot_date.dt.to_period("M").unique()) == months[-4:-2]
    assert sorted(train.snapshot_date.dt.to_period("M").unique()) == months[:-4]
    assert len(train) + len(validation) + len(test) == len(model_input_table)
    assert summary["splits"]["test"]["rows"] == len(test)
    assert summary["rows"] == len(model_input_table)


def test_split_never_trains_on_the_future(splits):
    train, validation, test, _ = splits
    assert train.snapshot_date.max() < validation.snapshot_date.min()
    assert validation.snapshot_date.max() < test.snapshot_date.min()


def test_split_purges_rows_whose_label_window_reaches_the_next_split(model_input_table, specs):
    cfg = training_config(
        split={"validation_months": 2, "test_months": 2, "purge_days": 45, "min_train_months": 3}
    )
    train, validation, test, summary = nodes.split_by_snapshot_month(model_input_table, specs, cfg)
    horizon = pd.Timedelta(days=45)
    assert (train.snapshot_date + horizon <= validation.snapshot_date.min()).all()
    assert (validation.snapshot_date + horizon <= test.snapshot_date.min()).all()
    # 45 days from a month start always crosses the next month start: one month purged each.
    assert summary["purged_rows"] == {"train": 500, "validation": 500}


def test_split_with_too_few_months_names_the_counts(model_input_table, specs):
    cfg = training_config(
        split={"validation_months": 3, "test_months": 3, "purge_days": 0, "min_train_months": 5}
    )
    with pytest.raises(TimeSplitError, match=r"10 snapshot months .* at least 11"):
        nodes.split_by_snapshot_month(model_input_table, specs, cfg)


def test_split_names_a_missing_feature_column(model_input_table, specs, cfg):
    missing = r"model_input_table lacks column\(s\) \['age'\]"
    with pytest.raises(FeatureContractError, match=missing):
        nodes.split_by_snapshot_month(model_input_table.drop(columns="age"), specs, cfg)


def test_split_summary_fingerprint_is_the_content_fingerprint(model_input_table, specs, cfg):
    *_, summary = nodes.split_by_snapshot_month(model_input_table, specs, cfg)
    assert summary["data_fingerprint"] == fingerprint_table(model_input_table)
    changed = model_input_table.copy()
    changed.loc[123, "late_payments_90d"] += 1
    *_, changed_summary = nodes.split_by_snapshot_month(changed, specs, cfg)
    assert changed_summary["data_fingerprint"] != summary["data_fingerprint"]


def test_unknown_training_parameter_is_named():
    with pytest.raises(TrainingConfigError, match=r"training\.split\.test_monhts"):
        nodes.validate_training_parameters(
            training_params(split={"test_monhts": 2}), feature_list()
        )


def test_validation_returns_parsed_parameters_and_features():
    cfg, specs = nodes.validate_training_parameters(training_params(), feature_list())
    assert cfg.candidates.xgboost.search.n_trials == 2
    assert [s.name for s in specs] == [f["name"] for f in feature_list()]


def test_a_key_column_listed_as_a_feature_is_refused():
    features = [*feature_list(), {"name": "customer_id", "kind": "numeric", "description": "id"}]
    with pytest.raises(FeatureContractError, match=r"lists \['customer_id'\]"):
        nodes.validate_training_parameters(training_params(), features)


# --------------------------------------------------------------------------- sampling


def test_sampling_caps_rows_keeps_order_and_is_seeded(splits):
    train = splits[0]
    cfg = training_config(sampling={"max_training_rows": 1000})
    sample = nodes.sample_training_rows(train, cfg)
    again = nodes.sample_training_rows(train, cfg)
    assert len(sample) == 1000
    pd.testing.assert_frame_equal(sample, again)
    assert sample.snapshot_date.is_monotonic_increasing


def test_sampling_leaves_a_small_split_alone(splits, cfg):
    assert nodes.sample_training_rows(splits[0], cfg) is splits[0]


# --------------------------------------------------------------------------- preprocessing


def test_preprocessor_uses_only_the_fast_path_transformers(specs):
    pre = nodes.build_preprocessor(specs)
    assert isinstance(pre, ColumnTransformer)
    (cat_name, encoder, cat_cols), (num_name, scaler, num_cols) = pre.transformers
    assert (cat_name, num_name) == ("categorical", "numeric")
    assert isinstance(encoder, OneHotEncoder) and isinstance(scaler, StandardScaler)
    assert encoder.handle_unknown == "ignore" and encoder.sparse_output is False
    assert encoder.categories == [s.categories for s in specs if s.kind == "categorical"]
    assert set(cat_cols) | set(num_cols) == {s.name for s in specs}


def test_preprocessor_encodes_an_unknown_category_as_zeros(splits, specs):
    frame = splits[0][[s.name for s in specs]]
    pre = nodes.build_preprocessor(specs).fit(frame)
    odd = frame.head(1).assign(region="atlantis")
    region_columns = [i for i, n in enumerate(pre.get_feature_names_out()) if "region_" in n]
    assert pre.transform(odd)[0, region_columns].sum() == 0


@pytest.mark.parametrize(
    ("weighting", "expected"), [("balanced", 9.0), ("sqrt", 3.0), ("none", 1.0)]
)
def test_positive_class_weight(weighting, expected):
    labels = pd.Series([1] * 10 + [0] * 90)
    cfg = training_config(class_weighting=weighting)
    assert nodes.positive_class_weight(labels, cfg) == pytest.approx(expected)


# --------------------------------------------------------------------------- candidates


def test_baseline_is_a_served_shape_pipeline(baseline_model, splits, specs):
    assert isinstance(baseline_model, Pipeline)
    assert list(baseline_model.named_steps) == ["preprocess", "model"]
    assert isinstance(baseline_model.named_steps["model"], LogisticRegression)
    assert baseline_model.named_steps["model"].class_weight == {
        0: 1.0,
        1: pytest.approx(np.sqrt((splits[0].churned == 0).sum() / splits[0].churned.sum())),
    }
    names = [s.name for s in specs]
    scores = baseline_model.predict_proba(splits[2][names])[:, 1]
    assert ((scores > 0) & (scores < 1)).all()


def test_search_runs_the_budget_starting_from_the_middle(xgboost_search, cfg):
    search, history = xgboost_search
    assert len(search["trials"]) == 2
    first = search["trials"][0]["params"]
    assert first["max_depth"] == 5 and first["subsample"] == pytest.approx(0.8)
    assert first["learning_rate"] == pytest.approx(np.sqrt(0.03 * 0.3))
    assert 1 <= search["best_n_estimators"] <= 60
    assert search["best_value"] == max(t["value"] for t in search["trials"])
    assert [p["step"] for p in history["trial_pr_auc"]] == [0, 1]
    assert history["best_pr_auc"][-1]["value"] == pytest.approx(search["best_value"])


def test_search_constrains_late_payments_to_raise_risk(xgboost_search, specs):
    search, _ = xgboost_search
    names = list(
        nodes.build_preprocessor(specs)
        .fit(pd.DataFrame({s.name: [s.categories[0]] if s.categories else [0.0] for s in specs}))
        .get_feature_names_out()
    )
    flagged = [names[i] for i, c in enumerate(search["monotone_constraints"]) if c == 1]
    assert flagged == ["numeric__late_payments_90d"]


def test_monotone_constraint_on_a_categorical_feature_is_named():
    params = training_params()
    params["candidates"]["xgboost"] = {
        **params["candidates"]["xgboost"],
        "monotone_increasing": ["region"],
    }
    with pytest.raises(FeatureContractError, match=r"monotone_increasing names \['region'\]"):
        nodes.validate_training_parameters(params, feature_list())


def test_xgboost_refit_uses_the_searched_trees_without_early_stopping(
    xgboost_model, xgboost_search
):
    model = xgboost_model.named_steps["model"]
    assert isinstance(model, XGBClassifier)
    assert list(xgboost_model.named_steps) == ["preprocess", "model"]
    assert model.get_booster().num_boosted_rounds() == xgboost_search[0]["best_n_estimators"]
    assert model.get_params()["early_stopping_rounds"] is None
    assert model.get_params()["n_jobs"] == 1  # from the parameters
    assert model.get_params()["scale_pos_weight"] == pytest.approx(
        xgboost_search[0]["scale_pos_weight"]
    )


def test_xgboost_risk_never_drops_with_more_late_payments(xgboost_model, splits, specs):
    names = [s.name for s in specs]
    rows = splits[2][names].head(50)
    scores = np.column_stack(
        [xgboost_model.predict_proba(rows.assign(late_payments_90d=v))[:, 1] for v in range(6)]
    )
    assert (np.diff(scores, axis=1) >= 0).all()


# --------------------------------------------------------------------------- selection


def test_candidates_are_scored_on_validation(baseline_model, xgboost_model, splits, specs, cfg):
    scores = nodes.score_candidates(baseline_model, xgboost_model, splits[1], specs, cfg)
    assert set(scores) == {"logistic_regression", "xgboost"}
    for metrics in scores.values():
        assert 0.5 < metrics["roc_auc"] <= 1
        assert metrics["prevalence"] == pytest.approx(splits[1].churned.mean())


@pytest.mark.parametrize(
    ("lr", "xgb", "winner"),
    [
        (0.30, 0.40, "xgboost"),
        (0.40, 0.30, "logistic_regression"),
        (0.35, 0.35, "logistic_regression"),
    ],
)
def test_winner_has_the_best_selection_metric_and_ties_keep_the_baseline(
    baseline_model, xgboost_model, cfg, lr, xgb, winner
):
    scores = {
        "logistic_regression": {"pr_auc": lr, "roc_auc": 0.8},
        "xgboost": {"pr_auc": xgb, "roc_auc": 0.7},
    }
    model, summary = nodes.select_best_candidate(baseline_model, xgboost_model, scores, cfg)
    assert summary["winner"] == winner
    assert model is (xgboost_model if winner == "xgboost" else baseline_model)
    assert summary["lead"] == pytest.approx(abs(lr - xgb))


def test_selection_metric_comes_from_the_parameters(baseline_model, xgboost_model):
    scores = {
        "logistic_regression": {"pr_auc": 0.3, "roc_auc": 0.9},
        "xgboost": {"pr_auc": 0.4, "roc_auc": 0.7},
    }
    cfg = training_config(selection_metric="roc_auc")
    _, summary = nodes.select_best_candidate(baseline_model, xgboost_model, scores, cfg)
    assert summary["winner"] == "logistic_regression" and summary["metric"] == "roc_auc"


def test_candidate_runs_payload(baseline_model, xgboost_model, xgboost_search, splits, specs, cfg):
    scores = {"logistic_regression": {"pr_auc": 0.3}, "xgboost": {"pr_auc": 0.4}}
    _, winner = nodes.select_best_candidate(baseline_model, xgboost_model, scores, cfg)
    payload = nodes.package_candidate_runs(
        baseline_model,
        xgboost_model,
        scores,
        xgboost_search[0],
        winner,
        splits[0],
        specs,
        cfg,
    )
    assert list(payload["input_example"].columns) == [s.name for s in specs]
    assert len(payload["input_example"]) == 3
    xgb = payload["candidates"]["xgboost"]
    assert xgb["tags"]["winner"] == "true"
    assert payload["candidates"]["logistic_regression"]["tags"]["winner"] == "false"
    assert xgb["params"]["n_estimators"] == xgboost_search[0]["best_n_estimators"]
    assert xgb["metrics"] == {"validation_pr_auc": 0.4}
    assert payload["logging"]["serialization_format"] == "skops"


def test_the_search_shows_one_progress_bar_with_the_best_value(
    splits, specs, cfg, monkeypatch, capsys
):
    from churn_mlops.progress import PROGRESS_ENV

    monkeypatch.setenv(PROGRESS_ENV, "1")
    search, _ = nodes.tune_xgboost(splits[0], splits[1], specs, cfg)
    err = capsys.readouterr().err
    assert err.count("tuning: 100%") == 1
    assert "2/2 [" in err and "trial" in err
    assert f"best {cfg.selection_metric} {search['best_value']:.4f}" in err
