"""Nodes of ``training_spark``: pick the training rows on Spark and fit XGBoost across workers.

The fit runs ``xgboost.spark.SparkXGBClassifier`` on Spark-side features built exactly like
the served ``ColumnTransformer``'s output (one-hot categoricals in contract order, then the
numeric features unchanged), and the trained booster is then wrapped into the served object:
``Pipeline([("preprocess", ColumnTransformer), ("model", XGBClassifier)])``. The wrapped
pipeline scores a row exactly as the Spark model does (tests/spark/test_training_spark.py).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import ValidationError
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from churn_mlops.contracts.errors import format_validation_error
from churn_mlops.contracts.features import FeatureSpec
from churn_mlops.pipelines.training.errors import (
    FeatureContractError,
    TimeSplitError,
    TrainingConfigError,
)
from churn_mlops.pipelines.training.nodes import build_preprocessor
from churn_mlops.pipelines.training.params import TrainingParams
from churn_mlops.pipelines.training_spark.params import DistributedTrainingParams

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
else:
    # Kedro reads every registered node's type hints when a session starts (parameter
    # validation); where pyspark is not imported (every environment but `spark`) the Spark
    # types read as Any instead of a "Could not extract type hints" warning per node.
    Column = DataFrame = Any

logger = logging.getLogger(__name__)

#: Rows brought to the driver to fit the served ColumnTransformer (its categories are fixed
#: by the feature list, so a handful of rows only sets the input columns and dtypes).
ENCODER_SAMPLE_ROWS = 100
#: Name of the assembled feature vector column on the Spark side.
FEATURES_VECTOR = "features"


def validate_distributed_parameters(raw: dict[str, Any]) -> DistributedTrainingParams:
    """Validate ``params:training_spark`` once, where it enters the pipeline.

    Raises:
        TrainingConfigError: Naming each offending key under ``training_spark``.
    """
    try:
        return DistributedTrainingParams.model_validate(raw)
    except ValidationError as exc:
        problems = format_validation_error(exc, prefix="training_spark")
        raise TrainingConfigError(f"invalid training_spark parameters: {problems}") from exc


def select_spark_training_rows(
    model_input_table: DataFrame, split_summary: dict[str, Any], cfg: TrainingParams
) -> DataFrame:
    """The training split of ``model_input_table``, selected on Spark.

    Applies the rule of ``training.split_by_snapshot_month`` to the Spark table: snapshots
    before the first validation month, minus those whose label window (``purge_days``)
    reaches into it. The row count must equal the training split's, so the distributed fit
    sees exactly the rows the single-machine split chose.

    Args:
        model_input_table: ``model_input_table`` as a Spark DataFrame.
        split_summary: Output of ``split_by_snapshot_month`` (months and rows per split).
        cfg: The validated ``training`` parameters.

    Returns:
        The training rows (lazy Spark DataFrame).

    Raises:
        TimeSplitError: The selected row count differs from the training split's.
    """
    from pyspark.sql import functions as F

    validation_months = split_summary["splits"]["validation"]["months"]
    validation_start = datetime.strptime(f"{validation_months[0]}-01", "%Y-%m-%d")
    purge_days = int(split_summary["purge_days"])
    snapshot = F.col(cfg.time_column)
    rows = model_input_table.filter(
        (snapshot < F.lit(validation_start))
        & (snapshot + F.expr(f"INTERVAL {purge_days} DAYS") <= F.lit(validation_start))
    )
    expected = int(split_summary["splits"]["train"]["rows"])
    found = rows.count()
    if found != expected:
        raise TimeSplitError(
            f"model_input_table@spark has {found} training rows before {validation_start.date()}"
            f" (purge_days={purge_days}), but split_summary.splits.train.rows is {expected}; "
            "both must read the same model_input_table (re-run feature_engineering and "
            "training_spark in the same environment)"
        )
    logger.info("Spark training rows: %d (snapshots before %s)", found, validation_start.date())
    return rows


def encoded_feature_columns(specs: list[FeatureSpec]) -> list[tuple[str, Column]]:
    """Spark expressions for the served ColumnTransformer's output columns, in its order.

    Each category of a categorical feature becomes a 0/1 column (an unknown or null value is
    all zeros, as ``OneHotEncoder(handle_unknown="ignore")`` encodes it); numeric features
    pass through as doubles. Names follow ``ColumnTransformer.get_feature_names_out()``.
    """
    from pyspark.sql import functions as F

    columns: list[tuple[str, Column]] = []
    for spec in specs:
        if spec.kind == "categorical":
            for category in spec.categories or []:
                indicator = F.when(F.col(spec.name) == F.lit(category), 1.0).otherwise(0.0)
                columns.append((f"categorical__{spec.name}_{category}", indicator))
    for spec in specs:
        if spec.kind == "numeric":
            columns.append((f"numeric__{spec.name}", F.col(spec.name).cast("double")))
    return columns


def assemble_spark_features(
    rows: DataFrame, specs: list[FeatureSpec], *, keep: list[str]
) -> DataFrame:
    """``keep`` columns plus the encoded features as one vector column ``features``.

    Missing values stay NaN (XGBoost's "missing"), as they do through the ColumnTransformer.
    """
    from pyspark.ml.feature import VectorAssembler

    encoded = encoded_feature_columns(specs)
    return VectorAssembler(
        inputCols=[name for name, _ in encoded], outputCol=FEATURES_VECTOR, handleInvalid="keep"
    ).transform(rows.select(*keep, *[column.alias(name) for name, column in encoded]))


def served_preprocessor(specs: list[FeatureSpec], sample: pd.DataFrame) -> ColumnTransformer:
    """The training pipeline's ColumnTransformer with numeric features passed through.

    Trees split on thresholds, so standardising numerics changes nothing but the threshold
    values; passing them through lets Spark and the served object compute the same inputs
    without shipping scaler statistics.

    Raises:
        FeatureContractError: Its output columns differ from :func:`encoded_feature_columns`.
    """
    preprocess = build_preprocessor(specs).set_params(numeric="passthrough").fit(sample)
    served = list(preprocess.get_feature_names_out())
    spark = [name for name, _ in encoded_feature_columns(specs)]
    if served != spark:
        raise FeatureContractError(
            "the Spark encoding and the served ColumnTransformer disagree on feature columns: "
            f"Spark {spark}, served {served}"
        )
    return preprocess


def train_xgboost_on_spark(
    rows: DataFrame,
    specs: list[FeatureSpec],
    cfg: TrainingParams,
    spark_cfg: DistributedTrainingParams,
    xgboost_search: dict[str, Any],
) -> tuple[Any, Pipeline]:
    """Train ``SparkXGBClassifier`` on ``rows`` and wrap its booster as the served Pipeline.

    Returns:
        The Spark model (``SparkXGBClassifierModel``) and the served
        ``Pipeline([("preprocess", ColumnTransformer), ("model", XGBClassifier)])`` holding
        the same booster.
    """
    from pyspark.sql import functions as F
    from xgboost import XGBClassifier
    from xgboost.spark import SparkXGBClassifier

    xgb_cfg = cfg.candidates.xgboost
    names = [spec.name for spec in specs]
    sample = rows.select(*names).limit(ENCODER_SAMPLE_ROWS).toPandas()
    preprocess = served_preprocessor(specs, sample)
    encoded_names = list(preprocess.get_feature_names_out())
    increasing = {f"numeric__{name}" for name in xgb_cfg.monotone_increasing}
    constraints = tuple(int(name in increasing) for name in encoded_names)
    hyper = {
        **xgboost_search["best_params"],
        "n_estimators": int(xgboost_search["best_n_estimators"]),
        "tree_method": xgb_cfg.tree_method,
        "max_bin": xgb_cfg.max_bin,
        "scale_pos_weight": float(xgboost_search["scale_pos_weight"]),
        "monotone_constraints": constraints if any(constraints) else None,
        "random_state": cfg.seed,
    }
    labelled = rows.withColumn(cfg.target, F.col(cfg.target).cast("int"))
    estimator = SparkXGBClassifier(
        features_col=FEATURES_VECTOR,
        label_col=cfg.target,
        num_workers=spark_cfg.num_workers,
        device=spark_cfg.device,
        **hyper,
    )
    started = time.perf_counter()
    spark_model = estimator.fit(assemble_spark_features(labelled, specs, keep=[cfg.target]))
    logger.info(
        "Fitted XGBoost on Spark (%d workers, %d trees) in %.1f s",
        spark_cfg.num_workers,
        hyper["n_estimators"],
        time.perf_counter() - started,
    )
    # The same booster, byte for byte, in the sklearn wrapper that evaluation and serving use.
    model = XGBClassifier(n_jobs=cfg.n_jobs, **hyper)
    model.load_model(bytearray(spark_model.get_booster().save_raw("ubj")))
    return spark_model, Pipeline([("preprocess", preprocess), ("model", model)])


def fit_xgboost_spark(
    spark_training_rows: DataFrame,
    xgboost_search: dict[str, Any],
    specs: list[FeatureSpec],
    cfg: TrainingParams,
    spark_cfg: DistributedTrainingParams,
) -> Pipeline:
    """Fit XGBoost with the searched hyperparameters on Spark; return the served object.

    Args:
        spark_training_rows: Output of :func:`select_spark_training_rows`.
        xgboost_search: Output of ``training.tune_xgboost`` (hyperparameters, number of
            trees, positive-class weight).
        specs: The validated feature list.
        cfg: The validated ``training`` parameters.
        spark_cfg: The validated ``training_spark`` parameters.

    Returns:
        ``Pipeline([("preprocess", ColumnTransformer), ("model", XGBClassifier)])`` whose
        booster is the one trained on Spark.

    Raises:
        TrainingConfigError: ``tree_method`` is ``exact`` (not distributed by XGBoost).
        FeatureContractError: A feature or the label is missing, or the Spark encoding and
            the served ColumnTransformer disagree on the feature columns.
    """
    if cfg.candidates.xgboost.tree_method == "exact":
        raise TrainingConfigError(
            "training.candidates.xgboost.tree_method = 'exact' cannot train on Spark; "
            "use 'hist' or 'approx'"
        )
    needed = [*[spec.name for spec in specs], cfg.target]
    missing = [c for c in needed if c not in spark_training_rows.columns]
    if missing:
        raise FeatureContractError(
            f"model_input_table@spark lacks column(s) {missing}; present: "
            f"{sorted(spark_training_rows.columns)}"
        )
    _, served = train_xgboost_on_spark(
        spark_training_rows.select(*needed), specs, cfg, spark_cfg, xgboost_search
    )
    return served
