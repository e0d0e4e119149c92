"""Feast must not switch the process's Prometheus metrics to multiprocess mode.

feast.metrics sets PROMETHEUS_MULTIPROC_DIR at import for its own feature server; with it set,
every registry in the process shares one set of counter files, so the serving app's and the
ingestion consumer's counters counted other apps' traffic. Each case runs in a fresh
interpreter: the variable is read when prometheus_client is first imported.
"""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import os
{first_import}
import feast.metrics
from prometheus_client import CollectorRegistry, Counter, generate_latest
left = sorted(name for name in os.environ if name.startswith("PROMETHEUS_MULTIPROC"))
counts = []
for _ in range(2):
    registry = CollectorRegistry()
    Counter("churn_demo", "demo", registry=registry).inc()
    counts.append(generate_latest(registry).decode().count("churn_demo_total 1.0"))
print(left, counts)
"""


def _run(first_import: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(first_import=first_import)],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if "PROMETHEUS" not in k},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_feast_through_the_project_leaves_each_registry_its_own_counters() -> None:
    assert _run("import churn_mlops.feature_store.feast_import") == "[] [1, 1]"


def test_feast_alone_would_share_counters_between_registries() -> None:
    """The control: what the project's import prevents still happens without it."""
    left, counts = _run("").split(" [", 1)
    assert "PROMETHEUS_MULTIPROC_DIR" in left and counts != "1, 1]", (left, counts)


def test_what_every_kedro_command_imports_does_not_import_feast() -> None:
    """Every `kedro` command loads kedro-mlflow's CLI and hooks; Feast must not ride along.

    Feast 0.67 registers an `mlflow.request_header_provider` entry point that MLflow loads when
    its tracking client is imported, and loading it imports all of Feast: 3-5 s on every
    command, and Feast's PROMETHEUS_MULTIPROC_DIR side effect without the project's guard.
    pyproject.toml holds Feast below 0.67 for that; this fails if an upgrade brings it back.
    """
    script = (
        "import sys, kedro_mlflow.framework.cli.cli, kedro_mlflow.framework.hooks; "
        "print('mlflow.tracking.request_header.registry' in sys.modules, "
        "sorted(m for m in sys.modules if m == 'feast' or m.startswith('feast.')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    providers_loaded, feast_modules = proc.stdout.strip().splitlines()[-1].split(" ", 1)
    # MLflow loads its request-header plugins there; if it stops doing so, this test must be
    # revisited rather than pass without having loaded any plugin.
    assert providers_loaded == "True", proc.stdout[-2000:]
    assert feast_modules == "[]", feast_modules[:2000]
