"""Ibis building blocks of data_processing: map a raw table onto the contract, then its rules.

Every function here builds lazy Ibis expressions and executes nothing, so the same code runs on
DuckDB (default) and on PySpark (``--env spark``). Each row rule is defined once, as an Ibis
predicate that is true where a row breaks it; the pandera schema, the failure counts and examples,
the quarantine table and the primary-table filter are all built from those predicates.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as idt
import ibis.expr.types as ir
import pandera.ibis as pa

from churn_mlops.pipelines.data_processing.errors import DataProcessingConfigError
from churn_mlops.pipelines.data_processing.params import (
    BooleanText,
    ColumnSchema,
    DataProcessingParams,
    Period,
    TableSchema,
)

HIDDEN_PREFIX = "_dp_"
"""Prefix of helper columns that preparation adds and cleaning drops."""

_SEPARATORS = re.compile(r"[\s\-]+")
_SEPARATORS_SQL = r"[\s\-]+"
_INT64_LIMIT = 9.0e18


def ibis_dtype(dtype: str) -> idt.DataType:
    """The Ibis type of a declared dtype; timestamps are microseconds, naive (DuckDB and Spark)."""
    return idt.Timestamp(scale=6) if dtype == "timestamp" else ibis.dtype(dtype)


def source_column(column: str) -> str:
    """The hidden column keeping a converted column's original value."""
    return f"{HIDDEN_PREFIX}source_{column}"


def fk_flag_column(column: str) -> str:
    """The hidden column that says whether a foreign key was found in its parent table."""
    return f"{HIDDEN_PREFIX}fk_found_{column}"


def normalise_text(value: str, how: str) -> str:
    """Normalise one category value in Python exactly as `normalise_column` does in Ibis."""
    if how == "none":
        return value
    value = value.strip().lower()
    return _SEPARATORS.sub("_", value) if how == "snake_case" else value


def normalise_column(column: ir.StringValue, how: str) -> ir.StringValue:
    """Strip, lower-case and (for ``snake_case``) turn runs of spaces and hyphens into ``_``."""
    if how == "none":
        return column
    column = column.strip().lower()
    return column.re_replace(_SEPARATORS_SQL, "_") if how == "snake_case" else column


# --------------------------------------------------------------------------------------------
# Preparation: rename, fill, normalise, convert compatible types, drop exact duplicates.
# --------------------------------------------------------------------------------------------


def _apply_value_map(
    column: ir.StringValue, mapping: dict[str, str] | None, how: str
) -> ir.StringValue:
    if not mapping:
        return column
    normalised = {normalise_text(k, how): v for k, v in mapping.items()}
    return column.substitute(normalised)


def _convert_column(
    column: ir.Column,
    spec: ColumnSchema,
    *,
    value_map: dict[str, str] | None,
    how: str,
    boolean_text: BooleanText,
) -> tuple[ir.Value, ir.Value | None]:
    """Convert one column to its declared type when that loses nothing.

    Returns:
        The converted column (unchanged when the type is incompatible, so that validation
        reports it) and, for conversions that can fail row by row (whole floats to integers,
        text to booleans), the original values to keep for the error message.
    """
    actual = column.type()
    declared = spec.dtype
    if declared == "string":
        text = column if actual.is_string() else column.cast("string")
        if spec.categories is not None or value_map:
            text = _apply_value_map(normalise_column(text, how), value_map, how)
        return text, None
    if declared == "boolean":
        if actual.is_boolean():
            return column, None
        if actual.is_string() or actual.is_integer():
            text = column.cast("string") if actual.is_integer() else column
            text = _apply_value_map(normalise_column(text, "lower"), value_map, "lower")
            true_values = [normalise_text(v, "lower") for v in boolean_text.true]
            false_values = [normalise_text(v, "lower") for v in boolean_text.false]
            converted = ibis.cases(
                (text.isin(true_values), True),
                (text.isin(false_values), False),
                else_=ibis.null("boolean"),
            )
            return converted, text
        return column, None
    if declared == "int64":
        if actual.is_integer():
            return column.cast("int64"), None
        if actual.is_floating() or actual.is_decimal():
            number = column.cast("float64")
            unreadable = (
                number.isnan()
                | number.isinf()
                | (number != number.floor())
                | (number.abs() >= _INT64_LIMIT)
            )
            converted = ibis.cases(
                (number.isnull(), ibis.null("int64")),
                (unreadable, ibis.null("int64")),
                else_=number.cast("int64"),
            )
            return converted, number
        return column, None
    if declared == "float64":
        if actual.is_numeric():
            return column.cast("float64"), None
        return column, None
    if declared == "timestamp":
        if actual.is_date() or (actual.is_timestamp() and actual.timezone is None):
            return column.cast(ibis_dtype("timestamp")), None
        return column, None
    raise DataProcessingConfigError(f"unsupported dtype {declared!r}")  # pragma: no cover


def prepare_table(
    table: ir.Table,
    spec: TableSchema,
    *,
    table_name: str,
    category_normalisation: str,
    boolean_text: BooleanText,
) -> ir.Table:
    """Map a raw table onto the contract's names, values and types (lazily).

    Steps: rename (``spec.rename``), add constant columns for absent ones (``fill_missing``),
    normalise category text and apply ``value_maps``, convert compatible types, drop exact
    duplicate rows. Columns that cannot be converted keep their type so that validation names
    them; columns not declared are kept until cleaning selects the declared ones.

    Raises:
        DataProcessingConfigError: ``rename`` would create a column name that already exists.
    """
    renames = {
        ours: theirs
        for theirs, ours in spec.rename.items()
        if theirs in table.columns and theirs != ours
    }
    clashes = sorted(ours for ours in renames if ours in table.columns and ours not in spec.rename)
    if clashes:
        raise DataProcessingConfigError(
            f"tables.{table_name}.rename maps onto columns that already exist in the data: "
            f"{clashes}; rename or drop those first (mapping: {spec.rename})"
        )
    if renames:
        table = table.rename(renames)
    # An explicit CAST: a bare literal 40 would be written as a 32-bit integer by DuckDB.
    fills = {
        name: ibis.literal(value).cast(ibis_dtype(spec.columns[name].dtype))
        for name, value in spec.fill_missing.items()
        if name not in table.columns
    }
    if fills:
        table = table.mutate(**fills)

    converted: dict[str, ir.Value] = {}
    for name, column_spec in spec.columns.items():
        if name not in table.columns:
            continue
        new, source = _convert_column(
            table[name],
            column_spec,
            value_map=spec.value_maps.get(name),
            how=category_normalisation,
            boolean_text=boolean_text,
        )
        converted[name] = new
        if source is not None:
            converted[source_column(name)] = source
    if converted:
        table = table.mutate(**converted)
    if spec.drop_exact_duplicates:
        table = table.distinct()
    return table


def annotate_foreign_keys(
    table: ir.Table, spec: TableSchema, parents: dict[str, ir.Table]
) -> ir.Table:
    """Add, for each foreign key, a hidden flag that is true when the key exists in its parent.

    A left join on the parent's distinct keys (rather than ``IN (subquery)``) keeps this
    portable to Spark and never multiplies rows. Keys whose columns are missing or of another
    type are skipped: validation reports those columns already.
    """
    for fk in spec.foreign_keys:
        parent = parents.get(fk.parent_table)
        if parent is None or fk.column not in table.columns:
            continue
        if fk.parent_column not in parent.columns:
            continue
        child_type = table[fk.column].type()
        parent_type = parent[fk.parent_column].type()
        if not _comparable(child_type, parent_type):
            continue
        key_name = f"{HIDDEN_PREFIX}fk_key"
        keys = parent.select(**{key_name: parent[fk.parent_column]}).distinct()
        joined = table.left_join(keys, table[fk.column] == keys[key_name])
        table = joined.mutate(**{fk_flag_column(fk.column): joined[key_name].notnull()}).drop(
            key_name
        )
    return table


def _comparable(left: idt.DataType, right: idt.DataType) -> bool:
    if left.is_numeric() and right.is_numeric():
        return True
    return left.copy(nullable=True) == right.copy(nullable=True)


# --------------------------------------------------------------------------------------------
# Row rules.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowRule:
    """One rule checked row by row.

    Attributes:
        column: The column (``a+b`` for a composite unique key).
        rule: Rule name (``min``, ``categories``, ``foreign_key``, ...).
        expected: What a valid value looks like, for messages.
        soft: True when failing rows are quarantined rather than failing the run.
        violation: Builds a boolean expression, never null, true where a row breaks the rule.
        value: Builds the offending value quoted in messages and in the quarantine table.
        scope: ``column`` (a pandera column check), ``table`` (a pandera table check),
            ``nullable`` / ``unique`` (pandera built-ins) or ``foreign_key`` (an Ibis join).
    """

    column: str
    rule: str
    expected: str
    soft: bool
    violation: Callable[[ir.Table], ir.BooleanValue]
    value: Callable[[ir.Table], ir.Value]
    scope: str

    @property
    def rule_id(self) -> str:
        """``<column>.<rule>``, the name used in ``soft_rules`` and in pandera checks."""
        return f"{self.column}.{self.rule}"


def _timestamp(day: dt.date) -> ir.TimestampScalar:
    return ibis.literal(dt.datetime.combine(day, dt.time()), type="timestamp")


def _is_null(column: ir.Value) -> ir.BooleanValue:
    missing = column.isnull()
    if column.type().is_floating():
        missing = missing | column.isnan().fill_null(True)
    return missing


def has_declared_type(table: ir.Table, name: str, spec: ColumnSchema) -> bool:
    """Whether ``table[name]`` exists and already has the declared type.

    Nullability is ignored, and so is the precision of a naive timestamp: Spark reports its
    timestamps without one (``scale=None``) where DuckDB reports microseconds (``scale=6``).
    """
    if name not in table.columns:
        return False
    actual, declared = table[name].type(), ibis_dtype(spec.dtype)
    if declared.is_timestamp():
        return (
            actual.is_timestamp()
            and actual.timezone is None
            and actual.scale in (None, declared.scale)
        )
    return actual.copy(nullable=True) == declared


def _column_rules(
    name: str, spec: ColumnSchema, table: TableSchema, period: Period, *, converted: bool
) -> list[RowRule]:
    def col(t: ir.Table) -> ir.Value:
        return t[name]

    def make(rule: str, expected: str, scope: str, violation) -> RowRule:
        return RowRule(
            column=name,
            rule=rule,
            expected=expected,
            soft=table.is_soft(name, rule),
            violation=lambda t, _v=violation: _v(t).fill_null(False),
            value=col,
            scope=scope,
        )

    rules: list[RowRule] = []
    if not spec.nullable:
        source = source_column(name)
        if converted:
            # A value that could not be converted is reported by its own rule (integral,
            # boolean_text), not a second time as a null; pandera sees the source column
            # only in a table-level check.
            rules.append(
                make(
                    "nullable",
                    "not null",
                    "table",
                    lambda t: _is_null(t[name]) & _is_null(t[source]),
                )
            )
        else:
            rules.append(make("nullable", "not null", "nullable", lambda t: _is_null(t[name])))
    if spec.min is not None:
        low = spec.min
        rules.append(make("min", f">= {low:g}", "column", lambda t: t[name] < low))
    if spec.max is not None:
        high = spec.max
        rules.append(make("max", f"<= {high:g}", "column", lambda t: t[name] > high))
    if spec.categories is not None:
        allowed = list(spec.categories)
        rules.append(
            make(
                "categories",
                f"one of {allowed}",
                "column",
                lambda t: t[name].notnull() & ~t[name].isin(allowed),
            )
        )
    start, end = _timestamp(period.start_date), _timestamp(period.end)
    if spec.period == "within":
        rules.append(
            make(
                "in_period",
                f"in [{period.start_date}, {period.end})",
                "column",
                lambda t: (t[name] < start) | (t[name] >= end),
            )
        )
    if spec.period == "before_end":
        rules.append(
            make(
                "before_period_end",
                f"before {period.end}",
                "column",
                lambda t: t[name] >= end,
            )
        )
    return rules


def compile_rules(
    table: ir.Table, spec: TableSchema, params: DataProcessingParams
) -> list[RowRule]:
    """Every row rule that can be evaluated on ``table`` (a prepared, annotated table).

    Rules on columns that are missing or have the wrong type are left out: the structural
    failure (``required`` or ``dtype``) is reported instead of a cascade of errors.
    """
    rules: list[RowRule] = []
    for name, column_spec in spec.columns.items():
        if not has_declared_type(table, name, column_spec):
            continue
        rules.extend(
            _column_rules(
                name,
                column_spec,
                spec,
                params.period,
                converted=source_column(name) in table.columns,
            )
        )
        rules.extend(_required_when_rule(table, name, column_spec, spec))
        rules.extend(_conversion_rule(table, name, column_spec, params.boolean_text))
    rules.extend(_unique_rule(table, spec))
    rules.extend(_reference_rules(table, spec))
    return rules


def _required_when_rule(
    table: ir.Table, name: str, column_spec: ColumnSchema, spec: TableSchema
) -> list[RowRule]:
    """``name`` must not be null where another column holds one of the listed values."""
    conditions = column_spec.required_when
    if not conditions or not all(other in table.columns for other in conditions):
        return []

    def required_when(t: ir.Table) -> ir.BooleanValue:
        applies = ibis.or_(*(t[o].isin(list(v)) for o, v in conditions.items()))
        return (_is_null(t[name]) & applies).fill_null(False)

    return [
        RowRule(
            column=name,
            rule="required_when",
            expected="not null when "
            + " or ".join(f"{o} in {list(v)}" for o, v in conditions.items()),
            soft=spec.is_soft(name, "required_when"),
            violation=required_when,
            value=lambda t: t[name],
            scope="table",
        )
    ]


def _conversion_rule(
    table: ir.Table, name: str, column_spec: ColumnSchema, boolean_text: BooleanText
) -> list[RowRule]:
    """A converted column's source value must convert (a whole number, a known truth value)."""
    source = source_column(name)
    if source not in table.columns:
        return []
    rule = "boolean_text" if column_spec.dtype == "boolean" else "integral"
    expected = (
        f"one of {boolean_text.true + boolean_text.false}"
        if rule == "boolean_text"
        else "a whole number"
    )
    return [
        RowRule(
            column=name,
            rule=rule,
            expected=expected,
            soft=False,
            violation=lambda t: (~_is_null(t[source]) & t[name].isnull()).fill_null(False),
            value=lambda t: t[source],
            scope="table",
        )
    ]


def _unique_rule(table: ir.Table, spec: TableSchema) -> list[RowRule]:
    """The unique key, when all its columns are present."""
    key = [k for k in spec.unique_key if k in table.columns]
    if not key or len(key) != len(spec.unique_key):
        return []
    return [
        RowRule(
            column=spec.unique_key_name,
            rule="unique",
            expected="unique",
            soft=spec.is_soft(spec.unique_key_name, "unique"),
            violation=lambda t: t.count().over(group_by=[t[k] for k in key]) > 1,
            value=lambda t: row_id_expr(t, key),
            scope="unique",
        )
    ]


def _reference_rules(table: ir.Table, spec: TableSchema) -> list[RowRule]:
    """Each foreign key whose found-flag column the annotation added."""
    rules: list[RowRule] = []
    for fk in spec.foreign_keys:
        flag = fk_flag_column(fk.column)
        if flag not in table.columns:
            continue
        rules.append(
            RowRule(
                column=fk.column,
                rule="foreign_key",
                expected=f"a value of {fk.references}",
                soft=spec.is_soft(fk.column, "foreign_key"),
                violation=lambda t, _c=fk.column, _f=flag: (
                    t[_c].notnull() & ~t[_f].fill_null(False)
                ),
                value=lambda t, _c=fk.column: t[_c],
                scope="foreign_key",
            )
        )
    return rules


def row_id_expr(table: ir.Table, columns: list[str]) -> ir.StringValue:
    """The row identifier: the ``row_id`` columns' values as text, joined with ``|``."""
    present = [c for c in columns if c in table.columns] or [
        c for c in table.columns if not c.startswith(HIDDEN_PREFIX)
    ]
    parts = [table[c].cast("string").fill_null("null") for c in present]
    return parts[0] if len(parts) == 1 else ibis.literal("|").join(parts)


# --------------------------------------------------------------------------------------------
# The pandera schema, built from the parameter schema and the compiled rules.
# --------------------------------------------------------------------------------------------


def _pandera_check(rule: RowRule, max_examples: int) -> pa.Check:
    def check(data, _rule: RowRule = rule) -> ir.BooleanValue:
        return ~_rule.violation(data.table)

    return pa.Check(
        check,
        name=rule.rule_id,
        error=f"{rule.column} must be {rule.expected}",
        n_failure_cases=max_examples,
    )


def build_pandera_schema(
    table: ir.Table,
    spec: TableSchema,
    rules: list[RowRule],
    *,
    table_name: str,
    max_examples: int,
) -> pa.DataFrameSchema:
    """The pandera schema of one table, generated from its parameter schema.

    Columns: declared dtype, nullability and the column-scoped rules (min, max, categories,
    period). Columns whose type is wrong keep only the dtype check, so their values are not
    compared with numbers they cannot be compared with. Table checks carry the cross-column
    rules; ``unique`` is the table's unique key. Foreign keys are cross-table and checked with
    Ibis joins instead.
    """
    columns: dict[str, pa.Column] = {}
    for name, column_spec in spec.columns.items():
        typed = has_declared_type(table, name, column_spec)
        checks = [
            _pandera_check(r, max_examples)
            for r in rules
            if typed and r.column == name and r.scope == "column"
        ]
        builtin_nullable = any(r.column == name and r.scope == "nullable" for r in rules)
        columns[name] = pa.Column(
            # pandera compares types exactly: a column already of the declared type is checked
            # against its own type (see has_declared_type), any other against the declared one.
            table[name].type() if typed else ibis_dtype(column_spec.dtype),
            nullable=not builtin_nullable,
            checks=checks,
            required=True,
            name=name,
            description=column_spec.description or None,
        )
    table_checks = [_pandera_check(r, max_examples) for r in rules if r.scope == "table"]
    unique = any(r.scope == "unique" for r in rules)
    return pa.DataFrameSchema(
        columns,
        checks=table_checks,
        unique=list(spec.unique_key) if unique else None,
        name=table_name,
        strict=False,
    )
