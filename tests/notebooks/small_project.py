"""A small, fully run copy of the project for the notebook tests (and for trying notebooks).

`build_small_project` copies the project's configuration into a folder, shrinks the parameters
so every pipeline runs in seconds, and runs the pipelines the notebooks read from:
``simulation → data_processing → feature_engineering → training → evaluation`` (one ``kedro
run``). Run it by hand to get a project to open the notebooks against::

    .venv/bin/python -m tests.notebooks.small_project /tmp/churn-small
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import PROJECT_ROOT, kedro_env, make_project_copy

# Parameter overrides per conf/base/parameters_<file>.yml, merged key by key into the copy.
# Twelve simulated months of ~800 customers give 7+ snapshot months: enough for the
# 3 + 2 + 2 month time split, a tiny Optuna budget, and a monitoring window with history.
SMALL_PARAMETERS: dict[str, dict[str, Any]] = {
    "simulation": {
        "simulation": {
            "n_months": 12,
            "population": {"initial_customers": 800, "monthly_signups": 60},
            "scenario": {"start_month": 6},  # must lie inside the shorter period
        }
    },
    "training": {
        "training": {
            "candidates": {
                "logistic_regression": {"max_iter": 200},
                "xgboost": {
                    "max_estimators": 60,
                    "early_stopping_rounds": 10,
                    "search": {"n_trials": 2, "timeout_s": 30},
                },
            }
        }
    },
    "evaluation": {
        "evaluation": {
            "shap": {"sample_rows": 300, "background_rows": 100},
            "segments": {"min_rows": 30},
            "behaviour": {"sample_rows": 50},
            # Small data: the absolute floors are not the point here, a champion is.
            "gate": {"minimums": {"roc_auc": 0.5, "pr_auc_lift": 1.0}},
        }
    },
    "monitoring": {
        "monitoring": {
            "window": {"history_months": 3, "min_rows": 100},
            "reference_sample": {"max_rows": 2000},
            "performance": {"min_labelled": 50, "min_positives": 5},
        }
    },
}

#: Pipelines run once by `build_small_project`, in order (each entry is one ``kedro run``).
#: Notebook 05 runs the monitoring nodes itself, so the monitoring pipeline is not needed.
RUNS: tuple[tuple[str, ...], ...] = (
    ("simulation", "data_processing", "feature_engineering", "training", "evaluation"),
)


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def shrink_parameters(project_dir: Path) -> None:
    """Write `SMALL_PARAMETERS` into the copy's conf/base parameter files."""
    for name, overrides in SMALL_PARAMETERS.items():
        path = project_dir / "conf" / "base" / f"parameters_{name}.yml"
        if not path.exists():  # a pipeline that has not landed yet
            continue
        current = yaml.safe_load(path.read_text(encoding="utf-8"))
        path.write_text(yaml.safe_dump(_merge(current, overrides), sort_keys=False), "utf-8")


def registered_pipelines() -> set[str]:
    """Names of the pipelines the installed package has (``find_pipelines`` registers each)."""
    import churn_mlops.pipelines

    folder = Path(churn_mlops.pipelines.__file__).parent
    return {path.parent.name for path in folder.glob("*/pipeline.py")}


def run_kedro(project_dir: Path, *args: str, timeout: float = 600) -> str:
    """Run this venv's ``kedro`` in ``project_dir``; raise with the output tail on failure."""
    kedro = Path(sys.executable).with_name("kedro")
    proc = subprocess.run(
        [str(kedro), *args],
        cwd=project_dir,
        env=kedro_env(project_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"kedro {' '.join(args)} failed in {project_dir} (exit {proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


def build_small_project(destination: Path) -> dict[str, float]:
    """Copy the project to ``destination`` with small parameters and run its pipelines.

    Returns:
        Seconds taken by each ``kedro run`` (keyed by the pipelines it ran).
    """
    make_project_copy(destination)
    shrink_parameters(destination)
    available = registered_pipelines()
    timings: dict[str, float] = {}
    for group in RUNS:
        names = [name for name in group if name in available]
        if not names:
            continue
        started = time.perf_counter()
        run_kedro(destination, "run", "--pipelines", ",".join(names))
        timings["+".join(names)] = time.perf_counter() - started
    return timings


if __name__ == "__main__":
    os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(PROJECT_ROOT / "conf" / "logging.yml"))
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/churn-small").resolve()
    for run, seconds in build_small_project(target).items():
        sys.stdout.write(f"{run}: {seconds:.1f} s\n")
    sys.stdout.write(f"project ready in {target}\n")
