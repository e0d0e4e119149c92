"""Project hooks: :class:`SparkHooks` starts the SparkSession of ``conf/spark/spark.yml``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
