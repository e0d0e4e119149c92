"""Validated form of the ``evaluation`` parameters (``conf/base/parameters_evaluation.yml``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from churn_mlops.contracts.base import StrictModel as _Strict
from churn_mlops.contracts.errors import format_validation_error
from churn_mlops.contracts.features import FeatureSpec
from churn_mlops.pipelines.evaluation.errors import EvaluationConfigError
from churn_mlops.pipelines.training.params import TrainingParams


class BusinessParams(_Strict):
    """What a retention offer is worth, to choose the decision threshold by expected value.

    Flagging a customer costs ``offer_cost``; if they would have churned, the offer keeps them
    with probability ``offer_success_rate`` and that is worth ``retained_customer_value``.
    """

    retained_customer_value: float = Field(default=500.0, gt=0)
    offer_cost: float = Field(default=40.0, ge=0)
    offer_success_rate: float = Field(default=0.3, gt=0, le=1)


class ThresholdParams(_Strict):
    """Threshold report: every distinct validation score is tried as a threshold; the net-value
    curve in the report and plot keeps ``curve_points`` of them."""

    curve_points: int = Field(default=200, ge=10)


class CalibrationParams(_Strict):
    """Calibration curve: ``n_bins`` bins of the score, ``quantile`` or ``uniform`` width."""

    n_bins: int = Field(default=10, ge=2)
    strategy: Literal["quantile", "uniform"] = "quantile"


class SegmentParams(_Strict):
    """Metrics by segment: categorical ``columns`` and age bands cut at ``age_band_edges``.

    Attributes:
        columns: Categorical feature columns whose values are segments.
        age_column: Numeric column cut into bands (``null``: no age bands, for a table
            without an age).
        age_band_edges: Band edges, left-closed (``[18, 30)`` …); the last band is open.
        min_rows: Segments with fewer rows report counts but no metrics.
    """

    columns: list[str] = Field(default_factory=lambda: ["contract", "region"])
    age_column: str | None = "age"
    age_band_edges: list[float] = Field(default_factory=lambda: [18, 30, 45, 60])
    min_rows: int = Field(default=50, ge=1)

    @field_validator("age_band_edges")
    @classmethod
    def _increasing(cls, edges: list[float]) -> list[float]:
        if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ValueError(f"must be at least two strictly increasing values, got {edges}")
        return edges


class ShapParams(_Strict):
    """SHAP explanations on a sample of the test split.

    Attributes:
        sample_rows: Test rows explained.
        background_rows: Background rows for a linear winner's explainer.
        additivity_tolerance: Largest allowed gap between base value + contributions and the
            model's log-odds output.
        max_display: Features shown in the summary plot.
    """

    sample_rows: int = Field(default=2000, ge=10)
    background_rows: int = Field(default=500, ge=10)
    additivity_tolerance: float = Field(default=1e-3, gt=0)
    max_display: int = Field(default=20, ge=1)


class DirectionalCheck(_Strict):
    """Raising ``feature`` through ``values`` must never move the score the other way."""

    feature: str
    direction: Literal["increasing", "decreasing"] = "increasing"
    values: list[float] = Field(min_length=2)


class BehaviourParams(_Strict):
    """Model-behaviour tests (directional and invariance).

    Attributes:
        directional: Directional expectations, checked on a typical customer (median numerics,
            most frequent categories) and on ``sample_rows`` real test customers.
        sample_rows: Test customers used by every check.
        tolerance: Score differences below this count as equal.
    """

    directional: list[DirectionalCheck] = Field(
        default_factory=lambda: [
            DirectionalCheck(feature="late_payments_90d", values=[0, 1, 2, 3, 4, 6])
        ]
    )
    sample_rows: int = Field(default=200, ge=1)
    tolerance: float = Field(default=1e-9, ge=0)


class ProfileParams(_Strict):
    """Reference profile for drift: ``n_bins`` quantile bins per numeric feature and the score."""

    n_bins: int = Field(default=10, ge=2)


#: Fewest rows the golden sample stores: the export draws ``export.golden_sample.rows`` (200)
#: from it, after leaving out rows its request validation would refuse.
MIN_GOLDEN_SAMPLE_ROWS = 200


class StoredGoldenSampleParams(_Strict):
    """``golden_sample.parquet``, stored with every registered version.

    Test-split rows with the probability the evaluation gave each: the export's parity check
    and ``kedro models rebuild`` compare with them, whatever later evaluations write locally.

    Attributes:
        rows: Rows stored, a seeded draw kept in test-split order (the whole test split when
            it is smaller); at least :data:`MIN_GOLDEN_SAMPLE_ROWS`, what the export draws from.
        seed: Seed of the draw.
    """

    rows: int = Field(default=2000, ge=MIN_GOLDEN_SAMPLE_ROWS, le=1_000_000)
    seed: int = 0


class GateParams(_Strict):
    """The promotion gate: challenger vs champion on the same test split.

    Attributes:
        metric: Metric compared with the champion (higher is better).
        minimums: Absolute minimums on test metrics (any ranking metric name, e.g. ``roc_auc``,
            ``pr_auc``, ``pr_auc_lift``); all must hold, even for the first model.
        max_degradation: The challenger may trail the champion on ``metric`` by at most this.
        require_behaviour_checks: Refuse a model that fails a behaviour check.
    """

    metric: Literal["pr_auc", "roc_auc", "pr_auc_lift"] = "pr_auc"
    minimums: dict[str, float] = Field(
        default_factory=lambda: {"roc_auc": 0.65, "pr_auc_lift": 2.0}
    )
    max_degradation: float = Field(default=0.01, ge=0)
    require_behaviour_checks: bool = True


class RegistryParams(_Strict):
    """The registered model and its aliases (shared with the catalog through ``globals``)."""

    model_name: str = Field(default="churn_model", min_length=1)
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"


class EvaluationParams(_Strict):
    """All ``evaluation`` parameters."""

    business: BusinessParams = BusinessParams()
    threshold: ThresholdParams = ThresholdParams()
    calibration: CalibrationParams = CalibrationParams()
    segments: SegmentParams = SegmentParams()
    shap: ShapParams = ShapParams()
    behaviour: BehaviourParams = BehaviourParams()
    reference_profile: ProfileParams = ProfileParams()
    golden_sample: StoredGoldenSampleParams = StoredGoldenSampleParams()
    gate: GateParams = GateParams()
    registry: RegistryParams = RegistryParams()


class EvaluationSetup(_Strict):
    """Everything evaluation nodes are configured by, validated once by the first node.

    Attributes:
        evaluation: The ``evaluation`` parameters.
        training: The ``training`` parameters (label, key columns, seed, model logging).
        features: The feature contract list.
    """

    evaluation: EvaluationParams
    training: TrainingParams
    features: list[FeatureSpec]


def parse_evaluation_params(raw: dict[str, Any]) -> EvaluationParams:
    """Validate the raw ``evaluation`` parameter dictionary.

    Raises:
        EvaluationConfigError: A key is unknown, missing or out of range; the message lists
            each offending key path under ``evaluation``.
    """
    try:
        return EvaluationParams.model_validate(raw)
    except ValidationError as exc:
        problems = format_validation_error(exc, prefix="evaluation")
        raise EvaluationConfigError(f"invalid evaluation parameters: {problems}") from exc
