"""Benchmark: the figures the documentation quotes, measured in one place.

README.md, docs/quickstart.md, docs/experiment_tracking.md and docs/export.md quote how long
``kedro run`` and an export take and what the default model scores. This script measures those
figures on the default data, in a temporary copy of the project with a fresh MLflow store:

- ``kedro run`` (the default pipeline) ``--runs`` times, each in its own subprocess (wall time,
  CPU time of the process tree, peak RSS; start-up included; ``benchmarks/training.py``'s
  ``measure``). The first run starts from an empty store; later ones retrain on the same data
  and go through the gate against the champion;
- after each run, the test metrics the docs quote (``data/08_reporting/test_metrics.json``):
  ROC AUC, PR AUC, precision, the business threshold and the share of customers flagged;
- with ``--export``, one ``kedro run --pipelines export`` (wall time and the phases the
  bundle's ``manifest.json`` records).

It prints one line per run and a Markdown table of ranges (min–max) to paste into
``benchmarks/README.md`` ("Figures the docs quote"), which the docs cite. ``--params`` is passed
to every ``kedro run`` (``--params simulation.seed=7`` varies the data, for example).

Usage::

    python benchmarks/docs_figures.py                      # 3 default runs
    python benchmarks/docs_figures.py --runs 5 --export    # and one export
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from training import PROJECT_ROOT, kedro_env, make_project, measure

METRICS = ("roc_auc", "pr_auc", "precision", "threshold", "flagged_share")


def kedro_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("kedro")), *args]


def run_once(project: Path, env: dict[str, str], params: str | None) -> dict[str, Any]:
    """One ``kedro run``: its time figures and the test metrics it wrote."""
    extra = ["--params", params] if params else []
    figures = measure(kedro_command("run", *extra), project, env)
    metrics = json.loads((project / "data/08_reporting/test_metrics.json").read_text())
    return {**figures, **{name: metrics[name] for name in METRICS}}


def export_once(project: Path, env: dict[str, str]) -> dict[str, Any]:
    """One export of the champion: wall time and the manifest's phases."""
    figures = measure(kedro_command("run", "--pipelines", "export"), project, env)
    bundle = max((project / "dist").glob("churn_model-v*/"), key=lambda p: p.stat().st_mtime)
    manifest = json.loads((bundle / "manifest.json").read_text())
    return {**figures, "phases_s": manifest["export"]["phases_s"]}


def span(values: list[float], digits: int) -> str:
    low, high = min(values), max(values)
    return (
        f"{low:.{digits}f}"
        if round(low, digits) == round(high, digits)
        else (f"{low:.{digits}f}–{high:.{digits}f}")
    )


def table(runs: list[dict[str, Any]], export: dict[str, Any] | None) -> str:
    """The Markdown table of ranges over the runs."""
    rows = [
        ("`kedro run` wall time (s)", span([r["wall_s"] for r in runs], 1)),
        ("`kedro run` CPU time (s)", span([r["cpu_s"] for r in runs], 1)),
        ("`kedro run` peak RSS (MiB)", span([r["peak_rss_mib"] for r in runs], 0)),
        *((f"test {name}", span([r[name] for r in runs], 3)) for name in METRICS),
    ]
    if export is not None:
        rows.append(("export wall time (s)", f"{export['wall_s']:.1f}"))
        rows += [(f"export phase: {k} (s)", str(v)) for k, v in export["phases_s"].items()]
    lines = ["| figure | range |", "|---|---:|", *(f"| {a} | {b} |" for a, b in rows)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="default `kedro run`s (default 3)")
    parser.add_argument("--export", action="store_true", help="also time one export")
    parser.add_argument("--params", default=None, help="--params for every kedro run")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    with tempfile.TemporaryDirectory(prefix="churn-docs-figures-") as tmp:
        project = make_project(Path(tmp) / "project")
        env = kedro_env(project / "mlflow.db")
        env.setdefault("CHURN_WHEEL_CACHE_DIR", str(PROJECT_ROOT / "dist" / ".wheel-cache"))
        runs = []
        for index in range(args.runs):
            runs.append(run_once(project, env, args.params))
            print(f"run {index + 1}: " + json.dumps({k: round(v, 3) for k, v in runs[-1].items()}))
        export = export_once(project, env) if args.export else None
        if export is not None:
            print("export: " + json.dumps(export))
    print(f"\n{table(runs, export)}")


if __name__ == "__main__":
    main()
