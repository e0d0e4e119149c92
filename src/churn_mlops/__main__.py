"""Entry point for running the project as a package (``python -m churn_mlops``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
# MLflow reads DO_NOT_TRACK only when it is "true"; its own switch is explicit.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from kedro.framework.cli.utils import find_run_command  # noqa: E402
from kedro.framework.project import configure_project  # noqa: E402


def main(*args, **kwargs):
    """Run the Kedro project like ``kedro run`` does."""
    package_name = Path(__file__).parent.name
    configure_project(package_name)
    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive
    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
