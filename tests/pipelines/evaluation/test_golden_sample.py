"""The golden sample the evaluation stores with each registered version, and what it is for:
exporting the champion after a refused challenger's evaluation overwrote the local outputs."""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from churn_mlops.contracts.artifacts import EXPECTED_COLUMN
from churn_mlops.datasets import MlflowChampionDataset, MlflowModelRegistrationDataset
from churn_mlops.datasets.champion import VERSION_FILES
from churn_mlops.pipelines.evaluation import nodes
from churn_mlops.pipelines.evaluation.errors import EvaluationConfigError
from churn_mlops.pipelines.export.nodes import select_golden_sample
from churn_mlops.pipelines.training.errors import FeatureContractError
from churn_mlops.registry import ChampionRegistry
from churn_mlops.release.errors import GoldenSampleError
from tests.pipelines.training.synthetic import evaluation_params, evaluation_setup

KEYS = ["customer_id", "snapshot_date"]
#: The export's defaults (conf/base/parameters_export.yml).
EXPORT = {
    "golden_sample": {"rows": 200, "seed": 0, "tolerance": 1e-6},
    "requirements": {"distributions": ["numpy"]},
}


def _names(setup) -> list[str]:
    return [s.name for s in setup.features]


def _golden_setup(**golden: Any):
    return evaluation_setup(evaluation_params(golden_sample=golden))


# --------------------------------------------------------------------------- the node


def test_golden_sample_holds_keys_features_and_the_evaluation_scores(
    splits, test_predictions, setup
):
    test = splits[2]
    sample = nodes.build_golden_sample(test, test_predictions, setup)

    assert list(sample.columns) == [*KEYS, *_names(setup), EXPECTED_COLUMN]
    assert len(sample) == len(test) < 2000  # the default keeps all of a smaller split
    pd.testing.assert_frame_equal(sample[[*KEYS, *_names(setup)]], test[[*KEYS, *_names(setup)]])
    np.testing.assert_array_equal(sample[EXPECTED_COLUMN], test_predictions["score"])


def test_a_larger_split_gives_a_seeded_draw_in_split_order(splits, test_predictions):
    test = splits[2]
    draw = nodes.build_golden_sample(test, test_predictions, _golden_setup(rows=300))
    again = nodes.build_golden_sample(test, test_predictions, _golden_setup(rows=300))
    other = nodes.build_golden_sample(test, test_predictions, _golden_setup(rows=300, seed=5))

    assert len(draw) == 300 and not draw.duplicated(KEYS).any()
    pd.testing.assert_frame_equal(draw, again)
    assert not draw[KEYS].equals(other[KEYS])
    position = test.reset_index(drop=True).reset_index().merge(draw, on=KEYS)["index"]
    assert position.is_monotonic_increasing  # test-split order
    scores = test_predictions.set_index(KEYS)["score"]
    np.testing.assert_array_equal(
        draw[EXPECTED_COLUMN], scores.loc[pd.MultiIndex.from_frame(draw[KEYS])]
    )


def test_fewer_rows_than_the_export_draws_are_refused():
    with pytest.raises(EvaluationConfigError, match=r"evaluation\.golden_sample\.rows"):
        _golden_setup(rows=199)


def test_predictions_of_other_rows_are_refused(splits, test_predictions, setup):
    with pytest.raises(FeatureContractError, match="does not score each of the"):
        nodes.build_golden_sample(splits[2], test_predictions.head(10), setup)


# --------------------------------------------------------------------------- registered


def _register(model, predictions, decision, *, splits, setup, name, tmp_path) -> dict:
    """Register ``model`` with the payload the evaluation nodes build (the gate's ``decision``
    given: this test is about what the version carries, not about the gate)."""
    train, _, test, summary = splits
    metadata = nodes.build_model_metadata(model, train, {"threshold": 0.5}, {}, setup)
    payload = nodes.prepare_model_registration(
        model,
        metadata,
        "card",
        {"features": {}, "score": {}},
        {"promote": False, "reason": "refused", "champion_version": None, **decision},
        summary,
        {},
        test,
        nodes.build_golden_sample(test, predictions, setup),
        setup,
    )
    dataset = MlflowModelRegistrationDataset(
        model_name=name,
        metadata_filepath=str(tmp_path / "model_metadata.json"),
        model_card_filepath=str(tmp_path / "model_card.md"),
    )
    with mlflow.start_run():
        dataset.save(payload)
    return dataset.load()


def test_a_registered_version_carries_a_golden_sample_its_model_reproduces(
    xgboost_model, splits, test_predictions, setup, model_name, tmp_path
):
    _register(
        xgboost_model,
        test_predictions,
        {"promote": True},
        splits=splits,
        setup=setup,
        name=model_name,
        tmp_path=tmp_path,
    )
    champion = MlflowChampionDataset(model_name=model_name, required_files=VERSION_FILES).load()

    golden = champion["golden_sample"]
    names = [f["name"] for f in champion["model_metadata"]["features"]]
    assert list(golden.columns) == [*KEYS, *names, EXPECTED_COLUMN]
    assert len(golden) == len(splits[2])
    np.testing.assert_allclose(
        champion["model"].predict_proba(golden[names])[:, 1], golden[EXPECTED_COLUMN], atol=1e-9
    )


def test_the_champion_exports_after_a_refused_challenger_overwrote_the_test_outputs(
    xgboost_model, baseline_model, splits, test_predictions, setup, params, model_name, tmp_path
):
    """The failure of issue 20: the local test outputs are the refused challenger's."""
    common = {"splits": splits, "setup": setup, "name": model_name, "tmp_path": tmp_path}
    _register(xgboost_model, test_predictions, {"promote": True}, **common)
    challenger_predictions = nodes.predict_churn_scores(baseline_model, splits[2], setup)
    outcome = _register(baseline_model, challenger_predictions, {"champion_version": "1"}, **common)
    assert (
        outcome["outcome"] == "refused" and ChampionRegistry(model_name).champion_version() == "1"
    )

    champion = MlflowChampionDataset(
        model_name=model_name,
        required_files=["model_metadata.json", "reference_profile.json", "model_card.md"],
    ).load()  # as catalog_export.yml's champion_release
    sample, summary = select_golden_sample(
        champion, splits[2], challenger_predictions, params, EXPORT
    )

    assert summary["source"] == "model_version" and len(sample) == summary["rows"] == 200
    assert summary["registry_model_max_abs_diff"] <= 1e-9
    # Without the stored sample the export falls back on the challenger's outputs and fails.
    with pytest.raises(GoldenSampleError, match="does not hold the scores of"):
        select_golden_sample(
            {**champion, "golden_sample": None}, splits[2], challenger_predictions, params, EXPORT
        )
