"""Validated form of the ``training`` parameters (``conf/base/parameters_training.yml``).

Every node of the training pipeline calls :func:`parse_training_params` on the raw dictionary
it receives, so a typo or an out-of-range value fails before any model is fitted, with the
offending key in the message.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from churn_mlops.contracts.base import StrictModel as _Strict
from churn_mlops.contracts.errors import format_validation_error
from churn_mlops.pipelines.training.errors import TrainingConfigError

#: Metrics that can choose the winning candidate (all "higher is better").
SelectionMetric = Literal["pr_auc", "roc_auc"]


class SplitParams(_Strict):
    """How ``model_input_table`` is cut into train, validation and test by snapshot month.

    Attributes:
        validation_months: Number of snapshot months (just before the test months) used for
            early stopping, the hyperparameter search, winner selection and the threshold.
        test_months: Number of most recent snapshot months held out for evaluation.
        purge_days: A row is dropped from an earlier split when its label window
            ``[snapshot_date, snapshot_date + purge_days)`` reaches into the next split, so no
            label of a training row is observed after the validation period begins. Set it to
            the label horizon.
        min_train_months: Fewer training months than this is an error.
        strategy: ``time`` (the above), ``stratified_random`` (a random split stratified
            by the label, seeded by ``training.seed``: for a table without a time axis) or
            ``auto``: ``time`` unless every row has the same snapshot date.
        validation_fraction: Share of rows in the validation split of a random split.
        test_fraction: Share of rows in the test split of a random split.
    """

    validation_months: int = Field(default=2, ge=1)
    test_months: int = Field(default=2, ge=1)
    purge_days: int = Field(default=30, ge=0)
    min_train_months: int = Field(default=3, ge=1)
    strategy: Literal["auto", "time", "stratified_random"] = "auto"
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)


class SamplingParams(_Strict):
    """Upper bound on the rows the candidates are fitted on (keeps the default run quick).

    Attributes:
        max_training_rows: Training rows above this are sampled down (uniformly, seeded);
            ``null`` fits on every training row.
    """

    max_training_rows: int | None = Field(default=150_000, ge=1_000)


class LogisticRegressionParams(_Strict):
    """The logistic-regression baseline (inverse regularisation ``C`` and iteration cap)."""

    C: float = Field(default=1.0, gt=0)
    max_iter: int = Field(default=500, ge=10)


class FloatRange(_Strict):
    """A float search range for Optuna (``log`` samples on a log scale)."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        return self


class IntRange(_Strict):
    """An integer search range for Optuna (inclusive)."""

    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not be above high ({self.high})")
        return self


class XGBoostSearchSpace(_Strict):
    """Ranges searched by Optuna for the XGBoost candidate."""

    max_depth: IntRange = IntRange(low=3, high=7)
    learning_rate: FloatRange = FloatRange(low=0.03, high=0.3, log=True)
    min_child_weight: FloatRange = FloatRange(low=1.0, high=30.0, log=True)
    subsample: FloatRange = FloatRange(low=0.6, high=1.0)
    colsample_bytree: FloatRange = FloatRange(low=0.6, high=1.0)
    reg_lambda: FloatRange = FloatRange(low=0.01, high=10.0, log=True)


class XGBoostSearchParams(_Strict):
    """The bounded Optuna search: ``n_trials`` trials, optionally capped at ``timeout_s`` seconds
    (off by default: a time cap makes the chosen model depend on the machine's speed)."""

    n_trials: int = Field(default=6, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)
    space: XGBoostSearchSpace = XGBoostSearchSpace()


class XGBoostParams(_Strict):
    """The XGBoost candidate.

    Attributes:
        tree_method: XGBoost tree method (``hist`` is the fast histogram algorithm).
        max_estimators: Upper bound on boosting rounds; early stopping picks the number.
        early_stopping_rounds: Rounds without validation improvement before stopping.
        eval_metric: Validation metric watched by early stopping (``aucpr`` = PR AUC).
        max_bin: Histogram bins per feature.
        monotone_increasing: Features whose effect on churn risk is constrained to be
            non-decreasing (domain knowledge, checked again by the behaviour tests).
        search: The hyperparameter search.
    """

    tree_method: Literal["hist", "approx", "exact"] = "hist"
    max_estimators: int = Field(default=400, ge=10)
    early_stopping_rounds: int = Field(default=30, ge=1)
    eval_metric: Literal["aucpr", "auc", "logloss"] = "aucpr"
    max_bin: int = Field(default=256, ge=16)
    monotone_increasing: list[str] = Field(default_factory=list)
    search: XGBoostSearchParams = XGBoostSearchParams()


class CandidateParams(_Strict):
    """Both candidates; each is always fitted so the baseline comparison is in every run."""

    logistic_regression: LogisticRegressionParams = LogisticRegressionParams()
    xgboost: XGBoostParams = XGBoostParams()


class ModelLoggingParams(_Strict):
    """How candidate models are logged to MLflow (see docs/experiment_tracking.md).

    Attributes:
        serialization_format: MLflow sklearn flavor format. ``skops`` loads only the types
            listed below plus scikit-learn's own, so a registry model cannot run arbitrary code.
        skops_trusted_types: Extra types skops may load (the XGBoost estimator and booster).
        input_example_rows: Rows of the training table logged as the input example.
    """

    serialization_format: Literal["skops", "cloudpickle", "pickle"] = "skops"
    skops_trusted_types: list[str] = Field(
        default_factory=lambda: ["xgboost.sklearn.XGBClassifier", "xgboost.core.Booster"]
    )
    input_example_rows: int = Field(default=5, ge=1, le=100)


class TrainingParams(_Strict):
    """All ``training`` parameters.

    Attributes:
        target: Label column (0/1).
        time_column: Snapshot column that orders rows in time (never a feature).
        id_columns: Key columns carried through for reports (never features).
        seed: Seed for sampling, the search and the estimators.
        n_jobs: Threads used by XGBoost and scikit-learn.
        class_weighting: ``balanced`` weights positives by negatives/positives, ``sqrt`` by
            its square root, ``none`` not at all (the imbalance handling of both candidates).
        selection_metric: Validation metric that picks the winner.
    """

    target: str = "churned"
    time_column: str = "snapshot_date"
    id_columns: list[str] = Field(default_factory=lambda: ["customer_id"])
    seed: int = 42
    n_jobs: int = Field(default=2, ge=1)
    class_weighting: Literal["balanced", "sqrt", "none"] = "sqrt"
    selection_metric: SelectionMetric = "pr_auc"
    split: SplitParams = SplitParams()
    sampling: SamplingParams = SamplingParams()
    candidates: CandidateParams = CandidateParams()
    model_logging: ModelLoggingParams = ModelLoggingParams()


def parse_training_params(raw: dict[str, Any]) -> TrainingParams:
    """Validate the raw ``training`` parameter dictionary.

    Args:
        raw: The ``training`` section of the parameters.

    Returns:
        The validated parameters.

    Raises:
        TrainingConfigError: A key is unknown, missing or out of range; the message lists
            each offending key path under ``training``.
    """
    try:
        return TrainingParams.model_validate(raw)
    except ValidationError as exc:
        problems = format_validation_error(exc, prefix="training")
        raise TrainingConfigError(f"invalid training parameters: {problems}") from exc
