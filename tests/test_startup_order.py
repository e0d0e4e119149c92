"""What the project's settings do before the kedro-mlflow plugin loads MLflow.

skops (the registry's model format) builds its table of trusted SciPy ufuncs by looking each
ufunc up in every loaded module, in import order, until it finds the one that defines it. When
SciPy is imported after MLflow's thousands of modules, that search cost 1.0-1.4 s of every
``kedro run`` that loads or logs a model; with SciPy near the front it costs about 0.3 s
(benchmarks/README.md, "Training"). These tests start the Kedro CLI the way ``kedro`` does, in
a fresh interpreter, and check the order, so removing or moving the import in settings.py fails.

The settings also raise the garbage collector's young-generation threshold before MLflow is
imported (``churn_mlops.hooks.relax_garbage_collection``): with CPython's default, importing
MLflow and the pipelines' libraries triggered about 800 collections, 6 of them full.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

_PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from kedro.framework.cli.cli import KedroCLI, _init_plugins

    import gc

    threshold_at_mlflow_import = []

    def audit(event, args):
        if event == "import" and args[0] == "mlflow" and not threshold_at_mlflow_import:
            threshold_at_mlflow_import.append(gc.get_threshold()[0])

    sys.addaudithook(audit)
    _init_plugins()
    KedroCLI(project_path=Path.cwd())  # bootstraps the project, then loads the CLI plugins
    order = list(sys.modules)
    position = {name: order.index(name) for name in sys.argv[1:] if name in sys.modules}
    print(json.dumps({
        "loaded": len(order),
        "position": position,
        "threshold_at_mlflow_import": threshold_at_mlflow_import,
    }))
    """
)


@pytest.fixture(scope="module")
def cli_start() -> dict[str, Any]:
    """Where the modules that matter sit in ``sys.modules`` once the CLI has started (one run)."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, "scipy.special._ufuncs", "mlflow", "kedro_mlflow"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_scipy_ufuncs_are_loaded_before_mlflow_when_the_cli_starts(cli_start):
    position = cli_start["position"]
    assert "mlflow" in position, "the kedro-mlflow CLI plugin no longer loads MLflow at start-up"
    assert "scipy.special._ufuncs" in position, "settings.py no longer imports scipy.special"
    assert position["scipy.special._ufuncs"] < position["mlflow"], (
        "scipy.special is imported after MLflow: skops' trusted-type table will search "
        f"thousands of modules per SciPy ufunc ({cli_start})"
    )


def test_skops_finds_each_scipy_ufunc_early_in_the_module_search(cli_start):
    """What the order buys: skops' lookup for a SciPy ufunc stops within the first modules."""
    position = cli_start["position"].get("scipy.special._ufuncs")
    loaded = cli_start["loaded"]
    assert position is not None, "scipy.special is not loaded when the CLI starts"
    assert position < loaded / 2, f"scipy.special._ufuncs is module {position} of {loaded}"


def test_the_collector_is_relaxed_before_mlflow_is_imported(cli_start):
    from churn_mlops.hooks import YOUNG_GENERATION_THRESHOLD

    assert cli_start["threshold_at_mlflow_import"] == [YOUNG_GENERATION_THRESHOLD], (
        "settings.py must call relax_garbage_collection() before the CLI plugins load MLflow"
    )
