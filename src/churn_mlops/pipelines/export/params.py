"""Validated form of the ``export`` parameters (``conf/base/parameters_export.yml``)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from churn_mlops.contracts.base import StrictModel as _Strict
from churn_mlops.contracts.errors import format_validation_error
from churn_mlops.contracts.feature_store import OnlineStore
from churn_mlops.release.errors import ExportConfigError


class GoldenSampleParams(_Strict):
    """Test-split rows the exported app must score exactly like the evaluation pipeline.

    Attributes:
        rows: Rows drawn from the test split (all of them when it is smaller).
        seed: Seed of the draw, so the same version always gets the same sample.
        tolerance: Largest allowed absolute probability difference (the parity gate).
        outside_schema: What to do with test rows the app's request validation would refuse
            (a value outside the declared ``min``/``max`` or categories of the model metadata):
            ``exclude`` them from the sample with a warning (counted in the manifest), or
            ``fail`` the export.
    """

    rows: int = Field(default=200, ge=1, le=100_000)
    seed: int = 0
    tolerance: float = Field(default=1e-6, gt=0, le=0.01)
    outside_schema: Literal["exclude", "fail"] = "exclude"


class ContainerParams(_Strict):
    """The build arguments of the serving image (``deploy/docker/serving/Dockerfile``).

    The ``HEALTHCHECK`` timing is fixed in that file (Docker expands no build argument
    there); ``docker run --health-interval ...`` changes it.

    Attributes:
        base_image: Default of the ``BASE_IMAGE`` build argument.
        python_version: ``major.minor`` of the base image's Python; the export must run on
            the same one, since the wheelhouse holds wheels for the exporting interpreter.
        image_repository: Repository the rendered ``k8s/`` manifests pull; the tag is the
            bundle name (ops re-render for their registry with
            ``python -m churn_mlops.release.deploy``).
        uid: User and group id of the app (the Kubernetes pods force the same).
        port: ``CHURN_PORT`` inside the image.
        model_dir: Folder of the model files inside the image (``CHURN_MODEL_DIR``).
        prediction_log_dir: Default ``CHURN_PREDICTION_LOG_DIR`` inside the image.
    """

    base_image: str = Field(default="python:3.11-slim", min_length=1)
    python_version: str = "3.11"
    image_repository: str = Field(default="churn-serving", min_length=1)
    uid: int = Field(default=10001, ge=1, le=2**31 - 1)
    port: int = Field(default=8080, ge=1, le=65535)
    model_dir: str = "/opt/churn/bundle"
    prediction_log_dir: str = "/var/lib/churn/predictions"

    @field_validator("python_version")
    @classmethod
    def _major_minor(cls, value: str) -> str:
        if not re.fullmatch(r"3\.\d{1,2}", value):
            raise ValueError(f"python_version {value!r} must be 'major.minor', e.g. '3.11'")
        return value

    @field_validator("model_dir", "prediction_log_dir")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or any(c in value for c in " \"'$\\"):
            raise ValueError(f"{value!r} must be an absolute path without spaces or quotes")
        return value


class RequirementParams(_Strict):
    """What the serving app needs, pinned at export time to the installed versions.

    Attributes:
        extras: Optional-dependency groups of the project's ``pyproject.toml``.
        distributions: Further distributions: the model's runtime libraries and whatever the
            app imports outside the extras.
        substitutions: Distribution -> drop-in twin installed instead, at the same version.
        exclude: Distributions left out of the closure.
    """

    extras: list[str] = Field(default_factory=lambda: ["serving"])
    distributions: list[str] = Field(default_factory=list)
    substitutions: dict[str, str] = Field(default_factory=dict)
    exclude: list[str] = Field(default_factory=list)


class FeatureStoreParams(_Strict):
    """The feature store a bundle's deployment reads for ``/v1/customers/*``.

    Attributes:
        online_store: Online store type the serving pods read (``redis``: the Kubernetes
            component ``deploy/k8s/components/feature-store``; ``sqlite``: one machine).
            Recorded in ``manifest.json`` with the feature views the model needs.
        distributions: What the image adds to ``requirements`` when the model records feature
            views (it is served by customer id): Feast with the stores its
            ``feature_store*.yaml`` name, pinned like the rest.
    """

    online_store: OnlineStore = "redis"
    distributions: list[str] = Field(default_factory=list)


class ExportParams(_Strict):
    """All ``export`` parameters.

    Attributes:
        output_dir: Folder that receives the bundles.
        bundle_name: Folder name of a bundle; ``{model_name}`` and ``{model_version}`` are
            filled in.
    """

    output_dir: str = Field(default="dist", min_length=1)
    bundle_name: str = "{model_name}-v{model_version}"
    golden_sample: GoldenSampleParams = GoldenSampleParams()
    container: ContainerParams = ContainerParams()
    requirements: RequirementParams = RequirementParams()
    feature_store: FeatureStoreParams = FeatureStoreParams()

    @field_validator("bundle_name")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        try:
            name = value.format(model_name="m", model_version="1")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"bundle_name {value!r} may only use {{model_name}} and {{model_version}}"
            ) from exc
        if "{model_version}" not in value or "/" in name or name.startswith("."):
            raise ValueError(
                f"bundle_name {value!r} must contain {{model_version}} and name one folder"
            )
        return value


def parse_export_params(raw: dict[str, Any]) -> ExportParams:
    """Validate the raw ``export`` parameter dictionary.

    Raises:
        ExportConfigError: a key is unknown, missing or out of range; the message lists each
            offending key path under ``export``.
    """
    try:
        return ExportParams.model_validate(raw)
    except ValidationError as exc:
        problems = format_validation_error(exc, prefix="export")
        raise ExportConfigError(f"invalid export parameters: {problems}") from exc
