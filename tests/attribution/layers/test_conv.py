"""Convolutional layers against torch.nn.functional."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attribution.layers import Activation
from attribution.layers.conv import Conv1DLayer, Conv2DLayer, same_padding


def rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


@pytest.mark.parametrize(
    ("options", "padding", "reference"),
    [
        pytest.param(
            {"stride": (2,), "dilation": (1,)},
            (1, 1),
            lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1),
            id="symmetric",
        ),
        pytest.param(
            {"stride": (1,), "dilation": (2,)},
            (0, 2),
            lambda x, w, b: F.conv1d(F.pad(x, (0, 2)), w, b, dilation=2),
            id="asymmetric",
        ),
        pytest.param(
            {"stride": (1,), "dilation": (1,), "padding_mode": "reflect"},
            (2, 1),
            lambda x, w, b: F.conv1d(F.pad(x, (2, 1), mode="reflect"), w, b),
            id="reflect",
        ),
        pytest.param(
            {"stride": (1,), "dilation": (1,), "padding_mode": "circular"},
            (1, 1),
            lambda x, w, b: F.conv1d(F.pad(x, (1, 1), mode="circular"), w, b),
            id="circular-symmetric",
        ),
    ],
)
def test_conv1d(options, padding, reference):
    weight, bias, x = rand(3, 2, 3), rand(3), rand(5, 2, 10)
    layer = Conv1DLayer(weight, bias, padding=padding, **options)
    pre, out = layer(x)
    torch.testing.assert_close(pre, reference(x, weight, bias), rtol=0, atol=1e-12)
    assert out is pre


@pytest.mark.parametrize(
    ("options", "padding", "reference"),
    [
        pytest.param(
            {"stride": (2, 1), "dilation": (1, 2)},
            (1, 1, 2, 2),
            lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(2, 1), dilation=(1, 2)),
            id="symmetric",
        ),
        pytest.param(
            {"stride": (1, 1), "dilation": (1, 1)},
            (0, 1, 2, 3),
            lambda x, w, b: F.conv2d(F.pad(x, (0, 1, 2, 3)), w, b),
            id="asymmetric",
        ),
        pytest.param(
            {"stride": (1, 1), "dilation": (1, 1), "padding_mode": "replicate"},
            (1, 1, 1, 1),
            lambda x, w, b: F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w, b),
            id="replicate",
        ),
    ],
)
def test_conv2d(options, padding, reference):
    weight, bias, x = rand(3, 2, 3, 2), rand(3), rand(5, 2, 7, 8)
    layer = Conv2DLayer(weight, bias, padding=padding, **options)
    torch.testing.assert_close(layer(x)[0], reference(x, weight, bias), rtol=0, atol=1e-12)


def test_groups_and_fused_activation():
    weight, x = rand(4, 1, 3, 3), rand(5, 2, 6, 6)
    layer = Conv2DLayer(
        weight,
        stride=(1, 1),
        padding=(0, 0, 0, 0),
        dilation=(1, 1),
        groups=2,
        activation=Activation("relu"),
    )
    pre, out = layer(x)
    torch.testing.assert_close(pre, F.conv2d(x, weight, groups=2), rtol=0, atol=1e-12)
    torch.testing.assert_close(out, F.relu(pre))


@pytest.mark.parametrize(
    ("kernel", "dilation", "expected"),
    [
        ((3,), (1,), (1, 1)),
        ((4,), (1,), (1, 2)),
        ((4,), (2,), (3, 3)),
        ((3, 4), (2, 1), (1, 2, 2, 2)),
    ],
)
def test_same_padding_in_pad_order(kernel, dilation, expected):
    assert same_padding(kernel, dilation) == expected


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_same_padding_matches_torch():
    conv = nn.Conv2d(2, 3, (3, 4), padding="same", dilation=(2, 1)).double()
    layer = Conv2DLayer(
        conv.weight,
        conv.bias,
        stride=(1, 1),
        padding=same_padding(conv.kernel_size, conv.dilation),
        dilation=conv.dilation,
    )
    x = rand(2, 2, 7, 8)
    torch.testing.assert_close(layer(x)[0], conv(x), rtol=0, atol=1e-12)


def test_to_float32_casts_the_buffers():
    layer = Conv1DLayer(rand(3, 2, 3), rand(3), stride=(1,), padding=(0, 0), dilation=(1,))
    layer = layer.to(torch.float32)
    assert layer.weight.dtype == layer.bias.dtype == torch.float32
    assert layer(torch.randn(2, 2, 5))[0].dtype == torch.float32


def test_type_names():
    assert (Conv1DLayer.type_name, Conv2DLayer.type_name) == ("Conv1D_Layer", "Conv2D_Layer")
    assert Conv1DLayer.fuses_activation and Conv2DLayer.fuses_activation
