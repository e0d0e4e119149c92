"""Project settings: config loader, hooks and session store (see Kedro's settings docs)."""

from __future__ import annotations

from omegaconf.resolvers import oc

from churn_mlops.config_loader import ChurnConfigLoader
from churn_mlops.hooks import LineageHooks, SparkHooks
from churn_mlops.tracking_store import ProjectStoreHooks
from churn_mlops.warning_filters import ignore_known_warnings, quiet_artifact_downloads

# Kedro imports the settings before its plugins load MLflow, so the filters cover every command.
ignore_known_warnings()
quiet_artifact_downloads()

# Parameters of an environment are deep-merged into conf/base and resolved afterwards
# (config_loader.py), so an environment lists only the keys it changes.
CONFIG_LOADER_CLASS = ChurnConfigLoader
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
# ProjectStoreHooks: `${project_path:}` in mlflow.yml, a copied store moved home, run names.
# LineageHooks records input fingerprints, commit and packages on each tracked run.
HOOKS = (ProjectStoreHooks(), SparkHooks(), LineageHooks())
