"""The model runtime: the bundle's ONNX graph on onnxruntime, and exact explanations.

:class:`OnnxPredictor` scores feature rows with the graph that export converted from the
registered Pipeline (``model/model.onnx``; see ``churn_mlops.release.onnx_model``) and checked
against it. The graph also returns the transformed feature matrix, which explanations use:

- XGBoost: the booster in XGBoost's own saved-model format (``model/booster.ubj``), loaded with
  ``xgboost.Booster`` and asked for its exact TreeSHAP values (``pred_contribs=True``);
- logistic regression: linear SHAP, ``coef * (x - background mean)`` in log-odds.

Contributions of the transformed columns are summed back to the original features (one-hot
blocks to their categorical feature). Nothing here reads a library's private model format, and
no bundle file runs code when it is loaded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from churn_mlops.contracts.artifacts import (
    BUNDLE_BOOSTER_FILE,
    BUNDLE_EXPLAINER_FILE,
    BUNDLE_MODEL_FILE,
)
from churn_mlops.serving.errors import BundleError

Row = Mapping[str, Any]
FloatArray = npt.NDArray[np.float64]

ONNX_MODEL_FILE = Path(BUNDLE_MODEL_FILE)
BOOSTER_FILE = Path(BUNDLE_BOOSTER_FILE)
EXPLAINER_FILE = Path(BUNDLE_EXPLAINER_FILE)
PROBABILITY_OUTPUT = "probability"
FEATURES_OUTPUT = "features"
NUMERIC_INPUT = "numeric"
CATEGORICAL_INPUT = "categorical"
NUMERIC_FEATURES_KEY = "numeric_features"
CATEGORICAL_FEATURES_KEY = "categorical_features"
"""Model metadata keys: the JSON list of feature names, in column order, of each input."""
UNKNOWN_CATEGORY_PROBE = "__unknown_category__"


@dataclass(frozen=True)
class Contribution:
    """One feature's share of a row's log-odds."""

    feature: str
    value: Any
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """Additive explanation of one row: ``base_value + sum(contributions) == logit``."""

    probability: float
    base_value: float
    contributions: list[Contribution]


class _Contributions(Protocol):
    kind: str

    def __call__(self, features: FloatArray) -> FloatArray: ...


class _TreeContributions:
    """XGBoost's exact TreeSHAP on the transformed matrix (per column, then the bias)."""

    kind = "xgboost"

    def __init__(self, booster_path: Path) -> None:
        import xgboost

        self._xgb = xgboost
        self.booster = xgboost.Booster(model_file=str(booster_path))
        self.booster.set_param({"nthread": 1})

    def __call__(self, features: FloatArray) -> FloatArray:
        matrix = self._xgb.DMatrix(features.astype(np.float32), missing=np.nan)
        return np.asarray(self.booster.predict(matrix, pred_contribs=True), dtype=np.float64)


class _LinearContributions:
    """Linear SHAP of a logistic regression: ``coef * (x - mean)``, bias = logit at the mean."""

    kind = "logistic_regression"

    def __init__(self, coef: FloatArray, intercept: float, mean: FloatArray) -> None:
        self.coef, self.mean = coef, mean
        self.base = float(intercept + coef @ mean)

    def __call__(self, features: FloatArray) -> FloatArray:
        per_column = (features - self.mean) * self.coef
        bias = np.full((features.shape[0], 1), self.base)
        return np.hstack([per_column, bias])


def _read_explainer(bundle_dir: Path) -> tuple[_Contributions, list[str]]:
    path = bundle_dir / EXPLAINER_FILE
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        kind = spec["kind"]
        columns = [str(c) for c in spec["columns"]]
        if kind == "tree":
            return _TreeContributions(bundle_dir / BOOSTER_FILE), columns
        if kind == "linear":
            coef = np.asarray(spec["coef"], dtype=np.float64)
            mean = np.asarray(spec["background_mean"], dtype=np.float64)
            if coef.shape != (len(columns),) or mean.shape != coef.shape:
                raise ValueError("coef, background_mean and columns differ in length")
            return _LinearContributions(coef, float(spec["intercept"]), mean), columns
        raise ValueError(f"unknown explainer kind {kind!r}; expected 'tree' or 'linear'")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"bundle file {path} cannot be read: {exc}") from exc
    except Exception as exc:
        raise BundleError(f"{bundle_dir / BOOSTER_FILE} cannot be loaded: {exc}") from exc


class OnnxPredictor:
    """Scores rows with the bundle's ONNX graph; explains them exactly.

    Args:
        bundle_dir: Bundle folder with ``model/model.onnx`` and ``model/explainer.json``.
        threads: onnxruntime threads per call (``intra_op_num_threads``; 1: a call never fans
            out over the cores, concurrency comes from concurrent requests; 0: one per core).
        inter_op_threads: onnxruntime threads across graph nodes (0: its default).
    """

    def __init__(self, bundle_dir: Path, *, threads: int = 1, inter_op_threads: int = 1) -> None:
        import onnxruntime as ort

        path = bundle_dir / ONNX_MODEL_FILE
        if not path.is_file():
            raise BundleError(f"bundle file {path} is missing")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = inter_op_threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise BundleError(f"bundle file {path} is not a loadable ONNX model: {exc}") from exc
        props = self.session.get_modelmeta().custom_metadata_map
        try:
            self.numeric: list[str] = json.loads(props.get(NUMERIC_FEATURES_KEY, "[]"))
            self.categorical: list[str] = json.loads(props.get(CATEGORICAL_FEATURES_KEY, "[]"))
        except ValueError as exc:
            raise BundleError(f"{path}: unreadable input column metadata: {exc}") from exc
        names = {i.name for i in self.session.get_inputs()}
        expected = {
            n
            for n, cols in ((NUMERIC_INPUT, self.numeric), (CATEGORICAL_INPUT, self.categorical))
            if cols
        }
        if names != expected:
            raise BundleError(f"{path} has inputs {sorted(names)}; expected {sorted(expected)}")
        self.inputs: list[tuple[str, bool]] = [
            *((n, False) for n in self.numeric),
            *((n, True) for n in self.categorical),
        ]
        outputs = {o.name for o in self.session.get_outputs()}
        if {PROBABILITY_OUTPUT, FEATURES_OUTPUT} - outputs:
            raise BundleError(
                f"{path} has outputs {sorted(outputs)}; expected {PROBABILITY_OUTPUT!r} and"
                f" {FEATURES_OUTPUT!r}"
            )
        self.input_columns = [name for name, _ in self.inputs]
        self._contribs, columns = _read_explainer(bundle_dir)
        self.kind = self._contribs.kind
        self.features = list(dict.fromkeys(columns))
        index = {f: i for i, f in enumerate(self.features)}
        self._mapping = np.zeros((len(columns), len(self.features)))
        for column, feature in enumerate(columns):
            self._mapping[column, index[feature]] = 1.0
        self.accepts_unknown_categories = self._probe_unknown()

    @property
    def can_explain(self) -> bool:
        """Explanations are available for every model a bundle ships."""
        return True

    def _probe_unknown(self) -> bool:
        row: dict[str, Any] = {
            name: UNKNOWN_CATEGORY_PROBE if is_cat else 0.0 for name, is_cat in self.inputs
        }
        try:
            self.predict_proba([row])
        except Exception:  # noqa: BLE001 - onnxruntime refuses unknown categories by raising
            return False
        return True

    def feeds(self, rows: Sequence[Row]) -> dict[str, npt.NDArray[Any]]:
        """onnxruntime inputs of plain row dictionaries (``None`` → NaN / empty string)."""
        feeds: dict[str, npt.NDArray[Any]] = {}
        if self.numeric:
            feeds[NUMERIC_INPUT] = np.array(
                [
                    [math.nan if (v := row.get(n)) is None else v for n in self.numeric]
                    for row in rows
                ],
                dtype=np.float64,
            ).reshape(len(rows), len(self.numeric))
        if self.categorical:
            values = np.empty((len(rows), len(self.categorical)), dtype=object)
            for i, row in enumerate(rows):
                values[i] = ["" if (v := row.get(n)) is None else str(v) for n in self.categorical]
            feeds[CATEGORICAL_INPUT] = values
        return feeds

    def frame_feeds(self, frame: Any) -> dict[str, npt.NDArray[Any]]:
        """onnxruntime inputs of a pandas DataFrame with the feature columns."""
        feeds: dict[str, npt.NDArray[Any]] = {}
        if self.numeric:
            feeds[NUMERIC_INPUT] = frame[self.numeric].to_numpy(dtype=np.float64, na_value=np.nan)
        if self.categorical:
            block = frame[self.categorical].astype(object)
            feeds[CATEGORICAL_INPUT] = block.where(block.notna(), "").to_numpy()
        return feeds

    def _run(self, feeds: dict[str, npt.NDArray[Any]], outputs: list[str]) -> list[Any]:
        return list(self.session.run(outputs, feeds))

    def predict_proba(self, rows: Sequence[Row]) -> FloatArray:
        """Churn probability of every row (float64, shape ``(len(rows),)``)."""
        (probability,) = self._run(self.feeds(rows), [PROBABILITY_OUTPUT])
        return np.asarray(probability, dtype=np.float64)

    def predict_frame(self, frame: Any) -> FloatArray:
        """Churn probability of every row of a DataFrame with the feature columns."""
        if len(frame) == 0:
            return np.zeros(0)
        (probability,) = self._run(self.frame_feeds(frame), [PROBABILITY_OUTPUT])
        return np.asarray(probability, dtype=np.float64)

    def explain(self, rows: Sequence[Row], top_k: int) -> list[Explanation]:
        """Top-``top_k`` log-odds contributions per row, by absolute size."""
        probability, features = self._run(self.feeds(rows), [PROBABILITY_OUTPUT, FEATURES_OUTPUT])
        contribs = self._contribs(np.asarray(features, dtype=np.float64))
        per_feature = contribs[:, :-1] @ self._mapping
        result = []
        for i, row in enumerate(rows):
            order = np.argsort(-np.abs(per_feature[i]), kind="stable")[:top_k]
            result.append(
                Explanation(
                    probability=float(probability[i]),
                    base_value=float(contribs[i, -1]),
                    contributions=[
                        Contribution(
                            feature=self.features[j],
                            value=row.get(self.features[j]),
                            contribution=float(per_feature[i, j]),
                        )
                        for j in order
                    ],
                )
            )
        return result
