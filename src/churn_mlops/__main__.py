"""Entry point for running the project as a package (``python -m churn_mlops``)."""

from __future__ import annotations

import sys
from pathlib import Path

# Telemetry is already off: importing this module runs churn_mlops/__init__.py first.
from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project


def main(*args, **kwargs):
    """Run the Kedro project like ``kedro run`` does; ``churn-mlops byod ...`` runs the
    bring-your-own-data scaffold (``churn-mlops byod init --from FILE --env NAME``)."""
    if not args and sys.argv[1:2] == ["byod"]:
        from churn_mlops.cli import byod

        return byod.main(args=sys.argv[2:], prog_name="churn-mlops byod")
    package_name = Path(__file__).parent.name
    configure_project(package_name)
    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive
    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
