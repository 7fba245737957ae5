"""Batch normalisation in inference form."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribution.converter.registry import Call, register_module, register_spec
from attribution.converter.spec_values import spec_tensor
from attribution.layers.base import Layer


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
