"""Bring your own data: inspect a one-row-per-customer table and write a Kedro environment.

``churn-mlops byod init --from data/01_raw/mine.csv --env mine`` (or ``kedro byod init ...``)
reads the CSV or Parquet file, proposes the id, label, date, numeric and categorical columns
(with the ranges and categories it observed) and writes ``conf/mine/`` holding only the keys
that differ from ``conf/base``: the catalog entry of the table and the ``customer_table`` mode
of ``data_processing``, the feature list, and the settings of training and evaluation that
name the simulator's features. ``kedro run --env mine`` then trains, evaluates and registers.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from churn_mlops.pipelines.data_processing.rules import normalise_text

#: Distinct values above which a text column is not proposed as a categorical feature.
MAX_CATEGORIES = 50
_LABEL_NAMES = (
    "churn",
    "churned",
    "exited",
    "attrition",
    "attrit",
    "label",
    "target",
    "left",
    "cancel",
)
_ID_NAMES = ("customer_id", "customerid", "client_id", "account_id", "user_id", "id")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


class ScaffoldError(ValueError):
    """The table cannot be proposed as a customer table (the message says what to pass)."""


@dataclass
class Proposal:
    """What the scaffold found in a table: the roles of its columns and the features."""

    path: Path
    file_format: str
    rows: int
    id_column: str
    label_column: str
    date_column: str | None
    as_of_date: dt.date | None
    rename: dict[str, str] = field(default_factory=dict)
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    features: list[dict[str, Any]] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)

    @property
    def categorical(self) -> list[str]:
        """Names of the proposed categorical features."""
        return [f["name"] for f in self.features if f["kind"] == "categorical"]


def snake_name(column: str) -> str:
    """``MonthlyCharges`` / ``Monthly Charges`` / ``monthly-charges`` -> ``monthly_charges``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", column.strip())
    name = re.sub(r"[^0-9a-zA-Z]+", "_", spaced).strip("_").lower()
    return name if name and not name[0].isdigit() else f"col_{name}"


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as the scaffold inspects it."""
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    raise ScaffoldError(f"{path}: expected a .csv or .parquet file")


def _boolean_text(values: pd.Series) -> bool:
    seen = {normalise_text(str(v), "lower") for v in values.dropna().unique()}
    return len(seen) == 2 and seen <= _TRUE | _FALSE and bool(seen & _TRUE) and bool(seen & _FALSE)


def _is_binary(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return True
    if pd.api.types.is_numeric_dtype(values):
        return set(values.dropna().unique()) <= {0, 1} and values.nunique() == 2
    return _boolean_text(values.astype("string"))


def _as_dates(values: pd.Series, name: str) -> pd.Series | None:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    if values.dtype != object and not pd.api.types.is_string_dtype(values):
        return None
    if not re.search(r"date|month|time|day|snapshot|as_of|period", name, re.IGNORECASE):
        return None
    parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    return parsed if parsed.notna().mean() > 0.99 else None


def _pick(names: list[str], candidates: tuple[str, ...], keep) -> str | None:
    for wanted in candidates:
        for name in names:
            if snake_name(name) == wanted and keep(name):
                return name
    for wanted in candidates:
        for name in names:
            if wanted in snake_name(name) and keep(name):
                return name
    return None


def propose(
    path: Path,
    *,
    id_column: str | None = None,
    label_column: str | None = None,
    date_column: str | None = None,
    as_of_date: dt.date | None = None,
) -> Proposal:
    """Inspect ``path`` and propose the roles of its columns.

    Args:
        path: The CSV or Parquet file.
        id_column, label_column, date_column: Override the proposed column (as in the file).
        as_of_date: The day a one-row-per-customer table was taken (default: today, UTC).

    Raises:
        ScaffoldError: No id or label column can be found, or a named one is not suitable.
    """
    frame = read_table(path)
    names = list(frame.columns)
    for given in (id_column, label_column, date_column):
        if given is not None and given not in names:
            raise ScaffoldError(f"column {given!r} is not in {path} (columns: {names})")
    dates = {name: parsed for name in names if (parsed := _as_dates(frame[name], name)) is not None}
    label = _propose_label(frame, path, label_column)
    date = date_column or next((n for n in dates if frame[n].nunique() > 1), None)
    if date is not None and date not in dates:
        dates[date] = pd.to_datetime(frame[date], errors="raise", format="mixed")
    ident = _propose_id(frame, path, id_column, label=label, date=date)
    proposal = Proposal(
        path=path,
        file_format="parquet" if path.suffix.lower() == ".parquet" else "csv",
        rows=len(frame),
        id_column=ident,
        label_column=label,
        date_column=date,
        as_of_date=None if date else (as_of_date or dt.datetime.now(dt.UTC).date()),
        columns=_key_columns(frame, ident=ident, label=label, date=date),
    )
    for name in names:
        if name in (ident, label, date):
            continue
        _propose_feature(proposal, name, frame[name], is_date=name in dates)
    if not proposal.features:
        raise ScaffoldError(f"{path} has no column usable as a feature: {proposal.ignored}")
    return proposal


def _propose_label(frame: pd.DataFrame, path: Path, label_column: str | None) -> str:
    """The named label column, or the first two-valued column with a label-like name."""
    names = list(frame.columns)
    label = label_column or _pick(names, _LABEL_NAMES, lambda n: _is_binary(frame[n]))
    if label is None:
        raise ScaffoldError(
            f"no churn label found in {path}: pass --label with a column of two values "
            f"(0/1, true/false or yes/no); columns: {names}"
        )
    if not _is_binary(frame[label]):
        raise ScaffoldError(
            f"label column {label!r} must hold two values (0/1, true/false or yes/no), it has "
            f"{sorted(map(str, frame[label].dropna().unique()))[:10]}"
        )
    return label


def _propose_id(
    frame: pd.DataFrame, path: Path, id_column: str | None, *, label: str, date: str | None
) -> str:
    """The named id column, else one with an id-like name, else the first unique integer or
    text column; its values must be unique per row (per ``date`` when the table has one)."""
    names = list(frame.columns)
    key = [date] if date else []

    def unique_id(name: str) -> bool:
        return name not in (label, date) and not frame.duplicated([name, *key]).any()

    ident = id_column or _pick(names, _ID_NAMES, unique_id)
    if ident is None:
        ident = next(
            (
                n
                for n in names
                if unique_id(n)
                and (pd.api.types.is_integer_dtype(frame[n]) or frame[n].dtype == object)
            ),
            None,
        )
    if ident is None or not unique_id(ident):
        raise ScaffoldError(
            f"no customer id found in {path}: pass --id with a column whose values are unique "
            + (f"per {date}" if date else "per row")
        )
    return ident


def _key_columns(
    frame: pd.DataFrame, *, ident: str, label: str, date: str | None
) -> dict[str, dict[str, Any]]:
    """The schema entries of the id, label and snapshot-date columns, under our names."""
    label_is_integer = pd.api.types.is_integer_dtype(frame[label])
    return {
        "customer_id": {
            "dtype": "int64" if pd.api.types.is_integer_dtype(frame[ident]) else "string",
            "description": f"{ident}: customer key",
        },
        "churned": {
            "dtype": "int64" if label_is_integer else "boolean",
            "description": f"{label}: churn label",
            **({"min": 0, "max": 1} if label_is_integer else {}),
        },
        "snapshot_date": {
            "dtype": "timestamp",
            "description": f"{date}: the date the row describes" if date else "as_of_date",
        },
    }


def _propose_feature(proposal: Proposal, name: str, values: pd.Series, *, is_date: bool) -> None:
    ours = snake_name(name)
    if ours in proposal.columns or ours in ("customer_id", "churned", "snapshot_date"):
        ours = f"{ours}_value"
    if is_date:
        proposal.ignored[name] = "a date (not a feature; derive one in a preparation step)"
        return
    nulls = bool(values.isna().any())
    observed = values.dropna()
    if observed.empty or observed.nunique() < 2:
        proposal.ignored[name] = "constant or empty: carries no information"
        return
    if _is_binary(values):
        column = {"dtype": "boolean", "nullable": nulls}
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            column = {"dtype": "int64", "nullable": nulls, "min": 0, "max": 1}
        feature = {"name": ours, "kind": "numeric", "min": 0, "max": 1}
        description = f"{name} (1 = yes, 0 = no)"
    elif pd.api.types.is_numeric_dtype(values):
        integral = pd.api.types.is_integer_dtype(values)
        low, high = float(observed.min()), float(observed.max())
        column = {"dtype": "int64" if integral else "float64", "nullable": nulls}
        feature = {"name": ours, "kind": "numeric"}
        if low >= 0:
            column["min"] = 0
            feature["min"] = 0
        description = f"{name} (observed {low:g} to {high:g})"
    else:
        text = observed.astype(str)
        # A text column of numbers with blanks (a CSV export's missing values) is numeric.
        numbers = pd.to_numeric(text.str.strip(), errors="coerce")
        if numbers.notna().mean() > 0.9 and text.nunique() > MAX_CATEGORIES:
            proposal.ignored[name] = (
                "numbers stored as text with some non-numeric values: convert it in a "
                "preparation step or declare it in customer_table.columns"
            )
            return
        categories = sorted({normalise_text(v, "snake_case") for v in text})
        if len(categories) > MAX_CATEGORIES:
            proposal.ignored[name] = f"text with {len(categories)} distinct values (an identifier?)"
            return
        column = {"dtype": "string", "nullable": nulls, "categories": categories}
        feature = {"name": ours, "kind": "categorical", "categories": categories}
        description = f"{name} ({len(categories)} categories)"
    if nulls:
        proposal.ignored[name] = "has missing values: declare a fill or clean it first"
        return
    if ours != name:
        proposal.rename[name] = ours
    proposal.columns[ours] = {**column, "description": description}
    proposal.features.append({**feature, "description": description})


def environment_files(proposal: Proposal, project_root: Path) -> dict[str, dict[str, Any]]:
    """The files of the new environment: file name -> YAML content (only what differs)."""
    try:
        filepath = proposal.path.resolve().relative_to(project_root.resolve()).as_posix()
    except ValueError:
        filepath = proposal.path.resolve().as_posix()
    customer_table: dict[str, Any] = {
        "id_column": proposal.id_column,
        "label_column": proposal.label_column,
    }
    if proposal.date_column:
        customer_table["date_column"] = proposal.date_column
    else:
        customer_table["as_of_date"] = proposal.as_of_date.isoformat()  # type: ignore[union-attr]
    customer_table["rename"] = proposal.rename
    customer_table["columns"] = proposal.columns
    numeric = [f["name"] for f in proposal.features if f["kind"] == "numeric"]
    age = next((n for n in numeric if n == "age" or n.endswith("_age")), None)
    return {
        "catalog_raw.yml": {
            "customers@ibis": {
                "type": "ibis.FileDataset",
                "filepath": filepath,
                "file_format": proposal.file_format,
                "table_name": "raw_customers",
                "connection": "${globals:table_engine}",
                "metadata": {"kedro-viz": {"layer": "raw"}},
            },
            # No event log: event features are not derived (see docs/bring_your_own_data.md
            # to add one). Churn records are not read: the label is a column of the table.
            "events@ibis": {"type": "MemoryDataset", "data": None},
            "churn_records@ibis": {"type": "MemoryDataset", "data": None},
        },
        "parameters_data_processing.yml": {
            "data_processing": {"input_mode": "customer_table", "customer_table": customer_table}
        },
        "parameters_feature_engineering.yml": {
            "feature_engineering": {"features": proposal.features}
        },
        "parameters_training.yml": {
            "training": {"candidates": {"xgboost": {"monotone_increasing": []}}}
        },
        "parameters_evaluation.yml": {
            "evaluation": {
                "segments": {"columns": proposal.categorical[:2], "age_column": age},
                "behaviour": {"directional": []},
            }
        },
    }


_HEADER = (
    "# Written by `churn-mlops byod init --from {source}` ({rows} rows inspected).\n"
    "# Only what differs from conf/base; review it, then run `kedro run --env {env}`.\n"
)


def write_environment(
    proposal: Proposal, project_root: Path, env: str, *, force: bool = False
) -> list[Path]:
    """Write ``conf/<env>/``; refuse to overwrite an existing environment unless ``force``."""
    folder = project_root / "conf" / env
    if env in ("base", "local"):
        raise ScaffoldError(f"--env {env!r}: choose a new environment name, not {env!r}")
    files = environment_files(proposal, project_root)
    existing = [folder / name for name in files if (folder / name).exists()]
    if existing and not force:
        raise ScaffoldError(
            f"{folder} already has {[p.name for p in existing]}; pass --force to overwrite"
        )
    folder.mkdir(parents=True, exist_ok=True)
    header = _HEADER.format(source=proposal.path, rows=proposal.rows, env=env)
    written = []
    for name, content in files.items():
        path = folder / name
        path.write_text(
            header + yaml.safe_dump(content, sort_keys=False, allow_unicode=True), "utf-8"
        )
        written.append(path)
    return written


def summary(proposal: Proposal) -> str:
    """What the scaffold proposes, for the terminal."""
    lines = [
        f"{proposal.path}: {proposal.rows} rows",
        f"  id     {proposal.id_column}",
        f"  label  {proposal.label_column}",
        f"  date   {proposal.date_column or f'none (as_of_date {proposal.as_of_date})'}",
        "  features:",
        *[f"    {f['name']:<28} {f['kind']:<12} {f['description']}" for f in proposal.features],
    ]
    if proposal.ignored:
        lines.append("  not used:")
        lines += [f"    {name:<28} {why}" for name, why in proposal.ignored.items()]
    return "\n".join(lines)
