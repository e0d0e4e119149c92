"""Exceptions raised by the evaluation pipeline; each message names the bad value and where."""

from __future__ import annotations


class EvaluationError(Exception):
    """Base class of every error the evaluation pipeline raises on purpose."""


class EvaluationConfigError(EvaluationError, ValueError):
    """An ``evaluation`` parameter is unknown, missing or out of range."""


class ExplanationError(EvaluationError, RuntimeError):
    """SHAP contributions do not add up to the model output within the tolerance."""
