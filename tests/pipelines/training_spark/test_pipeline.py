"""Wiring of ``training_spark`` and its parameters (no Spark needed; see tests/spark/)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from churn_mlops.pipelines.training import create_pipeline as create_training_pipeline
from churn_mlops.pipelines.training.errors import TrainingConfigError
from churn_mlops.pipelines.training_spark import create_pipeline
from churn_mlops.pipelines.training_spark.nodes import validate_distributed_parameters

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def test_only_the_xgboost_fit_is_replaced():
    local, distributed = create_training_pipeline(), create_pipeline()
    local_nodes = {n.name for n in local.nodes}
    distributed_nodes = {n.name for n in distributed.nodes}
    assert local_nodes - distributed_nodes == {"fit_xgboost"}
    assert distributed_nodes - local_nodes == {
        "validate_distributed_parameters",
        "select_spark_training_rows",
        "fit_xgboost_spark",
    }
    # Same outputs, so evaluation and the catalog take the Spark-trained model unchanged.
    internal = {"training_spark_config", "spark_training_rows"}
    assert distributed.all_outputs() - internal == local.all_outputs()
    assert distributed.inputs() - local.inputs() == {
        "model_input_table@spark",
        "params:training_spark",
    }
    fit = next(n for n in distributed.nodes if n.name == "fit_xgboost_spark")
    assert fit.outputs == ["xgboost_model"]


def test_committed_parameters_validate():
    path = PROJECT_ROOT / "conf" / "base" / "parameters_training_spark.yml"
    config = validate_distributed_parameters(yaml.safe_load(path.read_text())["training_spark"])
    assert config.num_workers >= 1
    assert config.device == "cpu"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"num_workers": 0}, r"training_spark\.num_workers: .*greater than or equal to 1"),
        ({"device": "tpu"}, r"training_spark\.device"),
        ({"workers": 2}, r"training_spark\.workers: Extra inputs are not permitted"),
    ],
)
def test_invalid_parameters_name_the_key(raw: dict, message: str):
    with pytest.raises(TrainingConfigError, match=message):
        validate_distributed_parameters(raw)
