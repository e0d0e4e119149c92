"""Exceptions raised by the data_processing pipeline."""

from __future__ import annotations

from typing import Any


class DataProcessingConfigError(ValueError):
    """The data_processing parameters cannot be applied to the data (e.g. a rename clash)."""


class DataValidationError(ValueError):
    """Raw tables break hard rules; the message lists every failing table, column and rule.

    Attributes:
        failures: One dict per failing (table, column, rule), as in the validation report:
            ``table``, ``column``, ``rule``, ``severity``, ``expected``, ``count``,
            ``examples`` (``[{"row_id": ..., "value": ...}]``), ``row_id_columns`` (what a
            ``row_id`` is made of) and ``message``.
    """

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        self.failures = failures
        super().__init__(format_failures(failures))


def _quote(value: Any) -> str:
    return "null" if value is None else repr(value)


def describe_failure(failure: dict[str, Any]) -> str:
    """One line naming the table, column and rule, the count, and example rows and values."""
    where = f"{failure['table']}.{failure['column']} [{failure['rule']}]"
    count = failure.get("count")
    what = failure.get("message") or f"expected {failure['expected']}"
    if count is not None:
        what = f"{count} row(s) break it, expected {failure['expected']}"
    examples = failure.get("examples") or []
    id_columns = failure.get("row_id_columns") or []
    shown = []
    for example in examples:
        value = _quote(example.get("value"))
        if "row_id" not in example:
            shown.append(value)
            continue
        parts = str(example["row_id"]).split("|")
        if len(parts) == len(id_columns):
            row = ", ".join(f"{c}={p}" for c, p in zip(id_columns, parts, strict=True))
        else:
            row = f"row_id={example['row_id']}"
        shown.append(f"({row}): {value}")
    suffix = f"; e.g. {', '.join(shown)}" if shown else ""
    return f"{where}: {what}{suffix}"


def format_failures(failures: list[dict[str, Any]]) -> str:
    """The multi-line message of a `DataValidationError`."""
    tables = sorted({f["table"] for f in failures})
    lines = [
        f"Raw data failed validation: {len(failures)} hard rule failure(s) in "
        f"{len(tables)} table(s) {tables}. No primary table was written; see the "
        "validation_report dataset for the full report."
    ]
    lines.extend(f"  - {describe_failure(f)}" for f in failures)
    return "\n".join(lines)
