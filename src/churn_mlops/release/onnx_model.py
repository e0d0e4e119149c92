"""Convert the fitted serving Pipeline (``preprocess`` + ``model``) to one ONNX graph.

The two steps are converted separately and then joined, because converting the whole
Pipeline in one call with the XGBoost converter registered into skl2onnx scores up to 0.23
away from ``Pipeline.predict_proba`` (the join is wrong, not the parts):

- the ``ColumnTransformer`` with skl2onnx on **double** inputs (one input per feature column,
  ``[N, 1]``; strings for categorical features), which reproduces ``transform`` exactly;
- an ``XGBClassifier`` with onnxmltools' ``convert_xgboost`` (float inputs, as XGBoost casts
  its input to float32 itself), or a ``LogisticRegression`` with skl2onnx on double inputs;
- :func:`onnx.compose.merge_models` feeds the preprocessor's matrix into the estimator,
  through a ``Cast`` to float for XGBoost.

The graph has two outputs: :data:`PROBABILITY_OUTPUT` (``[N]``, churn probability) and
:data:`FEATURES_OUTPUT` (``[N, k]``, the transformed matrix in double, which ``/v1/explain``
hands to the booster's exact TreeSHAP). Explanations need a little more than the graph: the
booster in XGBoost's own saved-model format (``Booster.save_model``, loaded with
``xgboost.Booster``) or the coefficients of the linear model, described by
:data:`EXPLAINER_FILE`. None of these files runs code when it is loaded.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from churn_mlops.serving import runtime

logger = logging.getLogger(__name__)

# The bundle's file names and graph outputs are the serving runtime's contract.
ONNX_MODEL_FILE = runtime.ONNX_MODEL_FILE.name
BOOSTER_FILE = runtime.BOOSTER_FILE.name
EXPLAINER_FILE = runtime.EXPLAINER_FILE.name
PROBABILITY_OUTPUT = runtime.PROBABILITY_OUTPUT
FEATURES_OUTPUT = runtime.FEATURES_OUTPUT
TARGET_OPSET = {"": 15, "ai.onnx.ml": 3}
"""Opsets of both parts (``merge_models`` needs them equal); onnxmltools' XGBoost converter
is verified at opset 15."""


class OnnxConversionError(ValueError):
    """The Pipeline cannot be converted, or the converted graph does not match it."""


@dataclass(frozen=True)
class ConvertedModel:
    """The files of a converted Pipeline: name → bytes, written to the bundle's ``model/``."""

    files: dict[str, bytes]
    kind: str  # "tree" or "linear"

    def write(self, folder: Path) -> None:
        """Write every file into ``folder`` (created if needed)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in self.files.items():
            (folder / name).write_bytes(content)


def _steps(pipeline: Any) -> tuple[Any, Any]:
    steps = dict(getattr(pipeline, "named_steps", {}))
    if set(steps) != {"preprocess", "model"}:
        raise OnnxConversionError(
            f"expected a Pipeline with steps 'preprocess' and 'model'; got {sorted(steps)}"
        )
    return steps["preprocess"], steps["model"]


def _input_columns(preprocess: Any) -> list[tuple[str, bool]]:
    """``(column, is_categorical)`` for every input column of the ColumnTransformer."""
    from sklearn.preprocessing import OneHotEncoder

    columns: list[tuple[str, bool]] = []
    names = [str(c) for c in getattr(preprocess, "feature_names_in_", ())]
    categorical: set[str] = set()
    for _, transformer, cols in preprocess.transformers_:
        if isinstance(transformer, OneHotEncoder):
            categorical.update(str(c) for c in cols)
    for name in names:
        columns.append((name, name in categorical))
    if not columns:
        raise OnnxConversionError("the preprocessor was fitted without column names")
    return columns


def output_features(preprocess: Any) -> list[str]:
    """The original feature behind each output column of the fitted ColumnTransformer."""
    from sklearn.preprocessing import OneHotEncoder

    owners: list[str] = []
    for name, transformer, cols in preprocess.transformers_:
        if name == "remainder" and transformer == "drop":
            continue
        if transformer == "drop":
            continue
        cols = [str(c) for c in cols]
        if isinstance(transformer, OneHotEncoder):
            for col, cats in zip(cols, transformer.categories_, strict=True):
                owners.extend([col] * len(cats))
        else:
            owners.extend(cols)
    return owners


def _convert_preprocessor(preprocess: Any, columns: list[tuple[str, bool]]) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    initial_types = [
        (name, StringTensorType([None, 1]) if is_cat else DoubleTensorType([None, 1]))
        for name, is_cat in columns
    ]
    return convert_sklearn(
        preprocess,
        initial_types=initial_types,
        target_opset=TARGET_OPSET,
        final_types=[(FEATURES_OUTPUT, DoubleTensorType([None, None]))],
    )


def _convert_estimator(model: Any, width: int) -> tuple[Any, str, bool]:
    """ONNX graph of the estimator, its probability output name, and whether it reads float."""
    from sklearn.linear_model import LogisticRegression

    if type(model).__name__ == "XGBClassifier":
        from onnxmltools import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType

        onx = convert_xgboost(
            model,
            initial_types=[("est_input", FloatTensorType([None, width]))],
            target_opset=TARGET_OPSET[""],
        )
        return onx, onx.graph.output[1].name, True
    if isinstance(model, LogisticRegression):
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType

        onx = convert_sklearn(
            model,
            initial_types=[("est_input", DoubleTensorType([None, width]))],
            target_opset=TARGET_OPSET,
            options={id(model): {"zipmap": False}},
        )
        return onx, onx.graph.output[1].name, False
    raise OnnxConversionError(
        f"estimator {type(model).__name__} has no ONNX conversion here; expected XGBClassifier"
        " or LogisticRegression"
    )


def _prefixed(model: Any, prefix: str) -> Any:
    from onnx import compose

    return compose.add_prefix(model, prefix=prefix)


def _align_opsets(*models: Any) -> None:
    # Each converter declares the lowest opset its nodes need; merge_models wants the same
    # declaration on both sides. The nodes used here keep their meaning across these opsets
    # (and the conversion is checked against the Pipeline afterwards).
    highest: dict[str, int] = {}
    for model in models:
        for entry in model.opset_import:
            highest[entry.domain] = max(highest.get(entry.domain, 0), entry.version)
    for model in models:
        del model.opset_import[:]
        for domain, version in sorted(highest.items()):
            entry = model.opset_import.add()
            entry.domain, entry.version = domain, version


def convert_pipeline(pipeline: Any) -> Any:
    """The fitted Pipeline as one ONNX ``ModelProto`` (see the module docstring).

    Raises:
        OnnxConversionError: a step has no conversion here.
    """
    import onnx
    from onnx import TensorProto, compose, helper

    preprocess, model = _steps(pipeline)
    columns = _input_columns(preprocess)
    width = len(output_features(preprocess))
    pre = _convert_preprocessor(preprocess, columns)
    est, proba_name, wants_float = _convert_estimator(model, width)
    est = _prefixed(est, "est_")
    proba_name = "est_" + proba_name
    est_input = est.graph.input[0].name
    # Extra nodes on the preprocessor side: the float cast XGBoost expects.
    bridge = FEATURES_OUTPUT
    if wants_float:
        bridge = "features_float"
        pre.graph.node.append(
            helper.make_node("Cast", [FEATURES_OUTPUT], [bridge], to=TensorProto.FLOAT)
        )
        pre.graph.output.append(helper.make_tensor_value_info(bridge, TensorProto.FLOAT, None))
    est.ir_version = pre.ir_version = min(pre.ir_version, est.ir_version)
    _align_opsets(pre, est)
    merged = compose.merge_models(
        pre,
        est,
        io_map=[(bridge, est_input)],
        outputs=[FEATURES_OUTPUT, proba_name],
    )
    # probability = probabilities[:, 1] as double, the output every runtime reads.
    graph = merged.graph
    graph.initializer.extend(
        [
            helper.make_tensor("slice_start", TensorProto.INT64, [1], [1]),
            helper.make_tensor("slice_end", TensorProto.INT64, [1], [2]),
            helper.make_tensor("slice_axis", TensorProto.INT64, [1], [1]),
        ]
    )
    graph.node.extend(
        [
            helper.make_node(
                "Slice", [proba_name, "slice_start", "slice_end", "slice_axis"], ["positive"]
            ),
            helper.make_node("Flatten", ["positive"], ["positive_2d"], axis=1),
            helper.make_node("Cast", ["positive_2d"], ["positive_double"], to=TensorProto.DOUBLE),
            helper.make_node("Reshape", ["positive_double", "flat_shape"], [PROBABILITY_OUTPUT]),
        ]
    )
    graph.initializer.append(helper.make_tensor("flat_shape", TensorProto.INT64, [1], [-1]))
    kept = [o for o in graph.output if o.name == FEATURES_OUTPUT]
    del graph.output[:]
    graph.output.extend(kept)
    graph.output.append(
        helper.make_tensor_value_info(PROBABILITY_OUTPUT, TensorProto.DOUBLE, [None])
    )
    merged = _grouped_inputs(merged, columns)
    merged.doc_string = "churn-mlops serving Pipeline (preprocess + model)"
    onnx.checker.check_model(merged)
    return merged


def _grouped_inputs(model: Any, columns: list[tuple[str, bool]]) -> Any:
    """Replace the per-column inputs by two matrices, ``numeric`` (double) and ``categorical``
    (string), split back into columns inside the graph: one ``run`` then converts two arrays
    instead of one per feature (half the call's cost for a single row). The column order of
    each matrix is in the model's metadata (``numeric_features``, ``categorical_features``)."""
    from onnx import TensorProto, helper

    groups = {
        runtime.NUMERIC_INPUT: ([c for c, is_cat in columns if not is_cat], TensorProto.DOUBLE),
        runtime.CATEGORICAL_INPUT: ([c for c, is_cat in columns if is_cat], TensorProto.STRING),
    }
    nodes, inputs = [], []
    for name, (cols, dtype) in groups.items():
        if not cols:
            continue
        inputs.append(helper.make_tensor_value_info(name, dtype, [None, len(cols)]))
        if len(cols) == 1:
            nodes.append(helper.make_node("Identity", [name], cols))
        else:
            nodes.append(helper.make_node("Split", [name], cols, axis=1))
    graph = model.graph
    grouped = helper.make_graph(
        # A fixed name: the converters name graphs with random UUIDs, and the same model must
        # give the same bytes (an export of the same version is byte-identical).
        [*nodes, *graph.node],
        "churn_serving_pipeline",
        inputs,
        list(graph.output),
        list(graph.initializer),
    )
    result = helper.make_model(
        grouped, opset_imports=list(model.opset_import), ir_version=model.ir_version
    )
    helper.set_model_props(
        result,
        {
            runtime.NUMERIC_FEATURES_KEY: json.dumps(groups[runtime.NUMERIC_INPUT][0]),
            runtime.CATEGORICAL_FEATURES_KEY: json.dumps(groups[runtime.CATEGORICAL_INPUT][0]),
        },
    )
    return result


def input_frame_to_feeds(columns: list[tuple[str, bool]], frame: Any) -> dict[str, np.ndarray]:
    """ONNX feeds of a feature DataFrame (tests and the conversion check)."""
    numeric = [c for c, is_cat in columns if not is_cat]
    categorical = [c for c, is_cat in columns if is_cat]
    feeds: dict[str, np.ndarray] = {}
    if numeric:
        feeds[runtime.NUMERIC_INPUT] = frame[numeric].to_numpy(dtype=np.float64)
    if categorical:
        feeds[runtime.CATEGORICAL_INPUT] = frame[categorical].astype(object).to_numpy()
    return feeds


def _explainer(pipeline: Any, background: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    preprocess, model = _steps(pipeline)
    owners = output_features(preprocess)
    if type(model).__name__ == "XGBClassifier":
        booster = model.get_booster()
        raw = booster.save_raw(raw_format="ubj")
        return (
            {"kind": "tree", "columns": owners, "booster": BOOSTER_FILE},
            {BOOSTER_FILE: bytes(raw)},
        )
    coef = np.asarray(model.coef_, dtype=np.float64).ravel()
    transformed = np.asarray(preprocess.transform(background), dtype=np.float64)
    mean = transformed.mean(axis=0)
    return (
        {
            "kind": "linear",
            "columns": owners,
            "coef": coef.tolist(),
            "intercept": float(np.ravel(model.intercept_)[0]),
            "background_mean": mean.tolist(),
        },
        {},
    )


def export_model_files(
    pipeline: Any, *, background: Any, check_rows: Any | None = None, tolerance: float = 1e-6
) -> ConvertedModel:
    """Convert ``pipeline`` and describe its explainer; check the graph against it.

    Args:
        pipeline: The fitted ``Pipeline([("preprocess", ...), ("model", ...)])``.
        background: Feature rows (DataFrame) whose transformed mean is the reference point of
            linear explanations (the golden sample at export).
        check_rows: Rows (DataFrame) on which ONNX must match ``predict_proba`` within
            ``tolerance``; default: ``background``.
        tolerance: Largest accepted absolute probability gap.

    Raises:
        OnnxConversionError: a step has no conversion, or the graph misses the Pipeline.
    """
    onx = convert_pipeline(pipeline)
    content = onx.SerializeToString()
    rows = background if check_rows is None else check_rows
    gap = onnx_gap(content, pipeline, rows)
    if not gap <= tolerance:
        raise OnnxConversionError(
            f"the ONNX graph differs from Pipeline.predict_proba by {gap:.3g} (tolerance"
            f" {tolerance:g}) on {len(rows)} rows"
        )
    logger.info("ONNX conversion: %d rows, largest gap to the Pipeline %.3g", len(rows), gap)
    explainer, extra = _explainer(pipeline, background)
    files = {
        ONNX_MODEL_FILE: content,
        EXPLAINER_FILE: (json.dumps(explainer, indent=1) + "\n").encode(),
        **extra,
    }
    return ConvertedModel(files=files, kind=explainer["kind"])


def onnx_gap(content: bytes, pipeline: Any, rows: Any) -> float:
    """Largest ``|ONNX - Pipeline.predict_proba|`` on the DataFrame ``rows``."""
    import onnxruntime as ort

    preprocess, _ = _steps(pipeline)
    columns = _input_columns(preprocess)
    session = ort.InferenceSession(content, providers=["CPUExecutionProvider"])
    (got,) = session.run([PROBABILITY_OUTPUT], input_frame_to_feeds(columns, rows))
    expected = pipeline.predict_proba(rows[[c for c, _ in columns]])[:, 1]
    return float(np.max(np.abs(got - expected))) if len(got) else 0.0


__all__ = [
    "BOOSTER_FILE",
    "EXPLAINER_FILE",
    "FEATURES_OUTPUT",
    "ONNX_MODEL_FILE",
    "PROBABILITY_OUTPUT",
    "ConvertedModel",
    "OnnxConversionError",
    "convert_pipeline",
    "export_model_files",
    "onnx_gap",
    "output_features",
]
