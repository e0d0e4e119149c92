"""The event contract: one JSON object per raw-table row, keyed by customer id.

The fields, types and row rules of an event are those of its raw table in
``parameters_data_processing.yml`` (``DataProcessingParams.tables``): the stream has no schema of
its own. A message is checked in two steps:

1. its shape, message by message (`EventDecoder`): valid JSON object, key = ``customer_id``,
   no unknown field, every non-nullable field present, each value of the declared JSON type;
2. the data_processing row rules that would fail a whole ``kedro run`` (hard ``nullable``,
   ``min``, ``max``, ``categories``, ``required_when``), on a micro-batch, with the very
   rules data_processing compiles (`HardRuleChecker`).

Soft rules, the period and the table-level rules (unique keys, foreign keys) stay with
data_processing, which quarantines or rejects those rows exactly as it does for files.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import duckdb
import ibis
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from churn_mlops.ingestion.errors import InvalidEvent
from churn_mlops.pipelines.data_processing.params import (
    TABLES,
    DataProcessingParams,
    TableSchema,
)
from churn_mlops.pipelines.data_processing.rules import (
    HIDDEN_PREFIX,
    RowRule,
    compile_rules,
    prepare_table,
)

KEY_COLUMN = "customer_id"
"""The message key of every topic: the customer id, as decimal text."""

ROW_COLUMN = f"{HIDDEN_PREFIX}stream_row"
"""Position of a row in its micro-batch while the row rules run (never landed)."""

_BATCH_TABLE = f"{HIDDEN_PREFIX}stream_batch"

#: Rules the consumer leaves to data_processing: they need the whole table or the period.
_TABLE_LEVEL_RULES = frozenset({"unique", "foreign_key", "in_period", "before_period_end"})

_ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    # Microseconds: what DuckDB and Spark read (conf/spark/catalog_raw.yml).
    "timestamp": pa.timestamp("us"),
}


def event_time_column(spec: TableSchema, table: str) -> str:
    """The column that dates a row (its landing partition): the timestamp checked against the
    period (``signup_date``, ``event_time``, ``churn_date`` by default)."""
    stamps = [name for name, column in spec.columns.items() if column.dtype == "timestamp"]
    dated = [name for name in stamps if spec.columns[name].period is not None]
    if not (dated or stamps):
        raise ValueError(
            f"tables.{table} declares no timestamp column; the stream needs one to date events"
        )
    return (dated or stamps)[0]


def arrow_schema(spec: TableSchema) -> pa.Schema:
    """The Parquet schema of a landed table: the declared columns, in order."""
    return pa.schema([(name, _ARROW_TYPES[c.dtype]) for name, c in spec.columns.items()])


# --------------------------------------------------------------------------------------------
# Encoding (producer side)
# --------------------------------------------------------------------------------------------


def _json_column(column: pd.Series, dtype: str) -> list[Any]:
    """One column as JSON-ready Python values (ISO text for timestamps, None for missing)."""
    if dtype == "timestamp":
        stamps = pd.to_datetime(column)
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return text.astype(object).where(stamps.notna(), None).tolist()
    values = column.astype(object).where(column.notna(), None)
    return [v.item() if hasattr(v, "item") else v for v in values.tolist()]


def encode_rows(frame: pd.DataFrame, spec: TableSchema) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` messages for the rows of a raw table, in the frame's order.

    Timestamps are ISO 8601 text without offset (UTC), missing values are ``null``; only the
    declared columns are sent.
    """
    columns = [name for name in spec.columns if name in frame.columns]
    values = {name: _json_column(frame[name], spec.columns[name].dtype) for name in columns}
    for i in range(len(frame)):
        record = {name: values[name][i] for name in columns}
        yield str(record[KEY_COLUMN]).encode(), orjson.dumps(record)


# --------------------------------------------------------------------------------------------
# Decoding (consumer side), message by message
# --------------------------------------------------------------------------------------------


def _parse_timestamp(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return parsed


class EventDecoder:
    """Decodes and shape-checks the messages of one table's topic."""

    def __init__(self, table: str, spec: TableSchema) -> None:
        self.table = table
        self.spec = spec
        self.columns = list(spec.columns)
        self._parse_options = pj.ParseOptions(
            explicit_schema=arrow_schema(spec), unexpected_field_behavior="error"
        )
        self._declared = frozenset(self.columns)
        self._required = frozenset(n for n, c in spec.columns.items() if not c.nullable)
        self._dtypes = {n: c.dtype for n, c in spec.columns.items()}

    def decode(self, key: bytes | None, value: bytes | None) -> dict[str, Any]:
        """The row of one message, with Python values of the declared types.

        Raises:
            InvalidEvent: the message is not a JSON object of this table's contract; the
                reason names the field, the value and what was expected.
        """
        if not value:
            raise InvalidEvent("json", "empty message")
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent("json", f"not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise InvalidEvent("json", f"expected a JSON object, got {type(record).__name__}")
        unknown = record.keys() - self._declared
        if unknown:
            raise InvalidEvent(
                "unknown_field",
                f"fields {sorted(unknown)} are not columns of {self.table} "
                f"(declared: {self.columns})",
            )
        missing = self._required - record.keys()
        if missing:
            raise InvalidEvent("required", f"missing required fields {sorted(missing)}")
        row = {name: self._convert(name, record.get(name)) for name in self.columns}
        expected_key = str(row.get(KEY_COLUMN))
        if key is None or key.decode("utf-8", "replace") != expected_key:
            shown = None if key is None else key.decode("utf-8", "replace")
            raise InvalidEvent(
                "key", f"message key {shown!r} is not the event's customer_id {expected_key!r}"
            )
        return row

    def decode_batch(
        self, keys: list[bytes | None], values: list[bytes | None]
    ) -> tuple[pa.Table, list[int], list[tuple[int, InvalidEvent]]]:
        """Decode a micro-batch: ``(valid rows, their positions, [(position, error)])``.

        A batch of well-formed messages is parsed at once by Arrow's JSON reader; a batch with
        any message the reader refuses (or one whose key or required fields are off) is decoded
        message by message with `decode`, which names the broken rule. Both give the same rows.
        """
        fast = self._decode_all_at_once(keys, values)
        if fast is not None:
            return fast, list(range(fast.num_rows)), []
        rows: list[dict[str, Any]] = []
        kept: list[int] = []
        refused: list[tuple[int, InvalidEvent]] = []
        for position, (key, value) in enumerate(zip(keys, values, strict=True)):
            try:
                rows.append(self.decode(key, value))
                kept.append(position)
            except InvalidEvent as exc:
                refused.append((position, exc))
        return rows_to_arrow(rows, self.spec), kept, refused

    def _decode_all_at_once(
        self, keys: list[bytes | None], values: list[bytes | None]
    ) -> pa.Table | None:
        # Each message must parse as one line: an empty message, or one holding a line break,
        # changes the row count (or the parse fails) and the batch goes message by message.
        if not values or None in values or None in keys:
            return None
        try:
            table = pj.read_json(io.BytesIO(b"\n".join(values)), parse_options=self._parse_options)  # type: ignore[arg-type]
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        if table.num_rows != len(values):
            return None
        table = table.select(self.columns)
        if any(table[name].null_count for name in self._required):
            return None  # the per-message path tells a missing field from a null
        if KEY_COLUMN in self._declared:
            expected = pc.cast(table[KEY_COLUMN], pa.string())
            actual = pa.array(keys, pa.binary()).cast(pa.string())
            if not pc.all(pc.equal(expected, actual)).as_py():
                return None
        return table

    def _convert(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        dtype = self._dtypes[name]
        ok: bool
        if dtype == "int64":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif dtype == "float64":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok:
                value = float(value)
        elif dtype == "string":
            ok = isinstance(value, str)
        elif dtype == "boolean":
            ok = isinstance(value, bool)
        else:  # timestamp
            ok = isinstance(value, str)
            if ok:
                try:
                    value = _parse_timestamp(value)
                except ValueError:
                    ok = False
        if not ok:
            expected = "ISO 8601 timestamp text" if dtype == "timestamp" else dtype
            raise InvalidEvent(
                f"{name}.dtype", f"field {name!r}: expected {expected}, got {value!r}"
            )
        return value


def rows_to_arrow(rows: list[dict[str, Any]], spec: TableSchema) -> pa.Table:
    """Decoded rows as an Arrow table of the landed schema."""
    schema = arrow_schema(spec)
    return pa.Table.from_pydict({name: [r[name] for r in rows] for name in schema.names}, schema)


# --------------------------------------------------------------------------------------------
# The data_processing row rules, on a micro-batch
# --------------------------------------------------------------------------------------------


class HardRuleChecker:
    """Runs data_processing's hard row rules over a micro-batch of decoded rows.

    The rules are compiled by `churn_mlops.pipelines.data_processing.rules.compile_rules`, so
    an event is refused here exactly when the same row would fail
    ``kedro run --pipeline data_processing``. The query is built once per table and schema and
    then run by an in-process DuckDB on each batch (Arrow in, no copy).
    """

    def __init__(self, params: DataProcessingParams) -> None:
        self.params = params
        self._duckdb = duckdb.connect(config={"threads": 1})
        self._queries: dict[tuple[str, pa.Schema], tuple[str, list[RowRule]]] = {}

    def _query(self, table: str, schema: pa.Schema) -> tuple[str, list[RowRule]]:
        cached = self._queries.get((table, schema))
        if cached is not None:
            return cached
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; expected one of {list(TABLES)}")
        # Every row is already unique by its position: dropping exact duplicates is work for
        # nothing here (data_processing does it on the whole table).
        spec = self.params.tables[table].model_copy(update={"drop_exact_duplicates": False})
        with_row = schema.append(pa.field(ROW_COLUMN, pa.int64()))
        data = ibis.table(ibis.Schema.from_pyarrow(with_row), name=_BATCH_TABLE)
        prepared = prepare_table(
            data,
            spec,
            table_name=table,
            category_normalisation=self.params.category_normalisation,
            boolean_text=self.params.boolean_text,
        )
        rules = [
            rule
            for rule in compile_rules(prepared, spec, self.params)
            if not rule.soft and rule.rule not in _TABLE_LEVEL_RULES
        ]
        sql = ""
        if rules:
            flags = [rule.violation(prepared).name(f"rule_{i}") for i, rule in enumerate(rules)]
            values = [
                rule.value(prepared).cast("string").name(f"value_{i}")
                for i, rule in enumerate(rules)
            ]
            broken = prepared.select(prepared[ROW_COLUMN], *flags, *values).filter(ibis.or_(*flags))
            sql = str(ibis.to_sql(broken, dialect="duckdb"))
        self._queries[(table, schema)] = (sql, rules)
        return sql, rules

    def failures(self, table: str, batch: pa.Table) -> dict[int, InvalidEvent]:
        """``{row position: first broken rule}`` for the rows of ``batch`` that break one."""
        if batch.num_rows == 0:
            return {}
        sql, rules = self._query(table, batch.schema)
        if not rules:
            return {}
        data = batch.append_column(ROW_COLUMN, pa.array(range(batch.num_rows), pa.int64()))
        self._duckdb.register(_BATCH_TABLE, data)
        try:
            result = self._duckdb.execute(sql).to_arrow_table().to_pylist()
        finally:
            self._duckdb.unregister(_BATCH_TABLE)
        found: dict[int, InvalidEvent] = {}
        for record in result:
            i = next(i for i in range(len(rules)) if record[f"rule_{i}"])
            rule = rules[i]
            found[record[ROW_COLUMN]] = InvalidEvent(
                rule.rule_id,
                f"field {rule.column!r}: {record[f'value_{i}']!r} breaks {rule.rule_id} "
                f"(expected {rule.expected})",
            )
        return found
