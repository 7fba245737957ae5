"""Batch normalisation in inference form."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribution.converter.registry import Call, register_module, register_spec
from attribution.converter.spec_values import spec_tensor
from attribution.layers.base import Layer, LayerValues
from attribution.rules import LRPRule, lrp_scaling


class BatchNormLayer(Layer):
    """``y = γ (x − μ) / √(σ² + ε) + β`` per channel (axis 1), with running statistics.

    Parameters
    ----------
    running_mean, running_var : Tensor of shape (channels,)
    weight, bias : Tensor of shape (channels,), default=None
        γ and β; None means 1 and 0.
    eps : float, default=1e-5
    """

    type_name = "BatchNorm_Layer"

    def __init__(
        self,
        running_mean: Tensor,
        running_var: Tensor,
        weight: Tensor | None = None,
        bias: Tensor | None = None,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self._buffer("running_mean", running_mean)
        self._buffer("running_var", running_var)
        self._buffer("weight", weight)
        self._buffer("bias", bias)
        self.eps = float(eps)

    def preactivation(self, x: Tensor) -> Tensor:
        """The normalised input."""
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )

    def scale_shift(self, n_spatial: int) -> tuple[Tensor, Tensor]:
        """``(f, c)`` of ``y = f x + c`` per channel, shaped to broadcast over space."""
        scale = torch.rsqrt(self.running_var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        shift = -self.running_mean * scale
        if self.bias is not None:
            shift = shift + self.bias
        shape = (-1, *([1] * n_spatial))
        return scale.reshape(shape), shift.reshape(shape)

    def transpose(self, v: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """``f v``."""
        return [v * self.scale_shift(len(in_shapes[0]) - 1)[0]]

    def lrp(
        self, values: LayerValues, R: Tensor, rule: LRPRule, winner_takes_all: bool, stab: float
    ) -> list[Tensor]:
        """The rule of :func:`~attribution.rules.lrp_scaling` (``pass`` skips the layer)."""
        scale, shift = self.scale_shift(len(values.in_shapes[0]) - 1)
        return [lrp_scaling(scale, shift, values.inputs[0], values.pre, R, rule, stab)]


@register_module(nn.BatchNorm1d, nn.BatchNorm2d)
def _from_torch(call: Call) -> BatchNormLayer:
    module = call.module
    if module.running_mean is None:
        raise ValueError(
            f"{type(module).__name__} at '{call.name}' has no running statistics "
            "(track_running_stats=False), so it normalises with batch statistics, which "
            "cannot be explained per instance: use track_running_stats=True."
        )
    return BatchNormLayer(
        module.running_mean, module.running_var, module.weight, module.bias, module.eps
    )


@register_spec("BatchNorm")
def _from_spec(spec: dict) -> BatchNormLayer:
    mean = spec_tensor(spec, "run_mean", ndim=1)
    channels = int(spec.get("num_features", mean.shape[0]))
    var = spec_tensor(spec, "run_var", ndim=1, length=channels)
    gamma = spec_tensor(spec, "gamma", ndim=1, length=channels, required=False)
    beta = spec_tensor(spec, "beta", ndim=1, length=channels, required=False)
    if mean.shape[0] != channels:
        raise ValueError(f"'run_mean' must have {channels} entries; got {mean.shape[0]}.")
    return BatchNormLayer(
        mean, var, gamma, torch.zeros(channels) if beta is None else beta, spec.get("eps", 1e-5)
    )
