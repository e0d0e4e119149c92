"""The routes of the real serving app, read from the FastAPI object (no server, no model load)."""

from __future__ import annotations

from functools import cache

import pytest


@cache
def _routes() -> frozenset[tuple[str, str]]:
    from churn_mlops.serving.app import create_app

    app = create_app()
    return frozenset(
        (method, route.path)
        for route in app.routes
        for method in (getattr(route, "methods", None) or {"GET"})
    )


def app_routes() -> frozenset[tuple[str, str]]:
    """``{(method, path)}`` of every route of ``churn_mlops.serving.app.create_app()``.

    Skips the calling test, naming the reason, when the serving app cannot be imported.
    """
    try:
        return _routes()
    except ImportError as error:  # the serving extras are not installed
        pytest.skip(f"the serving app cannot be imported: {error}")
