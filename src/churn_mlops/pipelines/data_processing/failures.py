"""Entries of the validation report: pandera errors and row-rule violations, as failures.

``validate_raw_tables`` (:mod:`.nodes`) calls :func:`pandera_failures` and
:func:`count_and_describe` per table. Each failure is one dict per (table, column, rule), the
layout :class:`~churn_mlops.pipelines.data_processing.errors.DataValidationError` documents.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
from pandera.errors import SchemaError, SchemaErrorReason, SchemaErrors

from churn_mlops.pipelines.data_processing.params import DataProcessingParams, TableSchema
from churn_mlops.pipelines.data_processing.rules import (
    HIDDEN_PREFIX,
    RowRule,
    build_pandera_schema,
    row_id_expr,
)


def _failure(
    table: str,
    column: str,
    rule: str,
    *,
    severity: str,
    expected: str,
    count: int | None = None,
    examples: list[dict[str, Any]] | None = None,
    message: str | None = None,
    row_id_columns: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "table": table,
        "column": column,
        "rule": rule,
        "severity": severity,
        "expected": expected,
        "count": count,
        "examples": examples or [],
        "row_id_columns": row_id_columns or [],
        "message": message,
    }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _sample_values(table: ir.Table, column: str, limit: int) -> list[dict[str, Any]]:
    """A few distinct values of a column, to show what a wrongly typed column holds."""
    values = (
        table.select(value=table[column].cast("string"))
        .filter(ibis._.value.notnull())
        .distinct()
        .order_by("value")
        .limit(limit)
        .to_pyarrow()
        .column("value")
        .to_pylist()
    )
    return [{"value": v} for v in values]


def _pandera_errors(
    name: str,
    prepared: ir.Table,
    spec: TableSchema,
    rules: list[RowRule],
    config: DataProcessingParams,
) -> list[SchemaError]:
    """Every error of the table's pandera schema (none when the table passes)."""
    schema = build_pandera_schema(
        prepared, spec, rules, table_name=name, max_examples=config.max_examples
    )
    try:
        schema.validate(prepared, lazy=True)
    except SchemaErrors as exc:
        return list(exc.schema_errors)
    except SchemaError as exc:  # pragma: no cover - lazy=True collects, kept for safety
        return [exc]
    return []


def _failing_rule(
    error: SchemaError, spec: TableSchema, by_id: dict[str, RowRule]
) -> RowRule | None:
    """The row rule a pandera error reports, or ``None`` for a structural error."""
    reason = error.reason_code
    column = getattr(error.schema, "name", None)
    if reason == SchemaErrorReason.SERIES_CONTAINS_NULLS:
        return by_id[f"{column}.nullable"]
    if reason == SchemaErrorReason.DUPLICATES:
        return by_id[f"{spec.unique_key_name}.unique"]
    if reason == SchemaErrorReason.DATAFRAME_CHECK and error.check is not None:
        return by_id.get(str(getattr(error.check, "name", None)))
    return None


def _structural_failure(
    error: SchemaError,
    name: str,
    prepared: ir.Table,
    spec: TableSchema,
    config: DataProcessingParams,
) -> dict[str, Any]:
    """The report entry of a pandera error that no row rule explains (missing column, type)."""
    reason = error.reason_code
    column = getattr(error.schema, "name", None)
    if reason == SchemaErrorReason.COLUMN_NOT_IN_DATAFRAME:
        visible = [c for c in prepared.columns if not c.startswith(HIDDEN_PREFIX)]
        return _failure(
            name,
            str(error.failure_cases),
            "required",
            severity="hard",
            expected="a column of the table",
            message=f"column is missing; the table has {visible}"
            + (f" (after rename {spec.rename})" if spec.rename else ""),
        )
    if reason == SchemaErrorReason.WRONG_DATATYPE:
        declared = spec.columns[column].dtype
        return _failure(
            name,
            column,
            "dtype",
            severity="hard",
            expected=declared,
            message=f"expected type {declared}, got {error.failure_cases}",
            examples=_sample_values(prepared, column, config.max_examples),
        )
    # Every generated check is named after its rule, so _failing_rule finds it.
    if reason == SchemaErrorReason.DATAFRAME_CHECK and error.check is not None:  # pragma: no cover
        return _failure(
            name,
            str(column),
            str(getattr(error.check, "name", None)),
            severity="hard",
            expected="",
            message=str(error)[:500],
        )
    return _failure(
        name,
        str(column or "?"),
        reason.name.lower() if reason is not None else "error",
        severity="hard",
        expected="a successful check",
        message=str(error).splitlines()[0][:500],
    )


def pandera_failures(
    name: str,
    prepared: ir.Table,
    spec: TableSchema,
    rules: list[RowRule],
    config: DataProcessingParams,
) -> tuple[list[dict[str, Any]], list[RowRule]]:
    """Run the table's pandera schema; return structural failures and the failing row rules."""
    by_id = {rule.rule_id: rule for rule in rules}
    structural: list[dict[str, Any]] = []
    failing: list[RowRule] = []
    for error in _pandera_errors(name, prepared, spec, rules, config):
        rule = _failing_rule(error, spec, by_id)
        if rule is None:
            structural.append(_structural_failure(error, name, prepared, spec, config))
        else:
            failing.append(rule)
    return structural, failing


def count_and_describe(
    name: str,
    table: ir.Table,
    spec: TableSchema,
    failing: list[RowRule],
    max_examples: int,
) -> list[dict[str, Any]]:
    """Counts (one aggregate query) and example rows (one small query per rule)."""
    if not failing:
        return []
    flags = {f"{HIDDEN_PREFIX}v{i}": rule.violation(table) for i, rule in enumerate(failing)}
    flagged = table.mutate(**flags)
    counts = (
        flagged.aggregate(**{k: flagged[k].cast("int64").sum() for k in flags})
        .to_pyarrow()
        .to_pylist()[0]
    )
    failures = []
    for key, rule in zip(flags, failing, strict=True):
        if not counts[key]:
            # pandera's all() is null on an empty table and reads as a failure: the count is
            # the truth.
            continue
        examples = (
            flagged.filter(flagged[key])
            .select(
                row_id=row_id_expr(flagged, spec.row_id_columns),
                value=rule.value(flagged),
            )
            .limit(max_examples)
            .to_pyarrow()
            .to_pylist()
        )
        failures.append(
            _failure(
                name,
                rule.column,
                rule.rule,
                severity="soft" if rule.soft else "hard",
                expected=rule.expected,
                count=int(counts[key] or 0),
                examples=[
                    {"row_id": e["row_id"], "value": _jsonable(e["value"])} for e in examples
                ],
                row_id_columns=[c for c in spec.row_id_columns if c in table.columns],
            )
        )
    return failures
