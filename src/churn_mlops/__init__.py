"""churn_mlops: a notebook-first Kedro project for the whole life of a customer-churn model."""

from __future__ import annotations

import os

# Kedro's telemetry plugin would otherwise try to reach the network from every entry point.
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
# MLflow reads DO_NOT_TRACK only when it is "true"; its own switch is explicit.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

__version__ = "0.1.0"
