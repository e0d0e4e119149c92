"""Check that a feature table's categorical values fit the declared categories."""

from __future__ import annotations

import logging

import ibis
import ibis.expr.types as ir

from churn_mlops.pipelines.feature_engineering.params import FeatureEngineeringConfig

logger = logging.getLogger(__name__)


def check_feature_categories(model_input: ir.Table, config: FeatureEngineeringConfig) -> None:
    """Stop when a categorical feature's declared categories do not fit the data.

    A declared category that no row has is most often a typo (``area_code_51`` for
    ``area_code_510``); a value outside the list is encoded as "unknown" by the model, so more
    than ``max_unknown_category_share`` of such rows means the list is wrong. Unseen categories
    stop a ``customer_table`` run (the list describes that very table); with an event log,
    whose categories data_processing has already checked and whose small samples may lack a
    rare one, they only warn. One grouped count per categorical feature.

    Raises:
        FeatureCategoryError: Naming each column, its unseen categories and the share and
            examples of values outside the list.
    """
    problems = []
    for spec in config.features:
        if spec.kind != "categorical":
            continue
        counts = (
            model_input.group_by(value=model_input[spec.name])
            .aggregate(n=ibis._.count())
            .to_pyarrow()
            .to_pylist()
        )
        total = sum(row["n"] for row in counts)
        if total == 0:
            continue
        observed = {row["value"]: row["n"] for row in counts}
        unseen = [c for c in spec.categories or [] if c not in observed]
        unknown = {v: n for v, n in observed.items() if v not in set(spec.categories or [])}
        share = sum(unknown.values()) / total
        if unseen and config.input_mode == "event_log":
            logger.warning(
                "Feature %r: declared categories %s occur in none of the %d rows",
                spec.name,
                unseen,
                total,
            )
        elif unseen:
            problems.append(
                f"{spec.name!r}: declared categories {unseen} occur in no row "
                f"(values present: {sorted(map(str, observed))[:20]})"
            )
        if share > config.max_unknown_category_share:
            top = sorted(unknown, key=lambda v: (-unknown[v], str(v)))[:10]
            problems.append(
                f"{spec.name!r}: {share:.1%} of rows have values outside its categories, "
                f"e.g. {top} (allowed up to max_unknown_category_share="
                f"{config.max_unknown_category_share})"
            )
    if problems:
        from churn_mlops.pipelines.feature_engineering.nodes import FeatureCategoryError

        raise FeatureCategoryError(
            "Categorical features of model_input_table do not match feature_engineering."
            "features: " + "; ".join(problems)
        )
