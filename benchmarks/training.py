"""Benchmark: ``kedro run`` on the default data, and what Kedro + MLflow cost over plain Python.

Four measurements, each in its own subprocess (wall time, CPU time of the process tree and
peak resident memory from ``getrusage``; interpreter start-up and imports included):

- ``full``: ``kedro run`` — the default pipeline, simulation → data_processing →
  feature_engineering → training → evaluation — in a temporary copy of the project with a
  fresh MLflow SQLite store. It ends with a registered champion.
- ``kedro``: ``kedro run --pipelines training,evaluation`` on the data ``full`` produced, with
  the MLflow store ``full`` left behind — the usual retraining situation: the store exists and
  the gate loads and scores the champion.
- ``plain``: the same training and evaluation in a plain script — the project's node
  functions called in order with the committed parameters, inputs and outputs read and
  written with pandas/json/joblib/matplotlib, no Kedro session or catalog and no MLflow
  (no tracking, no nested runs). Like the kedro run it keeps every trained model as a new
  version, loads the current champion, scores it on the same test split and lets the gate
  decide — with a folder of model files instead of the MLflow registry, in the format the
  registry uses (``training.model_logging.serialization_format``: skops by default).
- ``plain-pickle``: the same script with pickle (joblib) model files, for comparison: skops's
  import costs about 0.5 s here (it lists every scikit-learn estimator and SciPy ufunc).

Before the measured plain runs, one unmeasured run gives each plain "registry" its first
champion, as the full kedro run gave MLflow's.

It prints the figures and the ratios ``kedro / plain`` (the goal: the framework, Kedro and
MLflow, costs under 25 %) and ``kedro / plain-pickle``: of the medians,
of the best runs, and round by round (each round runs them back to back, so its ratio is the
least exposed to a shared machine's swings in load).

Usage::

    python benchmarks/training.py                # full run, then 3 interleaved rounds
    python benchmarks/training.py --repeat 5     # medians of 5 (busy machine)
    python benchmarks/training.py --workdir /tmp/bench             # keep the project copy
    python benchmarks/training.py --workdir /tmp/bench --skip-full # reuse its data
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)


# --------------------------------------------------------------------------- measuring


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Run ``command`` through this script's ``_measure`` wrapper and return its figures."""
    wrapper = [sys.executable, __file__, "_measure", "--", *command]
    out = subprocess.run(wrapper, cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-3000:] + out.stderr[-3000:])
        raise SystemExit(f"{' '.join(command)} failed with exit code {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure_child(command: list[str]) -> None:
    """Run ``command``; print wall time, CPU time and peak RSS of the process tree as JSON."""
    started = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(proc.returncode)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "peak_rss_mib": usage.ru_maxrss / 1024,
            }
        )
    )


# --------------------------------------------------------------------------- project copy


def make_project(folder: Path) -> Path:
    """Copy conf/ and pyproject.toml into ``folder`` with empty data layers."""
    shutil.copytree(
        PROJECT_ROOT / "conf",
        folder / "conf",
        ignore=shutil.ignore_patterns("credentials*.yml", "local"),
    )
    (folder / "conf" / "local").mkdir()
    shutil.copy2(PROJECT_ROOT / "pyproject.toml", folder / "pyproject.toml")
    (folder / "src").mkdir()  # Kedro checks that the source folder exists
    for layer in LAYERS:
        (folder / "data" / layer).mkdir(parents=True)
    return folder


def kedro_env(store: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KEDRO_DISABLE_TELEMETRY="true",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        MLFLOW_TRACKING_URI=f"sqlite:///{store}",
        KEDRO_LOGGING_CONFIG=str(PROJECT_ROOT / "conf" / "logging.yml"),
    )
    return env


# --------------------------------------------------------------------------- plain script


def _load_parameters(project: Path) -> dict[str, Any]:
    """The committed parameters, with the two interpolations they use resolved by hand."""
    import yaml

    params: dict[str, Any] = {}
    for path in sorted((project / "conf" / "base").glob("parameters_*.yml")):
        with open(path, encoding="utf-8") as handle:
            params.update(yaml.safe_load(handle) or {})
    with open(project / "conf" / "base" / "globals.yml", encoding="utf-8") as handle:
        global_values = yaml.safe_load(handle)
    horizon = params["feature_engineering"]["snapshots"]["label_horizon_days"]
    params["training"]["split"]["purge_days"] = horizon
    params["evaluation"]["registry"] = global_values["model_registry"]
    return params


class _ModelFolder:
    """The plain script's registry: one file per version and a ``champion.json`` pointer."""

    def __init__(self, folder: Path, serialization_format: str, trusted: list[str]) -> None:
        self.folder = folder
        self.format = serialization_format
        self.trusted = trusted
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, version: int) -> Path:
        return self.folder / f"v{version}.{self.format}"

    def champion(self) -> dict[str, Any] | None:
        pointer = self.folder / "champion.json"
        if not pointer.exists():
            return None
        version = json.loads(pointer.read_text())["version"]
        if self.format == "skops":
            import skops.io

            model = skops.io.load(self._path(version), trusted=self.trusted)
        else:
            import joblib

            model = joblib.load(self._path(version))
        return {"version": version, "run_id": None, "model": model}

    def add(self, model: Any, promote: bool) -> int:
        version = len(list(self.folder.glob(f"v*.{self.format}"))) + 1
        if self.format == "skops":
            import skops.io

            skops.io.dump(model, self._path(version))
        else:
            import joblib

            joblib.dump(model, self._path(version))
        if promote:
            (self.folder / "champion.json").write_text(json.dumps({"version": version}))
        return version


def _plain(project: Path, model_format: str) -> None:
    """Training and evaluation without Kedro or MLflow: node functions + plain file I/O."""
    import joblib
    import pandas as pd

    from churn_mlops.pipelines.evaluation import nodes as ev
    from churn_mlops.pipelines.training import nodes as tr

    params = _load_parameters(project)
    features = params["feature_engineering"]["features"]
    # Outputs go to their own tree, so that they never collide with what Kedro wrote.
    out = project / "plain_output"
    for layer in LAYERS:
        (out / layer).mkdir(parents=True, exist_ok=True)
    cfg, specs = tr.validate_training_parameters(params["training"], features)
    setup = ev.validate_evaluation_parameters(params["evaluation"], params["training"], features)
    data = out
    reports = out / "08_reporting"

    def write_json(name: str, value: Any) -> None:
        (reports / name).write_text(json.dumps(value, indent=2, default=float))

    table = pd.read_parquet(project / "data" / "05_model_input" / "model_input_table.parquet")
    train, validation, test, summary = tr.split_by_snapshot_month(table, specs, cfg)
    for name, frame in (("train", train), ("validation", validation), ("test", test)):
        frame.to_parquet(data / "05_model_input" / f"{name}_split.parquet")
    write_json("split_summary.json", summary)
    sample = tr.sample_training_rows(train, cfg)
    baseline = tr.fit_logistic_regression(sample, specs, cfg)
    search, _history = tr.tune_xgboost(sample, validation, specs, cfg)
    write_json("xgboost_search.json", search)
    xgboost = tr.fit_xgboost(sample, search, specs, cfg)
    scores = tr.score_candidates(baseline, xgboost, validation, specs, cfg)
    write_json("candidate_scores.json", scores)
    model, selection = tr.select_best_candidate(baseline, xgboost, scores, cfg)
    write_json("model_selection.json", selection)
    joblib.dump(model, data / "06_models" / "trained_model.joblib")

    validation_scores = ev.predict_churn_scores(model, validation, setup)
    test_scores = ev.predict_churn_scores(model, test, setup)
    test_scores.to_parquet(data / "07_model_output" / "test_predictions.parquet")
    threshold = ev.choose_decision_threshold(validation_scores, setup)
    write_json("decision_threshold.json", threshold)
    ev.plot_net_value_curve(threshold).savefig(reports / "net_value_curve.png")
    metrics = ev.compute_test_metrics(test_scores, threshold, setup)
    write_json("test_metrics.json", metrics)
    calibration = ev.compute_calibration(test_scores, setup)
    calibration.to_csv(reports / "calibration.csv", index=False)
    ev.plot_calibration_curve(calibration).savefig(reports / "calibration_curve.png")
    segments = ev.compute_segment_metrics(test_scores, test, threshold, setup)
    segments.to_csv(reports / "segment_metrics.csv", index=False)
    importance, explanation, additivity = ev.explain_model(model, test, setup)
    importance.to_csv(reports / "shap_importance.csv", index=False)
    write_json("shap_additivity.json", additivity)
    ev.plot_shap_summary(explanation, setup).savefig(reports / "shap_summary.png")
    ev.plot_shap_importance(importance).savefig(reports / "shap_importance.png")
    behaviour = ev.check_model_behaviour(model, test, setup)
    write_json("behaviour_report.json", behaviour)
    profile = ev.build_reference_profile(model, train, setup)
    (data / "06_models" / "reference_profile.json").write_text(json.dumps(profile, indent=2))
    logging_cfg = params["training"]["model_logging"]
    serialization = logging_cfg["serialization_format"] if model_format == "registry" else "pickle"
    registry = _ModelFolder(
        out / f"models-{model_format}",
        serialization,
        list(logging_cfg.get("skops_trusted_types") or []),
    )
    champion = ev.score_champion(registry.champion(), test, setup)
    decision = ev.decide_promotion(metrics, champion, behaviour, additivity, setup)
    write_json("promotion_decision.json", decision)
    metadata = ev.build_model_metadata(model, train, threshold, metrics, setup)
    card = ev.build_model_card(
        metadata,
        summary,
        selection,
        scores,
        metrics,
        threshold,
        calibration,
        segments,
        importance,
        additivity,
        behaviour,
        decision,
    )
    (data / "06_models" / "model_metadata.json").write_text(json.dumps(metadata, indent=2))
    (reports / "model_card.md").write_text(card)
    registry.add(model, promote=bool(decision["promote"]))


# --------------------------------------------------------------------------- main


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        _measure_child(sys.argv[3:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_plain":
        _plain(Path(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="interleaved runs of kedro and the plain scripts; medians are reported",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the project copy here (default: a temporary folder that is removed)",
    )
    parser.add_argument(
        "--skip-full",
        action="store_true",
        help="reuse the data of a previous run in --workdir instead of the full kedro run",
    )
    args = parser.parse_args()
    if args.skip_full and args.workdir is None:
        parser.error("--skip-full needs --workdir with the data of a previous run")
    with tempfile.TemporaryDirectory(prefix="churn-bench-") as tmp:
        work = args.workdir or Path(tmp)
        _run(work, repeat=args.repeat, skip_full=args.skip_full)


def _run(work: Path, *, repeat: int, skip_full: bool) -> None:
    import pandas as pd

    kedro = str(Path(sys.executable).with_name("kedro"))
    project = work / "project"
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average at start {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    print(f"{'run':<40} {'wall (s)':>9} {'CPU (s)':>9} {'peak RSS (MiB)':>15}", flush=True)

    def report(label: str, figures: dict[str, float]) -> None:
        print(
            f"{label:<40} {figures['wall_s']:>9.1f} {figures['cpu_s']:>9.1f} "
            f"{figures['peak_rss_mib']:>15.0f}",
            flush=True,
        )

    if not skip_full:
        if project.exists():
            shutil.rmtree(project)
        make_project(project)
        report(
            "full kedro run (5 pipelines)",
            measure([kedro, "run"], project, kedro_env(work / "full.db")),
        )
    plain_variants = {
        "plain": ["registry"],
        "plain-pickle": ["pickle"],
    }
    for model_format in ("registry", "pickle"):
        if not (project / "plain_output" / f"models-{model_format}" / "champion.json").exists():
            measure(  # unmeasured: gives this model folder its first champion
                [sys.executable, __file__, "_plain", str(project), model_format],
                project,
                kedro_env(work / "unused.db"),
            )
    runs: dict[str, list[dict[str, float]]] = {}
    for attempt in range(repeat):
        # The store of the full run: it exists and holds a champion, as for any retraining.
        results = {
            "kedro": measure(
                [kedro, "run", "--pipelines", "training,evaluation"],
                project,
                kedro_env(work / "full.db"),
            )
        }
        report(f"kedro run training,evaluation #{attempt + 1}", results["kedro"])
        for variant, plain_args in plain_variants.items():
            results[variant] = measure(
                [sys.executable, __file__, "_plain", str(project), *plain_args],
                project,
                kedro_env(work / "unused.db"),
            )
            report(f"{variant} script training+evaluation #{attempt + 1}", results[variant])
        for name, figures in results.items():
            runs.setdefault(name, []).append(figures)
    rows = len(pd.read_parquet(project / "data/05_model_input/model_input_table.parquet"))
    print(f"model_input_table rows: {rows}; load average at end {os.getloadavg()[0]:.1f}")
    median = {
        name: {key: statistics.median(f[key] for f in figures) for key in figures[0]}
        for name, figures in runs.items()
    }
    for name in runs:
        report(f"median of {repeat}: {name}", median[name])
    k = median["kedro"]
    goals = {"plain": " (goal: under x1.25)", "plain-pickle": ""}
    for variant, goal in goals.items():
        p = median[variant]
        best = min(f["wall_s"] for f in runs["kedro"]) / min(f["wall_s"] for f in runs[variant])
        # Each round runs kedro and the plain script back to back, so a round's ratio is
        # less exposed to the shared machine's slow swings in load than a ratio of medians.
        paired = [
            kedro_run["wall_s"] / plain_run["wall_s"]
            for kedro_run, plain_run in zip(runs["kedro"], runs[variant], strict=True)
        ]
        print(
            f"kedro / {variant} (medians of {repeat}): wall x{k['wall_s'] / p['wall_s']:.2f}, "
            f"CPU x{k['cpu_s'] / p['cpu_s']:.2f}, "
            f"peak memory x{k['peak_rss_mib'] / p['peak_rss_mib']:.2f}{goal}; "
            f"best-of wall x{best:.2f}; overhead {k['wall_s'] - p['wall_s']:.1f} s"
        )
        print(
            f"  wall ratio per round: {' '.join(f'x{r:.2f}' for r in paired)} "
            f"(median x{statistics.median(paired):.2f}, worst x{max(paired):.2f})"
        )


if __name__ == "__main__":
    main()
