"""Exceptions raised by the serving app; each message names the bad value and what was expected."""

from __future__ import annotations

from churn_mlops.contracts.errors import ParityError

__all__ = [
    "BundleError",
    "FeatureRepositoryError",
    "ParityError",
    "ReloadInProgressError",
    "ServingError",
    "SettingsError",
    "UnsupportedPipelineError",
]


class ServingError(Exception):
    """Base class of every serving error."""


class BundleError(ServingError):
    """A bundle folder is missing a file, or a file breaks the bundle contract."""


class FeatureRepositoryError(ServingError):
    """``CHURN_FEATURE_REPO`` cannot be read or lacks a feature view the model needs."""


class UnsupportedPipelineError(ServingError):
    """The fitted Pipeline holds a step the serving runtime cannot run."""


class SettingsError(ServingError):
    """The serving settings are inconsistent (for example auth on but no verification key)."""


class ReloadInProgressError(ServingError):
    """A hot reload was requested while another one is still loading."""


class ReloadRootError(BundleError):
    """A hot reload asked for a folder outside ``CHURN_RELOAD_ROOT``."""
