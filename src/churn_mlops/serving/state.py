"""The per-app state the routes share: settings, model store, metrics, auth, limits, sinks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from churn_mlops.serving.batching import MicroBatcher
from churn_mlops.serving.metrics import AppMetrics
from churn_mlops.serving.middleware import Admission
from churn_mlops.serving.model_store import ModelStore
from churn_mlops.serving.prediction_log import JsonLinesSink
from churn_mlops.serving.security import RateLimiter, TokenVerifier
from churn_mlops.serving.settings import ServingSettings


@dataclass
class AppState:
    """Objects built once per app by :func:`churn_mlops.serving.app.create_app`."""

    settings: ServingSettings
    store: ModelStore
    metrics: AppMetrics
    verifier: TokenVerifier
    predictions: JsonLinesSink | None
    feedback: JsonLinesSink | None
    admission: Admission
    rate_limiter: RateLimiter
    batcher: MicroBatcher
    """Scoring calls of small requests (``/v1/predict``, ``/v1/customers/*``)."""
    lookup_batcher: MicroBatcher
    """Online-store reads of small by-id requests (``/v1/customers/*``)."""
    lookup_executor: ThreadPoolExecutor
    """Threads for online reads of stores without async reads (``CHURN_FEATURE_LOOKUP_THREADS``):
    a few, not the 40 of the shared pool, so that concurrent by-id requests queue for one
    SQLite connection instead of contending for it and the GIL."""
