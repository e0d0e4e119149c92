"""Continuous training: monitor, and when the decision says so retrain, gate, promote, export.

One command (``python -m churn_mlops.orchestration.continuous_training``, see docs/monitoring.md)
runs, each in its own Kedro session:

1. the ``continuous_training.refresh_pipelines`` (by default ``data_processing`` and
   ``feature_engineering``: newly landed raw data becomes the updated feature table);
2. the ``monitoring`` pipeline, which writes ``retrain_decision``;
3. if the decision says *retrain* and its ``trigger_id`` was not handled before: the
   ``retrain_pipelines`` (``training``, ``evaluation``: the time split puts the newest months
   in the test split, so the model is retrained and gated on the updated window; the gate
   promotes the challenger only if it is not worse than the champion);
4. if the new version became champion: the ``export_pipelines`` that are registered.

Why a driver and not one Kedro pipeline: a Kedro pipeline cannot skip nodes at run time, so
"retrain only when monitoring says so" needs a decision between two runs. The driver is the
only place with side effects; every step is an ordinary pipeline run that can also be run by
hand, and each keeps its own MLflow run.

MLflow record: a ``continuous_training`` run whose tags say what happened (``ct.action``,
``ct.trigger_id``, ``ct.reasons``, ``ct.champion_before``, ``ct.challenger_version``,
``ct.champion_after``, ``ct.outcome``) is the parent of the runs of the pipelines it started.
The same tags mark the registered version it produced. A trigger counts as handled when a
``continuous_training`` run with its ``trigger_id`` retrained (or is retraining right now),
so running the command again on the same data never retrains twice.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

logger = logging.getLogger(__name__)

CT_RUN_NAME = "continuous_training"
TAG_TRIGGER = "ct.trigger_id"
TAG_ACTION = "ct.action"
PARENT_TAG = "mlflow.parentRunId"
HANDLED_ACTIONS = ("retrained",)
OUTCOME_DATASET = "continuous_training_outcome"
#: Lock file (under the project root) that lets one continuous-training run at a time.
LOCK_FILE = "data/continuous_training.lock"


class ContinuousTrainingError(RuntimeError):
    """A continuous-training step failed; the message names the step and the MLflow run."""


def _end_dangling_runs() -> None:
    """End the runs a finished Kedro session left active in this thread.

    kedro-mlflow re-opens the pipeline's run before every node (for threaded runners) and
    closes it once at the end; with MLflow 3 each re-open stacks another reference, so the
    run stays active after ``session.run``. The next session would then log into it, so the
    driver closes every leftover reference between sessions.
    """
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()


def _run_session(
    project_path: Path,
    pipelines: Sequence[str],
    env: str | None,
    runtime_params: Mapping[str, Any] | None,
) -> str | None:
    """Run ``pipelines`` in one new Kedro session; return the MLflow run id it logged to."""
    import mlflow
    from kedro.framework.session import KedroSession

    before = mlflow.last_active_run()
    try:
        with KedroSession.create(
            project_path=project_path, env=env, runtime_params=dict(runtime_params or {})
        ) as session:
            session.run(pipeline_names=list(pipelines))
    finally:
        _end_dangling_runs()
    after = mlflow.last_active_run()
    if after is None or (before is not None and after.info.run_id == before.info.run_id):
        return None
    return after.info.run_id


def _load(
    project_path: Path, env: str | None, runtime_params: Mapping[str, Any] | None, name: str
) -> Any:
    from kedro.framework.session import KedroSession

    with KedroSession.create(
        project_path=project_path, env=env, runtime_params=dict(runtime_params or {})
    ) as session:
        context = session.load_context()
        if name.startswith("params:"):
            # The config loader, not context.params: that one imports every pipeline.
            return context.config_loader["parameters"].get(name.split(":", 1)[1])
        return context.catalog.load(name)


def _save(
    project_path: Path,
    env: str | None,
    runtime_params: Mapping[str, Any] | None,
    name: str,
    data: Any,
) -> None:
    from kedro.framework.session import KedroSession

    with KedroSession.create(
        project_path=project_path, env=env, runtime_params=dict(runtime_params or {})
    ) as session:
        session.load_context().catalog.save(name, data)


def _experiment_id(
    project_path: Path, env: str | None, runtime_params: Mapping[str, Any] | None
) -> str:
    """The id of the experiment named in mlflow.yml (created if it does not exist yet)."""
    import mlflow
    from kedro.framework.session import KedroSession

    with KedroSession.create(
        project_path=project_path, env=env, runtime_params=dict(runtime_params or {})
    ) as session:
        name = session.load_context().mlflow.tracking.experiment.name
    experiment = mlflow.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else mlflow.create_experiment(name)


def _registered(names: Sequence[str]) -> tuple[list[str], list[str]]:
    from kedro.framework.project import pipelines

    # A session run loads only the pipelines it requested; ask for the whole registry.
    pipelines.set_requested(None)
    present = [n for n in names if n in pipelines]
    return present, [n for n in names if n not in pipelines]


def _already_handled(client: Any, experiment_id: str, trigger_id: str) -> str | None:
    """The id of a ``continuous_training`` run that retrained (or is retraining) this trigger."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_TRIGGER}` = '{trigger_id}'",
        max_results=50,
    )
    for run in runs:
        action = run.data.tags.get(TAG_ACTION)
        if action in HANDLED_ACTIONS or (action == "retraining" and run.info.status == "RUNNING"):
            return run.info.run_id
    return None


def _tag(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:4997] + "..." if len(text) > 5000 else text


@dataclass(frozen=True)
class _Project:
    """Where and how every Kedro session of one continuous-training call runs."""

    path: Path
    env: str | None
    runtime_params: Mapping[str, Any] | None

    def run(self, pipelines: Sequence[str]) -> str | None:
        return _run_session(self.path, pipelines, self.env, self.runtime_params)

    def load(self, name: str) -> Any:
        return _load(self.path, self.env, self.runtime_params, name)

    def save(self, name: str, data: Any) -> None:
        _save(self.path, self.env, self.runtime_params, name, data)


@dataclass
class _CtRecord:
    """The ``continuous_training`` MLflow run and the outcome it ends with."""

    project: _Project
    client: Any
    run_id: str
    outcome: dict[str, Any]

    def finish(self, action: str, status: str = "FINISHED", **extra: Any) -> dict[str, Any]:
        """Tag, log and end the CT run, save the outcome dataset, and return the outcome."""
        self.outcome.update(action=action, **extra)
        self.client.set_tag(self.run_id, TAG_ACTION, action)
        for key, value in extra.items():
            self.client.set_tag(self.run_id, f"ct.{key}", _tag(value))
        self.client.log_text(
            self.run_id,
            json.dumps(self.outcome, indent=2, default=str),
            "continuous_training.json",
        )
        self.client.set_terminated(self.run_id, status)
        self.project.save(OUTCOME_DATASET, self.outcome)
        logger.info("Continuous training: %s (%s)", action, self.outcome["reasons"])
        return self.outcome

    def run_step(self, pipelines: Sequence[str], what: str, **extra: Any) -> str | None:
        """Run a step as a child of the CT run; a failure ends the CT run as FAILED."""
        try:
            run_id = self.project.run(pipelines)
        except Exception as exc:
            self.finish("failed", status="FAILED", failed_step="+".join(pipelines), **extra)
            raise ContinuousTrainingError(
                f"{what} ({'+'.join(pipelines)}) failed; see MLflow run {self.run_id}: {exc}"
            ) from exc
        if run_id:
            self.client.set_tag(run_id, PARENT_TAG, self.run_id)
        return run_id


def _monitor(project: _Project, settings: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Refresh the data (when configured) and run monitoring; return both MLflow run ids."""
    refresh, skipped = _registered(settings.get("refresh_pipelines", []))
    if skipped:
        logger.warning("Refresh pipelines not registered, skipped: %s", skipped)
    refresh_run = None
    if refresh:
        logger.info("Continuous training: refreshing data with %s", refresh)
        refresh_run = project.run(refresh)
    logger.info("Continuous training: monitoring")
    return refresh_run, project.run(["monitoring"])


def _champion_registry(project: _Project, model_name: str) -> Any:
    from churn_mlops.registry import ChampionRegistry

    registry_cfg = project.load("params:evaluation") or {}
    aliases = {
        k: v
        for k, v in (registry_cfg.get("registry") or {}).items()
        if k in ("champion_alias", "challenger_alias")
    }
    return ChampionRegistry(model_name, **aliases)


def _open_ct_run(
    project: _Project,
    client: Any,
    experiment_id: str,
    decision: Mapping[str, Any],
    child_runs: tuple[str | None, str | None],
    champion_before: str | None,
) -> _CtRecord:
    """Create the CT run tagged with the decision; the refresh and monitoring runs are children."""
    refresh_run, monitoring_run = child_runs
    trigger_id = decision.get("trigger_id")
    tags = {
        TAG_TRIGGER: trigger_id or "none",
        "ct.reasons": _tag(decision["reasons"]),
        "ct.fired_triggers": _tag(decision["fired_triggers"]),
        "ct.blocked_by": _tag(decision["blocked_by"]),
        "ct.decision_retrain": str(decision["retrain"]).lower(),
        "ct.champion_before": str(champion_before),
        "ct.monitoring_run_id": monitoring_run or "",
        "ct.window": _tag(decision["window"]),
    }
    ct_run = client.create_run(experiment_id, run_name=CT_RUN_NAME, tags=tags).info.run_id
    for child in (refresh_run, monitoring_run):
        if child:
            client.set_tag(child, PARENT_TAG, ct_run)
    outcome: dict[str, Any] = {
        "ct_run_id": ct_run,
        "monitoring_run_id": monitoring_run,
        "trigger_id": trigger_id,
        "decision_retrain": bool(decision["retrain"]),
        "reasons": decision["reasons"],
        "champion_before": champion_before,
    }
    return _CtRecord(project, client, ct_run, outcome)


def _tag_challenger(
    record: _CtRecord, registry: Any, challenger: str, decision: Mapping[str, Any]
) -> None:
    """Record on the new version which trigger and CT run produced it."""
    for key, value in (
        (TAG_TRIGGER, decision.get("trigger_id") or "forced"),
        ("ct.reasons", _tag(decision["reasons"])),
        ("ct.run_id", record.run_id),
        ("ct.champion_before", str(record.outcome["champion_before"])),
    ):
        record.client.set_model_version_tag(registry.model_name, challenger, key, value)


def _retrain(
    record: _CtRecord, settings: Mapping[str, Any], registry: Any, decision: Mapping[str, Any]
) -> dict[str, Any]:
    """Retrain (training + evaluation gate), export a promoted model, and finish the CT run."""
    record.client.set_tag(record.run_id, TAG_ACTION, "retraining")
    retrain, missing = _registered(settings.get("retrain_pipelines", ["training", "evaluation"]))
    if missing:
        logger.warning("Retrain pipelines not registered, skipped: %s", missing)
    if not retrain:
        record.finish("failed", status="FAILED", failed_step="no retrain pipeline registered")
        raise ContinuousTrainingError(
            f"None of continuous_training.retrain_pipelines {missing} is a registered "
            f"pipeline; see MLflow run {record.run_id}."
        )
    training_run = record.run_step(retrain, "Retraining")
    produced = [v.version for v in registry.versions() if training_run and v.run_id == training_run]
    challenger = produced[0] if produced else registry.alias_version(registry.challenger_alias)
    champion_after = registry.champion_version()
    before = record.outcome["champion_before"]
    promoted = champion_after is not None and champion_after == challenger != before
    if challenger is not None:
        _tag_challenger(record, registry, challenger, decision)
    exported: list[str] = []
    if promoted:
        export, missing = _registered(settings.get("export_pipelines", []))
        if missing:
            logger.warning("Export pipelines not registered yet, skipped: %s", missing)
        if export:
            record.run_step(
                export,
                f"Export of v{challenger}",
                challenger_version=challenger,
                champion_after=champion_after,
            )
            exported = export
    return record.finish(
        "retrained",
        training_run_id=training_run,
        challenger_version=challenger,
        champion_after=champion_after,
        outcome="promoted" if promoted else "refused",
        exported=exported,
    )


def run_continuous_training(
    project_path: Path | str,
    *,
    env: str | None = None,
    runtime_params: Mapping[str, Any] | None = None,
    force: bool = False,
    dry_run: bool = False,
    lock_wait_s: float = 0.0,
) -> dict[str, Any]:
    """Monitor and, when the decision says so, retrain, gate, promote and export.

    One run at a time per project: the run holds ``data/continuous_training.lock``
    (:func:`churn_mlops.run_lock.exclusive_run`); a second one waits ``lock_wait_s`` seconds
    for it, then raises :class:`~churn_mlops.run_lock.RunLockedError` without touching
    anything, so the registry is never written by two runs.

    Args:
        project_path: The Kedro project root.
        env: Kedro configuration environment.
        runtime_params: Parameter overrides for every session (as ``kedro run --params``).
        force: Retrain even if no trigger fired or the trigger was handled before.
        dry_run: Monitor and decide, but never retrain.
        lock_wait_s: How long to wait for a continuous-training run already in progress.

    Returns:
        The outcome: ``action`` (``no_retrain``, ``already_handled``, ``dry_run``,
        ``retrained``), the decision's reasons, the MLflow run ids and the versions involved.

    Raises:
        ContinuousTrainingError: a pipeline run failed (the CT run is marked FAILED).
        RunLockedError: another continuous-training run still holds the lock.
    """
    from churn_mlops.run_lock import exclusive_run

    project = _Project(Path(project_path).resolve(), env, runtime_params)
    with exclusive_run(
        project.path / LOCK_FILE, wait_s=lock_wait_s, purpose="continuous-training run"
    ):
        return _run_unlocked(project, force=force, dry_run=dry_run)


def _run_unlocked(project: _Project, *, force: bool, dry_run: bool) -> dict[str, Any]:
    from kedro.framework.startup import bootstrap_project

    env, runtime_params = project.env, project.runtime_params
    bootstrap_project(project.path)
    settings = project.load("params:continuous_training") or {}
    refresh_run, monitoring_run = _monitor(project, settings)
    decision = project.load("retrain_decision")
    registry = _champion_registry(project, decision["champion"]["model_name"])
    client = registry.client
    experiment_id = (
        client.get_run(monitoring_run).info.experiment_id
        if monitoring_run
        else _experiment_id(project.path, env, runtime_params)
    )
    record = _open_ct_run(
        project,
        client,
        experiment_id,
        decision,
        (refresh_run, monitoring_run),
        registry.champion_version(),
    )
    trigger_id = decision.get("trigger_id")
    handled = _already_handled(client, experiment_id, trigger_id) if trigger_id else None
    if dry_run:
        return record.finish("dry_run")
    if not force and not decision["retrain"]:
        return record.finish("no_retrain")
    if not force and handled:
        return record.finish("already_handled", handled_by=handled)
    return _retrain(record, settings, registry, decision)


def _parse_params(text: str | None) -> dict[str, Any]:
    """``a.b=1,c=x`` → ``{"a": {"b": 1}, "c": "x"}`` (values parsed as YAML scalars)."""
    params: dict[str, Any] = {}
    for item in filter(None, (text or "").split(",")):
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--params")
        key, value = item.split("=", 1)
        node = params
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        parsed = yaml.safe_load(value)
        # Dates and other YAML types stay text: Kedro parses them where they are validated.
        plain = parsed is None or isinstance(parsed, str | int | float | bool | list | dict)
        node[leaf] = parsed if plain else value
    return params


@click.command(name="continuous-training")
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
@click.option("--params", default=None, help="Parameter overrides: a.b=1,c=x (as kedro run).")
@click.option("--force", is_flag=True, help="Retrain even without an unhandled trigger.")
@click.option("--dry-run", is_flag=True, help="Monitor and decide only; never retrain.")
@click.option("--project-path", default=".", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--wait", "wait_s", default=0.0, type=float, help="Seconds to wait for a run in progress."
)
def continuous_training(
    env: str | None,
    params: str | None,
    force: bool,
    dry_run: bool,
    project_path: str,
    wait_s: float,
) -> None:
    """Monitor the champion; retrain, gate, promote and export when the decision says so."""
    from churn_mlops.run_lock import RunLockedError

    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    try:
        outcome = run_continuous_training(
            project_path,
            env=env,
            runtime_params=_parse_params(params),
            force=force,
            dry_run=dry_run,
            lock_wait_s=wait_s,
        )
    except RunLockedError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(outcome, indent=2, default=str))


if __name__ == "__main__":
    continuous_training()
