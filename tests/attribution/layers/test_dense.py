"""Dense layers, and the Layer basics they share with every layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attribution.layers import Activation, Layer
from attribution.layers.dense import DenseLayer


def test_forward_is_linear_then_activation():
    weight, bias = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    layer = DenseLayer(weight, bias, Activation("tanh"))
    x = torch.randn(5, 3, dtype=torch.float64)
    pre, out = layer(x)
    torch.testing.assert_close(pre, F.linear(x, weight, bias), rtol=0, atol=1e-12)
    torch.testing.assert_close(out, torch.tanh(pre), rtol=0, atol=1e-12)
    torch.testing.assert_close(layer.preactivation(x), pre)


def test_without_bias_and_activation():
    weight = torch.randn(2, 3, dtype=torch.float64)
    layer = DenseLayer(weight)
    assert layer.bias is None
    assert layer.activation is None
    x = torch.randn(5, 3, dtype=torch.float64)
    pre, out = layer(x)
    assert out is pre
    torch.testing.assert_close(out, x @ weight.T, rtol=0, atol=1e-12)


def test_linear_activation_is_stored_as_none():
    assert DenseLayer(torch.ones(2, 2), activation=Activation("linear")).activation is None


def test_weights_are_float64_copies_without_gradients():
    weight = torch.randn(2, 3, requires_grad=True)
    layer = DenseLayer(weight, torch.zeros(2))
    assert layer.weight.dtype == torch.float64
    assert not layer.weight.requires_grad
    with torch.no_grad():
        weight.add_(1.0)
    assert not torch.equal(layer.weight, weight.double())
    assert [name for name, _ in layer.named_buffers()] == ["weight", "bias"]


def test_to_float32_casts_the_buffers():
    layer = DenseLayer(torch.randn(2, 3), torch.randn(2)).to(torch.float32)
    assert layer.weight.dtype == layer.bias.dtype == torch.float32
    pre, _ = layer(torch.randn(4, 3))
    assert pre.dtype == torch.float32


def test_type_name_and_fusing():
    assert DenseLayer.type_name == "Dense_Layer"
    assert DenseLayer.fuses_activation


def test_the_base_layer_has_no_preactivation():
    with pytest.raises(NotImplementedError):
        Layer()(torch.ones(1, 2))
