"""Reading typed values out of a layer of a model spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attribution.converter.spec_values import spec_axis, spec_ints, spec_tensor


def test_spec_tensor_reads_nested_lists_and_arrays_as_float64():
    value = spec_tensor({"w": [[1, 2], [3, 4]]}, "w", ndim=2)
    assert value.dtype == torch.float64
    assert value.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    array = spec_tensor({"w": np.ones((2, 3), dtype=np.float32)}, "w", ndim=2, length=2)
    assert array.shape == (2, 3)


def test_spec_tensor_makes_a_scalar_a_vector():
    assert spec_tensor({"b": 2.5}, "b", ndim=1).tolist() == [2.5]


def test_spec_tensor_optional_and_required():
    assert spec_tensor({}, "b", ndim=1, required=False) is None
    assert spec_tensor({"b": None}, "b", ndim=1, required=False) is None
    with pytest.raises(ValueError, match=r"^the key 'w' is missing\.$"):
        spec_tensor({}, "w", ndim=2)


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ([1, 2], {"ndim": 2}, r"'w' must have 2 axes; got shape \(2,\)\."),
        ([1, 2], {"ndim": 1, "length": 3}, r"'w' must have 3 entries; got 2\."),
        ("abc", {"ndim": 1}, r"'w' must be numeric \(nested lists or an array\)"),
        ([[1, 2], [3]], {"ndim": 2}, r"'w' must be numeric"),
    ],
)
def test_spec_tensor_errors(value, kwargs, message):
    with pytest.raises(ValueError, match=message):
        spec_tensor({"w": value}, "w", **kwargs)


def test_spec_ints():
    assert spec_ints({"s": 2}, "s", 1, lengths=(1, 2)) == (2,)
    assert spec_ints({"s": [2, 3]}, "s", 1, lengths=(1, 2)) == (2, 3)
    assert spec_ints({"s": [2.0]}, "s", 1, lengths=(1, 2)) == (2,)
    assert spec_ints({}, "s", (1, 1), lengths=(1, 2)) == (1, 1)
    assert all(isinstance(v, int) for v in spec_ints({"s": np.array([2, 3])}, "s", 1, (2,)))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, r"the key 's' is missing\."),
        ({"s": [1, 2, 3]}, r"'s' must have length 1 or 2; got 3\."),
        ({"s": 1.5}, r"'s' must be an integer or a vector of integers; got 1\.5\."),
        ({"s": [[1, 2]]}, r"'s' must be an integer or a vector of integers"),
        ({"s": "2"}, r"'s' must be an integer or a vector of integers; got '2'\."),
    ],
)
def test_spec_ints_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        spec_ints(spec, "s", None, lengths=(1, 2))


@pytest.mark.parametrize(
    ("value", "expected"), [(2, 0), (3, 1), (4, 2), (-1, -1), (-2, -2), (np.int64(3), 1)]
)
def test_spec_axis_counts_from_one_with_the_batch_axis(value, expected):
    assert spec_axis({"axis": value}, "axis", -1) == expected


def test_spec_axis_default():
    assert spec_axis({}, "start_dim", 2) == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1, r"'axis' is 1, but axes count from 1 with the batch axis first"),
        (0, r"'axis' is 0, but axes count from 1"),
        (2.0, r"'axis' must be an integer axis; got 2\.0\."),
        (True, r"'axis' must be an integer axis; got True\."),
    ],
)
def test_spec_axis_errors(value, message):
    with pytest.raises(ValueError, match=message):
        spec_axis({"axis": value}, "axis", -1)
