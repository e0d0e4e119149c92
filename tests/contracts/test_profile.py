"""The one reference-profile layout: what the parser accepts, and what it refuses and why."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from churn_mlops.contracts.errors import ProfileContractError
from churn_mlops.contracts.profile import (
    CategoricalReference,
    NumericReference,
    ReferenceProfile,
    parse_reference_profile,
    profile_to_dict,
)


def _profile() -> ReferenceProfile:
    return ReferenceProfile(
        features={
            "x": NumericReference(
                name="x",
                inner_edges=np.array([1.0, 2.0]),
                frequencies=np.array([0.2, 0.5, 0.3]),
                mean=1.5,
                std=1.0,
                min=0.0,
                max=3.0,
                null_share=0.1,
                count=90,
            ),
            "c": CategoricalReference(name="c", frequencies={"a": 0.25, "b": 0.75}, count=4),
        },
        score=NumericReference(
            name="score",
            inner_edges=np.array([0.5]),
            frequencies=np.array([0.6, 0.4]),
            mean=0.4,
            std=0.2,
            min=0.0,
            max=1.0,
        ),
    )


def test_the_writer_and_the_parser_agree():
    raw = profile_to_dict(_profile())
    assert raw["features"]["x"]["bin_edges"] == [0.0, 1.0, 2.0, 3.0]
    back = parse_reference_profile(raw)
    assert back.kinds() == {"x": "numeric", "c": "categorical"}
    x = back.features["x"]
    assert isinstance(x, NumericReference)
    np.testing.assert_allclose(x.inner_edges, [1.0, 2.0])
    np.testing.assert_allclose(x.frequencies, [0.2, 0.5, 0.3])
    assert (x.min, x.max, x.null_share, x.count) == (0.0, 3.0, 0.1, 90)
    c = back.features["c"]
    assert isinstance(c, CategoricalReference)
    assert c.frequencies == {"a": 0.25, "b": 0.75}
    assert back.score is not None
    np.testing.assert_allclose(back.score.inner_edges, [0.5])


@pytest.mark.parametrize(
    "layout,message",
    [
        # The layouts older readers also took are refused with a message naming the layout.
        ({"x": {"kind": "categorical", "frequencies": {"a": 1.0}}}, "'features' is NoneType"),
        (
            {"features": [{"name": "x", "kind": "categorical", "frequencies": {"a": 1.0}}]},
            "'features' is list",
        ),
        ({"features": {}}, "one entry per model feature"),
        ([], "is a list; expected a JSON object"),
    ],
)
def test_other_layouts_are_refused(layout, message):
    with pytest.raises(ProfileContractError, match="expected") as err:
        parse_reference_profile(layout)
    assert message in str(err.value)


def _entry(**changes):
    entry = copy.deepcopy(profile_to_dict(_profile())["features"]["x"])
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    "entry,message",
    [
        (_entry(bin_edges=[1.0, 2.0]), "expected a list of 4 edges"),
        (_entry(bin_edges=[0.0, 2.0, 1.0, 3.0]), "strictly increasing"),
        (_entry(bin_edges=[None, 1.0, 2.0, 3.0]), "expected finite edges"),
        (_entry(bin_edges=["a", 1.0, 2.0, 3.0]), "expected numbers"),
        (_entry(frequencies=[0.5, 0.6, 0.1]), "summing to 1.2"),
        (_entry(mean="high"), "key 'mean' is 'high'"),
        (_entry(count=-1), "key 'count' is -1"),
        (_entry(kind=None), "kind None"),
        ({"kind": "categorical", "frequencies": {"a": 0.5}}, "summing to 0.5"),
        ({"kind": "categorical", "frequencies": []}, "{category: share}"),
        ({"kind": "text", "frequencies": {"a": 1.0}}, "kind 'text'"),
        ("numeric", "is str; expected an object"),
    ],
)
def test_a_bad_entry_is_named(entry, message):
    with pytest.raises(ProfileContractError, match="'bad'") as err:
        parse_reference_profile({"features": {"bad": entry}})
    assert message in str(err.value)


def test_a_categorical_score_is_refused():
    raw = profile_to_dict(_profile())
    raw["score"] = {"kind": "categorical", "frequencies": {"a": 1.0}}
    with pytest.raises(ProfileContractError, match="'score' is categorical"):
        parse_reference_profile(raw)
