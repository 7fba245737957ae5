"""innsight's default names and reading user-given names per input/output layer and axis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attribution._names import (
    AXIS_TITLES,
    check_rank,
    default_input_names,
    default_output_names,
    resolve_input_names,
    resolve_output_names,
)


def test_default_input_names():
    assert default_input_names((3,)) == [["X1", "X2", "X3"]]
    assert default_input_names((2, 3)) == [["C1", "C2"], ["L1", "L2", "L3"]]
    assert default_input_names((1, 2, 3)) == [["C1"], ["H1", "H2"], ["W1", "W2", "W3"]]


def test_default_output_names():
    assert default_output_names(3) == ["Y1", "Y2", "Y3"]
    assert default_output_names(12)[-1] == "Y12"


def test_axis_titles_match_the_ranks():
    assert AXIS_TITLES[1] == ("Feature",)
    assert AXIS_TITLES[2] == ("Channels", "Signal length")
    assert AXIS_TITLES[3] == ("Channels", "Image height", "Image width")


def test_check_rank_rejects_more_than_three_axes():
    with pytest.raises(
        ValueError,
        match=r"^the input has shape \(batch, 1, 2, 3, 4\); only tabular \(batch, features\), "
        r"signal \(batch, channels, length\) and image \(batch, channels, height, width\) inputs",
    ):
        check_rank((1, 2, 3, 4), "the input")


def test_check_rank_accepts_one_to_three_axes():
    for dim in [(2,), (2, 3), (2, 3, 4)]:
        check_rank(dim)


def test_input_names_none_gives_defaults_for_every_layer():
    assert resolve_input_names(None, [(2,), (1, 2)]) == [[["X1", "X2"]], [["C1"], ["L1", "L2"]]]


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(["a", "b"], id="flat"),
        pytest.param([["a", "b"]], id="axes"),
        pytest.param([[["a", "b"]]], id="layers"),
        pytest.param(("a", "b"), id="tuple"),
        pytest.param(np.array(["a", "b"]), id="array"),
        pytest.param(pd.Categorical(["a", "b"]), id="categorical"),
    ],
)
def test_tabular_input_names_in_every_nesting(names):
    assert resolve_input_names(names, [(2,)]) == [[["a", "b"]]]


def test_image_input_names_per_axis_with_defaults_for_none():
    names = resolve_input_names([["r", "g"], None, ["w1", "w2", "w3"]], [(2, 2, 3)])
    assert names == [[["r", "g"], ["H1", "H2"], ["w1", "w2", "w3"]]]


def test_names_of_several_input_layers():
    names = resolve_input_names([["a", "b"], None, [["c"], ["l1", "l2"]]], [(2,), (3,), (1, 2)])
    assert names == [[["a", "b"]], [["X1", "X2", "X3"]], [["c"], ["l1", "l2"]]]


def test_names_become_strings():
    assert resolve_input_names([1, 2.5], [(2,)]) == [[["1", "2.5"]]]


@pytest.mark.parametrize(
    ("names", "dims", "error", "message"),
    [
        pytest.param(
            ["a", "b", "c"],
            [(2,)],
            ValueError,
            r"input_names for Feature of input layer 1 has 3 names; it needs 2\.",
            id="too-many",
        ),
        pytest.param(
            ["a", "a"],
            [(2,)],
            ValueError,
            r"input_names for Feature of input layer 1 repeats a; names must be unique\.",
            id="duplicates",
        ),
        pytest.param(
            [["c1"], ["l1", "l1", "l2", "l2"]],
            [(1, 4)],
            ValueError,
            r"input_names for Signal length of input layer 1 repeats l1, l2; names must be",
            id="duplicates-in-an-axis",
        ),
        pytest.param(
            [["a", "b"], ["c"]],
            [(2,), (1,), (3,)],
            ValueError,
            r"input_names has names for 2 input layers; the model has 3\.",
            id="number-of-layers",
        ),
        pytest.param(
            [[["c1", "c2"]]],
            [(2, 3)],
            ValueError,
            r"input_names of input layer 1 has 1 axes; the input has 2 \(Channels, Signal "
            r"length\)\.",
            id="number-of-axes",
        ),
        pytest.param(
            ["c1", "c2"],
            [(2, 3)],
            TypeError,
            r"input_names for Channels of input layer 1 must be a list of names; got 'c1'\.",
            id="flat-names-for-a-signal",
        ),
        pytest.param(
            "abc",
            [(3,)],
            TypeError,
            r"input_names must be a list of names; got str\.",
            id="a-string",
        ),
        pytest.param(
            [["a", ["b"]]],
            [(2,)],
            ValueError,
            r"input_names of input layer 1 has 2 axes; the input has 1 \(Feature\)\.",
            id="nested-too-deep",
        ),
    ],
)
def test_input_name_errors(names, dims, error, message):
    with pytest.raises(error, match=message):
        resolve_input_names(names, dims)


def test_output_names():
    assert resolve_output_names(None, [2, 1]) == [["Y1", "Y2"], ["Y1"]]
    assert resolve_output_names(["a", "b"], [2]) == [["a", "b"]]
    assert resolve_output_names([["a", "b"]], [2]) == [["a", "b"]]
    assert resolve_output_names([None, ["c"]], [2, 1]) == [["Y1", "Y2"], ["c"]]
    assert resolve_output_names(np.array([1, 2]), [2]) == [["1", "2"]]


@pytest.mark.parametrize(
    ("names", "sizes", "error", "message"),
    [
        pytest.param(
            ["a"],
            [2],
            ValueError,
            r"output_names for output layer 1 has 1 names; it needs 2\.",
            id="too-few",
        ),
        pytest.param(
            ["a", "a"], [2], ValueError, r"output_names for output layer 1 repeats a", id="dups"
        ),
        pytest.param(
            [["a"], ["b"], ["c"]],
            [1, 1],
            ValueError,
            r"output_names has names for 3 output layers; the model has 2\.",
            id="layers",
        ),
        pytest.param(
            [["a", "b"], "c"],
            [2, 1],
            TypeError,
            r"output_names for output layer 2 must be a list of names; got 'c'\.",
            id="a-string-for-a-layer",
        ),
        pytest.param(
            5, [1], TypeError, r"output_names must be a list of names; got int\.", id="int"
        ),
    ],
)
def test_output_name_errors(names, sizes, error, message):
    with pytest.raises(error, match=message):
        resolve_output_names(names, sizes)
