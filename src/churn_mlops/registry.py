"""Champion/challenger bookkeeping on the MLflow model registry (I/O only, no decisions).

Used by the registration dataset (``churn_mlops.datasets``) and the ``kedro models`` commands.
Which version *should* be champion is decided elsewhere (the pure gate node); this module only
reads and moves aliases and remembers the order in which versions were champion, so that
rollback is one call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger(__name__)

#: Placeholders in the model card that only the registry can fill (version, run id).
VERSION_TOKEN = "{{model_version}}"
RUN_ID_TOKEN = "{{run_id}}"

#: Registered-model tag holding the champion versions in promotion order ("1,2,4").
CHAMPION_HISTORY_TAG = "champion_history"


class RegistryError(Exception):
    """A registry operation cannot be done; the message names the model, version and alias."""


@dataclass(frozen=True)
class VersionSummary:
    """One registered model version as the ``kedro models list`` command shows it."""

    version: str
    aliases: list[str]
    run_id: str | None
    created: str
    tags: dict[str, str] = field(default_factory=dict)


class ChampionRegistry:
    """Aliases ``champion``/``challenger`` of one registered model, with a champion history.

    Args:
        model_name: The registered model name.
        champion_alias: Alias of the version that serves.
        challenger_alias: Alias of the newest registered candidate.
        client: An ``MlflowClient``; by default one on the current tracking/registry URI.
    """

    def __init__(
        self,
        model_name: str,
        *,
        champion_alias: str = "champion",
        challenger_alias: str = "challenger",
        client: Any | None = None,
    ) -> None:
        if client is None:
            from mlflow import MlflowClient

            client = MlflowClient()
        self.model_name = model_name
        self.champion_alias = champion_alias
        self.challenger_alias = challenger_alias
        self.client = client

    # ----------------------------------------------------------------- reading

    def exists(self) -> bool:
        """Whether the registered model exists."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            return False
        return True

    def alias_version(self, alias: str) -> str | None:
        """The version an alias points at, or ``None`` (no such model or alias)."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException:
            return None

    def champion_version(self) -> str | None:
        """The current champion version, or ``None``."""
        return self.alias_version(self.champion_alias)

    def versions(self) -> list[VersionSummary]:
        """Every version of the model, newest first."""
        if not self.exists():
            return []
        found = self.client.search_model_versions(f"name = '{self.model_name}'")
        # Search results do not carry aliases on every store; the registered model does.
        aliases: dict[str, list[str]] = {}
        for alias, version in (
            self.client.get_registered_model(self.model_name).aliases or {}
        ).items():
            aliases.setdefault(str(version), []).append(alias)
        summaries = [
            VersionSummary(
                version=str(v.version),
                aliases=sorted(aliases.get(str(v.version), [])),
                run_id=v.run_id,
                created=datetime.fromtimestamp(
                    v.creation_timestamp / 1000, tz=timezone.utc
                ).isoformat(timespec="seconds"),
                tags=dict(v.tags or {}),
            )
            for v in found
        ]
        return sorted(summaries, key=lambda s: int(s.version), reverse=True)

    def champion_history(self) -> list[str]:
        """Champion versions in promotion order, oldest first (the last one is current)."""
        if not self.exists():
            return []
        raw = self.client.get_registered_model(self.model_name).tags.get(CHAMPION_HISTORY_TAG, "")
        history = [v for v in raw.split(",") if v]
        current = self.champion_version()
        # An alias moved by hand in the MLflow UI still counts as the latest champion.
        if current is not None and (not history or history[-1] != current):
            history.append(current)
        return history

    # ----------------------------------------------------------------- writing

    def set_challenger(self, version: str) -> None:
        """Point the challenger alias at ``version``."""
        self.client.set_registered_model_alias(self.model_name, self.challenger_alias, version)

    def promote(self, version: str, *, reason: str) -> str | None:
        """Make ``version`` the champion and record it in the champion history.

        Args:
            version: The version to promote.
            reason: Why (stored as the version tag ``promotion_reason``).

        Returns:
            The previous champion version, or ``None``.

        Raises:
            RegistryError: ``version`` does not exist.
        """
        self.require_version(version)
        previous = self.champion_version()
        history = self.champion_history()
        if previous == version:
            logger.info("%s v%s is already %s", self.model_name, version, self.champion_alias)
            return previous
        self.client.set_registered_model_alias(self.model_name, self.champion_alias, version)
        self._write_history([*history, version])
        self.client.set_model_version_tag(self.model_name, version, "promotion_reason", reason)
        self.client.set_model_version_tag(self.model_name, version, "promoted_at", _now())
        logger.info(
            "%s v%s is now %s (previous: %s): %s",
            self.model_name,
            version,
            self.champion_alias,
            previous,
            reason,
        )
        return previous

    def rollback(self) -> tuple[str, str]:
        """Move the champion alias back to the previous champion.

        Returns:
            ``(rolled back version, new champion version)``.

        Raises:
            RegistryError: There is no champion, or no earlier champion to return to.
        """
        history = self.champion_history()
        if not history:
            raise RegistryError(
                f"registered model {self.model_name!r} has no {self.champion_alias!r} alias; "
                "nothing to roll back"
            )
        if len(history) < 2:
            raise RegistryError(
                f"{self.model_name!r} v{history[-1]} is the only version that has been "
                f"{self.champion_alias!r}; there is no previous champion to roll back to"
            )
        current, previous = history[-1], history[-2]
        self.require_version(previous)
        self.client.set_registered_model_alias(self.model_name, self.champion_alias, previous)
        self._write_history(history[:-1])
        self.client.set_model_version_tag(self.model_name, current, "rolled_back_at", _now())
        logger.info(
            "Rolled %s back: %s moved from v%s to v%s",
            self.model_name,
            self.champion_alias,
            current,
            previous,
        )
        return current, previous

    def require_version(self, version: str) -> None:
        """Raise ``RegistryError`` naming the known versions when ``version`` does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_model_version(self.model_name, str(version))
        except MlflowException as exc:
            known = [v.version for v in self.versions()]
            raise RegistryError(
                f"registered model {self.model_name!r} has no version {version!r}; "
                f"versions: {known}"
            ) from exc

    def _write_history(self, history: list[str]) -> None:
        self.client.set_registered_model_tag(
            self.model_name, CHAMPION_HISTORY_TAG, ",".join(history)
        )


def _now() -> str:
    return datetime.now(tz=timezone.utc).isoformat(timespec="seconds")
