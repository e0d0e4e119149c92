"""The seeded, label-stratified random split for tables without a time axis."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from churn_mlops.fingerprint import fingerprint_table
from churn_mlops.pipelines.training.errors import TimeSplitError
from churn_mlops.pipelines.training.params import TrainingParams

logger = logging.getLogger(__name__)


def split_stratified_random(
    model_input_table: pd.DataFrame, cfg: TrainingParams
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """A random split stratified by the label and seeded by ``training.seed``.

    For a table without a time axis (one row per customer at one date), where a split by
    time cannot exist. The same table and seed give the same split, so the gate compares a
    challenger and the champion on the same test rows. Nothing is purged: all rows share one
    snapshot date.

    Raises:
        TimeSplitError: A split would hold fewer than two rows of a class.
    """
    from sklearn.model_selection import train_test_split

    from churn_mlops.pipelines.training.nodes import _describe_split  # no cycle at call time

    labels = model_input_table[cfg.target]
    counts = labels.value_counts()
    if len(counts) < 2 or counts.min() < 6:
        raise TimeSplitError(
            f"a stratified random split of model_input_table needs at least 6 rows of each "
            f"class of {cfg.target!r}; it has {counts.to_dict()}"
        )
    rest, test = train_test_split(
        model_input_table,
        test_size=cfg.split.test_fraction,
        stratify=labels,
        random_state=cfg.seed,
    )
    train, validation = train_test_split(
        rest,
        test_size=cfg.split.validation_fraction / (1 - cfg.split.test_fraction),
        stratify=rest[cfg.target],
        random_state=cfg.seed,
    )
    # Row order as in the input table: the fingerprint and the fits do not depend on shuffling.
    train, validation, test = (
        frame.sort_index().reset_index(drop=True) for frame in (train, validation, test)
    )
    summary = {
        "strategy": "stratified_random",
        "seed": cfg.seed,
        "fractions": {
            "validation": cfg.split.validation_fraction,
            "test": cfg.split.test_fraction,
        },
        "data_fingerprint": fingerprint_table(model_input_table),
        "rows": len(model_input_table),
        "purge_days": 0,
        "purged_rows": {"train": 0, "validation": 0},
        "splits": {
            name: _describe_split(frame, cfg)
            for name, frame in (("train", train), ("validation", validation), ("test", test))
        },
    }
    logger.info(
        "Stratified random split (seed %d): train %d, validation %d, test %d rows",
        cfg.seed,
        len(train),
        len(validation),
        len(test),
    )
    return train, validation, test, summary
