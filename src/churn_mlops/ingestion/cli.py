"""``kedro stream publish | consume`` (and ``python -m churn_mlops.ingestion``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from churn_mlops.ingestion.errors import IngestionError

DEFAULT_ENV = "streaming"
_ENV_HELP = "Kedro configuration environment (its parameters_ingestion.yml and raw contract)."


def load_project_config(project_path: Path, env: str) -> tuple[Any, Any, Any]:
    """``(IngestionSettings, DataProcessingParams, config loader)`` of a project environment.

    The settings come from ``params:ingestion``, overridden by ``CHURN_INGEST_*`` variables.
    """
    from churn_mlops import settings as project_settings
    from churn_mlops.ingestion.settings import IngestionSettings
    from churn_mlops.pipelines.data_processing.params import (
        DataProcessingParams,
    )

    conf = project_path / "conf"
    if not conf.is_dir():
        raise click.ClickException(f"no conf/ folder in {project_path} (use --project-path)")
    from churn_mlops.tracking_store import register_project_path

    # The project's own loader and resolvers, as `kedro run` builds them.
    register_project_path(project_path)
    loader = project_settings.CONFIG_LOADER_CLASS(
        conf_source=str(conf), env=env, **project_settings.CONFIG_LOADER_ARGS
    )
    parameters = loader["parameters"]
    settings = IngestionSettings(**(parameters.get("ingestion") or {}))
    params = DataProcessingParams.model_validate(parameters["data_processing"])
    return settings, params, loader


def _overrides(settings: Any, **values: Any) -> Any:
    update = {key: value for key, value in values.items() if value is not None}
    return settings.model_copy(update=update) if update else settings


def _logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


_project_option = click.option(
    "--project-path",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path.cwd,
    show_default="current folder",
    help="Project root (holding conf/).",
)


@click.group(name="stream")
def stream() -> None:
    """Kafka streaming ingestion: publish raw tables, land topics as Parquet (docs/streaming.md)."""


@stream.command(name="publish")
@click.option("--env", "-e", default=DEFAULT_ENV, show_default=True, help=_ENV_HELP)
@click.option(
    "--tables",
    default="customers,events,churn_records",
    show_default=True,
    help="Comma-separated raw tables to publish (catalog entries <table>@pandas).",
)
@click.option("--rate", type=float, default=None, help="Messages per second (default: max).")
@click.option("--bootstrap-servers", default=None, help="Overrides the configured brokers.")
@_project_option
def publish(
    env: str, tables: str, rate: float | None, bootstrap_servers: str | None, project_path: Path
) -> None:
    """Publish the raw tables (the simulator's by default) to their topics in time order."""
    from kedro.io import DataCatalog

    from churn_mlops.ingestion.producer import publish_tables

    _logging()
    if rate is not None and rate <= 0:
        raise click.BadParameter(f"must be positive, got {rate}", param_hint="--rate")
    settings, params, loader = load_project_config(project_path, env)
    settings = _overrides(settings, bootstrap_servers=bootstrap_servers)
    names = [name.strip() for name in tables.split(",") if name.strip()]
    entries = loader["catalog"]
    missing = [f"{name}@pandas" for name in names if f"{name}@pandas" not in entries]
    if missing:
        raise click.ClickException(f"no catalog entries {missing} for tables {names}")
    config = {}
    for name in names:
        entry = dict(entries[f"{name}@pandas"])
        if "filepath" in entry and not Path(entry["filepath"]).is_absolute():
            entry["filepath"] = str(project_path / entry["filepath"])
        config[f"{name}@pandas"] = entry
    catalog = DataCatalog.from_config(config)
    frames = {name: catalog.load(f"{name}@pandas") for name in names}
    try:
        counts = publish_tables(
            settings,
            frames,
            params,
            rate=rate,
            progress=lambda sent, total: click.echo(f"  {sent}/{total} sent"),
        )
    except IngestionError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"published {counts} to {settings.bootstrap_servers}")


@stream.command(name="consume")
@click.option("--env", "-e", default=DEFAULT_ENV, show_default=True, help=_ENV_HELP)
@click.option("--bootstrap-servers", default=None, help="Overrides the configured brokers.")
@click.option("--group-id", default=None, help="Overrides the consumer group.")
@click.option(
    "--landing-dir", type=click.Path(path_type=Path), default=None, help="Overrides landing_dir."
)
@click.option("--metrics-port", type=int, default=None, help="Serve /metrics on this port.")
@click.option(
    "--idle-exit",
    type=float,
    default=None,
    help="Stop once nothing arrived for this many seconds (batch use; default: run forever).",
)
@_project_option
def consume(
    env: str,
    bootstrap_servers: str | None,
    group_id: str | None,
    landing_dir: Path | None,
    metrics_port: int | None,
    idle_exit: float | None,
    project_path: Path,
) -> None:
    """Land the raw-table topics as Parquet, exactly once, until SIGTERM."""
    from prometheus_client import start_http_server

    from churn_mlops.ingestion.consumer import IngestionConsumer

    _logging()
    settings, params, loader = load_project_config(project_path, env)
    settings = _overrides(
        settings,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        landing_dir=landing_dir,
        metrics_port=metrics_port,
    )
    if not settings.landing_dir.is_absolute():
        settings = settings.model_copy(update={"landing_dir": project_path / settings.landing_dir})
    online_push = None
    if settings.push_online_features:
        from churn_mlops.ingestion.online_push import online_push_from_parameters

        online_push = online_push_from_parameters(
            loader["parameters"], settings, params, project_path
        )
    consumer = IngestionConsumer(settings, params, online_push=online_push)
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, registry=consumer.metrics.registry)
    try:
        consumer.run(idle_exit_seconds=idle_exit)
    except IngestionError as exc:
        raise click.ClickException(str(exc)) from exc
