"""Nodes of the data_processing pipeline: prepare, validate, gate, clean, quarantine.

Table transformations are lazy Ibis expressions (DuckDB by default, PySpark with
``--env spark``); only the validation node executes queries, and only small aggregates:
row counts, failure counts and a few example rows per failing rule.
"""

from __future__ import annotations

import logging
from typing import Any

import ibis
import ibis.expr.types as ir

from churn_mlops.pipelines.data_processing.errors import (
    DataValidationError,
    describe_failure,
)
from churn_mlops.pipelines.data_processing.failures import count_and_describe, pandera_failures
from churn_mlops.pipelines.data_processing.mapping_checks import warn_unmatched_mappings
from churn_mlops.pipelines.data_processing.params import (
    TABLES,
    DataProcessingParams,
    TableSchema,
)
from churn_mlops.pipelines.data_processing.rules import (
    HIDDEN_PREFIX,
    RowRule,
    annotate_foreign_keys,
    compile_rules,
    ibis_dtype,
    prepare_table,
    row_id_expr,
)

logger = logging.getLogger(__name__)

QUARANTINE_COLUMNS: tuple[str, ...] = ("table", "row_id", "column", "rule", "value", "reason")
"""Columns of the quarantine table (docs/data_model.md)."""


def parse_data_processing_parameters(parameters: dict[str, Any]) -> DataProcessingParams:
    """Validate ``params:data_processing`` once, where it enters the pipeline.

    Raises:
        pydantic.ValidationError: a key is unknown or a value does not fit (the message names
            the key path and the expected value).
    """
    return DataProcessingParams.model_validate(parameters)


# --------------------------------------------------------------------------------------------
# Preparation
# --------------------------------------------------------------------------------------------


def absent_table(config: DataProcessingParams, name: str) -> ir.Table:
    """An empty table with the declared columns of ``name``: a table that is not configured.

    In ``customer_table`` mode the events table is optional (a catalog entry
    ``{type: MemoryDataset, data: null}`` loads ``None``) and churn records are never read:
    the label is a column of the customer table.
    """
    columns = config.tables[name].columns
    schema = ibis.schema({column: ibis_dtype(spec.dtype) for column, spec in columns.items()})
    return ibis.memtable(schema.to_pyarrow().empty_table())


def _raw(table: ir.Table | None, config: DataProcessingParams, name: str) -> ir.Table:
    if table is None or (name == "churn_records" and config.input_mode == "customer_table"):
        return absent_table(config, name)
    return table


def _prepare(table: ir.Table | None, config: DataProcessingParams, name: str) -> ir.Table:
    table = _raw(table, config, name)
    warn_unmatched_mappings(
        table, config.tables[name], table_name=name, how=config.category_normalisation
    )
    return prepare_table(
        table,
        config.tables[name],
        table_name=name,
        category_normalisation=config.category_normalisation,
        boolean_text=config.boolean_text,
    )


def prepare_customers(customers: ir.Table, config: DataProcessingParams) -> ir.Table:
    """Rename, normalise and convert the raw customers table onto the contract (lazily)."""
    return _prepare(customers, config, "customers")


def prepare_events(events: ir.Table, config: DataProcessingParams) -> ir.Table:
    """Rename, normalise and convert the raw events table onto the contract (lazily)."""
    return _prepare(events, config, "events")


def prepare_churn_records(churn_records: ir.Table, config: DataProcessingParams) -> ir.Table:
    """Rename, normalise and convert the raw churn records onto the contract (lazily)."""
    return _prepare(churn_records, config, "churn_records")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _foreign_key_rules(rules: list[RowRule]) -> list[RowRule]:
    return [r for r in rules if r.scope == "foreign_key"]


def _count_rows(table: ir.Table) -> int:
    return int(table.count().to_pyarrow().as_py())


def _table_failures(
    name: str, prepared: dict[str, ir.Table], config: DataProcessingParams
) -> list[dict[str, Any]]:
    """Structural, row-rule and foreign-key failures of one prepared table."""
    spec = config.tables[name]
    annotated = annotate_foreign_keys(prepared[name], spec, prepared)
    rules = compile_rules(annotated, spec, config)
    structural, failing = pandera_failures(name, prepared[name], spec, rules, config)
    found = count_and_describe(name, prepared[name], spec, failing, config.max_examples)
    fk_rules = _foreign_key_rules(rules)
    if fk_rules:
        found.extend(count_and_describe(name, annotated, spec, fk_rules, config.max_examples))
    return [*structural, *found]


def _table_stats(raw: ir.Table, prepared: ir.Table, spec: TableSchema) -> dict[str, Any]:
    """Raw row count, exact duplicates dropped and the columns the schema ignores."""
    rows_raw = _count_rows(raw)
    return {
        "rows_raw": rows_raw,
        "exact_duplicates_dropped": rows_raw - _count_rows(prepared),
        "columns_ignored": sorted(
            c for c in prepared.columns if c not in spec.columns and not c.startswith(HIDDEN_PREFIX)
        ),
    }


def _primary_counts(
    prepared: dict[str, ir.Table], tables: dict[str, dict[str, Any]], config: DataProcessingParams
) -> dict[str, dict[str, int]]:
    """Rows each table sends to primary and to quarantine (only run when validation passed)."""
    primaries: dict[str, ir.Table] = {}
    counts: dict[str, dict[str, int]] = {}
    for name in TABLES:
        primary, _ = _split(prepared[name], primaries, config, name)
        primaries[name] = primary
        rows_primary = _count_rows(primary)
        after_dedup = tables[name]["rows_raw"] - tables[name]["exact_duplicates_dropped"]
        counts[name] = {
            "rows_primary": rows_primary,
            "rows_quarantined": after_dedup - rows_primary,
        }
    return counts


def _log_validation(tables: dict[str, dict[str, Any]], failures: list[dict[str, Any]]) -> None:
    """Log each table's row counts and ignored columns, and every soft failure."""
    for name, stats in tables.items():
        logger.info(
            "%s: %d raw rows, %d exact duplicates dropped, %s quarantined, %s to primary",
            name,
            stats["rows_raw"],
            stats["exact_duplicates_dropped"],
            stats.get("rows_quarantined", "n/a"),
            stats.get("rows_primary", "n/a"),
        )
        if stats["columns_ignored"]:
            logger.info(
                "%s: columns not in the schema are ignored: %s", name, stats["columns_ignored"]
            )
    for failure in failures:
        if failure["severity"] == "soft":
            logger.warning(
                "soft rule failure (rows go to quarantine): %s", describe_failure(failure)
            )


def validate_raw_tables(
    customers: ir.Table,
    events: ir.Table,
    churn_records: ir.Table,
    customers_prepared: ir.Table,
    events_prepared: ir.Table,
    churn_records_prepared: ir.Table,
    config: DataProcessingParams,
) -> dict[str, Any]:
    """Validate the prepared tables against the parameter schema; report, never raise.

    Per table: a pandera schema generated from the parameters (presence, dtype, nullability,
    ranges, categories, period, cross-column rules, unique key) plus foreign keys as Ibis
    joins. Every failing (table, column, rule) gets its severity, the number of failing rows
    and a few example rows. `enforce_hard_rules` turns hard failures into one error, so that
    this report is saved first and shows the whole picture even for a failing run.

    Returns:
        The validation report: ``passed``, ``period``, per-table row counts and ``failures``.
    """
    raw = {
        name: _raw(table, config, name)
        for name, table in (
            ("customers", customers),
            ("events", events),
            ("churn_records", churn_records),
        )
    }
    # Validation scans each table once per check; materialising the prepared tables once
    # (a temporary table on DuckDB, a cached DataFrame on Spark) keeps that to one read of
    # the raw files and one deduplication per table.
    prepared = {
        "customers": customers_prepared.cache(),
        "events": events_prepared.cache(),
        "churn_records": churn_records_prepared.cache(),
    }
    failures: list[dict[str, Any]] = []
    tables: dict[str, dict[str, Any]] = {}
    for name in TABLES:
        failures.extend(_table_failures(name, prepared, config))
        tables[name] = _table_stats(raw[name], prepared[name], config.tables[name])
    passed = not any(f["severity"] == "hard" for f in failures)
    if passed:
        for name, counts in _primary_counts(prepared, tables, config).items():
            tables[name].update(counts)
    _log_validation(tables, failures)
    return {
        "passed": passed,
        "period": {
            "start_date": config.period.start_date.isoformat(),
            "end_date": config.period.end.isoformat(),
        },
        "tables": tables,
        "failures": failures,
    }


def enforce_hard_rules(validation_report: dict[str, Any]) -> bool:
    """Stop the run with one error listing every hard failure; pass otherwise.

    Cleaning nodes take this node's output as an input, so no primary table is written
    unless the raw tables passed every hard rule.

    Raises:
        DataValidationError: at least one hard rule failed.
    """
    hard = [f for f in validation_report["failures"] if f["severity"] == "hard"]
    if hard:
        raise DataValidationError(hard)
    logger.info(
        "Raw tables passed every hard rule (%d soft rule failure(s) quarantined)",
        len(validation_report["failures"]),
    )
    return True


# --------------------------------------------------------------------------------------------
# Cleaning and quarantine
# --------------------------------------------------------------------------------------------


def _quarantine_rows(
    table: ir.Table, spec: TableSchema, rules: list[RowRule], name: str
) -> ir.Table:
    """One quarantine row per (row, broken soft rule), computed in a single pass.

    Each row gets the array of the soft rules it breaks (by index); unnesting that array
    yields one row per failure, so the table is read once however many soft rules there are.
    """
    index = f"{HIDDEN_PREFIX}rule"
    broken = ibis.array(
        [
            ibis.ifelse(rule.violation(table), ibis.literal(i, type="int64"), ibis.null("int64"))
            for i, rule in enumerate(rules)
        ]
    )
    any_broken = ibis.or_(*(rule.violation(table) for rule in rules))
    failures = (
        table.filter(any_broken)
        .mutate(**{index: broken})
        .unnest(index)
        .filter(ibis._[index].notnull())
    )
    position = failures[index]

    def pick(values: list[ir.Value]) -> ir.Value:
        return ibis.cases(
            *((position == i, v) for i, v in enumerate(values)), else_=ibis.null("string")
        )

    return failures.select(
        table=ibis.literal(name),
        row_id=row_id_expr(failures, spec.row_id_columns),
        column=pick([ibis.literal(r.column) for r in rules]),
        rule=pick([ibis.literal(r.rule) for r in rules]),
        value=pick([r.value(failures).cast("string") for r in rules]),
        reason=pick([ibis.literal(f"{r.column} must be {r.expected}") for r in rules]),
    )


def _empty_quarantine(table: ir.Table, name: str) -> ir.Table:
    text = ibis.null("string")
    return table.filter(ibis.literal(False)).select(
        table=ibis.literal(name), row_id=text, column=text, rule=text, value=text, reason=text
    )


def _split(
    prepared: ir.Table,
    parents: dict[str, ir.Table],
    config: DataProcessingParams,
    name: str,
) -> tuple[ir.Table, ir.Table]:
    """The primary table (rows passing every soft rule) and its quarantine rows.

    Foreign keys are checked against the parents' *primary* tables, so a row whose parent was
    quarantined is quarantined too (rule ``foreign_key``) instead of dangling.
    """
    spec = config.tables[name]
    annotated = annotate_foreign_keys(prepared, spec, parents)
    rules = compile_rules(annotated, spec, config)
    soft = [r for r in rules if r.soft or r.scope == "foreign_key"]
    keep = annotated
    if soft:
        keep = annotated.filter(~ibis.or_(*(r.violation(annotated) for r in soft)))
    primary = keep.select(**{c: keep[c].cast(ibis_dtype(s.dtype)) for c, s in spec.columns.items()})
    # Canonical row order: the row id, then every other column (exact duplicates are gone, so
    # the order is total and the same data always writes the same file content).
    order = [c for c in spec.row_id_columns if c in primary.columns]
    primary = primary.order_by([*order, *(c for c in primary.columns if c not in order)])
    if not soft:
        return primary, _empty_quarantine(annotated, name)
    return primary, _quarantine_rows(annotated, spec, soft, name)


def _require_passed(validation_passed: bool) -> None:
    if validation_passed is not True:
        raise DataValidationError(
            [
                {
                    "table": "*",
                    "column": "*",
                    "rule": "validation",
                    "severity": "hard",
                    "expected": "validation_passed == True",
                    "count": None,
                    "examples": [],
                    "message": f"cleaning was called with validation_passed={validation_passed!r}",
                }
            ]
        )


def clean_customers(
    customers_prepared: ir.Table, validation_passed: bool, config: DataProcessingParams
) -> tuple[ir.Table, ir.Table]:
    """The customers primary table and its quarantined rows (runs only after validation)."""
    _require_passed(validation_passed)
    return _split(customers_prepared, {}, config, "customers")


def clean_events(
    events_prepared: ir.Table,
    customers_primary: ir.Table,
    validation_passed: bool,
    config: DataProcessingParams,
) -> tuple[ir.Table, ir.Table]:
    """The events primary table and its quarantined rows (runs only after validation)."""
    _require_passed(validation_passed)
    return _split(events_prepared, {"customers": customers_primary}, config, "events")


def clean_churn_records(
    churn_records_prepared: ir.Table,
    customers_primary: ir.Table,
    events_primary: ir.Table,
    validation_passed: bool,
    config: DataProcessingParams,
) -> tuple[ir.Table, ir.Table]:
    """The churn-records primary table and its quarantined rows (after validation)."""
    _require_passed(validation_passed)
    parents = {"customers": customers_primary, "events": events_primary}
    return _split(churn_records_prepared, parents, config, "churn_records")


def build_quarantine(
    customers_quarantined: ir.Table,
    events_quarantined: ir.Table,
    churn_records_quarantined: ir.Table,
) -> ir.Table:
    """One quarantine table: every soft-rule failure of every table, with its reason."""
    return ibis.union(
        customers_quarantined,
        events_quarantined,
        churn_records_quarantined,
        distinct=False,
    ).select(*QUARANTINE_COLUMNS)
