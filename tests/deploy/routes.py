"""The routes of the real serving app, read from the FastAPI object (no server, no model load)."""

from __future__ import annotations

import tempfile
from functools import cache


@cache
def _routes() -> frozenset[tuple[str, str]]:
    from churn_mlops.serving.app import create_app
    from churn_mlops.serving.settings import ServingSettings

    # The model loads in lifespan, which never runs here: any folder will do.
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            ServingSettings(model_dir=folder, auth_enabled=False, prediction_log_enabled=False)
        )
    return frozenset(_walk(app.routes, ""))


def _walk(routes, prefix: str):
    """Yield ``(method, path)``; FastAPI >= 0.16x keeps included routers as branch objects."""
    for route in routes:
        if hasattr(route, "original_router"):
            context = getattr(route, "include_context", None)
            yield from _walk(route.original_router.routes, prefix + getattr(context, "prefix", ""))
        elif hasattr(route, "path"):
            for method in getattr(route, "methods", None) or {"GET"}:
                yield method, prefix + route.path


def app_routes() -> frozenset[tuple[str, str]]:
    """``{(method, path)}`` of every route of ``churn_mlops.serving.app.create_app``.

    The serving extra is part of ``make install-dev``: an import error fails the test.
    """
    return _routes()
