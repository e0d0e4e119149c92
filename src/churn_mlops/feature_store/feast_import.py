"""Import Feast through here: ``import churn_mlops.feature_store.feast_import`` before ``feast``.

feast.metrics (imported lazily by Feast's online reads and materialization) sets
PROMETHEUS_MULTIPROC_DIR and PROMETHEUS_MULTIPROCESS_DIR for its own gunicorn feature server,
which we never run. Left set, they switch every prometheus_client imported after them (and every
child process) to multiprocess mode, where all registries in a process share one set of counter
files: the serving app's and the ingestion consumer's metrics would count each other's traffic.
Importing this module imports feast.metrics once, after prometheus_client, and takes its
variables back.
"""

from __future__ import annotations

import os

MULTIPROCESS_VARIABLES = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")


def _import_feast_metrics_without_multiprocess_mode() -> None:
    before = {name: os.environ.get(name) for name in MULTIPROCESS_VARIABLES}
    import prometheus_client.values  # noqa: F401, I001 - single-process value class first

    import feast.metrics  # noqa: F401

    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)


_import_feast_metrics_without_multiprocess_mode()
