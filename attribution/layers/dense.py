"""Fully connected layers."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from attribution.converter.registry import Call, register_module, register_spec
from attribution.converter.spec_values import spec_tensor
from attribution.layers.activation import Activation
from attribution.layers.base import Layer, LinearRules, weighted_deeplift
from attribution.rules import Part, weight_part


class DenseLayer(LinearRules, Layer):
    """``z = W x + b`` on inputs of shape ``(batch, in_features)``.

    Parameters
    ----------
    weight : Tensor of shape (out_features, in_features)
    bias : Tensor of shape (out_features,), default=None
        None means no bias (zeros).
    activation : Activation, default=None
        The fused activation; None means linear.
    """

    type_name = "Dense_Layer"
    fuses_activation = True

    def __init__(self, weight: Tensor, bias: Tensor | None = None, activation=None) -> None:
        super().__init__(activation)
        self._buffer("weight", weight)
        self._buffer("bias", bias)

    def preactivation(self, x: Tensor) -> Tensor:
        """``W x + b``."""
        return F.linear(x, self.weight, self.bias)

    # --- the LinearMap of the rules: W, W⁺ or W⁻ and the bias split -------------------------

    def apply(self, x: Tensor, part: Part) -> Tensor:
        """``W x`` (no bias) for the weight part."""
        return F.linear(x, weight_part(self.weight, part))

    def adjoint(self, v: Tensor, part: Part) -> Tensor:
        """``Wᵀ v`` for the weight part; ``v`` is ``(K, batch, out)``."""
        return v @ weight_part(self.weight, part)

    def bias_parts(self) -> tuple[Tensor | float, Tensor | float]:
        """``(b⁺, b⁻)``."""
        return (0.0, 0.0) if self.bias is None else (self.bias.clamp(min=0), self.bias.clamp(max=0))

    # --- rules ------------------------------------------------------------------------------

    def transpose(self, v: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """``Wᵀ v``."""
        return [v @ self.weight]

    def deeplift(self, values, reference, m_out, m_pre, rule_name, winner_takes_all, stab):
        """Rescale, or RevealCancel through the fused activation."""
        return weighted_deeplift(self, self, values, reference, m_out, m_pre, rule_name, stab)


@register_module(nn.Linear)
def _from_linear(call: Call) -> DenseLayer:
    if len(call.in_shape) != 1:
        raise ValueError(
            f"nn.Linear at '{call.name}' gets input of shape (*, "
            f"{', '.join(map(str, call.in_shape))}); only (batch, features) inputs are "
            "supported: flatten the input first."
        )
    return DenseLayer(call.module.weight, call.module.bias)


@register_spec("Dense")
def _from_spec(spec: dict) -> DenseLayer:
    weight = spec_tensor(spec, "weight", ndim=2)
    bias = spec_tensor(spec, "bias", ndim=1, length=weight.shape[0], required=False)
    return DenseLayer(weight, bias, Activation(spec.get("activation_name", "linear")))
