"""Project settings: config loader, hooks and session store (see Kedro's settings docs)."""

from __future__ import annotations

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from churn_mlops.hooks import SparkHooks

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
        "mlflow": ["mlflow*", "mlflow*/**"],
    },
    # `oc.env` everywhere (not only in credentials) so that a deployment can point the
    # tracking URI or the DuckDB memory limit at its own values without editing conf/base.
    "custom_resolvers": {"oc.env": oc.env},
}

# Starts the SparkSession in environments that have a spark.yml (conf/spark); a no-op elsewhere.
HOOKS = (SparkHooks(),)
