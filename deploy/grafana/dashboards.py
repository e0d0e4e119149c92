"""Building blocks of the generated Grafana dashboards (generate.py, generate_ingestion.py).

Panels, rows and targets, the dashboard frame (data source and namespace variables) and the
``--check`` command line: each generator only lists its own panels.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SELECTOR = 'namespace=~"$namespace"'
RATE = "$__rate_interval"


def target(expr: str, legend: str, ref: str, **extra: Any) -> dict[str, Any]:
    """One PromQL query of a panel."""
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "refId": ref,
        "range": True,
        **extra,
    }


def panel(
    title: str,
    kind: str,
    targets: list[dict[str, Any]],
    *,
    grid: tuple[int, int, int, int],
    unit: str = "short",
    description: str = "",
    thresholds: list[tuple[str, float | None]] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A panel at ``grid`` = (x, y, width, height) with colour ``thresholds`` (colour, from)."""
    x, y, w, h = grid
    steps = [{"color": color, "value": value} for color, value in (thresholds or [("green", None)])]
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": options or {},
    }


def row(title: str, y: int) -> dict[str, Any]:
    """A full-width row header at height ``y``."""
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    tags: list[str],
    namespace_metric: str,
    panels: list[dict[str, Any]],
) -> dict[str, Any]:
    """The dashboard (Grafana JSON model, schema version 39) with a data source variable and a
    namespace variable listing the namespaces where ``namespace_metric`` exists."""
    namespaces = f"label_values({namespace_metric}, namespace)"
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                {
                    "name": "namespace",
                    "label": "Namespace",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {"query": namespaces, "refId": "namespace"},
                    "definition": namespaces,
                    "includeAll": True,
                    "allValue": ".*",
                    "multi": True,
                    "refresh": 2,
                    "current": {},
                    "hide": 0,
                },
            ]
        },
        "panels": panels,
    }


def render(model: dict[str, Any]) -> str:
    """The dashboard JSON exactly as it is written to disk."""
    return json.dumps(model, indent=2, sort_keys=False) + "\n"


def main(
    argv: list[str] | None,
    *,
    build: Callable[[], dict[str, Any]],
    output: Path,
    description: str,
    script: str,
) -> int:
    """Write the dashboard to ``output`` or, with ``--check``, return 1 if it is out of date."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="fail if the JSON is out of date")
    parser.add_argument("--output", type=Path, default=output)
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            sys.stderr.write(f"{args.output} is out of date: run python {script}\n")
            return 1
        return 0
    args.output.write_text(text)
    return 0
