"""Exceptions raised by the training pipeline; each message names the bad value and where."""

from __future__ import annotations


class TrainingError(Exception):
    """Base class of every error the training pipeline raises on purpose."""


class TrainingConfigError(TrainingError, ValueError):
    """A ``training`` parameter is unknown, missing or out of range."""


class TimeSplitError(TrainingError, ValueError):
    """``model_input_table`` cannot be split by snapshot month as configured."""


class FeatureContractError(TrainingError, ValueError):
    """A table lacks a feature column, or a column breaks the feature contract."""
