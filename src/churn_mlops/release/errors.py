"""Exceptions of the export; each message names the bundle, file or value and what was expected."""

from __future__ import annotations

# One ParityError for the served model and the exported bundle (the parity gate raises it).
from churn_mlops.contracts.errors import ParityError

__all__ = [
    "BundleContractError",
    "ExportConfigError",
    "ExportError",
    "GoldenSampleError",
    "ParityError",
    "RequirementsError",
    "WheelhouseError",
]


class ExportError(Exception):
    """Base class of every error the export raises on purpose."""


class ExportConfigError(ExportError, ValueError):
    """An ``export`` parameter or a catalog option is unknown, missing or out of range."""


class BundleContractError(ExportError, ValueError):
    """What the registry holds for the champion does not fit the serving-bundle contract."""


class GoldenSampleError(ExportError, ValueError):
    """The golden sample is missing, malformed or does not hold the champion's own scores."""


class RequirementsError(ExportError, RuntimeError):
    """A serving dependency is not installed here, or its installed version breaks a pin."""


class WheelhouseError(ExportError, RuntimeError):
    """A wheel could not be fetched or built (the message carries pip's own explanation)."""
