"""An Ibis Parquet dataset stored as a folder partitioned by month (``<column>=YYYY-MM/``).

Large event tables are kept one folder per month so that a cluster writes them in parallel,
later jobs can read or rewrite a range of months, and object stores never hold one huge file.
The partition column is derived from a timestamp column on save and dropped again on load, so
the table that nodes see has exactly the columns of the data contract (docs/data_model.md).
Works on the DuckDB and PySpark Ibis backends (see docs/scaling.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis.expr.types as ir
from kedro.io import DatasetError
from kedro_datasets.ibis import FileDataset


class MonthPartitionedParquetDataset(FileDataset):
    """Parquet folder partitioned by the month of ``time_column``; loads as the plain table.

    Example (``conf/spark/catalog_data_processing.yml``)::

        events_primary:
          type: churn_mlops.datasets.partitioned_parquet.MonthPartitionedParquetDataset
          filepath: data/03_primary/events_primary
          time_column: event_time
          partition_column: event_month
          table_name: events_primary
          connection: ${globals:table_engine}

    Saving replaces the whole folder (Spark ``mode=overwrite``, DuckDB ``OVERWRITE``). Loading
    reads every partition and drops ``partition_column``; a folder written by another tool with
    the same ``<partition_column>=<value>/`` layout loads the same way.
    """

    #: Writer keyword arguments per Ibis backend: partition column and overwrite.
    _WRITE_ARGS = {
        "pyspark": lambda column: {"partitionBy": [column], "mode": "overwrite"},
        "duckdb": lambda column: {"partition_by": column, "overwrite": True},
    }

    def __init__(
        self,
        filepath: str,
        *,
        time_column: str,
        partition_column: str = "month",
        **kwargs: Any,
    ) -> None:
        """Create the dataset.

        Args:
            filepath: The folder holding the partitions.
            time_column: Timestamp column whose month (``YYYY-MM``) names each partition.
            partition_column: Name of the derived partition column (must not be a column of
                the table).
            **kwargs: Passed to :class:`kedro_datasets.ibis.FileDataset` (``table_name``,
                ``connection``, ``load_args``, ``save_args``, ``metadata``, ...);
                ``file_format`` is always ``parquet``.
        """
        if kwargs.pop("file_format", "parquet") != "parquet":
            raise DatasetError(
                f"MonthPartitionedParquetDataset at {filepath!r} writes Parquet only; "
                "remove file_format or set it to 'parquet'"
            )
        super().__init__(filepath, file_format="parquet", **kwargs)
        self._time_column = time_column
        self._partition_column = partition_column

    def _backend_name(self) -> str:
        name = self._connection_config["backend"]
        if name not in self._WRITE_ARGS:
            raise DatasetError(
                f"MonthPartitionedParquetDataset at {self._filepath}: backend {name!r} is not "
                f"supported; expected one of {sorted(self._WRITE_ARGS)}"
            )
        return name

    def load(self) -> ir.Table:
        """Read every partition and return the table without the partition column."""
        path = self._fs_prefix + str(self._get_load_path())
        if self._backend_name() == "duckdb":
            table = self.connection.read_parquet(
                f"{path}/**/*.parquet",
                table_name=self._table_name,
                hive_partitioning=True,
                **self._load_args,
            )
        else:
            table = self.connection.read_parquet(
                path, table_name=self._table_name, **self._load_args
            )
        if self._partition_column in table.columns:
            table = table.drop(self._partition_column)
        return table

    def save(self, data: ir.Table) -> None:
        """Write ``data`` partitioned by the month of ``time_column``, replacing the folder."""
        problems = []
        if self._time_column not in data.columns:
            problems.append(f"time column {self._time_column!r} is missing")
        if self._partition_column in data.columns:
            problems.append(f"partition column {self._partition_column!r} already exists")
        if problems:
            raise DatasetError(
                f"Cannot save {self._table_name or str(self._filepath)!r} partitioned by "
                f"month: {'; '.join(problems)}; the table has {list(data.columns)}"
            )
        month = data[self._time_column].cast("timestamp").strftime("%Y-%m")
        partitioned = data.mutate(**{self._partition_column: month})
        save_args = {**self._WRITE_ARGS[self._backend_name()](self._partition_column)}
        save_args.update(self._save_args)
        path = self._fs_prefix + str(self._get_save_path())
        if not self._fs_prefix:  # only local folders need their parent created
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.connection.to_parquet(partitioned, path, **save_args)
        if not self._fs_prefix:
            # DuckDB's OVERWRITE deletes the old files but keeps their (now empty) folders.
            for folder in Path(path).glob(f"{self._partition_column}=*"):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()

    def _describe(self) -> dict[str, Any]:
        return {
            **super()._describe(),
            "time_column": self._time_column,
            "partition_column": self._partition_column,
        }
