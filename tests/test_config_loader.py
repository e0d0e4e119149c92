"""The project's config loader: an environment holds only what differs from conf/base."""

from __future__ import annotations

from pathlib import Path

import yaml

from churn_mlops import settings


def _write(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content), encoding="utf-8")


def _loader(conf: Path, env: str, **kwargs):
    return settings.CONFIG_LOADER_CLASS(
        conf_source=str(conf), env=env, **{**settings.CONFIG_LOADER_ARGS, **kwargs}
    )


def test_an_environment_overrides_single_keys_and_derived_values_follow(tmp_path: Path):
    conf = tmp_path / "conf"
    _write(
        conf / "base" / "parameters_a.yml",
        {
            "feature_engineering": {"snapshots": {"label_horizon_days": 30, "history_months": 3}},
            "training": {
                "seed": 42,
                "split": {"purge_days": "${feature_engineering.snapshots.label_horizon_days}"},
                "monotone": ["late_payments_90d"],
            },
        },
    )
    _write(
        conf / "mine" / "parameters_a.yml",
        {
            "feature_engineering": {"snapshots": {"label_horizon_days": 60}},
            "training": {"monotone": []},
        },
    )
    params = _loader(conf, "mine")["parameters"]
    # Only the stated key changed; its siblings come from base (deep merge).
    assert params["feature_engineering"]["snapshots"] == {
        "label_horizon_days": 60,
        "history_months": 3,
    }
    assert params["training"]["seed"] == 42
    # The derived value resolves after the override, not with the base horizon.
    assert params["training"]["split"]["purge_days"] == 60
    # Lists are replaced, not appended to.
    assert params["training"]["monotone"] == []
    # Runtime parameters (--params) still win over both.
    runtime = _loader(conf, "mine", runtime_params={"training": {"seed": 7}})["parameters"]
    assert runtime["training"]["seed"] == 7
    assert runtime["training"]["split"]["purge_days"] == 60


def test_the_base_environment_alone_loads_as_before(tmp_path: Path):
    conf = tmp_path / "conf"
    _write(conf / "base" / "parameters.yml", {"a": {"b": 1, "c": "${a.b}"}})
    (conf / "local").mkdir()
    assert _loader(conf, "local")["parameters"] == {"a": {"b": 1, "c": 1}}
