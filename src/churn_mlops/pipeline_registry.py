"""Project pipelines: every folder under ``pipelines/`` is registered under its own name."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# The default run goes from raw data to a registered champion; simulation is explicit so that
# a user who brings their own tables never overwrites them with simulated ones by accident.
DEFAULT_PIPELINE_ORDER = (
    "simulation",
    "data_processing",
    "feature_engineering",
    "training",
    "evaluation",
)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects; ``__default__`` chains the
        stages that take raw data to an evaluated, registered model.
    """
    # Each node carries its pipeline's name as a tag, so `kedro run --tags training` and the
    # kedro-viz tag filter work across the default pipeline too.
    pipelines = {
        name: Pipeline(pipeline, tags=name)
        for name, pipeline in find_pipelines(raise_errors=True).items()
    }
    default = Pipeline([])
    for name in DEFAULT_PIPELINE_ORDER:
        if name in pipelines:
            default += pipelines[name]
    pipelines["__default__"] = default
    return pipelines
