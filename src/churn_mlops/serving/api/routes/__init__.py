"""One ``APIRouter`` per file; :data:`ROUTERS` lists them in the order the app mounts them."""

from __future__ import annotations

from churn_mlops.serving.api.routes import (
    admin,
    customers,
    explain,
    feedback,
    health,
    metrics,
    model,
    predict,
)

ROUTERS = (
    predict.router,
    explain.router,
    customers.router,
    model.router,
    feedback.router,
    admin.router,
    health.router,
    metrics.router,
)
