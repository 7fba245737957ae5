"""Convolutional layers (1D signals and 2D images)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribution.converter.registry import Call, register_module, register_spec
from attribution.converter.spec_values import spec_ints, spec_tensor
from attribution.layers.activation import Activation
from attribution.layers.base import Layer, LinearRules, weighted_deeplift
from attribution.layers.reshape import pad_adjoint
from attribution.rules import Part, weight_part


class ConvLayer(LinearRules, Layer):
    """A convolution over ``n_spatial`` axes of channels-first inputs.

    Parameters
    ----------
    weight : Tensor of shape (out_channels, in_channels / groups, *kernel_size)
    bias : Tensor of shape (out_channels,), default=None
    stride, dilation : tuple of int, one per spatial axis
    padding : tuple of int, default=zeros
        Padding in ``torch.nn.functional.pad`` order: ``(left, right)`` for 1D,
        ``(left, right, top, bottom)`` for 2D (innsight's order). It may be asymmetric.
    padding_mode : {"zeros", "reflect", "replicate", "circular"}, default="zeros"
    groups : int, default=1
    activation : Activation, default=None
    """

    fuses_activation = True
    n_spatial: ClassVar[int]
    _convolve: ClassVar[Callable[..., Tensor]]
    _convolve_input: ClassVar[Callable[..., Tensor]]

    def __init__(
        self,
        weight: Tensor,
        bias: Tensor | None = None,
        *,
        stride: Sequence[int],
        padding: Sequence[int],
        dilation: Sequence[int],
        padding_mode: str = "zeros",
        groups: int = 1,
        activation: Activation | None = None,
    ) -> None:
        super().__init__(activation)
        self._buffer("weight", weight)
        self._buffer("bias", bias)
        self.stride = tuple(stride)
        self.padding = tuple(padding)
        self.dilation = tuple(dilation)
        self.padding_mode = padding_mode
        self.groups = groups

    def preactivation(self, x: Tensor) -> Tensor:
        """The convolution."""
        return self.convolve(x, self.weight, self.bias)

    def convolve(self, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """Convolve with ``weight``, padding first where it is asymmetric or not zeros."""
        padding = self._conv_padding()
        if padding is None:
            x, padding = F.pad(x, self.padding, mode=self._pad_mode()), 0
        convolve = type(self)._convolve
        return convolve(x, weight, bias, self.stride, padding, self.dilation, self.groups)

    def _conv_padding(self) -> tuple[int, ...] | None:
        """The padding the convolution does itself, or None where ``F.pad`` goes first."""
        starts, ends = self.padding[0::2][::-1], self.padding[1::2][::-1]
        return starts if starts == ends and self.padding_mode == "zeros" else None

    def _pad_mode(self) -> str:
        return "constant" if self.padding_mode == "zeros" else self.padding_mode

    def linear_map(self, in_shape: tuple[int, ...]) -> _ConvMap:
        """The rules' view of the convolution for inputs of shape ``in_shape``."""
        return _ConvMap(self, in_shape)

    def transpose(self, v: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """The transposed convolution."""
        return [self.linear_map(in_shapes[0]).adjoint(v, "all")]

    def deeplift(self, values, reference, m_out, m_pre, rule_name, winner_takes_all, stab):
        """Rescale, or RevealCancel through the fused activation."""
        linear_map = self.linear_map(values.in_shapes[0])
        return weighted_deeplift(self, linear_map, values, reference, m_out, m_pre, rule_name, stab)


class _ConvMap:
    """A convolution's :class:`~attribution.rules.LinearMap` for one input shape."""

    def __init__(self, layer: ConvLayer, in_shape: tuple[int, ...]) -> None:
        self.layer = layer
        self.in_shape = in_shape

    def apply(self, x: Tensor, part: Part) -> Tensor:
        """The convolution with ``W``, ``W⁺`` or ``W⁻``, without bias."""
        return self.layer.convolve(x, weight_part(self.layer.weight, part))

    def adjoint(self, v: Tensor, part: Part) -> Tensor:
        """The transposed convolution of ``v`` ``(K, batch, *out)``."""
        layer = self.layer
        k, batch = v.shape[:2]
        flat = v.reshape(k * batch, *v.shape[2:])
        padding = layer._conv_padding()
        shape = self.in_shape
        if padding is None:  # F.pad went first: transpose on the padded input, then unpad
            pairs = list(zip(layer.padding[0::2], layer.padding[1::2], strict=True))[::-1]
            shape = (
                shape[0],
                *(size + a + b for size, (a, b) in zip(shape[1:], pairs, strict=True)),
            )
        gradient = type(layer)._convolve_input(
            (k * batch, *shape), weight_part(layer.weight, part), flat, layer.stride,
            padding or 0, layer.dilation, layer.groups,
        )  # fmt: skip
        if padding is None:
            gradient = pad_adjoint(gradient, layer.padding, layer._pad_mode(), self.in_shape)
        return gradient.reshape(k, batch, *self.in_shape)

    def bias_parts(self) -> tuple[Tensor | float, Tensor | float]:
        """``(b⁺, b⁻)`` per channel, broadcasting over the spatial axes."""
        bias = self.layer.bias
        if bias is None:
            return 0.0, 0.0
        bias = bias.reshape(-1, *([1] * self.layer.n_spatial))
        return bias.clamp(min=0), bias.clamp(max=0)


class Conv1DLayer(ConvLayer):
    """1D convolution on ``(batch, channels, length)``."""

    type_name = "Conv1D_Layer"
    n_spatial = 1
    _convolve = F.conv1d
    _convolve_input = staticmethod(torch.nn.grad.conv1d_input)


class Conv2DLayer(ConvLayer):
    """2D convolution on ``(batch, channels, height, width)``."""

    type_name = "Conv2D_Layer"
    n_spatial = 2
    _convolve = F.conv2d
    _convolve_input = staticmethod(torch.nn.grad.conv2d_input)


def same_padding(kernel_size: Sequence[int], dilation: Sequence[int]) -> tuple[int, ...]:
    """torch's ``padding="same"`` in ``F.pad`` order (the odd pixel goes right/bottom)."""
    padding: list[int] = []
    for k, d in zip(reversed(kernel_size), reversed(dilation), strict=True):
        total = d * (k - 1)
        padding += [total // 2, total - total // 2]
    return tuple(padding)


@register_module(nn.Conv1d, nn.Conv2d)
def _from_torch(call: Call) -> ConvLayer:
    module = call.module
    layer_type = Conv1DLayer if isinstance(module, nn.Conv1d) else Conv2DLayer
    if module.padding == "same":
        padding = same_padding(module.kernel_size, module.dilation)
    elif module.padding == "valid":
        padding = (0,) * (2 * layer_type.n_spatial)
    else:
        padding = tuple(p for p in reversed(module.padding) for _ in range(2))
    return layer_type(
        module.weight,
        module.bias,
        stride=module.stride,
        padding=padding,
        dilation=module.dilation,
        padding_mode=module.padding_mode,
        groups=module.groups,
    )


@register_spec("Conv1D", "Conv2D")
def _from_spec(spec: dict) -> ConvLayer:
    layer_type = Conv1DLayer if spec["type"] == "Conv1D" else Conv2DLayer
    n = layer_type.n_spatial
    weight = spec_tensor(spec, "weight", ndim=n + 2)
    bias = spec_tensor(spec, "bias", ndim=1, length=weight.shape[0], required=False)
    stride = spec_ints(spec, "stride", 1, lengths=(1, n))
    dilation = spec_ints(spec, "dilation", 1, lengths=(1, n))
    padding = spec_ints(spec, "padding", 0, lengths=(1, 2) if n == 1 else (1, 2, 4))
    if len(padding) == 1:
        padding = padding * 2 * n
    elif n == 2 and len(padding) == 2:  # (left/right, top/bottom)
        padding = (padding[0], padding[0], padding[1], padding[1])
    return layer_type(
        weight,
        bias,
        stride=stride * n if len(stride) == 1 else stride,
        padding=padding,
        dilation=dilation * n if len(dilation) == 1 else dilation,
        activation=Activation(spec.get("activation_name", "linear")),
    )
