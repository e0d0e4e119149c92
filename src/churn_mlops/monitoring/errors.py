"""Monitoring exceptions: each message names the bad value, where it is and what was expected."""

from __future__ import annotations

from churn_mlops.contracts.errors import ProfileContractError

__all__ = [
    "DriftInputError",
    "MonitoringError",
    "MonitoringWindowError",
    "ProfileContractError",
]


class MonitoringError(Exception):
    """Base class of every monitoring error."""


class DriftInputError(MonitoringError):
    """A frame handed to the drift statistics lacks a feature or holds an unusable column."""


class MonitoringWindowError(MonitoringError):
    """The current monitoring window (prediction log or scored batch) cannot be assembled."""
