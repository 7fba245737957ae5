"""Layers with several inputs: addition and concatenation."""

from __future__ import annotations

import pytest
import torch

from attribution.layers.merge import AddLayer, ConcatenateLayer


def rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


@pytest.mark.parametrize("n_inputs", [2, 3])
def test_add(n_inputs):
    inputs = [rand(5, 2, 3) for _ in range(n_inputs)]
    pre, out = AddLayer()(*inputs)
    torch.testing.assert_close(pre, sum(inputs), rtol=0, atol=1e-12)
    assert out is pre


@pytest.mark.parametrize(("axis", "dim"), [(0, 1), (1, 2), (-1, -1), (-2, 2)])
def test_concatenate_along_an_axis_of_one_instance(axis, dim):
    a, b = rand(5, 2, 3, 4), rand(5, 2, 3, 4)
    pre, _ = ConcatenateLayer(axis)(a, b)
    assert torch.equal(pre, torch.cat([a, b], dim=dim))


def test_concatenate_defaults_to_the_last_axis():
    a, b = rand(5, 3), rand(5, 2)
    assert torch.equal(ConcatenateLayer()(a, b)[0], torch.cat([a, b], dim=1))


def test_type_names():
    assert (AddLayer.type_name, ConcatenateLayer.type_name) == ("Add_Layer", "Concatenate_Layer")
