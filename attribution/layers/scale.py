"""Multiplication and division by constants: scalars and the model's own tensors (layer
scale ``x * gamma``, a fixed normalisation ``x / 255``); products of two computed tensors
are :class:`~attribution.layers.merge.ProductLayer`."""

from __future__ import annotations

import numbers
import operator

import torch
from torch import Tensor

from attribution.converter.registry import Call, register_function, takes_constants
from attribution.layers.base import Layer, LinearRules
from attribution.layers.merge import ProductLayer
from attribution.rules import Part, weight_part


class ScaleLayer(LinearRules, Layer):
    """``x ⊙ s`` for a constant ``s`` that broadcasts over one instance (a scalar, or a
    tensor such as a per-channel layer scale of shape ``(C, 1, 1)``).

    A linear map with one weight per value: LRP applies the rule of linear layers to it
    (``simple`` passes each value's relevance on unchanged, as ``z_i = s_i x_i``),
    DeepLift and the gradients multiply by ``s``.
    """

    type_name = "Scale_Layer"

    def __init__(self, scale: Tensor) -> None:
        super().__init__()
        self._buffer("scale", scale)

    def preactivation(self, x: Tensor) -> Tensor:
        """``x ⊙ s``."""
        return x * self.scale

    def transpose(self, v: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """``s ⊙ v``."""
        return [v * self.scale]

    def apply(self, x: Tensor, part: Part) -> Tensor:
        """``x ⊙ s`` for the part ``s``, ``s⁺`` or ``s⁻`` (the rules' linear map)."""
        return x * weight_part(self.scale, part)

    def adjoint(self, v: Tensor, part: Part) -> Tensor:
        """``v ⊙`` the part of ``s``."""
        return v * weight_part(self.scale, part)

    def bias_parts(self) -> tuple[float, float]:
        """No bias."""
        return 0.0, 0.0


@register_function(operator.mul, torch.mul, torch.multiply, "method:mul", "method:multiply")
@takes_constants
def _multiply(call: Call) -> ScaleLayer | ProductLayer:
    if len(call.in_shapes) == 2 and not call.constants:
        return ProductLayer()
    return ScaleLayer(_constant_factor(call, divide=False))


@register_function(operator.truediv, torch.div, torch.true_divide, "method:div")
@takes_constants
def _divide(call: Call) -> ScaleLayer:
    return ScaleLayer(_constant_factor(call, divide=True))


def _constant_factor(call: Call, divide: bool) -> Tensor:
    """The constant a layer's output is multiplied by (``1 / c`` when divided by ``c``)."""
    if len(call.in_shapes) != 1:
        raise ValueError(
            f"'{call.name}' divides by a tensor the model computes, or multiplies three or "
            "more; only division by constants and products of two tensors are supported."
        )
    if call.kwargs.get("rounding_mode") is not None:
        raise ValueError(f"'{call.name}' divides with rounding: unsupported.")
    operands = [call.kwargs[k] for k in ("input", "other") if k in call.kwargs] or list(
        call.kwargs.get("args", ())
    )
    constants = [o for o in operands if isinstance(o, numbers.Number) or _is_constant(o, call)]
    layer_first = not constants or constants[0] is not operands[0]
    if divide and not layer_first:
        raise ValueError(
            f"'{call.name}' divides a constant by a tensor the model computes; only "
            "division by constants is supported."
        )
    factor = torch.ones((), dtype=torch.float64)
    for constant in constants:
        factor = factor * torch.as_tensor(constant, dtype=torch.float64).detach()
    if divide:
        factor = 1 / factor
    instance = call.in_shape
    if factor.ndim == len(instance) + 1 and factor.shape[0] == 1:
        factor = factor[0]  # a constant with a batch axis of 1
    try:
        fits = torch.broadcast_shapes(factor.shape, instance) == instance
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"'{call.name}' scales an instance of shape {instance} by a constant of shape "
            f"{tuple(factor.shape)}, which does not broadcast over it."
        )
    return factor


def _is_constant(operand: object, call: Call) -> bool:
    return isinstance(operand, Tensor) and any(operand is c for c in call.constants)
