"""Log a served-shape scikit-learn ``Pipeline`` to MLflow with signature and input example.

Shared by the candidate-runs and the registration datasets so every logged model is saved the
same way (serialization format, trusted types, pinned requirements).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pandas as pd

#: Distributions the sklearn flavor needs to load a served model; pinned to this environment.
_RUNTIME_DISTRIBUTIONS = ("scikit-learn", "xgboost", "numpy", "pandas", "scipy")


def pinned_requirements(serialization_format: str) -> list[str]:
    """``name==version`` for each runtime distribution installed here.

    Passing explicit requirements skips MLflow's requirement inference, which re-imports the
    model in a subprocess and costs several seconds per logged model.
    """
    names = [
        *_RUNTIME_DISTRIBUTIONS,
        serialization_format if serialization_format != "pickle" else "cloudpickle",
    ]
    pins = []
    for name in dict.fromkeys(names):
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


def log_sklearn_model(
    model: Any,
    input_example: pd.DataFrame,
    logging_cfg: dict[str, Any],
    *,
    name: str = "model",
    metadata: dict[str, Any] | None = None,
) -> Any:
    """Log ``model`` to the active MLflow run with the sklearn flavor.

    The signature is inferred from ``input_example`` and ``predict_proba`` (what the pyfunc
    flavor calls, so ``mlflow models serve`` returns probabilities).

    Args:
        model: A fitted ``Pipeline`` whose ``predict_proba`` gives the churn score.
        input_example: A few feature rows.
        logging_cfg: ``serialization_format`` and ``skops_trusted_types``.
        name: Name of the logged model inside the run.
        metadata: Free-form metadata stored in the MLmodel file.

    Returns:
        MLflow's ``ModelInfo`` (``model_uri``, ``model_id``, ``run_id``).
    """
    import mlflow.sklearn
    from mlflow.models import infer_signature

    serialization_format = logging_cfg.get("serialization_format", "skops")
    extra: dict[str, Any] = {}
    if serialization_format == "skops":
        extra["skops_trusted_types"] = list(logging_cfg.get("skops_trusted_types") or [])
    # Integer feature columns are declared as doubles: a caller may send 3.0 for a count, and
    # MLflow's schema enforcement would reject it (or a null) for an integer column.
    example = input_example.astype(
        {
            c: "float64"
            for c in input_example.columns
            if pd.api.types.is_integer_dtype(input_example[c])
        }
    )
    signature = infer_signature(example, model.predict_proba(example))
    return mlflow.sklearn.log_model(
        model,
        name=name,
        signature=signature,
        input_example=example,
        serialization_format=serialization_format,
        pip_requirements=pinned_requirements(serialization_format),
        pyfunc_predict_fn="predict_proba",
        metadata=metadata,
        **extra,
    )
