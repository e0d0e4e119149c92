"""Unit tests of the evaluation nodes (metrics, threshold, SHAP, behaviour, gate, packaging)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from churn_mlops.contracts.profile import parse_reference_profile
from churn_mlops.model_metrics import ranking_metrics
from churn_mlops.pipelines.evaluation import nodes
from churn_mlops.pipelines.evaluation.errors import EvaluationConfigError
from churn_mlops.pipelines.training import nodes as training_nodes
from churn_mlops.registry import RUN_ID_TOKEN, VERSION_TOKEN
from tests.pipelines.training.synthetic import (
    evaluation_params,
    evaluation_setup,
    feature_list,
    training_params,
)

TOY = pd.DataFrame(
    {
        "customer_id": [1, 2, 3, 4, 5],
        "snapshot_date": pd.Timestamp("2024-01-01"),
        "churned": [1, 1, 0, 1, 0],
        "score": [0.9, 0.8, 0.7, 0.6, 0.5],
    }
)


def _names(setup) -> list[str]:
    return [s.name for s in setup.features]


# --------------------------------------------------------------------------- parameters


def test_validation_bundles_evaluation_training_and_features(setup):
    assert setup.evaluation.gate.metric == "pr_auc"
    assert setup.training.target == "churned"
    assert _names(setup) == [f["name"] for f in feature_list()]


def test_validation_names_every_disagreement_with_the_feature_list():
    params = evaluation_params(
        segments={"columns": ["contract", "age"], "age_column": "region"},
        behaviour={"directional": [{"feature": "shoe_size", "values": [1, 2]}]},
        gate={"minimums": {"auc_pr": 0.1}},
    )
    with pytest.raises(EvaluationConfigError) as error:
        nodes.validate_evaluation_parameters(params, training_params(), feature_list())
    message = str(error.value)
    for part in (
        "'age' is not a categorical feature",
        "'region' is not a numeric feature",
        "'shoe_size' is not a numeric feature",
        "'auc_pr' is not a test metric",
    ):
        assert part in message


def test_an_unknown_evaluation_key_is_named():
    with pytest.raises(EvaluationConfigError, match=r"evaluation\.gate\.max_degradaton"):
        nodes.validate_evaluation_parameters(
            evaluation_params(gate={"max_degradaton": 0.1}), training_params(), feature_list()
        )


# --------------------------------------------------------------------------- scores


def test_predictions_keep_keys_label_and_row_order(test_predictions, splits):
    test = splits[2]
    assert list(test_predictions.columns) == ["customer_id", "snapshot_date", "churned", "score"]
    assert (test_predictions.customer_id.to_numpy() == test.customer_id.to_numpy()).all()
    assert test_predictions.score.between(0, 1).all()


def test_threshold_maximises_expected_net_value(setup):
    # gain per flagged churner 0.3 * 500 = 150, cost per offer 40; cumulative net for the top
    # 1..5 customers: 110, 220, 180, 290, 250 -> flag the top four.
    report = nodes.choose_decision_threshold(TOY, setup)
    assert report["threshold"] == pytest.approx(0.6)
    assert report["expected_net_value"] == pytest.approx(290)
    assert report["flagged_share"] == pytest.approx(0.8)
    assert report["net_value_flag_everyone"] == pytest.approx(250)
    assert report["chosen_on"] == "validation"


def test_threshold_flags_whole_ties(setup):
    tied = TOY.assign(score=[0.9, 0.7, 0.7, 0.6, 0.5], churned=[1, 1, 0, 0, 0])
    report = nodes.choose_decision_threshold(tied, setup)
    # top-2 (net 260) would split the 0.7 tie; the choices are top-1 (110) and top-3 (180)
    assert report["threshold"] == pytest.approx(0.7)
    assert report["expected_net_value"] == pytest.approx(180)


def test_threshold_flags_nobody_when_offers_never_pay():
    costly = evaluation_setup(
        evaluation_params(
            business={
                "retained_customer_value": 100.0,
                "offer_cost": 90.0,
                "offer_success_rate": 0.5,
            }
        )
    )
    report = nodes.choose_decision_threshold(TOY, costly)
    assert report["threshold"] == 1.0 and report["expected_net_value"] == 0.0
    assert report["flagged_share"] == 0.0


def test_test_metrics_include_ranking_threshold_and_business_value(setup):
    metrics = nodes.compute_test_metrics(TOY, {"threshold": 0.6}, setup)
    assert set(metrics) == set(nodes.TEST_METRICS)
    assert metrics["precision"] == pytest.approx(0.75) and metrics["recall"] == pytest.approx(1)
    assert metrics["net_value"] == pytest.approx(3 * 150 - 4 * 40)
    assert metrics["prevalence"] == pytest.approx(0.6)


def test_tracking_metrics_drop_non_finite_values():
    shaped = nodes.format_tracking_metrics({"pr_auc": 0.4, "roc_auc": float("nan")})
    assert shaped == {"pr_auc": {"value": 0.4, "step": 0}}


def test_net_value_curve_plot(decision_threshold):
    assert isinstance(nodes.plot_net_value_curve(decision_threshold), Figure)
    assert len(decision_threshold["curve"]) <= 2 * 50


# --------------------------------------------------------------------------- calibration


def test_calibration_bins_cover_every_row(test_predictions, setup):
    table = nodes.compute_calibration(test_predictions, setup)
    assert len(table) == 5
    assert table["rows"].sum() == len(test_predictions)
    assert table["mean_score"].is_monotonic_increasing
    assert isinstance(nodes.plot_calibration_curve(table), Figure)


def test_uniform_calibration_bins(test_predictions):
    uniform = evaluation_setup(evaluation_params(calibration={"n_bins": 4, "strategy": "uniform"}))
    table = nodes.compute_calibration(test_predictions, uniform)
    assert table["rows"].sum() == len(test_predictions)
    assert table["score_high"].max() <= 1.0


# --------------------------------------------------------------------------- segments


def test_segment_metrics_cover_contract_region_and_age_bands(
    test_predictions, splits, decision_threshold, setup
):
    table = nodes.compute_segment_metrics(test_predictions, splits[2], decision_threshold, setup)
    assert set(table.segment) == {"contract", "region", "age_band"}
    for _, rows in table.groupby("segment"):
        assert rows["rows"].sum() == len(test_predictions)
    assert set(table.loc[table.segment == "age_band", "value"]) == {
        "18-29",
        "30-44",
        "45-59",
        "60+",
    }
    small = table[table["rows"] < 30]
    assert small["roc_auc"].isna().all()


def test_segment_metrics_reject_misaligned_predictions(
    test_predictions, splits, decision_threshold, setup
):
    with pytest.raises(ValueError, match="same rows in the same order"):
        nodes.compute_segment_metrics(
            test_predictions.head(10), splits[2], decision_threshold, setup
        )


# --------------------------------------------------------------------------- SHAP


@pytest.mark.parametrize(
    ("model_fixture", "explainer"),
    [("xgboost_model", "TreeExplainer"), ("baseline_model", "LinearExplainer")],
)
def test_shap_adds_up_and_groups_one_hot_columns(request, model_fixture, explainer, splits, setup):
    model = request.getfixturevalue(model_fixture)
    importance, explanation, additivity = nodes.explain_model(model, splits[2], setup)
    assert additivity["explainer"] == explainer
    assert additivity["passed"] and additivity["max_abs_error"] < 1e-3
    assert set(importance.feature) == set(_names(setup))
    assert importance.share.sum() == pytest.approx(1)
    assert importance.mean_abs_shap.is_monotonic_decreasing
    assert explanation["values"].shape == (300, len(explanation["columns"]))
    assert "contract=month_to_month" in explanation["columns"]
    # the ground truth makes contract and late payments matter more than the region
    rank = list(importance.feature)
    assert rank.index("contract") < rank.index("region")
    assert rank.index("late_payments_90d") < rank.index("region")


def test_shap_plots(xgboost_model, splits, setup):
    importance, explanation, _ = nodes.explain_model(xgboost_model, splits[2], setup)
    assert isinstance(nodes.plot_shap_summary(explanation, setup), Figure)
    assert isinstance(nodes.plot_shap_importance(importance), Figure)


def test_shap_rejects_an_estimator_it_cannot_explain(splits, setup):
    from sklearn.ensemble import RandomForestClassifier

    forest = Pipeline(
        [
            ("preprocess", training_nodes.build_preprocessor(setup.features)),
            ("model", RandomForestClassifier(n_estimators=2, max_depth=2)),
        ]
    ).fit(splits[0][_names(setup)], splits[0].churned)
    with pytest.raises(EvaluationConfigError, match="RandomForestClassifier"):
        nodes.explain_model(forest, splits[2], setup)


# --------------------------------------------------------------------------- behaviour


def test_behaviour_checks_pass_for_the_constrained_model(xgboost_model, splits, setup):
    report = nodes.check_model_behaviour(xgboost_model, splits[2], setup)
    assert report["passed"]
    names = [c["name"] for c in report["checks"]]
    assert names == [
        "directional:late_payments_90d:increasing",
        "invariance:customer_id,snapshot_date",
    ]
    directional = report["checks"][0]
    assert directional["customers_checked"] == 51  # the typical customer + 50 sampled
    assert np.all(np.diff(directional["typical_customer_scores"]) >= 0)


def test_directional_check_fails_when_late_payments_lower_risk(baseline_model, splits, setup):
    flipped = copy.deepcopy(baseline_model)
    columns = list(flipped.named_steps["preprocess"].get_feature_names_out())
    position = columns.index("numeric__late_payments_90d")
    flipped.named_steps["model"].coef_[0, position] = -2.0
    report = nodes.check_model_behaviour(flipped, splits[2], setup)
    assert not report["passed"]
    directional = report["checks"][0]
    assert not directional["passed"] and directional["customers_violating"] == 51
    assert report["checks"][1]["passed"]  # the invariance check is unaffected


def test_invariance_check_fails_for_a_model_that_uses_the_customer_id(splits, eval_params, setup):
    leaky = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [("numeric", "passthrough", ["customer_id", "late_payments_90d"])]
                ),
            ),
            ("model", LogisticRegression()),
        ]
    ).fit(splits[0][["customer_id", *_names(setup)]], splits[0].churned)
    leaky.named_steps["model"].coef_[0, 0] = 0.01  # make the id matter visibly
    only_invariance = evaluation_setup(
        evaluation_params(behaviour={**eval_params["behaviour"], "directional": []})
    )
    report = nodes.check_model_behaviour(leaky, splits[2], only_invariance)
    assert not report["passed"]
    (invariance,) = report["checks"]
    assert not invariance["passed"]
    assert invariance["max_abs_score_change"]["keys_replaced"] > 0
    assert "keys_dropped" in invariance["errors"]


# --------------------------------------------------------------------------- profile


def test_reference_profile_follows_the_contract(xgboost_model, splits, setup):
    profile = nodes.build_reference_profile(xgboost_model, splits[0], setup)
    parsed = parse_reference_profile(profile)
    assert set(parsed.features) == set(_names(setup))
    assert parsed.score is not None
    contract = profile["features"]["contract"]
    assert set(contract["frequencies"]) == {"month_to_month", "one_year", "two_year"}
    age = profile["features"]["age"]
    assert age["bin_edges"][0] == splits[0].age.min()
    assert age["bin_edges"][-1] == splits[0].age.max()
    assert sum(age["frequencies"]) == pytest.approx(1)
    assert profile["rows"] == len(splits[0]) and profile["source"] == "train_split"


# --------------------------------------------------------------------------- gate


def test_no_champion_scores_as_version_none(splits, setup):
    assert nodes.score_champion(None, splits[2], setup) == {"version": None, "run_id": None}


def test_champion_is_scored_on_the_same_test_split(xgboost_model, splits, setup):
    champion = {"version": "3", "run_id": "abc", "model": xgboost_model}
    scored = nodes.score_champion(champion, splits[2], setup)
    expected = ranking_metrics(
        splits[2].churned, xgboost_model.predict_proba(splits[2][_names(setup)])[:, 1]
    )
    assert scored["version"] == "3" and scored["metrics"] == expected


def test_a_champion_that_cannot_score_reports_the_error(xgboost_model, splits):
    extra = [*feature_list(), {"name": "new_feature", "kind": "numeric", "description": "new"}]
    wider = nodes.validate_evaluation_parameters(evaluation_params(), training_params(), extra)
    champion = {"version": "3", "run_id": "abc", "model": xgboost_model}
    scored = nodes.score_champion(
        champion, splits[2].assign(new_feature=1.0).drop(columns="age"), wider
    )
    assert "metrics" not in scored and "KeyError" in scored["error"]


GOOD = {"roc_auc": 0.80, "pr_auc": 0.40, "pr_auc_lift": 4.0}
PASSING = {"passed": True, "checks": [{"name": "directional:x", "passed": True}]}
ADDS_UP = {"passed": True, "max_abs_error": 1e-6, "tolerance": 1e-3}


def _champion(pr_auc: float, version: str = "1") -> dict:
    return {"version": version, "run_id": "r", "metrics": {**GOOD, "pr_auc": pr_auc}}


def test_gate_promotes_the_first_model_that_meets_the_minimums(setup):
    decision = nodes.decide_promotion(GOOD, {"version": None}, PASSING, ADDS_UP, setup)
    assert decision["promote"] and "first model" in decision["reason"]
    assert decision["champion_version"] is None


def test_gate_refuses_a_first_model_below_a_minimum(setup):
    weak = {**GOOD, "roc_auc": 0.55}
    decision = nodes.decide_promotion(weak, {"version": None}, PASSING, ADDS_UP, setup)
    assert not decision["promote"]
    assert decision["reason"] == "refused: roc_auc 0.5500 < 0.65"


def test_gate_promotes_within_the_degradation_margin(setup):
    decision = nodes.decide_promotion(GOOD, _champion(0.405), PASSING, ADDS_UP, setup)
    assert decision["promote"] and decision["champion_version"] == "1"
    assert decision["champion_value"] == pytest.approx(0.405)


def test_gate_refuses_a_challenger_worse_than_the_champion_by_more_than_the_margin(setup):
    decision = nodes.decide_promotion(GOOD, _champion(0.45, "2"), PASSING, ADDS_UP, setup)
    assert not decision["promote"]
    assert "pr_auc 0.4000 vs champion v2 0.4500 (allowed down to 0.4400)" in decision["reason"]
    assert decision["champion_version"] == "2"


def test_gate_refuses_a_model_that_fails_a_behaviour_check(setup, eval_params):
    failing = {"passed": False, "checks": [{"name": "directional:x", "passed": False}]}
    decision = nodes.decide_promotion(GOOD, {"version": None}, failing, ADDS_UP, setup)
    assert not decision["promote"] and "directional:x" in decision["reason"]
    lenient = evaluation_setup(
        evaluation_params(gate={**eval_params["gate"], "require_behaviour_checks": False})
    )
    assert nodes.decide_promotion(GOOD, {"version": None}, failing, ADDS_UP, lenient)["promote"]


def test_gate_refuses_explanations_that_do_not_add_up(setup):
    broken = {"passed": False, "max_abs_error": 0.5, "tolerance": 1e-3}
    decision = nodes.decide_promotion(GOOD, {"version": None}, PASSING, broken, setup)
    assert not decision["promote"] and "SHAP additivity error" in decision["reason"]


def test_gate_lets_the_minimums_decide_when_the_champion_cannot_score(setup):
    champion = {"version": "4", "run_id": "r", "error": "KeyError: 'age'"}
    decision = nodes.decide_promotion(GOOD, champion, PASSING, ADDS_UP, setup)
    assert decision["promote"] and "cannot score" in decision["reason"]
    assert decision["champion_version"] == "4"


def test_a_model_trained_on_shuffled_labels_is_refused(
    splits, xgboost_search, xgboost_model, specs, cfg, setup
):
    train, validation, test, _ = splits
    shuffled = train.assign(churned=np.random.default_rng(0).permutation(train.churned.to_numpy()))
    noise_model = training_nodes.fit_xgboost(shuffled, xgboost_search[0], specs, cfg)
    validation_scores = nodes.predict_churn_scores(noise_model, validation, setup)
    threshold = nodes.choose_decision_threshold(validation_scores, setup)
    test_scores = nodes.predict_churn_scores(noise_model, test, setup)
    metrics = nodes.compute_test_metrics(test_scores, threshold, setup)
    champion = nodes.score_champion(
        {"version": "1", "run_id": "r", "model": xgboost_model}, test, setup
    )
    decision = nodes.decide_promotion(metrics, champion, PASSING, ADDS_UP, setup)
    assert not decision["promote"]
    assert "pr_auc_lift" in decision["reason"] and "vs champion v1" in decision["reason"]


# --------------------------------------------------------------------------- packaging


def test_model_metadata_follows_the_contract(xgboost_model, splits, decision_threshold, setup):
    metrics = {"pr_auc": 0.4, "roc_auc": float("nan")}
    meta = nodes.build_model_metadata(xgboost_model, splits[0], decision_threshold, metrics, setup)
    assert meta["model_name"] == "churn_model_test"
    assert meta["model_version"] is None and meta["run_id"] is None
    assert meta["threshold"] == decision_threshold["threshold"]
    assert meta["metrics"] == {"pr_auc": 0.4, "roc_auc": None}
    by_name = {f["name"]: f for f in meta["features"]}
    assert [f["name"] for f in meta["features"]] == _names(setup)
    assert by_name["contract"]["categories"] == ["month_to_month", "one_year", "two_year"]
    assert by_name["age"]["kind"] == "numeric"
    assert by_name["age"]["observed_min"] == splits[0].age.min()
    assert by_name["age"]["min"] is None  # the synthetic list declares no bounds
    assert all(f["description"] for f in meta["features"])


def test_declared_bounds_become_metadata_min_max(xgboost_model, splits, decision_threshold):
    bounded = [dict(f, min=18, max=100) if f["name"] == "age" else f for f in feature_list()]
    setup = nodes.validate_evaluation_parameters(evaluation_params(), training_params(), bounded)
    meta = nodes.build_model_metadata(xgboost_model, splits[0], decision_threshold, {}, setup)
    age = next(f for f in meta["features"] if f["name"] == "age")
    assert (age["min"], age["max"]) == (18, 100)


@pytest.fixture(scope="module")
def evaluation_outputs(
    xgboost_model,
    baseline_model,
    splits,
    specs,
    cfg,
    setup,
    test_predictions,
    decision_threshold,
):
    train, validation, test, summary = splits
    metrics = nodes.compute_test_metrics(test_predictions, decision_threshold, setup)
    importance, _, additivity = nodes.explain_model(xgboost_model, test, setup)
    behaviour = nodes.check_model_behaviour(xgboost_model, test, setup)
    decision = nodes.decide_promotion(metrics, {"version": None}, behaviour, additivity, setup)
    scores = training_nodes.score_candidates(baseline_model, xgboost_model, validation, specs, cfg)
    _, selection = training_nodes.select_best_candidate(baseline_model, xgboost_model, scores, cfg)
    metadata = nodes.build_model_metadata(xgboost_model, train, decision_threshold, metrics, setup)
    card = nodes.build_model_card(
        metadata,
        summary,
        selection,
        scores,
        metrics,
        decision_threshold,
        nodes.compute_calibration(test_predictions, setup),
        nodes.compute_segment_metrics(test_predictions, test, decision_threshold, setup),
        importance,
        additivity,
        behaviour,
        decision,
    )
    return {
        "metrics": metrics,
        "decision": decision,
        "metadata": metadata,
        "card": card,
        "summary": summary,
    }


def test_model_card_has_every_section_and_registry_placeholders(evaluation_outputs):
    card = evaluation_outputs["card"]
    assert card.startswith(f"# Model card: churn_model_test v{VERSION_TOKEN}")
    assert RUN_ID_TOKEN in card
    for section in (
        "## Intended use",
        "## Training data",
        "## Candidates",
        "## Test metrics",
        "## Business value",
        "## Calibration",
        "## Metrics by segment",
        "## Explanations (SHAP)",
        "## Behaviour checks",
        "## Promotion gate",
        "## Limitations",
    ):
        assert section in card
    assert evaluation_outputs["decision"]["reason"] in card


def test_registration_payload_carries_tags_files_and_decision(
    evaluation_outputs, xgboost_model, splits, test_predictions, setup
):
    golden = nodes.build_golden_sample(splits[2], test_predictions, setup)
    payload = nodes.prepare_model_registration(
        xgboost_model,
        evaluation_outputs["metadata"],
        evaluation_outputs["card"],
        {"features": {}},
        evaluation_outputs["decision"],
        evaluation_outputs["summary"],
        evaluation_outputs["metrics"],
        splits[2],
        golden,
        setup,
    )
    assert payload["golden_sample"] is golden
    tags = payload["tags"]
    assert tags["data_fingerprint"] == evaluation_outputs["summary"]["data_fingerprint"]
    assert tags["features"].split(",") == _names(setup)
    assert float(tags["test.pr_auc"]) == pytest.approx(
        evaluation_outputs["metrics"]["pr_auc"], abs=1e-6
    )
    assert payload["decision"] == {
        "promote": evaluation_outputs["decision"]["promote"],
        "reason": evaluation_outputs["decision"]["reason"],
        "champion_version": None,
    }
    assert list(payload["input_example"].columns) == _names(setup)


def test_directional_check_on_a_constant_feature_is_skipped_with_a_reason(
    xgboost_model, splits, setup
):
    test = splits[2].assign(late_payments_90d=0)  # e.g. no event log: always zero
    report = nodes.check_model_behaviour(xgboost_model, test, setup)
    directional = report["checks"][0]
    assert directional["skipped"] and directional["passed"] is None
    assert "constant" in directional["reason"] and "late_payments_90d" in directional["reason"]
    assert report["skipped"] == ["directional:late_payments_90d:increasing"]
    assert report["passed"]  # the invariance check ran and passed; the skip is not a pass
