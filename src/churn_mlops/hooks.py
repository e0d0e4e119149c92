"""Project hooks: the Spark session of `--env spark` and run lineage.

- :class:`SparkHooks` starts the SparkSession described by ``conf/spark/spark.yml``.
- :class:`LineageHooks` records input fingerprints, code commit and packages on the MLflow run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl

if TYPE_CHECKING:
    from kedro.framework.context import KedroContext
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

#: Config loader key and file patterns of the Spark configuration (``spark.yml`` in an env).
SPARK_CONFIG_KEY = "spark"
SPARK_CONFIG_PATTERNS = ["spark*", "spark*/**"]


class SparkConfigError(ValueError):
    """``spark.yml`` is not a flat mapping of Spark property names to scalar values."""


def spark_properties(config: Mapping[str, Any]) -> dict[str, str]:
    """Turn the ``spark.yml`` mapping into Spark property strings.

    Booleans become ``"true"``/``"false"`` (Spark's spelling); other scalars their ``str``.

    Args:
        config: ``{"spark.master": "local[2]", "spark.ui.enabled": False, ...}``.

    Returns:
        The same properties as strings, in the file's order.

    Raises:
        SparkConfigError: A key does not start with ``spark.`` or a value is not a scalar.
    """
    properties: dict[str, str] = {}
    for key, value in config.items():
        if not str(key).startswith("spark."):
            raise SparkConfigError(
                f"spark.yml key {key!r} is not a Spark property; expected a name starting "
                "with 'spark.' such as 'spark.master' or 'spark.sql.shuffle.partitions'"
            )
        if isinstance(value, Mapping | list | tuple) or value is None:
            raise SparkConfigError(
                f"spark.yml key {key!r} has value {value!r}; expected a string, number or "
                "boolean (write nested Spark properties with dots, e.g. "
                "'spark.executor.memory: 4g')"
            )
        properties[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return properties


def build_spark_session(properties: Mapping[str, str]) -> SparkSession:
    """Get or create the process's SparkSession with ``properties`` applied.

    When a session already runs (a notebook, a test), Spark keeps its static properties
    (master, driver memory, ...) and applies only the runtime ones (``spark.sql.*``).
    """
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    conf = SparkConf().setAll(list(properties.items()))
    session = SparkSession.builder.config(conf=conf).getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


class SparkHooks:
    """Start the SparkSession that ``backend: pyspark`` Ibis connections and Spark datasets use.

    Active only in an environment that has a ``spark.yml`` (``conf/spark``); elsewhere it does
    nothing, so the default environment never imports pyspark. The Ibis PySpark backend
    (``ibis.pyspark.connect()``) and ``spark.SparkDatasetV2`` both pick up this session through
    ``SparkSession.builder.getOrCreate()``.
    """

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Read ``spark.yml`` of the active environment and start the session from it."""
        loader = context.config_loader
        # The settings may not declare the pattern; Spark config is meaningless without it.
        loader.config_patterns.setdefault(SPARK_CONFIG_KEY, SPARK_CONFIG_PATTERNS)
        try:
            config = loader[SPARK_CONFIG_KEY]
        except MissingConfigException:
            return
        if not config:
            return
        properties = spark_properties(config)
        session = build_spark_session(properties)
        logger.info(
            "SparkSession %s on %s (Spark %s)",
            session.sparkContext.appName,
            session.sparkContext.master,
            session.version,
        )


#: Catalog tables whose content fingerprint each tracked run records (names before any ``@``).
FINGERPRINTED_TABLES = ("customers", "events", "churn_records", "model_input_table")


class LineageHooks:
    """Record on the active MLflow run what a model version is built from.

    When a run loads one of :data:`FINGERPRINTED_TABLES`, its content fingerprint
    (:func:`churn_mlops.fingerprint.fingerprint_table`) is logged as an MLflow dataset input
    (``mlflow.log_input``; the UI lists it under "Datasets used"), once per table and run; the
    first time, the run also gets the source commit (``git_commit``), the installed packages
    (``provenance/packages.txt``) and their hash (``package_lock``). The registered model
    version points at this run, and ``kedro models rebuild`` compares all of it. Nothing is
    logged when no MLflow run is active (tracking disabled for the pipeline).
    """

    def __init__(self, tables: tuple[str, ...] = FINGERPRINTED_TABLES) -> None:
        self._tables = set(tables)
        self._catalog: Any = None
        self._logged: dict[str, set[str]] = {}

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        """Keep the catalog, to name each table's file in its dataset input."""
        self._catalog = catalog

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        """Fingerprint a listed table once per run and log it as a dataset input."""
        table = dataset_name.split("@", 1)[0]
        if table not in self._tables or data is None:
            return  # not a fingerprinted table, or an optional one left out (no events table)
        import mlflow

        run = mlflow.active_run()
        if run is None:
            return
        done = self._logged.setdefault(run.info.run_id, set())
        if table in done:
            return
        if not done:
            _log_environment(mlflow)
        from churn_mlops.fingerprint import (
            fingerprint_parquet,
            fingerprint_table,
        )

        path = self._filepath(dataset_name)
        fingerprint = None
        if hasattr(data, "to_pyarrow") and Path(path).exists():
            # A lazy (Ibis) table is fingerprinted from its Parquet file batch by batch rather
            # than pulled into memory whole: the same fingerprint, in bounded memory.
            try:
                fingerprint = fingerprint_parquet(path)
            except (OSError, ValueError):  # not Parquet: read it through the engine
                fingerprint = None
        if fingerprint is None:
            fingerprint = fingerprint_table(data)
        _log_table_input(mlflow, table, fingerprint, path)
        done.add(table)
        logger.info("Input %s: content fingerprint %s", table, fingerprint[:16])

    def _filepath(self, dataset_name: str) -> str:
        try:
            described = self._catalog.get(dataset_name)._describe()
        except Exception:  # noqa: BLE001 - the path is informative only
            return dataset_name
        return str(described.get("filepath") or described.get("path") or dataset_name)


def _log_environment(mlflow: Any) -> None:
    from churn_mlops.fingerprint import (
        PACKAGE_LOCK_TAG,
        PACKAGES_ARTIFACT,
        installed_packages,
        packages_fingerprint,
    )
    from churn_mlops.provenance import git_revision

    packages = installed_packages()
    mlflow.log_text("\n".join(packages) + "\n", PACKAGES_ARTIFACT)
    mlflow.set_tags(
        {"git_commit": git_revision(), PACKAGE_LOCK_TAG: packages_fingerprint(packages)}
    )


def _log_table_input(mlflow: Any, table: str, fingerprint: str, uri: str) -> None:
    import warnings

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from churn_mlops.fingerprint import FINGERPRINT_INPUT_TAG

    with warnings.catch_warnings():
        # A local path matches MLflow's local-artifact source twice; either reading is right.
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(uri)
    dataset = MetaDataset(source, name=table, digest=fingerprint[:36])
    mlflow.log_input(dataset, context="input", tags={FINGERPRINT_INPUT_TAG: fingerprint})
