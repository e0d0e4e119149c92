"""File names of a registered model version's artifacts and of a serving bundle."""

from __future__ import annotations

from pathlib import PurePosixPath

METADATA_FILE = "model_metadata.json"
"""Model identity, decision threshold, metrics and feature contract (:class:`ModelMetadata`)."""

REFERENCE_PROFILE_FILE = "reference_profile.json"
"""Training distribution of every feature and of the score (:class:`ReferenceProfile`)."""

MODEL_CARD_FILE = "model_card.md"
"""The human-readable model card."""

GOLDEN_SAMPLE_FILE = "golden_sample.parquet"
"""Rows and their expected scores that every export must reproduce."""

BUNDLE_MODEL_FILE = str(PurePosixPath("model") / "model.joblib")
"""The fitted sklearn Pipeline inside a serving bundle."""
