"""Pooling layers against torch.nn.functional."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attribution.layers.pooling import (
    AvgPool1DLayer,
    AvgPool2DLayer,
    GlobalAvgPoolLayer,
    GlobalMaxPoolLayer,
    MaxPool1DLayer,
    MaxPool2DLayer,
)


def rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


@pytest.mark.parametrize(
    ("layer", "shape", "reference"),
    [
        pytest.param(
            AvgPool1DLayer(kernel_size=3, stride=2, padding=1),
            (5, 2, 9),
            lambda x: F.avg_pool1d(x, 3, 2, padding=1),
            id="AvgPool1D",
        ),
        pytest.param(
            AvgPool2DLayer(
                kernel_size=(2, 3), stride=(2, 1), ceil_mode=True, count_include_pad=False
            ),
            (5, 2, 7, 8),
            lambda x: F.avg_pool2d(x, (2, 3), (2, 1), ceil_mode=True, count_include_pad=False),
            id="AvgPool2D",
        ),
        pytest.param(
            MaxPool1DLayer(kernel_size=2, stride=2),
            (5, 2, 9),
            lambda x: F.max_pool1d(x, 2, 2),
            id="MaxPool1D",
        ),
        pytest.param(
            MaxPool2DLayer(kernel_size=3, stride=2, padding=1, dilation=2),
            (5, 2, 9, 9),
            lambda x: F.max_pool2d(x, 3, 2, padding=1, dilation=2),
            id="MaxPool2D",
        ),
        pytest.param(GlobalAvgPoolLayer(), (5, 3, 4, 6), lambda x: x.mean((2, 3)), id="GlobalAvg"),
        pytest.param(
            GlobalAvgPoolLayer(keepdim=True),
            (5, 3, 7),
            lambda x: F.adaptive_avg_pool1d(x, 1),
            id="GlobalAvg-keepdim",
        ),
        pytest.param(GlobalMaxPoolLayer(), (5, 3, 7), lambda x: x.amax(2), id="GlobalMax"),
        pytest.param(
            GlobalMaxPoolLayer(keepdim=True),
            (5, 3, 4, 6),
            lambda x: F.adaptive_max_pool2d(x, 1),
            id="GlobalMax-keepdim",
        ),
    ],
)
def test_pooling_matches_torch(layer, shape, reference):
    x = rand(*shape)
    pre, out = layer(x)
    torch.testing.assert_close(pre, reference(x), rtol=0, atol=1e-12)
    assert out is pre


def test_pooling_works_in_float32():
    layer = MaxPool2DLayer(kernel_size=2, stride=2).to(torch.float32)
    assert layer(torch.randn(2, 1, 4, 4))[0].dtype == torch.float32


def test_type_names():
    assert [
        cls.type_name
        for cls in (
            AvgPool1DLayer,
            AvgPool2DLayer,
            MaxPool1DLayer,
            MaxPool2DLayer,
            GlobalAvgPoolLayer,
            GlobalMaxPoolLayer,
        )
    ] == [
        "AvgPool1D_Layer",
        "AvgPool2D_Layer",
        "MaxPool1D_Layer",
        "MaxPool2D_Layer",
        "GlobalAvgPool_Layer",
        "GlobalMaxPool_Layer",
    ]
    assert not MaxPool2DLayer.fuses_activation
