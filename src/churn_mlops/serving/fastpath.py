"""Compile the fitted sklearn Pipeline into a numpy fast path for the request path.

``Pipeline.predict_proba`` on a one-row DataFrame costs about 11 ms, most of it in pandas and
``ColumnTransformer`` bookkeeping, while the arithmetic is a handful of dictionary lookups and
one subtraction and division per number. At load time :func:`compile_pipeline` reads the
fitted parameters (one-hot categories, scaler means and scales, imputer fill values) and
the estimator (XGBoost booster or logistic-regression coefficients) and returns a predictor
that goes from plain row dictionaries to probabilities with numpy only:

- one-hot: a ``{category: output column}`` dictionary per categorical feature (unknown
  categories give an all-zero block, exactly like ``handle_unknown="ignore"``);
- numeric: imputer fill, then ``(x - mean_) / scale_`` in float64, the same operations in the
  same order as scikit-learn, so the matrix is bit-identical to ``preprocess.transform``;
- XGBoost: ``Booster.inplace_predict`` on that matrix (what ``XGBClassifier.predict_proba``
  calls), single-threaded so that one request never fans out over the cores;
- logistic regression: ``expit(X @ coef_.T + intercept_)``.

Anything else raises :class:`UnsupportedPipelineError` and the caller serves through the
Pipeline itself. Explanations use the same matrices: XGBoost's exact TreeSHAP
(``pred_contribs=True``) and the closed form of linear SHAP, summed back over one-hot columns
to the original features, so serving never imports ``shap``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from churn_mlops.serving.errors import UnsupportedPipelineError

logger = logging.getLogger(__name__)

Row = Mapping[str, Any]
ArrayOp = Callable[[np.ndarray], np.ndarray]


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


# --------------------------------------------------------------------------------------------
# preprocessing
# --------------------------------------------------------------------------------------------


@dataclass
class _NumericBlock:
    columns: list[str]
    out_start: int
    ops: list[ArrayOp]
    # Linear map of the block (x -> x * scale + shift after imputation), used for explanations.
    fill: np.ndarray
    shift: np.ndarray
    scale: np.ndarray

    @property
    def width(self) -> int:
        return len(self.columns)


@dataclass
class _OneHotBlock:
    columns: list[str]
    lookups: list[dict[Any, int]]  # category -> absolute output column
    out_start: int
    width: int
    accepts_unknown: bool


def _is_passthrough(step: Any) -> bool:
    return isinstance(step, str) and step == "passthrough"


def _compile_numeric_step(step: Any) -> tuple[ArrayOp | None, tuple[Any, ...]]:
    """Return (in-place op, (fill, scale, shift) update) for one fitted numeric transformer."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler

    if _is_passthrough(step) or step is None:
        return None, ("identity",)
    if isinstance(step, FunctionTransformer) and step.func is None:
        # A fitted ColumnTransformer stores "passthrough" as an identity FunctionTransformer.
        return None, ("identity",)
    if isinstance(step, StandardScaler):
        mean = step.mean_ if step.with_mean else None
        scale = step.scale_ if step.with_std else None

        def standard(x: np.ndarray, mean: Any = mean, scale: Any = scale) -> np.ndarray:
            # Same in-place float64 operations, same order, as StandardScaler.transform.
            if mean is not None:
                x -= mean
            if scale is not None:
                x /= scale
            return x

        return standard, ("affine", mean, scale)
    if isinstance(step, MinMaxScaler):
        if step.clip:
            raise UnsupportedPipelineError("MinMaxScaler(clip=True) is not compiled")
        mm_scale, mm_min = step.scale_, step.min_

        def minmax(x: np.ndarray, s: Any = mm_scale, m: Any = mm_min) -> np.ndarray:
            x *= s
            x += m
            return x

        return minmax, ("minmax", mm_scale, mm_min)
    if isinstance(step, SimpleImputer):
        if step.add_indicator:
            raise UnsupportedPipelineError("SimpleImputer(add_indicator=True) is not compiled")
        missing = step.missing_values
        if not (missing is None or missing is _pd_na() or _is_nan(missing)):
            raise UnsupportedPipelineError(
                f"SimpleImputer(missing_values={missing!r}) is not compiled; expected NaN"
            )
        stats = np.asarray(step.statistics_, dtype=np.float64)
        if np.isnan(stats).any():
            # sklearn drops all-missing columns unless keep_empty_features; do not guess.
            raise UnsupportedPipelineError("SimpleImputer with an all-missing column")

        def impute(x: np.ndarray, stats: Any = stats) -> np.ndarray:
            mask = np.isnan(x)
            if mask.any():
                x[mask] = np.broadcast_to(stats, x.shape)[mask]
            return x

        return impute, ("impute", stats)
    raise UnsupportedPipelineError(
        f"numeric transformer {type(step).__name__} is not compiled; expected StandardScaler,"
        " MinMaxScaler, SimpleImputer or 'passthrough'"
    )


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _pd_na() -> Any:
    """``pandas.NA`` if pandas is importable (SimpleImputer may use it as ``missing_values``)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas ships with scikit-learn's stack here
        return None
    return pd.NA


def _compile_numeric_block(columns: list[str], transformer: Any, out_start: int) -> _NumericBlock:
    from sklearn.pipeline import Pipeline

    steps = (
        [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
    )
    ops: list[ArrayOp] = []
    k = len(columns)
    fill = np.full(k, np.nan)
    shift = np.zeros(k)
    scale = np.ones(k)
    for step in steps:
        op, info = _compile_numeric_step(step)
        if op is None:
            continue
        ops.append(op)
        if info[0] == "impute":
            if np.isnan(fill).all() and np.all(scale == 1.0) and np.all(shift == 0.0):
                fill = info[1]
            else:
                raise UnsupportedPipelineError("SimpleImputer after a scaler is not compiled")
        elif info[0] == "affine":
            mean, std = info[1], info[2]
            if mean is not None:
                shift = shift - mean
            if std is not None:
                shift, scale = shift / std, scale / std
        elif info[0] == "minmax":
            shift, scale = shift * info[1] + info[2], scale * info[1]
    return _NumericBlock(
        columns=columns, out_start=out_start, ops=ops, fill=fill, shift=shift, scale=scale
    )


def _compile_one_hot(columns: list[str], encoder: Any, out_start: int) -> _OneHotBlock:
    if getattr(encoder, "_infrequent_enabled", False):
        raise UnsupportedPipelineError("OneHotEncoder with infrequent categories is not compiled")
    if getattr(encoder, "sparse_output", False):
        raise UnsupportedPipelineError("OneHotEncoder(sparse_output=True) is not compiled")
    drop_idx = getattr(encoder, "drop_idx_", None)
    lookups: list[dict[Any, int]] = []
    position = out_start
    for j, categories in enumerate(encoder.categories_):
        dropped = None if drop_idx is None else drop_idx[j]
        lookup: dict[Any, int] = {}
        for i, category in enumerate(categories):
            if dropped is not None and i == dropped:
                continue
            lookup[category] = position
            position += 1
        lookups.append(lookup)
    return _OneHotBlock(
        columns=columns,
        lookups=lookups,
        out_start=out_start,
        width=position - out_start,
        accepts_unknown=encoder.handle_unknown in ("ignore", "infrequent_if_exist"),
    )


class CompiledPreprocessor:
    """Numpy re-implementation of a fitted ``ColumnTransformer`` (one-hot, scalers, imputer)."""

    def __init__(self, column_transformer: Any) -> None:
        from sklearn.preprocessing import OneHotEncoder

        ct = column_transformer
        if getattr(ct, "sparse_output_", False):
            raise UnsupportedPipelineError("ColumnTransformer with sparse output is not compiled")
        names_in = list(getattr(ct, "feature_names_in_", []))
        if not names_in:
            raise UnsupportedPipelineError("ColumnTransformer was not fitted on a DataFrame")
        self.input_columns: list[str] = names_in
        self.numeric: list[_NumericBlock] = []
        self.one_hot: list[_OneHotBlock] = []
        self.output_feature: list[str] = []  # original feature behind every output column
        position = 0
        block: _OneHotBlock | _NumericBlock
        for name, transformer, columns in ct.transformers_:
            if isinstance(transformer, str) and transformer == "drop":
                continue
            cols = _column_names(columns, names_in, name)
            if not cols:
                continue
            if isinstance(transformer, OneHotEncoder):
                block = _compile_one_hot(cols, transformer, position)
                self.one_hot.append(block)
                for col, lookup in zip(cols, block.lookups, strict=True):
                    self.output_feature.extend([col] * len(lookup))
            else:
                block = _compile_numeric_block(cols, transformer, position)
                self.numeric.append(block)
                self.output_feature.extend(cols)
            position += block.width
        self.width = position
        self._numeric_columns = [c for b in self.numeric for c in b.columns]
        self._numeric_slices = []
        start = 0
        for b in self.numeric:
            self._numeric_slices.append((slice(start, start + b.width), b))
            start += b.width
        self._categorical = [
            (col, lookup)
            for b in self.one_hot
            for col, lookup in zip(b.columns, b.lookups, strict=True)
        ]
        self.accepts_unknown_categories = all(b.accepts_unknown for b in self.one_hot)
        self.used_columns = set(self._numeric_columns) | {c for c, _ in self._categorical}

    def transform(self, rows: Sequence[Row]) -> np.ndarray:
        """Float64 matrix equal to ``ColumnTransformer.transform`` of these rows."""
        n = len(rows)
        out = np.zeros((n, self.width), dtype=np.float64)
        if self._numeric_columns:
            cols = self._numeric_columns
            # dtype=float64 turns None into NaN, like pandas does for a missing number.
            raw = np.array([[r[c] for c in cols] for r in rows], dtype=np.float64)
            if raw.ndim != 2:
                raw = raw.reshape(n, len(cols))
            for in_slice, block in self._numeric_slices:
                x = raw[:, in_slice]  # a view: the ops work in place on disjoint columns
                for op in block.ops:
                    x = op(x)
                out[:, block.out_start : block.out_start + block.width] = x
        for col, lookup in self._categorical:
            for i, r in enumerate(rows):
                j = lookup.get(r[col])
                if j is not None:
                    out[i, j] = 1.0
        return out

    def background(
        self,
        profile_means: Mapping[str, float],
        category_shares: Mapping[str, Mapping[str, float]],
    ) -> np.ndarray:
        """Expected value of every output column under the reference distribution.

        Numeric columns map the reference mean through the block's affine transform; one-hot
        columns take the category's reference share (uniform when the profile lacks it).
        """
        mu = np.zeros(self.width)
        for block in self.numeric:
            for k, col in enumerate(block.columns):
                mean = profile_means.get(col)
                if mean is None:
                    mean = 0.0 if block.scale[k] == 0 else -block.shift[k] / block.scale[k]
                mu[block.out_start + k] = mean * block.scale[k] + block.shift[k]
        for hot in self.one_hot:
            for col, lookup in zip(hot.columns, hot.lookups, strict=True):
                shares = category_shares.get(col) or {}
                uniform = 1.0 / max(len(lookup), 1)
                for category, j in lookup.items():
                    mu[j] = shares.get(category, 0.0) if shares else uniform
        return mu


def _column_names(columns: Any, names_in: list[str], transformer_name: str) -> list[str]:
    if isinstance(columns, slice):
        return names_in[columns]
    values = list(np.atleast_1d(columns)) if not isinstance(columns, list) else columns
    if not values:
        return []
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return [n for n, keep in zip(names_in, values, strict=True) if keep]
    if all(isinstance(v, (int, np.integer)) for v in values):
        return [names_in[int(v)] for v in values]
    if all(isinstance(v, str) for v in values):
        return [str(v) for v in values]
    raise UnsupportedPipelineError(
        f"transformer {transformer_name!r} selects columns by {type(values[0]).__name__};"
        " expected names, indices or a boolean mask"
    )


# --------------------------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------------------------


@dataclass
class FastPredictor:
    """A compiled preprocessor plus a compiled estimator; see the module docstring."""

    preprocessor: CompiledPreprocessor
    kind: str
    _proba: Callable[[np.ndarray], np.ndarray]
    _contribs: Callable[[np.ndarray], np.ndarray] | None = None
    _mapping: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    features: list[str] = field(default_factory=list)
    small_batch_rows: int = 0  # batches up to this size take a different (numpy) code path

    @property
    def accepts_unknown_categories(self) -> bool:
        """Whether the encoder ignores unknown categories (else the Pipeline would raise)."""
        return self.preprocessor.accepts_unknown_categories

    @property
    def can_explain(self) -> bool:
        """Whether :meth:`explain` is available for this estimator."""
        return self._contribs is not None

    def predict_proba(self, rows: Sequence[Row]) -> np.ndarray:
        """Churn probability of every row (float64, shape ``(len(rows),)``)."""
        return self._proba(self.preprocessor.transform(rows))

    def explain(self, rows: Sequence[Row], top_k: int) -> list[Explanation]:
        """Top-``top_k`` log-odds contributions per row, by absolute size.

        Raises:
            UnsupportedPipelineError: the estimator has no exact fast explanation.
        """
        if self._contribs is None:
            raise UnsupportedPipelineError(f"no fast explanation for a {self.kind} model")
        X = self.preprocessor.transform(rows)
        contribs = self._contribs(X)  # (n, width + 1): per output column, then the bias
        per_feature = contribs[:, :-1] @ self._mapping
        logits = contribs.sum(axis=1)
        probabilities = 1.0 / (1.0 + np.exp(-logits))
        result = []
        for i, row in enumerate(rows):
            order = np.argsort(-np.abs(per_feature[i]), kind="stable")[:top_k]
            result.append(
                Explanation(
                    probability=float(probabilities[i]),
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


def _feature_mapping(pre: CompiledPreprocessor) -> tuple[list[str], np.ndarray]:
    features = list(dict.fromkeys(pre.output_feature))
    index = {f: i for i, f in enumerate(features)}
    mapping = np.zeros((pre.width, len(features)))
    for column, feature in enumerate(pre.output_feature):
        mapping[column, index[feature]] = 1.0
    return features, mapping


SMALL_BATCH_ROWS = 16
"""Up to this many rows the numpy tree walk beats ``inplace_predict``'s fixed cost."""


class NumpyTreeEnsemble:
    """XGBoost ``binary:logistic`` trees as flat numpy arrays, walked one level at a time.

    ``Booster.inplace_predict`` has a fixed cost of a few hundred microseconds per call, far
    more than walking a few hundred trees for one row. Here every node of every tree lives in
    flat arrays (feature, float32 threshold, children, default direction, leaf value); one
    numpy step moves all trees of all rows one level down, with XGBoost's own rules: the input
    is cast to float32, ``x < threshold`` goes left, a missing value follows the node's default
    direction, and leaf values are added to the base margin tree by tree in float32. Results
    match XGBoost to float32 rounding (about 1e-7).

    Raises:
        UnsupportedPipelineError: (from :meth:`from_booster`) categorical splits, DART,
            multi-output or vector leaves.
    """

    def __init__(self, booster_json: dict[str, Any], iteration_range: tuple[int, int]) -> None:
        learner = booster_json["learner"]
        gbm = learner["gradient_booster"]
        if gbm.get("name") != "gbtree":
            raise UnsupportedPipelineError(f"XGBoost booster {gbm.get('name')!r} is not walked")
        params = learner["learner_model_param"]
        if int(params.get("num_class", "0")) > 1 or int(params.get("num_target", "1")) != 1:
            raise UnsupportedPipelineError("multi-output XGBoost models are not walked")
        model = gbm["model"]
        trees = model["trees"]
        indptr = model.get("iteration_indptr") or list(range(len(trees) + 1))
        begin, end = iteration_range
        end = len(indptr) - 1 if end == 0 else end
        trees = trees[indptr[begin] : indptr[end]]
        base = json.loads(params["base_score"]) if isinstance(params["base_score"], str) else 0.5
        base = float(base[0] if isinstance(base, list) else base)
        one = np.float32(1.0)
        # XGBoost turns the base score into a margin in float32: -log(1/p - 1).
        self.base_margin = np.float32(-np.log(one / np.float32(base) - one))
        feat, thr, left, default_left, leaf, roots = [], [], [], [], [], []
        offset, depth = 0, 0
        for tree in trees:
            lc = np.asarray(tree["left_children"], dtype=np.int64)
            rc = np.asarray(tree["right_children"], dtype=np.int64)
            if (
                any(tree.get("split_type", []))
                or int(tree["tree_param"].get("size_leaf_vector", "1")) > 1
            ):
                raise UnsupportedPipelineError("categorical splits or vector leaves are not walked")
            is_leaf = lc == -1
            if not np.all(is_leaf | (rc == lc + 1)):
                raise UnsupportedPipelineError("tree children are not stored in pairs")
            n = len(lc)
            index = np.arange(n, dtype=np.int64) + offset
            cond = np.asarray(tree["split_conditions"], dtype=np.float32)
            roots.append(offset)
            feat.append(np.where(is_leaf, 0, np.asarray(tree["split_indices"], dtype=np.int64)))
            # A leaf points at itself; its NaN threshold makes "x >= thr" false, so it stays.
            thr.append(np.where(is_leaf, np.float32(np.nan), cond))
            left.append(np.where(is_leaf, index, lc + offset))
            default_left.append(np.asarray(tree["default_left"], dtype=bool) | is_leaf)
            leaf.append(np.where(is_leaf, cond, np.float32(0.0)).astype(np.float32))
            levels = np.zeros(n, dtype=np.int64)
            for i in range(n):  # parents come before children in XGBoost's node order
                if not is_leaf[i]:
                    levels[lc[i]] = levels[rc[i]] = levels[i] + 1
            depth = max(depth, int(levels.max()) if n else 0)
            offset += n
        if not trees:
            raise UnsupportedPipelineError("the XGBoost model has no trees in its iteration range")
        self.feature = np.concatenate(feat).astype(np.intp)
        self.threshold = np.concatenate(thr).astype(np.float32)
        self.left = np.concatenate(left).astype(np.intp)
        self.go_right_if_missing = ~np.concatenate(default_left)
        self.leaf = np.concatenate(leaf)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.depth = depth

    @classmethod
    def from_booster(cls, booster: Any, iteration_range: tuple[int, int]) -> NumpyTreeEnsemble:
        """Read the trees of a fitted booster (its JSON model)."""
        return cls(json.loads(bytes(booster.save_raw("json"))), iteration_range)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability per row of the float64 design matrix ``X``."""
        x = X.astype(np.float32)
        feature, threshold, left = self.feature, self.threshold, self.left
        if x.shape[0] == 1:
            row = x[0]
            node = self.roots
            if np.isnan(row).any():
                for _ in range(self.depth):
                    v = row[feature[node]]
                    right = np.where(
                        np.isnan(v), self.go_right_if_missing[node], v >= threshold[node]
                    )
                    node = left[node] + right
            else:
                for _ in range(self.depth):
                    node = left[node] + (row[feature[node]] >= threshold[node])
            leaves = self.leaf[node][None, :]
        else:
            rows = np.arange(x.shape[0])[:, None]
            node = np.broadcast_to(self.roots, (x.shape[0], self.roots.size))
            missing = np.isnan(x).any()
            for _ in range(self.depth):
                v = x[rows, feature[node]]
                right = v >= threshold[node]
                if missing:
                    right = np.where(np.isnan(v), self.go_right_if_missing[node], right)
                node = left[node] + right
            leaves = self.leaf[node]
        start = np.full((leaves.shape[0], 1), self.base_margin, dtype=np.float32)
        # Sequential float32 sum in tree order, as XGBoost accumulates.
        margin = np.cumsum(np.concatenate((start, leaves), axis=1), axis=1, dtype=np.float32)[:, -1]
        one = np.float32(1.0)
        return (one / (np.exp(-margin) + one)).astype(np.float64)


def _compile_xgboost(model: Any, pre: CompiledPreprocessor) -> FastPredictor:
    import xgboost as xgb

    params = model.get_xgb_params()
    objective = params.get("objective")
    if objective != "binary:logistic" or len(getattr(model, "classes_", [])) != 2:
        raise UnsupportedPipelineError(
            f"XGBoost objective {objective!r} with classes {getattr(model, 'classes_', None)}"
            " is not compiled; expected binary:logistic with two classes"
        )
    if params.get("booster") == "gblinear":
        raise UnsupportedPipelineError("XGBoost gblinear booster is not compiled")
    if getattr(model, "n_features_in_", pre.width) != pre.width:
        raise UnsupportedPipelineError(
            f"XGBoost expects {model.n_features_in_} inputs, the preprocessor gives {pre.width}"
        )
    # A private copy: setting nthread must not touch the Pipeline that evaluation uses.
    booster = model.get_booster().copy()
    booster.set_param({"nthread": 1})
    # Same iteration range as XGBClassifier.predict_proba: best_iteration after early stopping.
    try:
        iteration_range = (0, int(model.best_iteration) + 1)
    except AttributeError:
        iteration_range = (0, 0)
    missing = model.missing if model.missing is not None else np.nan
    feature_names = booster.feature_names
    try:
        walker: NumpyTreeEnsemble | None = NumpyTreeEnsemble.from_booster(booster, iteration_range)
    except UnsupportedPipelineError as exc:
        logger.info("XGBoost trees not walked in numpy (%s); using inplace_predict only", exc)
        walker = None

    def booster_proba(X: np.ndarray) -> np.ndarray:
        values: np.ndarray = booster.inplace_predict(
            X,
            iteration_range=iteration_range,
            predict_type="value",
            missing=missing,
            validate_features=False,
        ).astype(np.float64, copy=False)
        return values

    def proba(X: np.ndarray) -> np.ndarray:
        if walker is not None and X.shape[0] <= SMALL_BATCH_ROWS:
            return walker.predict_proba(X)
        return booster_proba(X)

    def contribs(X: np.ndarray) -> np.ndarray:
        dm = xgb.DMatrix(X, missing=missing, feature_names=feature_names, nthread=1)
        values: np.ndarray = booster.predict(
            dm, pred_contribs=True, iteration_range=iteration_range, validate_features=False
        ).astype(np.float64, copy=False)
        return values

    features, mapping = _feature_mapping(pre)
    predictor = FastPredictor(pre, "xgboost", proba, contribs, mapping, features)
    predictor.small_batch_rows = SMALL_BATCH_ROWS if walker is not None else 0
    return predictor


def _compile_logistic(
    model: Any, pre: CompiledPreprocessor, background: np.ndarray
) -> FastPredictor:
    from scipy.special import expit

    if len(model.classes_) != 2 or model.coef_.shape != (1, pre.width):
        raise UnsupportedPipelineError(
            f"LogisticRegression with classes {list(model.classes_)} and coef_ shape"
            f" {model.coef_.shape} is not compiled; expected binary with {pre.width} inputs"
        )
    coef_t = np.ascontiguousarray(model.coef_.T)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    coef = model.coef_[0].astype(np.float64)
    base = float(intercept[0] + coef @ background)

    def proba(X: np.ndarray) -> np.ndarray:
        # LogisticRegression.predict_proba for two classes: expit of decision_function.
        return np.asarray(expit((X @ coef_t + intercept).ravel()))

    def contribs(X: np.ndarray) -> np.ndarray:
        # Exact SHAP of a linear model with independent features: coef * (x - E[x]).
        per_column = (X - background) * coef
        return np.column_stack([per_column, np.full(X.shape[0], base)])

    features, mapping = _feature_mapping(pre)
    return FastPredictor(pre, "logistic_regression", proba, contribs, mapping, features)


def _compile_generic(model: Any, pre: CompiledPreprocessor) -> FastPredictor:
    if not hasattr(model, "predict_proba") or len(getattr(model, "classes_", [])) != 2:
        raise UnsupportedPipelineError(
            f"estimator {type(model).__name__} has no binary predict_proba"
        )

    def proba(X: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_proba(X)[:, 1], dtype=np.float64)

    features, mapping = _feature_mapping(pre)
    return FastPredictor(pre, f"generic:{type(model).__name__}", proba, None, mapping, features)


def compile_pipeline(
    pipeline: Any,
    *,
    profile_means: Mapping[str, float] | None = None,
    category_shares: Mapping[str, Mapping[str, float]] | None = None,
) -> FastPredictor:
    """Compile a fitted ``Pipeline([("preprocess", ColumnTransformer), ("model", estimator)])``.

    Args:
        pipeline: The served object of the bundle.
        profile_means: Reference mean of each numeric feature (background for linear SHAP).
        category_shares: Reference share of each category (background for linear SHAP).

    Returns:
        A :class:`FastPredictor` whose probabilities equal ``pipeline.predict_proba(X)[:, 1]``.

    Raises:
        UnsupportedPipelineError: a step is outside what the fast path compiles; the message
            names it.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or [n for n, _ in pipeline.steps] != [
        "preprocess",
        "model",
    ]:
        raise UnsupportedPipelineError(
            "expected a Pipeline with steps ['preprocess', 'model'], got"
            f" {getattr(pipeline, 'steps', type(pipeline).__name__)!r}"
        )
    preprocess, model = pipeline.named_steps["preprocess"], pipeline.named_steps["model"]
    if not isinstance(preprocess, ColumnTransformer):
        raise UnsupportedPipelineError(
            f"step 'preprocess' is a {type(preprocess).__name__}, expected a ColumnTransformer"
        )
    pre = CompiledPreprocessor(preprocess)
    if type(model).__module__.startswith("xgboost") and type(model).__name__ == "XGBClassifier":
        return _compile_xgboost(model, pre)
    if isinstance(model, LogisticRegression):
        background = pre.background(profile_means or {}, category_shares or {})
        return _compile_logistic(model, pre, background)
    return _compile_generic(model, pre)


class PipelinePredictor:
    """The slow but always-correct path: a one-shot DataFrame through the Pipeline itself."""

    kind = "pipeline"
    can_explain = False

    def __init__(self, pipeline: Any, columns: Sequence[str]) -> None:
        self.pipeline = pipeline
        self.columns = list(columns)
        pre = pipeline.named_steps.get("preprocess") if hasattr(pipeline, "named_steps") else None
        encoders = [t for _, t, _ in getattr(pre, "transformers_", [])]
        self.accepts_unknown_categories = all(
            getattr(t, "handle_unknown", "ignore") != "error" for t in encoders
        )

    def predict_proba(self, rows: Sequence[Row]) -> np.ndarray:
        """``Pipeline.predict_proba(DataFrame(rows))[:, 1]``."""
        import pandas as pd

        frame = pd.DataFrame.from_records(list(rows), columns=self.columns)
        return np.asarray(self.pipeline.predict_proba(frame)[:, 1], dtype=np.float64)

    def explain(self, rows: Sequence[Row], top_k: int) -> list[Explanation]:
        """Not available: the Pipeline path has no exact fast explanation."""
        raise UnsupportedPipelineError("no fast explanation when serving through the Pipeline")
