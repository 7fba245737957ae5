"""Batch normalisation in inference form."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attribution.layers.norm import BatchNormLayer


def rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


@pytest.mark.parametrize("shape", [(5, 3), (5, 3, 4), (5, 3, 4, 2)])
def test_matches_the_formula_and_torch(shape):
    mean, var, gamma, beta = rand(3), rand(3).abs() + 0.5, rand(3), rand(3)
    layer = BatchNormLayer(mean, var, gamma, beta, eps=1e-3)
    x = rand(*shape)
    pre, out = layer(x)
    view = (1, 3) + (1,) * (len(shape) - 2)
    expected = gamma.view(view) * (x - mean.view(view)) / torch.sqrt(var.view(view) + 1e-3)
    expected = expected + beta.view(view)
    torch.testing.assert_close(pre, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(pre, F.batch_norm(x, mean, var, gamma, beta, eps=1e-3))
    assert out is pre


def test_without_affine_parameters():
    mean, var = rand(2), rand(2).abs() + 0.5
    layer = BatchNormLayer(mean, var)
    assert layer.weight is None and layer.bias is None
    assert layer.eps == 1e-5
    x = rand(4, 2, 3)
    expected = (x - mean.view(1, 2, 1)) / torch.sqrt(var.view(1, 2, 1) + 1e-5)
    torch.testing.assert_close(layer(x)[0], expected, rtol=0, atol=1e-12)


def test_running_statistics_are_copies():
    mean = torch.zeros(2)
    layer = BatchNormLayer(mean, torch.ones(2))
    mean.add_(1.0)
    assert torch.equal(layer.running_mean, torch.zeros(2, dtype=torch.float64))


def test_to_float32_casts_the_buffers():
    layer = BatchNormLayer(rand(2), rand(2).abs(), rand(2), rand(2)).to(torch.float32)
    assert {buffer.dtype for buffer in layer.buffers()} == {torch.float32}
    assert layer(torch.randn(3, 2))[0].dtype == torch.float32


def test_type_name():
    assert BatchNormLayer.type_name == "BatchNorm_Layer"
    assert not BatchNormLayer.fuses_activation
