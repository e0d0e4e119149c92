"""Exceptions of the streaming ingestion."""

from __future__ import annotations


class IngestionError(Exception):
    """Base class of ingestion errors."""


class BrokerUnavailableError(IngestionError):
    """No broker answered at the configured bootstrap servers, after every retry."""


class LandingConflictError(IngestionError):
    """The landing area holds files that the committed offsets cannot account for."""


class InvalidEvent(IngestionError):
    """One message that breaks the event contract; it goes to the dead-letter topic.

    Attributes:
        rule: The broken rule (``json``, ``key``, ``required``, ``unknown_field``, ``dtype``,
            or a data_processing ``<column>.<rule>`` id such as ``age.min``).
        reason: What was wrong, naming the field and the value.
    """

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason
