"""The FastAPI application factory; the model is loaded in ``lifespan``, never at import.

Run it with ``python -m churn_mlops.serving`` (see ``docs/serving.md``), or build it in a test
with ``create_app(ServingSettings(...))``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from churn_mlops import __version__
from churn_mlops.serving.api.routes import ROUTERS, customers
from churn_mlops.serving.api.routes.customers import CUSTOMER_PATHS, open_customer_features
from churn_mlops.serving.batching import MicroBatcher
from churn_mlops.serving.feature_check import check_feature_repository
from churn_mlops.serving.metrics import AppMetrics, ObservabilityMiddleware
from churn_mlops.serving.middleware import Admission, RequestGuardMiddleware
from churn_mlops.serving.model_store import LoadedModel, ModelStore
from churn_mlops.serving.prediction_log import JsonLinesSink
from churn_mlops.serving.schemas import clean_error_list
from churn_mlops.serving.security import RateLimiter, TokenVerifier
from churn_mlops.serving.settings import ServingSettings, get_settings
from churn_mlops.serving.state import AppState

if TYPE_CHECKING:  # Feast is imported only when a repository is configured
    from churn_mlops.feature_store.repository import FeatureRepository

logger = logging.getLogger(__name__)

LOG_FLUSH_INTERVAL_S = 0.25
"""How often buffered prediction-log records are written to disk (by a background thread,
so that neither rendering a few hundred records nor a slow disk stalls the event loop)."""

RELOAD_WAIT_ON_SHUTDOWN_S = 30.0

SCORING_PATHS = frozenset({"/v1/predict", "/v1/explain", *CUSTOMER_PATHS})
"""Routes whose requests count as scoring work for load shedding."""


def _validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    # Keep the field path, message and type; drop the value the caller sent ("input") and
    # anything derived from it ("ctx", "url"), and cap how many errors are listed.
    state = request.app.state.churn
    detail = clean_error_list(exc.errors(), limit=state.settings.max_errors_reported)
    return JSONResponse(status_code=422, content={"detail": detail})


def _http_error_handler(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse(
        status_code=exc.status_code,
        content={"detail": exc.detail},
        headers=getattr(exc, "headers", None),
    )


def _unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return JSONResponse(status_code=500, content={"detail": "internal server error"})


def _openapi_with_request_models(app: FastAPI, state: AppState) -> dict[str, Any]:
    """OpenAPI schema with the request models generated for the serving model.

    Cached per model: a hot reload may change the request models, so a new model gets a new
    schema.
    """
    model = state.store.current
    if app.openapi_schema is not None and app.state.openapi_model is model:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            # FastAPI documents its own 422 shape; ours is {"detail": [{loc, msg, type}]}.
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "invalid body: field paths and messages, never the values",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
    if model is not None:
        for request_model in (model.schemas.predict, model.schemas.explain):
            generated = request_model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(generated.pop("$defs", {}))
            components[request_model.__name__] = generated
    else:
        for name in ("PredictRequest", "ExplainRequest"):
            components[name] = {"type": "object", "description": "available once a model loads"}
    app.openapi_schema = schema
    app.state.openapi_model = model
    return schema


def _log_sink(settings: ServingSettings, prefix: str) -> JsonLinesSink | None:
    if not settings.prediction_log_enabled:
        return None
    return JsonLinesSink(
        settings.prediction_log_dir,
        prefix,
        max_bytes=settings.prediction_log_max_bytes,
        max_files=settings.prediction_log_max_files,
    )


def _build_state(
    settings: ServingSettings, customer_features: FeatureRepository | None = None
) -> AppState:
    """The objects the routes share; the model store starts empty (loaded in ``lifespan``).

    A hot-reloaded bundle must pass the same feature-repository check as the first one.
    """
    store_ref: list[ModelStore] = []
    metrics = AppMetrics(lambda: store_ref[0].current if store_ref else None)

    def on_swap(old: LoadedModel | None, new: LoadedModel) -> None:
        metrics.on_swap(old, new)
        # The loaded libraries and model are ~200k long-lived objects: a full garbage
        # collection walking them pauses the event loop for tens to hundreds of ms (the p99).
        # Freezing moves them out of the collector's sight; it is cheap and never frees.
        gc.freeze()

    def admit(model: LoadedModel) -> None:
        check_feature_repository(customer_features, model)

    store = ModelStore(settings, on_swap=on_swap, admit=admit)
    store_ref.append(store)
    return AppState(
        settings=settings,
        store=store,
        metrics=metrics,
        verifier=TokenVerifier(settings),
        predictions=_log_sink(settings, "predictions"),
        feedback=_log_sink(settings, "feedback"),
        admission=Admission(
            max_requests=settings.max_requests_in_flight,
            max_rows=settings.max_rows_in_flight,
            retry_after_s=settings.retry_after_s,
        ),
        rate_limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
        batcher=MicroBatcher(settings.batch_max_rows),
        lookup_batcher=MicroBatcher(settings.batch_max_rows, name="feature lookup"),
        lookup_executor=ThreadPoolExecutor(
            settings.feature_lookup_threads, thread_name_prefix="churn-feature-lookup"
        ),
    )


def _lifespan(state: AppState) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Load the model and open the feature store at start; flush and close at shutdown."""
    settings, store = state.settings, state.store

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if store.current is None:
            store.load(settings.model_dir)
            gc.collect()  # not serving yet: drop load-time garbage before freezing the rest
            gc.freeze()
        check_feature_repository(app.state.customer_features, store.current)  # or refuse to start
        if app.state.customer_features is not None:
            try:  # open Feast and its registry now, not on the first request
                app.state.customer_features.warm()
            except Exception as exc:  # noqa: BLE001 - /v1/predict serves without it
                logger.error(
                    "the feature store in %s cannot be read: %s", settings.feature_repo, exc
                )
        stop_flushing = threading.Event()
        flusher = threading.Thread(
            target=_flush_periodically,
            args=(state, stop_flushing),
            name="churn-log-flush",
            daemon=True,
        )
        flusher.start()
        try:
            yield
        finally:
            await state.batcher.close()
            await state.lookup_batcher.close()
            stop_flushing.set()
            flusher.join(timeout=10)
            store.wait_for_reload(RELOAD_WAIT_ON_SHUTDOWN_S)
            for sink in (state.predictions, state.feedback):
                if sink is not None:
                    sink.close()
            state.metrics.model_ready.set(0)

    return lifespan


def _include_routes(app: FastAPI, state: AppState) -> dict[str, set[str]]:
    """Add the routers, the OpenAPI hook and the error handlers; return methods per path."""
    for router in ROUTERS:
        # Without CHURN_FEATURE_REPO the by-id routes can only answer 503: not documented.
        documented = router is not customers.router or app.state.customer_features is not None
        app.include_router(router, include_in_schema=documented)
    app.openapi = lambda: _openapi_with_request_models(app, state)  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, _validation_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error_handler)
    allowed: dict[str, set[str]] = {}
    for route in [*app.routes, *(r for router in ROUTERS for r in router.routes)]:
        path, methods = getattr(route, "path", ""), getattr(route, "methods", None)
        if path and methods:
            allowed.setdefault(path, set()).update(methods)
    return allowed


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    """Build the serving app; nothing is loaded until the app starts (``lifespan``).

    Args:
        settings: Explicit settings (tests); default: :func:`get_settings` (environment).

    Raises:
        SettingsError: the JWT key cannot be read or is too short.
    """
    settings = settings or get_settings()
    customer_features = open_customer_features(settings)  # /v1/customers/*
    state = _build_state(settings, customer_features)
    docs = settings.docs_enabled
    app = FastAPI(
        title="churn-mlops serving",
        version=__version__,
        description="Churn probabilities, explanations and feedback for the champion model.",
        lifespan=_lifespan(state),
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.churn = state
    app.state.openapi_model = None
    app.state.customer_features = customer_features
    allowed = _include_routes(app, state)
    # Added last = outermost: shed, refused and every other answer are counted.
    app.add_middleware(
        RequestGuardMiddleware,
        allowed=allowed,
        max_bytes=settings.max_body_bytes,
        admission=state.admission,
        scoring_paths=SCORING_PATHS,
        timeout_s=settings.request_timeout_s,
    )
    app.add_middleware(ObservabilityMiddleware, metrics=state.metrics, routes=set(allowed))
    return app


def _flush_periodically(state: AppState, stop: threading.Event) -> None:
    while not stop.wait(LOG_FLUSH_INTERVAL_S):
        for sink in (state.predictions, state.feedback):
            if sink is not None:
                try:
                    sink.flush()
                except Exception:
                    logger.exception("flushing the %s log failed", sink.prefix)
