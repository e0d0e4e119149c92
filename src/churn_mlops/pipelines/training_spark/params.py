"""The ``training_spark`` parameters."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DistributedTrainingParams(BaseModel):
    """The ``training_spark`` parameters.

    Attributes:
        num_workers: XGBoost workers, i.e. Spark tasks that train together in one barrier
            stage; at most the task slots free at once (``local[2]``: 2; a cluster: executors x
            cores per executor / ``spark.task.cpus``).
        device: ``cpu``, or ``cuda`` on GPU executors.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_workers: int = Field(default=2, ge=1)
    device: Literal["cpu", "cuda"] = "cpu"
