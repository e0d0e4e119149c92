"""Prometheus metrics of the serving app; names and labels follow docs/architecture.md.

Each app gets its own ``CollectorRegistry``, so several apps (tests, a reload) never share
counters. HTTP metrics are recorded by a pure ASGI middleware (no per-request task or copy of
the body); per-feature PSI is computed when Prometheus scrapes, from the sliding window the
request path fills.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from churn_mlops.serving.model_store import LoadedModel

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
OTHER_ROUTE = "other"
FEATURE_AGE_BUCKETS = tuple(86400.0 * d for d in (1, 7, 14, 31, 45, 62, 92, 183, 365, 730))


class _PsiCollector(Collector):
    """``churn_feature_psi{feature}``: PSI of the serving model's live window, at scrape time."""

    def __init__(self, current: Callable[[], LoadedModel | None]) -> None:
        self._current = current

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "churn_feature_psi",
            "Population stability index of live inputs vs the reference profile (sliding window)",
            labels=["feature"],
        )
        model = self._current()
        if model is not None:
            for feature, value in model.drift.psi().items():
                family.add_metric([feature], value)
        yield family

    def describe(self) -> Iterable[GaugeMetricFamily]:
        yield GaugeMetricFamily("churn_feature_psi", "PSI per feature", labels=["feature"])


class AppMetrics:
    """The app's metrics and registry.

    Args:
        current: Returns the model serving now (for labels and PSI).
    """

    def __init__(self, current: Callable[[], LoadedModel | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._current = current
        self.requests = Counter(
            "churn_http_requests",
            "HTTP requests by route, method, status and model version",
            ["route", "method", "status", "model_version"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "churn_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "churn_http_requests_in_flight", "HTTP requests being served", registry=self.registry
        )
        self.score = Histogram(
            "churn_prediction_score",
            "Churn probabilities returned",
            ["model_version"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "churn_predictions",
            "Rows scored by model version and label",
            ["model_version", "label"],
            registry=self.registry,
        )
        self.model_ready = Gauge(
            "churn_model_ready", "1 once a model is loaded and warmed", registry=self.registry
        )
        self.model_info = Gauge(
            "churn_model_info",
            "Always 1; labels name the model serving now",
            ["model_name", "model_version"],
            registry=self.registry,
        )
        self.customer_lookups = Counter(
            "churn_customer_lookups",
            "Customers looked up in the online feature store, by result (found, not_found, stale)",
            ["result"],
            registry=self.registry,
        )
        self.feature_age = Histogram(
            "churn_feature_age_seconds",
            "Age of the online feature rows served (now - their snapshot time)",
            buckets=FEATURE_AGE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_PsiCollector(current))
        self._request_children: dict[tuple[str, str, int, str], Any] = {}
        self._duration_children: dict[str, Any] = {}
        self._score_children: dict[str, Any] = {}
        self._prediction_children: dict[tuple[str, int], Any] = {}

    def on_swap(self, old: LoadedModel | None, new: LoadedModel) -> None:
        """Point the model gauges at the model that now serves."""
        if old is not None:
            try:
                self.model_info.remove(old.metadata.model_name, old.version)
            except KeyError:
                pass
        self.model_info.labels(new.metadata.model_name, new.version).set(1)
        self.model_ready.set(1)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished HTTP request and its latency."""
        model = self._current()
        version = model.version if model is not None else "none"
        key = (route, method, status, version)
        child = self._request_children.get(key)
        if child is None:
            child = self.requests.labels(route, method, str(status), version)
            self._request_children[key] = child
        child.inc()
        hist = self._duration_children.get(route)
        if hist is None:
            hist = self._duration_children[route] = self.duration.labels(route)
        hist.observe(seconds)

    def observe_predictions(self, version: str, scores: Any, labels: Any) -> None:
        """Record the scores and labels of one request."""
        hist = self._score_children.get(version)
        if hist is None:
            hist = self._score_children[version] = self.score.labels(version)
        positives = 0
        for s in scores:
            hist.observe(float(s))
        for label in labels:
            positives += int(label)
        for label, count in ((1, positives), (0, len(labels) - positives)):
            if count:
                key = (version, label)
                child = self._prediction_children.get(key)
                if child is None:
                    child = self.predictions.labels(version, str(label))
                    self._prediction_children[key] = child
                child.inc(count)

    def observe_customer_lookups(self, found: int, not_found: int, stale: int, ages: Any) -> None:
        """Count one batch of customer lookups and the ages of the rows found."""
        for result, count in (("found", found), ("not_found", not_found), ("stale", stale)):
            if count:
                self.customer_lookups.labels(result).inc(count)
        for age in ages:
            self.feature_age.observe(age)


class ObservabilityMiddleware:
    """Pure ASGI middleware: in-flight gauge, latency histogram and request counter.

    Args:
        app: The wrapped ASGI app.
        metrics: Where to record.
        routes: Known paths; any other path is counted as route ``other`` so that scans of
            random URLs cannot blow up label cardinality.
    """

    def __init__(self, app: Any, metrics: AppMetrics, routes: Iterable[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = frozenset(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in self.routes else OTHER_ROUTE
        status = 500
        start = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_flight = self.metrics.in_flight
        in_flight.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            in_flight.dec()
            self.metrics.observe_request(
                route, scope["method"], status, time.perf_counter() - start
            )
