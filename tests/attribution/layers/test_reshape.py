"""Flatten and padding layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attribution.layers.reshape import FlattenLayer, PaddingLayer


def rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


@pytest.mark.parametrize(
    ("layer", "reference"),
    [
        pytest.param(FlattenLayer(), lambda x: x.flatten(1), id="all"),
        pytest.param(FlattenLayer(1), lambda x: x.flatten(2), id="spatial"),
        pytest.param(FlattenLayer(0, 1), lambda x: x.flatten(1, 2), id="channels-and-height"),
        pytest.param(FlattenLayer(-2, -1), lambda x: x.flatten(-2, -1), id="negative"),
        pytest.param(
            FlattenLayer(channels_last=True),
            lambda x: x.permute(0, 2, 3, 1).flatten(1),
            id="channels-last",
        ),
    ],
)
def test_flatten(layer, reference):
    x = rand(5, 2, 3, 4)
    pre, out = layer(x)
    assert torch.equal(pre, reference(x))
    assert out is pre


@pytest.mark.parametrize(
    ("layer", "shape", "reference"),
    [
        pytest.param(PaddingLayer((1, 2)), (5, 2, 4), lambda x: F.pad(x, (1, 2)), id="zeros"),
        pytest.param(
            PaddingLayer((1, 0, 2, 1), value=1.5),
            (5, 2, 3, 4),
            lambda x: F.pad(x, (1, 0, 2, 1), value=1.5),
            id="constant",
        ),
        pytest.param(
            PaddingLayer((2, 1), "reflect"),
            (5, 2, 4),
            lambda x: F.pad(x, (2, 1), mode="reflect"),
            id="reflect",
        ),
        pytest.param(
            PaddingLayer((1, 1, 1, 1), "replicate"),
            (5, 2, 3, 4),
            lambda x: F.pad(x, (1, 1, 1, 1), mode="replicate"),
            id="replicate",
        ),
        pytest.param(
            PaddingLayer((1, 2, 0, 1), "circular", value=None),
            (5, 2, 3, 4),
            lambda x: F.pad(x, (1, 2, 0, 1), mode="circular"),
            id="circular",
        ),
    ],
)
def test_padding(layer, shape, reference):
    x = rand(*shape)
    assert torch.equal(layer(x)[0], reference(x))


def test_layers_work_in_float32_and_have_no_weights():
    for layer in (FlattenLayer(), PaddingLayer((1, 1))):
        assert list(layer.buffers()) == []
        assert layer.to(torch.float32)(torch.randn(2, 3, 4))[0].dtype == torch.float32


def test_type_names():
    assert (FlattenLayer.type_name, PaddingLayer.type_name) == ("Flatten_Layer", "Padding_Layer")
