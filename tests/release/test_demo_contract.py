"""The demo bundle follows the project's one feature contract, not a copy of its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from churn_mlops.contracts.errors import ContractError
from churn_mlops.release import demo
from tests.conftest import committed_feature_names


def test_demo_features_are_the_configured_contract_in_order() -> None:
    assert list(demo.FEATURES) == committed_feature_names()
    frame, label = demo.make_synthetic_features(50, seed=1)
    assert list(frame.columns) == committed_feature_names()
    assert len(label) == 50


def test_a_feature_added_to_the_contract_gets_synthetic_values(tmp_path: Path) -> None:
    import yaml

    params = yaml.safe_load(demo.CONTRACT_FILE.read_text(encoding="utf-8"))
    params["feature_engineering"]["features"].append(
        {"name": "referrals_90d", "kind": "numeric", "min": 0, "max": 50}
    )
    extended = tmp_path / "parameters_feature_engineering.yml"
    extended.write_text(yaml.safe_dump(params), encoding="utf-8")
    added = demo.load_contract(extended)[-1]
    assert added.name == "referrals_90d"
    column = demo._generic_column(added, np.random.default_rng(0), 200)
    assert column.min() >= 0 and column.max() <= 50 and column.std() > 0


def test_a_missing_contract_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="parameters_feature_engineering.yml"):
        demo.load_contract(tmp_path / "conf" / "parameters_feature_engineering.yml")
