"""``ChampionRegistry``: aliases, champion history, promotion and rollback on real MLflow."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from churn_mlops.registry import ChampionRegistry, RegistryError


@pytest.fixture
def registry(model_name, tmp_path) -> ChampionRegistry:
    """A registered model with three versions and no aliases yet."""
    client = MlflowClient()
    client.create_registered_model(model_name)
    for _ in range(3):
        client.create_model_version(model_name, source=str(tmp_path))
    return ChampionRegistry(model_name, client=client)


def test_promote_moves_the_alias_and_records_history(registry):
    assert registry.promote("1", reason="first") is None
    assert registry.promote("3", reason="better") == "1"
    assert registry.champion_version() == "3"
    assert registry.champion_history() == ["1", "3"]
    tags = registry.client.get_model_version(registry.model_name, "3").tags
    assert tags["promotion_reason"] == "better" and "promoted_at" in tags


def test_promoting_the_champion_again_changes_nothing(registry):
    registry.promote("2", reason="first")
    assert registry.promote("2", reason="again") == "2"
    assert registry.champion_history() == ["2"]


def test_rollback_returns_to_the_previous_champion_in_one_call(registry):
    for version in ("1", "2", "3"):
        registry.promote(version, reason="test")
    assert registry.rollback() == ("3", "2")
    assert registry.champion_version() == "2"
    assert registry.rollback() == ("2", "1")
    assert registry.champion_history() == ["1"]
    assert "rolled_back_at" in registry.client.get_model_version(registry.model_name, "3").tags


def test_rollback_without_a_previous_champion_is_refused_and_changes_nothing(registry):
    with pytest.raises(RegistryError, match="has no 'champion' alias"):
        registry.rollback()
    registry.promote("1", reason="first")
    with pytest.raises(RegistryError, match="v1 is the only version"):
        registry.rollback()
    assert registry.champion_version() == "1"


def test_an_alias_moved_by_hand_counts_as_the_latest_champion(registry):
    registry.promote("1", reason="first")
    registry.client.set_registered_model_alias(registry.model_name, "champion", "3")
    assert registry.champion_history() == ["1", "3"]
    assert registry.rollback() == ("3", "1")


def test_unknown_version_is_named_with_the_known_ones(registry):
    with pytest.raises(RegistryError, match=r"no version '9'; versions: \['3', '2', '1'\]"):
        registry.promote("9", reason="nope")


def test_versions_list_aliases_newest_first(registry):
    registry.promote("2", reason="first")
    registry.set_challenger("3")
    listed = registry.versions()
    assert [v.version for v in listed] == ["3", "2", "1"]
    assert listed[0].aliases == ["challenger"] and listed[1].aliases == ["champion"]


def test_a_missing_model_has_no_versions_or_champion(mlflow_store):
    registry = ChampionRegistry("never_registered")
    assert not registry.exists()
    assert registry.versions() == [] and registry.champion_version() is None
    assert registry.champion_history() == []
