"""Parameter models of the data_processing pipeline: the table schemas users declare in conf.

`conf/base/parameters_data_processing.yml` is validated once, by `DataProcessingParams`, when it
enters the pipeline (node `parse_data_processing_parameters`). Everything downstream (the pandera
schemas, the row rules, the quarantine, the cleaning) is built from these models, so bringing your
own tables means editing that file, never code.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from churn_mlops.contracts.base import StrictModel as _Strict

TABLES: tuple[str, ...] = ("customers", "events", "churn_records")
"""The raw tables the pipeline reads, in the order they are validated and cleaned."""

DType = Literal["int64", "float64", "string", "boolean", "timestamp"]

STRUCTURAL_RULES: frozenset[str] = frozenset({"required", "dtype", "integral", "boolean_text"})
"""Rules about the table's shape or an unreadable value: always hard."""

_NUMERIC = frozenset({"int64", "float64"})


class ColumnSchema(_Strict):
    """One column of a table: its type and the rules its values must follow.

    Attributes:
        dtype: Logical type. Compatible physical types are converted losslessly before
            validation (any integer width to ``int64``, integers to ``float64``, dates to
            ``timestamp``, text ``yes/no`` to ``boolean``, whole floats to ``int64``).
        nullable: Whether nulls (and NaN) are allowed.
        min: Smallest allowed value (numeric columns).
        max: Largest allowed value (numeric columns).
        categories: Allowed values after normalisation (string columns).
        period: ``within``: inside ``[period.start_date, period end)``; ``before_end``:
            before the period end (timestamp columns).
        required_when: ``{other_column: [values]}``: the column must not be null on rows where
            ``other_column`` takes one of ``values``.
        description: One line for the docs and error messages.
    """

    dtype: DType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    period: Literal["within", "before_end"] | None = None
    required_when: dict[str, list[str]] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _rules_fit_dtype(self) -> ColumnSchema:
        if (self.min is not None or self.max is not None) and self.dtype not in _NUMERIC:
            raise ValueError(f"min/max need a numeric dtype (int64, float64), got {self.dtype!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.categories is not None and self.dtype != "string":
            raise ValueError(f"categories need dtype 'string', got {self.dtype!r}")
        if self.categories is not None and not self.categories:
            raise ValueError("categories must list at least one value (or be omitted)")
        if self.period is not None and self.dtype != "timestamp":
            raise ValueError(f"period needs dtype 'timestamp', got {self.dtype!r}")
        return self


class ForeignKey(_Strict):
    """A column whose values must exist in another table's column.

    Attributes:
        column: The referencing column in this table.
        references: ``<table>.<column>`` of the referenced key, e.g. ``customers.customer_id``.
    """

    column: str
    references: str

    @field_validator("references")
    @classmethod
    def _table_dot_column(cls, value: str) -> str:
        table, _, column = value.partition(".")
        if table not in TABLES or not column:
            raise ValueError(
                f"references must be '<table>.<column>' with a table among {list(TABLES)}, "
                f"got {value!r}"
            )
        return value

    @property
    def parent_table(self) -> str:
        """The referenced table."""
        return self.references.partition(".")[0]

    @property
    def parent_column(self) -> str:
        """The referenced column."""
        return self.references.partition(".")[2]


class TableSchema(_Strict):
    """The contract of one raw table and how to map a user's table onto it.

    Attributes:
        columns: Declared columns, in the order the primary table keeps them.
        unique_key: Columns whose combination must be unique (empty: none).
        row_id: Columns that identify a row in errors and in the quarantine table
            (default: ``unique_key``, else every column).
        foreign_keys: Columns that must reference another table.
        soft_rules: ``<column>.<rule>`` entries whose failing rows are quarantined instead of
            failing the run, e.g. ``amount.min``; for a unique key use the key's columns joined
            with ``+`` (``customer_id.unique``). Every other rule is hard.
        rename: ``{their_column: our_column}``, applied first.
        value_maps: ``{column: {their_value: our_value}}``, applied after normalisation (keys
            are normalised the same way, so ``Month-to-month`` matches ``month-to-month``).
        fill_missing: ``{column: constant}`` for declared columns absent from the data.
        drop_exact_duplicates: Drop rows identical in every column (and report how many).
    """

    columns: dict[str, ColumnSchema]
    unique_key: list[str] = Field(default_factory=list)
    row_id: list[str] = Field(default_factory=list)
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    soft_rules: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(default_factory=dict)
    value_maps: dict[str, dict[str, str]] = Field(default_factory=dict)
    fill_missing: dict[str, str | int | float | bool] = Field(default_factory=dict)
    drop_exact_duplicates: bool = True

    @model_validator(mode="after")
    def _references_known_columns(self) -> TableSchema:
        known = set(self.columns)

        def _check(where: str, names: list[str] | set[str]) -> None:
            unknown = sorted(set(names) - known)
            if unknown:
                raise ValueError(
                    f"{where} names columns {unknown} that are not declared in columns "
                    f"{sorted(known)}"
                )

        if not self.columns:
            raise ValueError("a table needs at least one declared column")
        _check("unique_key", self.unique_key)
        _check("row_id", self.row_id)
        _check("foreign_keys", [fk.column for fk in self.foreign_keys])
        _check("value_maps", list(self.value_maps))
        _check("fill_missing", list(self.fill_missing))
        _check("rename (targets)", list(self.rename.values()))
        for name, column in self.columns.items():
            if column.required_when:
                _check(f"{name}.required_when", list(column.required_when))
        available = self.rule_ids()
        for entry in self.soft_rules:
            column, _, rule = entry.rpartition(".")
            if rule in STRUCTURAL_RULES:
                raise ValueError(
                    f"soft_rules entry {entry!r}: rule {rule!r} is structural and always hard"
                )
            if entry not in available:
                raise ValueError(
                    f"soft_rules entry {entry!r} matches no rule of this table; "
                    f"rules are {sorted(available)}"
                )
        return self

    @property
    def unique_key_name(self) -> str:
        """The pseudo-column naming the unique key in rule ids (``a+b``)."""
        return "+".join(self.unique_key)

    @property
    def row_id_columns(self) -> list[str]:
        """Columns that identify a row in messages and in the quarantine table."""
        return self.row_id or self.unique_key or list(self.columns)

    def rule_ids(self) -> set[str]:
        """Every ``<column>.<rule>`` row rule this schema declares."""
        ids: set[str] = set()
        for name, column in self.columns.items():
            if not column.nullable:
                ids.add(f"{name}.nullable")
            if column.min is not None:
                ids.add(f"{name}.min")
            if column.max is not None:
                ids.add(f"{name}.max")
            if column.categories is not None:
                ids.add(f"{name}.categories")
            if column.period == "within":
                ids.add(f"{name}.in_period")
            if column.period == "before_end":
                ids.add(f"{name}.before_period_end")
            if column.required_when:
                ids.add(f"{name}.required_when")
        if self.unique_key:
            ids.add(f"{self.unique_key_name}.unique")
        ids.update(f"{fk.column}.foreign_key" for fk in self.foreign_keys)
        return ids

    def is_soft(self, column: str, rule: str) -> bool:
        """Whether ``column.rule`` quarantines rows instead of failing the run."""
        return f"{column}.{rule}" in self.soft_rules


class Period(_Strict):
    """The period the data covers: timestamps must fall in ``[start_date, end)``.

    Give either ``end_date`` or ``months`` (whole calendar months after ``start_date``, as the
    simulator's ``n_months``).
    """

    start_date: dt.date
    end_date: dt.date | None = None
    months: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_end(self) -> Period:
        if (self.end_date is None) == (self.months is None):
            raise ValueError(
                "period needs exactly one of end_date or months, got "
                f"end_date={self.end_date}, months={self.months}"
            )
        if self.start_date >= self.end:
            raise ValueError(
                f"period.start_date ({self.start_date}) must be before the period end ({self.end})"
            )
        return self

    @property
    def end(self) -> dt.date:
        """The first day after the period."""
        if self.end_date is not None:
            return self.end_date
        month_index = self.start_date.month - 1 + int(self.months or 0)
        year = self.start_date.year + month_index // 12
        month = month_index % 12 + 1
        last_day = calendar.monthrange(year, month)[1]
        return dt.date(year, month, min(self.start_date.day, last_day))


class BooleanText(_Strict):
    """Text values accepted for boolean columns (compared after normalisation)."""

    true: list[str] = Field(default_factory=lambda: ["true", "t", "yes", "y", "1"])
    false: list[str] = Field(default_factory=lambda: ["false", "f", "no", "n", "0"])

    @model_validator(mode="after")
    def _disjoint(self) -> BooleanText:
        both = sorted(set(self.true) & set(self.false))
        if both:
            raise ValueError(f"boolean_text values {both} are listed as both true and false")
        return self


InputMode = Literal["event_log", "customer_table"]

#: The contract names the customer table's id, label and date columns take in
#: ``customers_primary`` (``customer_table`` mode); feature_engineering reads these names.
CUSTOMER_TABLE_KEYS: dict[str, str] = {
    "id_column": "customer_id",
    "label_column": "churned",
    "date_column": "snapshot_date",
}


class CustomerTable(_Strict):
    """One row per customer (or per customer at a date) with the churn label as a column.

    Used when ``input_mode`` is ``customer_table``: it replaces ``tables.customers`` (events
    and churn records are then optional). The id, label and date columns are renamed to
    ``customer_id``, ``churned`` and ``snapshot_date`` and declared under those names in
    ``columns``; every other declared column can become a feature.

    Attributes:
        id_column: The table's customer id column.
        label_column: The table's churn label (0/1, true/false or yes/no).
        date_column: The date the row describes the customer at; ``None`` for one row per
            customer, which then gets ``as_of_date`` as its snapshot date.
        as_of_date: The day the table was taken (required without ``date_column``).
        columns, rename, value_maps, fill_missing, soft_rules, drop_exact_duplicates: as in
            :class:`TableSchema`.
    """

    id_column: str | None = None
    label_column: str | None = None
    date_column: str | None = None
    as_of_date: dt.date | None = None
    columns: dict[str, ColumnSchema] = Field(default_factory=dict)
    rename: dict[str, str] = Field(default_factory=dict)
    value_maps: dict[str, dict[str, str]] = Field(default_factory=dict)
    fill_missing: dict[str, str | int | float | bool] = Field(default_factory=dict)
    soft_rules: list[str] = Field(default_factory=list)
    drop_exact_duplicates: bool = True

    def as_table_schema(self) -> dict:
        """The ``tables.customers`` entry this table stands for (validated by the caller)."""
        missing = [key for key in ("id_column", "label_column") if getattr(self, key) is None]
        if missing:
            raise ValueError(f"customer_table needs {missing} in customer_table mode")
        if self.date_column is None and self.as_of_date is None:
            raise ValueError(
                "customer_table needs date_column (a customer at a date) or as_of_date (the "
                "day a one-row-per-customer table was taken)"
            )
        rename = dict(self.rename)
        for key, ours in CUSTOMER_TABLE_KEYS.items():
            theirs = getattr(self, key)
            if theirs is not None and theirs != ours:
                rename[theirs] = ours
        columns = {name: spec.model_dump() for name, spec in self.columns.items()}
        columns.setdefault("snapshot_date", {"dtype": "timestamp"})
        absent = [c for c in CUSTOMER_TABLE_KEYS.values() if c not in columns]
        if absent:
            raise ValueError(f"customer_table.columns must declare {absent}")
        fill = dict(self.fill_missing)
        if self.date_column is None:
            fill["snapshot_date"] = self.as_of_date.isoformat()  # type: ignore[union-attr]
        key = ["customer_id"] if self.date_column is None else ["customer_id", "snapshot_date"]
        return {
            "columns": columns,
            "unique_key": key,
            "row_id": key,
            "soft_rules": list(self.soft_rules),
            "rename": rename,
            "value_maps": {k: dict(v) for k, v in self.value_maps.items()},
            "fill_missing": fill,
            "drop_exact_duplicates": self.drop_exact_duplicates,
        }


class DataProcessingParams(_Strict):
    """Everything `parameters_data_processing.yml` holds under ``data_processing``.

    Attributes:
        period: The covered period (keep it equal to the simulator's when using simulated data).
        category_normalisation: How category text is normalised before it is checked:
            ``snake_case`` (strip, lower, runs of spaces/hyphens to ``_``), ``lower`` (strip,
            lower) or ``none``.
        boolean_text: Text accepted for boolean columns stored as text.
        max_examples: Failing rows quoted per rule in errors and in the report.
        tables: One schema per raw table.
        input_mode: ``event_log`` (the three tables) or ``customer_table`` (one table with
            the label as a column; ``tables.customers`` is then built from ``customer_table``).
        customer_table: The table of ``customer_table`` mode.
    """

    period: Period
    category_normalisation: Literal["snake_case", "lower", "none"] = "snake_case"
    boolean_text: BooleanText = Field(default_factory=BooleanText)
    max_examples: int = Field(default=5, ge=1, le=100)
    tables: dict[str, TableSchema]
    input_mode: InputMode = "event_log"
    customer_table: CustomerTable = Field(default_factory=CustomerTable)

    @model_validator(mode="before")
    @classmethod
    def _customer_table_replaces_customers(cls, data: object) -> object:
        if not isinstance(data, dict) or data.get("input_mode") != "customer_table":
            return data
        table = CustomerTable.model_validate(data.get("customer_table") or {})
        return {**data, "tables": {**data.get("tables", {}), "customers": table.as_table_schema()}}

    @model_validator(mode="after")
    def _all_tables_and_keys(self) -> DataProcessingParams:
        missing = [name for name in TABLES if name not in self.tables]
        extra = sorted(set(self.tables) - set(TABLES))
        if missing or extra:
            raise ValueError(
                f"tables must be exactly {list(TABLES)}; missing {missing}, unexpected {extra}"
            )
        for name, table in self.tables.items():
            for fk in table.foreign_keys:
                parent = self.tables[fk.parent_table]
                if fk.parent_column not in parent.columns:
                    raise ValueError(
                        f"tables.{name}.foreign_keys: {fk.references!r} is not a declared "
                        f"column of {fk.parent_table}"
                    )
                if TABLES.index(fk.parent_table) >= TABLES.index(name):
                    raise ValueError(
                        f"tables.{name}.foreign_keys: {fk.references!r} must reference a table "
                        f"cleaned earlier (order {list(TABLES)})"
                    )
        return self
