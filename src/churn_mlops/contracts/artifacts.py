"""File names of a registered model version's artifacts and of a serving bundle, and the
golden sample's expected-probability column."""

from __future__ import annotations

from pathlib import PurePosixPath

METADATA_FILE = "model_metadata.json"
"""Model identity, decision threshold, metrics and feature contract (:class:`ModelMetadata`)."""

REFERENCE_PROFILE_FILE = "reference_profile.json"
"""Training distribution of every feature and of the score (:class:`ReferenceProfile`)."""

MODEL_CARD_FILE = "model_card.md"
"""The human-readable model card."""

GOLDEN_SAMPLE_FILE = "golden_sample.parquet"
"""Test-split rows and the probabilities the evaluation gave them, stored with the version at
registration; every export and ``kedro models rebuild`` must reproduce them."""

EXPECTED_COLUMN = "expected_probability"
"""Column of a golden sample (registered version and serving bundle) holding the evaluation
pipeline's probability."""

BUNDLE_MODEL_FILE = str(PurePosixPath("model") / "model.onnx")
"""The registered Pipeline (preprocessing and estimator) as one ONNX graph, in a serving bundle."""

BUNDLE_EXPLAINER_FILE = str(PurePosixPath("model") / "explainer.json")
"""How the bundle explains a score (TreeSHAP booster file or linear coefficients)."""

BUNDLE_BOOSTER_FILE = str(PurePosixPath("model") / "booster.ubj")
"""XGBoost models only: the booster in XGBoost's own saved format, for exact TreeSHAP."""

BUNDLE_MANIFEST_FILE = "manifest.json"
"""Lineage and the sha256 of every file of a serving bundle."""
