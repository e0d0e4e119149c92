"""Warnings for ``rename`` and ``value_maps`` entries that match nothing in the user's table.

A mapping key with a typo (``Contrct``, ``Credit card (automatc)``) would otherwise be skipped
without a word; each warning names the key and the closest name or value the data does have.
"""

from __future__ import annotations

import difflib
import logging

import ibis.expr.types as ir

from churn_mlops.pipelines.data_processing.params import TableSchema
from churn_mlops.pipelines.data_processing.rules import normalise_column, normalise_text

logger = logging.getLogger(__name__)


def closest(name: str, candidates: list[str]) -> str | None:
    """The candidate most similar to ``name`` (difflib ratio >= 0.6), or ``None``."""
    matches = difflib.get_close_matches(name, candidates, n=1)
    return matches[0] if matches else None


def _hint(name: str, candidates: list[str]) -> str:
    match = closest(name, candidates)
    return f"; closest: {match!r}" if match else f"; it has {sorted(candidates)[:20]}"


def unmatched_renames(columns: list[str], spec: TableSchema) -> list[tuple[str, str | None]]:
    """``rename`` keys that are neither a column of the table nor already renamed, each with
    the closest column."""
    present = set(columns)
    return [
        (theirs, closest(theirs, columns))
        for theirs, ours in spec.rename.items()
        if theirs not in present and ours not in present
    ]


def warn_unmatched_mappings(
    table: ir.Table, spec: TableSchema, *, table_name: str, how: str
) -> None:
    """Log a warning for every ``rename`` / ``value_maps`` key that matches no column or value.

    ``value_maps`` keys are compared after the same normalisation as the data; one
    ``DISTINCT`` query per mapped column reads the values (mapped columns are categories, so
    the result is small).
    """
    columns = list(table.columns)
    for theirs, _ in unmatched_renames(columns, spec):
        logger.warning(
            "tables.%s.rename: column %r is not in the table%s",
            table_name,
            theirs,
            _hint(theirs, columns),
        )
    reverse = {ours: theirs for theirs, ours in spec.rename.items()}
    for column, mapping in spec.value_maps.items():
        source = column if column in columns else reverse.get(column)
        if source not in columns:
            continue  # the missing column itself is reported by validation
        raw = table[source]
        if not raw.type().is_string():
            continue
        values = (
            table.select(value=normalise_column(raw, how)).distinct().to_pyarrow().column("value")
        )
        observed = [v for v in values.to_pylist() if v is not None]
        for key in mapping:
            if normalise_text(key, how) not in observed:
                logger.warning(
                    "tables.%s.value_maps.%s: value %r does not occur in column %r%s",
                    table_name,
                    column,
                    key,
                    source,
                    _hint(normalise_text(key, how), observed),
                )
