"""Evaluation node: the model card, rendered from the Jinja2 template ``model_card.md.j2``."""

from __future__ import annotations

import functools
import logging
from typing import Any

import jinja2
import pandas as pd

from churn_mlops.pipelines.evaluation.common import (
    fmt,
)
from churn_mlops.registry import RUN_ID_TOKEN, VERSION_TOKEN

logger = logging.getLogger(__name__)

#: The card's Jinja2 template, in this package's ``templates/`` folder.
TEMPLATE = "model_card.md.j2"


def build_model_card(
    model_metadata: dict[str, Any],
    split_summary: dict[str, Any],
    model_selection: dict[str, Any],
    candidate_scores: dict[str, dict[str, float]],
    test_metrics: dict[str, float],
    decision_threshold: dict[str, Any],
    calibration_table: pd.DataFrame,
    segment_metrics: pd.DataFrame,
    shap_importance: pd.DataFrame,
    shap_additivity: dict[str, Any],
    behaviour_report: dict[str, Any],
    promotion_decision: dict[str, Any],
) -> str:
    """The model card (Markdown): what the model is, how it was trained, how well it does.

    The version and run id are placeholders filled at registration.
    """
    return _template().render(
        meta=model_metadata,
        splits=split_summary,
        selection=model_selection,
        candidate_scores=candidate_scores,
        test_metrics=test_metrics,
        threshold=decision_threshold,
        business=decision_threshold["business"],
        calibration=list(calibration_table.itertuples()),
        calibration_note=_calibration_note(calibration_table),
        segments=list(segment_metrics.itertuples()),
        shap=shap_additivity,
        shap_importance=list(shap_importance.itertuples()),
        behaviour=behaviour_report,
        decision=promotion_decision,
        version_token=VERSION_TOKEN,
        run_id_token=RUN_ID_TOKEN,
    )


def _check_details(check: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt(v)}" for k, v in check.items() if k not in ("name", "passed"))


@functools.cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("churn_mlops.pipelines.evaluation", "templates"),
        undefined=jinja2.StrictUndefined,  # a missing key fails the render, not a blank card
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML
    )
    environment.filters["fmt"] = fmt
    environment.filters["percent"] = lambda value, digits: f"{value:.{digits}%}"
    environment.filters["check_details"] = _check_details
    return environment.get_template(TEMPLATE)


def _calibration_note(calibration_table: pd.DataFrame) -> str:
    rows = calibration_table["rows"]
    mean_score = float((calibration_table["mean_score"] * rows).sum() / rows.sum())
    observed = float((calibration_table["observed_rate"] * rows).sum() / rows.sum())
    note = f"Mean score {mean_score:.4f} against an observed churn rate of {observed:.4f}."
    if observed > 0 and mean_score / observed > 1.2:
        note += (
            " Class weighting during training lifts scores above observed rates: use the score "
            "to rank customers and the threshold to decide, not as a calibrated probability."
        )
    return note
