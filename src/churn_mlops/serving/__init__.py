"""Online serving of the churn model: a FastAPI app that runs from an exported bundle folder.

Importing this package is cheap on purpose: it pulls in neither Kedro, MLflow, SHAP nor Ibis,
so the serving container needs only the project wheel and the serving extras. Build the app
with :func:`churn_mlops.serving.app.create_app`, or run it with ``python -m churn_mlops.serving``.
"""

from __future__ import annotations
