"""Project CLI commands: ``kedro models list | promote | rollback | rebuild`` for the registry.

Kedro adds the commands of ``<package>.cli.cli`` to ``kedro`` inside the project, so no entry
point is needed; ``commands`` is the same group under the name Kedro plugins use
(``kedro.project_commands`` entry points), should one be registered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from churn_mlops.ingestion.cli import stream

_ENV_HELP = "Kedro configuration environment whose mlflow.yml and globals are used."


@click.group(name="churn_mlops")
def commands() -> None:
    """churn-mlops project commands."""


@commands.group(name="models")
def models() -> None:
    """Inspect, move and rebuild the champion/challenger versions of the registered churn model."""


@models.command(name="list")
@click.option("--env", "-e", default=None, help=_ENV_HELP)
@click.pass_obj
def list_versions(metadata: Any, env: str | None) -> None:
    """List every registered version with aliases, test metrics and gate decision."""
    registry = _registry(metadata, env)
    versions = registry.versions()
    if not versions:
        click.echo(f"Registered model {registry.model_name!r} has no versions yet.")
        return
    header = (
        "version",
        "aliases",
        "created (UTC)",
        "estimator",
        "test pr_auc",
        "test roc_auc",
        "gate",
    )
    rows = [
        (
            f"v{v.version}",
            ",".join(v.aliases) or "-",
            v.created.replace("+00:00", ""),
            v.tags.get("estimator", "-"),
            _short(v.tags.get("test.pr_auc")),
            _short(v.tags.get("test.roc_auc")),
            v.tags.get("gate.decision", "-"),
        )
        for v in versions
    ]
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    click.echo(f"Registered model {registry.model_name!r}")
    for row in (header, *rows):
        click.echo(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        )
    history = registry.champion_history()
    click.echo(f"Champion history (oldest first): {' -> '.join(f'v{h}' for h in history) or '-'}")


@models.command(name="promote")
@click.argument("version")
@click.option(
    "--force",
    is_flag=True,
    help="Promote even though the gate refused this version when it was registered.",
)
@click.option("--reason", default=None, help="Why (stored on the version as promotion_reason).")
@click.option("--env", "-e", default=None, help=_ENV_HELP)
@click.pass_obj
def promote(metadata: Any, version: str, force: bool, reason: str | None, env: str | None) -> None:
    """Make VERSION the champion (it must have passed the gate, unless --force)."""
    from churn_mlops.registry import RegistryError

    registry = _registry(metadata, env)
    version = version.removeprefix("v")
    try:
        registry.require_version(version)
        details = registry.client.get_model_version(registry.model_name, version)
        decision = (details.tags or {}).get("gate.decision")
        if decision != "promote" and not force:
            raise RegistryError(
                f"{registry.model_name!r} v{version} was not passed by the gate "
                f"(gate.decision={decision!r}: {(details.tags or {}).get('gate.reason', '-')}); "
                "re-run with --force --reason '...' to override"
            )
        why = reason or (
            "manual promotion"
            if decision == "promote"
            else "manual override of a refused gate decision"
        )
        previous = registry.promote(version, reason=f"{why} (kedro models promote)")
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{registry.model_name}: {registry.champion_alias} v{previous or '-'} -> v{version}")


@models.command(name="rollback")
@click.option("--env", "-e", default=None, help=_ENV_HELP)
@click.pass_obj
def rollback(metadata: Any, env: str | None) -> None:
    """Move the champion alias back to the previous champion."""
    from churn_mlops.registry import RegistryError

    registry = _registry(metadata, env)
    try:
        current, previous = registry.rollback()
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{registry.model_name}: {registry.champion_alias} v{current} -> v{previous}")


@models.command(name="rebuild")
@click.argument("version")
@click.option("--env", "-e", default=None, help=_ENV_HELP)
@click.pass_obj
def rebuild(metadata: Any, version: str, env: str | None) -> None:
    """Retrain VERSION from its recorded inputs; fail unless its predictions are identical."""
    from churn_mlops.rebuild import RebuildError, rebuild_version
    from churn_mlops.registry import RegistryError

    registry = _registry(metadata, env)
    project_path = Path(getattr(metadata, "project_path", None) or Path.cwd())
    try:
        result = rebuild_version(project_path, registry, version, env=env)
    except (RebuildError, RegistryError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{registry.model_name} v{result['version']} rebuilt: identical predictions on "
        f"{result['rows']} golden rows"
    )
    for kind, text in result["differences"].items():
        click.echo(f"  note: {kind} differs but did not change the model: {text}")


commands.add_command(stream)

#: Kedro loads project commands from ``<package>.cli.cli``.
cli = commands


def _registry(metadata: Any, env: str | None) -> Any:
    """A ``ChampionRegistry`` on the project's tracking URI and registered model name."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from churn_mlops.registry import ChampionRegistry

    project_path = Path(getattr(metadata, "project_path", None) or Path.cwd())
    bootstrap_project(project_path)
    with KedroSession.create(project_path=project_path, env=env) as session:
        # Creating the context runs kedro-mlflow's hook, which points MLflow at mlflow.yml's
        # tracking (and registry) URI.
        context = session.load_context()
        # The config loader, not ``context.params``: the latter imports every pipeline to
        # validate parameters, which a registry command does not need.
        settings = context.config_loader["parameters"]["evaluation"]["registry"]
    return ChampionRegistry(
        settings["model_name"],
        champion_alias=settings["champion_alias"],
        challenger_alias=settings["challenger_alias"],
    )


def _short(value: str | None) -> str:
    return "-" if value is None else f"{float(value):.4f}"


@click.group(name="byod")
def byod() -> None:
    """Bring your own data: write a configuration environment for your table."""


@byod.command(name="init")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Your table: a CSV or Parquet file with one row per customer (or customer and date).",
)
@click.option("--env", "env", required=True, help="Name of the environment to write (conf/ENV).")
@click.option("--id", "id_column", default=None, help="The customer id column (else proposed).")
@click.option("--label", "label_column", default=None, help="The churn label column.")
@click.option("--date", "date_column", default=None, help="The date column, if rows are dated.")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Day an undated table was taken (default: today).",
)
@click.option("--force", is_flag=True, help="Overwrite the files of an existing environment.")
def byod_init(
    source: Path,
    env: str,
    id_column: str | None,
    label_column: str | None,
    date_column: str | None,
    as_of: Any,
    force: bool,
) -> None:
    """Inspect a table, propose its columns' roles and write conf/ENV (only what differs)."""
    from churn_mlops.byod import (
        ScaffoldError,
        propose,
        summary,
        write_environment,
    )

    try:
        proposal = propose(
            source,
            id_column=id_column,
            label_column=label_column,
            date_column=date_column,
            as_of_date=as_of.date() if as_of else None,
        )
        written = write_environment(proposal, Path.cwd(), env, force=force)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(summary(proposal))
    click.echo(f"Wrote {', '.join(str(p) for p in written)}")
    click.echo(f"Next: kedro run --env {env}")


commands.add_command(byod)
