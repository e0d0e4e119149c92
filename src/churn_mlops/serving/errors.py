"""Exceptions raised by the serving app; each message names the bad value and what was expected."""

from __future__ import annotations


class ServingError(Exception):
    """Base class of every serving error."""


class BundleError(ServingError):
    """A bundle folder is missing a file, or a file breaks the bundle contract."""


class UnsupportedPipelineError(ServingError):
    """The fitted Pipeline holds a step the serving runtime cannot run."""


class ParityError(ServingError):
    """A served model disagrees with the registered Pipeline beyond the parity tolerance."""


class SettingsError(ServingError):
    """The serving settings are inconsistent (for example auth on but no verification key)."""


class ReloadInProgressError(ServingError):
    """A hot reload was requested while another one is still loading."""


class ReloadRootError(BundleError):
    """A hot reload asked for a folder outside ``CHURN_RELOAD_ROOT``."""
