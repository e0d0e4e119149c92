"""Project hooks: the Spark session of `--env spark`, garbage collection, and run lineage.

- :class:`SparkHooks` starts the SparkSession described by ``conf/spark/spark.yml``.
- :class:`LineageHooks` records input fingerprints, code commit and packages on the MLflow run.
- :class:`GarbageCollectionHooks` keeps CPython's cycle collector off the long-lived heap that
  Kedro, its plugins, MLflow and the libraries of the pipelines leave behind at start-up.
"""

from __future__ import annotations

import atexit
import gc
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
    from pyspark import SparkConf  # noqa: PLC0415 - pyspark is the optional `spark` extra
    from pyspark.sql import SparkSession  # noqa: PLC0415

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


def _freeze_heap_at_exit() -> None:
    """Skip the interpreter's last full collection: the operating system frees the memory anyway."""
    gc.freeze()


#: Allocation threshold of the collector's youngest generation while Kedro starts and runs.
#: CPython's default, 700, suits small heaps: a ``kedro run`` of the training pipelines ran ~800
#: collections while starting (6 of them full) and ~830 during the run, 1.0-1.2 s in all; with
#: 100,000 from the settings import on, ~200 (nearly all before it) and 4, 0.33 s in all
#: (benchmarks/README.md, "Training"). Only objects in reference cycles wait for a collection
#: (the rest are freed at once), so at most this many extra container objects stay allocated.
YOUNG_GENERATION_THRESHOLD = 100_000

_thresholds_before: tuple[int, ...] | None = None


def relax_garbage_collection() -> None:
    """Raise the youngest generation's threshold to :data:`YOUNG_GENERATION_THRESHOLD`.

    Called when ``settings.py`` is imported (before the CLI plugins load MLflow) and again before
    each run; :func:`restore_garbage_collection` puts the previous thresholds back. Idempotent.
    """
    global _thresholds_before  # noqa: PLW0603 - one process-wide setting, like gc's own
    current = gc.get_threshold()
    if _thresholds_before is None:
        _thresholds_before = current
    if current[0] < YOUNG_GENERATION_THRESHOLD:
        gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *current[1:])


def restore_garbage_collection() -> None:
    """Put back the thresholds :func:`relax_garbage_collection` found (no-op if it never ran)."""
    global _thresholds_before  # noqa: PLW0603
    if _thresholds_before is not None:
        gc.set_threshold(*_thresholds_before)
        _thresholds_before = None


class GarbageCollectionHooks:
    """Keep Python's cycle collector from rescanning objects that live as long as the process.

    By the time a pipeline starts, Kedro, kedro-mlflow, MLflow (SQLAlchemy, pydantic, its GenAI
    modules), scikit-learn, XGBoost, SHAP and matplotlib hold about 600,000 container
    objects — modules, classes, functions, config — that are never garbage. CPython's collector
    rescans all of them at every full collection, and once more when the interpreter exits: on
    the default data that is about 2 s of a 20 s training run (measured with ``gc.callbacks``;
    see benchmarks/README.md, "Training").

    ``after_context_created`` and ``before_pipeline_run`` move everything alive at that moment to
    the collector's permanent generation (:func:`gc.freeze`, made for exactly this); objects
    created afterwards are collected as usual. Until the run ends the youngest generation's
    threshold is :data:`YOUNG_GENERATION_THRESHOLD` (``settings.py`` raises it first, before the
    plugins load), so start-up and the run trigger a few collections instead of hundreds.
    ``after_pipeline_run`` and ``on_pipeline_error`` undo both, so a notebook that runs the
    session again still collects what earlier work left in reference cycles, as often as
    before. At exit the heap is frozen once more, which skips the interpreter's final full
    collection; Python never promises ``__del__`` for objects alive at exit, and every dataset
    closes its files itself.
    """

    def __init__(self) -> None:
        self._exit_registered = False

    def _freeze(self) -> None:
        relax_garbage_collection()
        gc.freeze()
        if not self._exit_registered:
            atexit.register(_freeze_heap_at_exit)
            self._exit_registered = True
        logger.debug("garbage collector: %d long-lived objects frozen", gc.get_freeze_count())

    @hook_impl
    def after_context_created(self) -> None:
        """Freeze what start-up built: plugins, MLflow, settings, the config loader."""
        self._freeze()

    @hook_impl
    def before_pipeline_run(self) -> None:
        """Freeze what came since: the catalog, the pipelines and the libraries they import."""
        self._freeze()

    @hook_impl
    def after_pipeline_run(self) -> None:
        """Hand the frozen objects back to the collector, at its previous thresholds."""
        gc.unfreeze()
        restore_garbage_collection()

    @hook_impl
    def on_pipeline_error(self) -> None:
        """Same as after a successful run."""
        gc.unfreeze()
        restore_garbage_collection()


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
        if table not in self._tables:
            return
        import mlflow  # noqa: PLC0415 - only tracked runs get here

        run = mlflow.active_run()
        if run is None:
            return
        done = self._logged.setdefault(run.info.run_id, set())
        if table in done:
            return
        if not done:
            _log_environment(mlflow)
        from churn_mlops.fingerprint import (  # noqa: PLC0415
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
    from churn_mlops.fingerprint import (  # noqa: PLC0415 - pandas only when tracking
        PACKAGE_LOCK_TAG,
        PACKAGES_ARTIFACT,
        installed_packages,
        packages_fingerprint,
    )
    from churn_mlops.provenance import git_revision  # noqa: PLC0415

    packages = installed_packages()
    mlflow.log_text("\n".join(packages) + "\n", PACKAGES_ARTIFACT)
    mlflow.set_tags(
        {"git_commit": git_revision(), PACKAGE_LOCK_TAG: packages_fingerprint(packages)}
    )


def _log_table_input(mlflow: Any, table: str, fingerprint: str, uri: str) -> None:
    import warnings  # noqa: PLC0415

    from mlflow.data.dataset_source_registry import resolve_dataset_source  # noqa: PLC0415
    from mlflow.data.meta_dataset import MetaDataset  # noqa: PLC0415

    from churn_mlops.fingerprint import FINGERPRINT_INPUT_TAG  # noqa: PLC0415

    with warnings.catch_warnings():
        # A local path matches MLflow's local-artifact source twice; either reading is right.
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(uri)
    dataset = MetaDataset(source, name=table, digest=fingerprint[:36])
    mlflow.log_input(dataset, context="input", tags={FINGERPRINT_INPUT_TAG: fingerprint})
