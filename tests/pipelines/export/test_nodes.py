"""Export nodes: golden sample selection and bundle description (pure, in memory)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churn_mlops.contracts.artifacts import EXPECTED_COLUMN
from churn_mlops.pipelines.export.nodes import assemble_serving_bundle, select_golden_sample
from churn_mlops.pipelines.export.params import parse_export_params
from churn_mlops.release.errors import BundleContractError, ExportConfigError, GoldenSampleError

FEATURES = ["age", "monthly_fee", "contract"]
TRAINING = {
    "target": "churned",
    "time_column": "snapshot_date",
    "id_columns": ["customer_id"],
}


def _export_params(**golden: Any) -> dict[str, Any]:
    return {
        "golden_sample": {"rows": 20, "seed": 0, "tolerance": 1e-6, **golden},
        "requirements": {"distributions": ["numpy"]},
    }


@pytest.fixture(scope="module")
def split() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 120
    return pd.DataFrame(
        {
            "customer_id": np.arange(n, dtype=np.int64),
            "snapshot_date": pd.Timestamp("2024-03-01"),
            "age": rng.integers(18, 90, n),
            "monthly_fee": rng.uniform(10, 120, n).round(2),
            "contract": rng.choice(["month_to_month", "one_year", "two_year"], n),
            "churned": rng.integers(0, 2, n),
        }
    )


@pytest.fixture(scope="module")
def model(split: pd.DataFrame) -> Pipeline:
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), ["age", "monthly_fee"]),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), ["contract"]),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("model", LogisticRegression())]).fit(
        split[FEATURES], split["churned"]
    )


@pytest.fixture
def predictions(split: pd.DataFrame, model: Pipeline) -> pd.DataFrame:
    return split[["customer_id", "snapshot_date", "churned"]].assign(
        score=model.predict_proba(split[FEATURES])[:, 1]
    )


@pytest.fixture
def champion(model: Pipeline) -> dict[str, Any]:
    return {
        "model_name": "churn_model",
        "version": "3",
        "run_id": "abc123",
        "model_uri": "models:/churn_model/3",
        "registered_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "aliases": ["champion"],
        "tags": {"data_fingerprint": "f" * 64, "git_commit": "deadbeef"},
        "model": model,
        "model_metadata": {
            "model_name": "churn_model",
            "model_version": "3",
            "run_id": "abc123",
            "threshold": 0.4,
            "metrics": {"roc_auc": 0.8},
            "features": [
                {"name": "age", "kind": "numeric", "min": 18, "max": 100},
                {"name": "monthly_fee", "kind": "numeric", "min": 0, "max": 500},
                {
                    "name": "contract",
                    "kind": "categorical",
                    "categories": ["month_to_month", "one_year", "two_year"],
                },
            ],
        },
        "model_card": "# Model card: churn_model v3\n",
        "reference_profile": {"features": {}, "score": {}},
        "golden_sample": None,
    }


def test_golden_sample_joins_evaluation_outputs_and_keeps_their_scores(
    champion, split, predictions
):
    sample, summary = select_golden_sample(champion, split, predictions, TRAINING, _export_params())

    assert list(sample.columns) == ["customer_id", "snapshot_date", *FEATURES, EXPECTED_COLUMN]
    assert len(sample) == 20 and sample["customer_id"].is_unique
    assert sample["customer_id"].is_monotonic_increasing  # test-split order
    expected = predictions.set_index("customer_id").loc[sample["customer_id"], "score"]
    np.testing.assert_array_equal(sample[EXPECTED_COLUMN].to_numpy(), expected.to_numpy())
    assert summary["source"] == "evaluation_outputs" and summary["rows"] == 20
    assert summary["registry_model_max_abs_diff"] <= 1e-12


def test_golden_sample_is_the_same_draw_for_the_same_seed(champion, split, predictions):
    first, _ = select_golden_sample(champion, split, predictions, TRAINING, _export_params())
    again, _ = select_golden_sample(champion, split, predictions, TRAINING, _export_params())
    other, _ = select_golden_sample(champion, split, predictions, TRAINING, _export_params(seed=7))
    pd.testing.assert_frame_equal(first, again)
    assert list(first["customer_id"]) != list(other["customer_id"])


def test_golden_sample_takes_every_row_of_a_small_test_split(champion, split, predictions):
    sample, _ = select_golden_sample(
        champion, split, predictions, TRAINING, _export_params(rows=10_000)
    )
    assert len(sample) == len(split)


def test_scores_of_another_model_are_refused(champion, split, predictions):
    """A refused challenger's evaluation overwrote test_predictions: not the champion's."""
    tampered = predictions.assign(score=predictions["score"] + 1e-3)
    with pytest.raises(GoldenSampleError, match=r"does not hold the scores of churn_model v3"):
        select_golden_sample(champion, split, tampered, TRAINING, _export_params())


def test_tables_of_different_runs_are_refused(champion, split, predictions):
    with pytest.raises(GoldenSampleError, match="different evaluation runs"):
        select_golden_sample(champion, split, predictions.iloc[:-1], TRAINING, _export_params())
    shifted = predictions.assign(customer_id=predictions["customer_id"] + 1000)
    with pytest.raises(GoldenSampleError, match="only 0 of 120"):
        select_golden_sample(champion, split, shifted, TRAINING, _export_params())


def test_missing_feature_column_is_named(champion, split, predictions):
    with pytest.raises(GoldenSampleError, match=r"test_split lacks column\(s\) \['monthly_fee'\]"):
        select_golden_sample(
            champion, split.drop(columns="monthly_fee"), predictions, TRAINING, _export_params()
        )


def test_rows_the_app_would_refuse_are_left_out_and_counted(champion, split, predictions):
    # age is declared within [18, 100]: a row above it would get a 422 from the app.
    odd = split.assign(age=split["age"].where(split.index != 5, 120))
    scores = predictions.assign(score=champion["model"].predict_proba(odd[FEATURES])[:, 1])
    sample, summary = select_golden_sample(
        champion, odd, scores, TRAINING, _export_params(rows=10_000)
    )
    assert len(sample) == len(split) - 1 and 5 not in set(sample["customer_id"])
    assert summary["outside_schema"] == {
        "age": {"rows": 1, "allowed": {"min": 18, "max": 100}, "example": 120.0}
    }
    with pytest.raises(GoldenSampleError, match=r"age: 1 rows outside .*e\.g\. 120\.0"):
        select_golden_sample(champion, odd, scores, TRAINING, _export_params(outside_schema="fail"))


def test_golden_sample_registered_with_the_version_is_preferred(champion, split, predictions):
    registered = (
        split[["customer_id", *FEATURES]]
        .iloc[:30]
        .assign(
            **{EXPECTED_COLUMN: champion["model"].predict_proba(split[FEATURES].iloc[:30])[:, 1]}
        )
    )
    release = {**champion, "golden_sample": registered}
    # The local evaluation outputs are wrong on purpose: they must not be read.
    sample, summary = select_golden_sample(
        release, split, predictions.assign(score=0.5), TRAINING, _export_params()
    )
    assert summary["source"] == "model_version"
    assert set(sample["customer_id"]) <= set(registered["customer_id"])


def test_bundle_description_carries_files_lineage_and_pins(champion, split, predictions):
    sample, summary = select_golden_sample(champion, split, predictions, TRAINING, _export_params())
    payload = assemble_serving_bundle(champion, sample, summary, _export_params())

    assert payload["bundle_dir"] == "dist/churn_model-v3"
    assert payload["image"] == "churn-serving:churn_model-v3"
    assert payload["model"] is champion["model"]
    assert payload["feature_names"] == FEATURES
    assert set(payload["texts"]) == {
        "model_metadata.json",
        "reference_profile.json",
        "model_card.md",
        "build-args.txt",
    }
    assert payload["manifest"]["model"]["registry_name"] == "churn_model"
    assert payload["manifest"]["model"]["version"] == "3"
    assert payload["manifest"]["model"]["run_id"] == "abc123"
    assert payload["manifest"]["lineage"]["data_fingerprint"] == "f" * 64
    assert payload["manifest"]["lineage"]["training_git_commit"] == "deadbeef"
    assert payload["requirements"]["distributions"] == ["numpy"]
    assert payload["parity_tolerance"] == 1e-6


def test_build_args_carry_the_container_parameters_and_the_model_labels(
    champion, split, predictions
):
    sample, summary = select_golden_sample(champion, split, predictions, TRAINING, _export_params())
    params = _export_params()
    params["container"] = {"uid": 20002, "port": 9090, "model_dir": "/srv/models/churn"}
    text = assemble_serving_bundle(champion, sample, summary, params)["texts"]["build-args.txt"]
    args = dict(line.removeprefix("--build-arg=").split("=", 1) for line in text.splitlines())
    assert args == {
        "APP_UID": "20002",
        "BASE_IMAGE": "python:3.11-slim",
        "MODEL_DIR": "/srv/models/churn",
        "MODEL_NAME": "churn_model",
        "MODEL_RUN_ID": "abc123",
        "MODEL_VERSION": "3",
        "PORT": "9090",
        "PREDICTION_LOG_DIR": "/var/lib/churn/predictions",
        # Hot reloads are confined to the image's bundles, as in deploy/k8s/base/serving.env.
        "RELOAD_ROOT": "/srv/models",
        "REVISION": "deadbeef",
    }


def test_a_build_arg_the_shell_would_split_is_refused(champion, split, predictions):
    sample, summary = select_golden_sample(champion, split, predictions, TRAINING, _export_params())
    release = copy.deepcopy(champion)
    release["tags"]["git_commit"] = "dead beef"
    with pytest.raises(BundleContractError, match=r"REVISION='dead beef'"):
        assemble_serving_bundle(release, sample, summary, _export_params())


def test_metadata_of_another_version_is_refused(champion, split, predictions):
    sample, summary = select_golden_sample(champion, split, predictions, TRAINING, _export_params())
    release = copy.deepcopy(champion)
    release["model_metadata"]["model_version"] = "2"
    with pytest.raises(BundleContractError, match=r"'model_version': '2'"):
        assemble_serving_bundle(release, sample, summary, _export_params())
    release = copy.deepcopy(champion)
    release["model_metadata"]["threshold"] = 1.5
    with pytest.raises(BundleContractError, match="threshold 1.5"):
        assemble_serving_bundle(release, sample, summary, _export_params())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"unknown": 1}, r"export\.unknown: Extra inputs are not permitted"),
        ({"bundle_name": "{model_name}"}, "must contain {model_version}"),
        ({"bundle_name": "a/{model_version}"}, "name one folder"),
        ({"bundle_name": "{owner}-{model_version}"}, "may only use"),
        ({"golden_sample": {"tolerance": 0}}, r"export\.golden_sample\.tolerance"),
        ({"container": {"python_version": "3"}}, "must be 'major.minor'"),
        ({"container": {"model_dir": "relative/dir"}}, "must be an absolute path"),
    ],
)
def test_bad_parameters_are_named(override, message):
    with pytest.raises(ExportConfigError, match=message):
        parse_export_params(override)


FEATURE_STORE = {
    "feature_service": "churn_model",
    "feature_views": [
        {"name": "customer_profile", "features": ["age", "contract"]},
        {"name": "customer_billing", "features": ["monthly_fee"]},
    ],
}


@pytest.mark.parametrize("online_store", ["redis", "sqlite"])
def test_manifest_records_the_feature_views_and_online_store_the_model_needs(
    champion, split, predictions, online_store
):
    release = copy.deepcopy(champion)
    release["model_metadata"]["feature_store"] = FEATURE_STORE
    params = {**_export_params(), "feature_store": {"online_store": online_store}}
    sample, summary = select_golden_sample(release, split, predictions, TRAINING, params)
    payload = assemble_serving_bundle(release, sample, summary, params)

    assert payload["manifest"]["feature_store"] == {
        **FEATURE_STORE,
        "feature_views": [{**view, "version": None} for view in FEATURE_STORE["feature_views"]],
        "online_store": online_store,
    }
    # model_metadata.json of the bundle keeps the requirement the registry holds.
    assert json.loads(payload["texts"]["model_metadata.json"])["feature_store"] == FEATURE_STORE


def test_a_model_without_feature_views_records_none(champion, split, predictions):
    sample, summary = select_golden_sample(champion, split, predictions, TRAINING, _export_params())
    payload = assemble_serving_bundle(champion, sample, summary, _export_params())
    assert payload["manifest"]["feature_store"] is None


@pytest.mark.parametrize("by_id", [True, False])
def test_feast_joins_the_image_requirements_only_for_a_model_served_by_customer_id(
    champion, split, predictions, by_id
):
    release = copy.deepcopy(champion)
    if by_id:
        release["model_metadata"]["feature_store"] = FEATURE_STORE
    params = {
        **_export_params(),
        "feature_store": {"distributions": ["feast[duckdb,redis]", "async-timeout"]},
    }
    sample, summary = select_golden_sample(release, split, predictions, TRAINING, params)
    payload = assemble_serving_bundle(release, sample, summary, params)
    expected = ["numpy", "feast[duckdb,redis]", "async-timeout"] if by_id else ["numpy"]
    assert payload["requirements"]["distributions"] == expected
    assert "feature_store" not in payload["requirements"]  # only what the bundle build reads


def test_a_broken_feature_store_record_is_named(champion, split, predictions):
    release = copy.deepcopy(champion)
    release["model_metadata"]["feature_store"] = {"feature_service": "churn_model"}
    sample, summary = select_golden_sample(release, split, predictions, TRAINING, _export_params())
    with pytest.raises(BundleContractError, match=r"feature_store\.feature_views: Field required"):
        assemble_serving_bundle(release, sample, summary, _export_params())


def test_an_unknown_online_store_is_named():
    with pytest.raises(ExportConfigError, match=r"export\.feature_store\.online_store"):
        parse_export_params({"feature_store": {"online_store": "memcached"}})
