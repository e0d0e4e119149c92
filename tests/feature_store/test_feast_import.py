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


def test_importing_mlflow_tracking_does_not_import_feast() -> None:
    """Every `kedro` command imports MLflow's tracking client; Feast must not ride along.

    Feast 0.67 registers an `mlflow.request_header_provider` entry point that MLflow loads at
    that import, and loading it imports all of Feast: 3-4 s on every command, and Feast's
    PROMETHEUS_MULTIPROC_DIR side effect without the project's guard. pyproject.toml holds Feast
    below 0.67 for that; this fails if an upgrade brings the entry point back.
    """
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mlflow.tracking.request_header.registry; "
            "print(sorted(m for m in sys.modules if m == 'feast' or m.startswith('feast.')))",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout[-2000:]
