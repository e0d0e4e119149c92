"""Small PromQL and metrics-contract helpers shared by the Prometheus and Grafana tests."""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy.conftest import PROJECT_ROOT

# Functions, aggregations and keywords of PromQL that can appear as bare identifiers.
PROMQL_WORDS = frozenset(
    """
    abs absent absent_over_time avg avg_over_time bool bottomk by ceil changes clamp clamp_max
    clamp_min count count_over_time count_values day_of_month day_of_week delta deriv exp floor
    group group_left group_right histogram_quantile holt_winters idelta ignoring increase irate
    label_join label_replace last_over_time ln log10 log2 max max_over_time min min_over_time
    offset on or and unless predict_linear quantile quantile_over_time rate resets round scalar
    sgn sort sort_desc sqrt stddev stddev_over_time stdvar sum sum_over_time time timestamp
    topk vector without inf nan label_values
    """.split()
)

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w$.])[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER_UNIT = re.compile(r"\b\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y)?\b")


def metric_names(expr: str) -> set[str]:
    """The metric (or recorded series) names an expression reads.

    Handles label matchers, ranges, grouping clauses, strings, Grafana ``$variables`` and
    ``label_values(metric, label)`` template queries; enough for the queries in this repo.
    """
    text = _STRING.sub("", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*\w+\s*\)", r" \1 ", text)
    text = re.sub(r"\$\w+", " ", text)
    text = _NUMBER_UNIT.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name not in PROMQL_WORDS}


def contract_metrics(architecture: Path = PROJECT_ROOT / "docs" / "architecture.md") -> dict:
    """``{name: type}`` from the metrics table of docs/architecture.md."""
    table = architecture.read_text().split("### Prometheus metrics exported by the serving app")[1]
    rows = re.findall(r"^\|\s*`(churn_[a-z_]+)`\s*\|\s*([a-z]+)", table, flags=re.MULTILINE)
    assert rows, "no metrics table in docs/architecture.md"
    return dict(rows)


def sample_names(families: dict[str, str]) -> set[str]:
    """The series names a scrape holds for ``{family name: type}``."""
    names: set[str] = set()
    for name, kind in families.items():
        if kind == "counter":
            names.add(name if name.endswith("_total") else f"{name}_total")
        elif kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(name)
    return names


def exposition_families(text: str) -> dict[str, str]:
    """``{family name: type}`` from the ``# TYPE`` lines of a Prometheus text exposition."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))
