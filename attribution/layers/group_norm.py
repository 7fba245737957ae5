"""Layer and group normalisation: statistics of each instance, over groups of its values.

``y = γ ⊙ (x − μ) / √(σ² + ε) + β`` with ``μ`` and ``σ²`` the mean and variance of each
group: the last axes for ``LayerNorm`` (ConvNeXt's channels-last blocks, transformers),
groups of channels with their positions for ``GroupNorm``.

Rules:

- LRP treats the layer as the linear map it is with the statistics held fixed
  (``W = diag(γ) (I − 11ᵀ/M) / σ`` per group; the LN rule of the transformer-LRP
  literature, Ali et al. 2022): the ``simple`` / ``epsilon`` rule of linear layers. It
  conserves relevance where ``β = 0``. ``alpha_beta`` is not defined for it.
- DeepLift and DeepSHAP use exact multipliers: with ``u = x − μ`` and ``s = 1/σ``,
  ``Δ(u s)`` splits by the product rule, ``Δs`` is rescaled from ``Δσ²``, and
  ``Δσ² = mean((u + u_ref) Δu)``; the contributions sum exactly to the delta.
- The gradient family differentiates it as it is; Connection Weights, which multiplies
  weights only, has no meaning for it (an error says so).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribution.converter.registry import Call, register_function, register_module, takes_constants
from attribution.layers.base import Layer, LayerValues, sum_present
from attribution.rules import LRPRule


class GroupNormalisation(Layer):
    """Normalisation over groups of one instance's values, then ``γ ⊙ · + β``.

    Parameters
    ----------
    groups : int
        Groups per instance; each holds ``prod(instance shape) / groups`` consecutive
        values (the instance flattened, channels first).
    weight, bias : Tensor, default=None
        γ and β, broadcast over one instance (None: 1 and 0).
    eps : float
    """

    type_name = "GroupNorm_Layer"

    def __init__(self, groups: int, weight: Tensor | None, bias: Tensor | None, eps: float) -> None:
        super().__init__()
        self.groups, self.eps = groups, eps
        self._buffer("weight", weight)
        self._buffer("bias", bias)

    # --- the parts of the map ----------------------------------------------------------------

    def _grouped(self, t: Tensor, instance: tuple[int, ...]) -> Tensor:
        """``t`` ``(*lead, *instance)`` as ``(*lead, groups, values per group)``."""
        lead = t.shape[: t.ndim - len(instance)]
        return t.reshape(*lead, self.groups, math.prod(instance) // self.groups)

    def _statistics(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``u = x − μ``, ``σ² = mean(u²)`` and ``s = 1/√(σ² + ε)``, grouped."""
        grouped = self._grouped(x, tuple(x.shape[1:]))
        u = grouped - grouped.mean(-1, keepdim=True)
        variance = (u * u).mean(-1, keepdim=True)
        return u, variance, torch.rsqrt(variance + self.eps)

    def preactivation(self, x: Tensor) -> Tensor:
        """The normalised, scaled and shifted input."""
        u, _, s = self._statistics(x)
        y = (u * s).reshape(x.shape)
        if self.weight is not None:
            y = y * self.weight
        return y if self.bias is None else y + self.bias

    # --- rules --------------------------------------------------------------------------------

    def lrp(
        self, values: LayerValues, R: Tensor, rule: LRPRule, winner_takes_all: bool, stab: float
    ) -> list[Tensor]:
        """The rule of linear layers with the statistics held fixed (``simple``,
        ``epsilon``)."""
        if rule.name not in ("simple", "epsilon"):
            raise ValueError(
                f"LRP rule {rule.name!r} is not defined for {self.type_name} (a normalisation "
                "of each instance); it takes the simple or epsilon rule."
            )
        x, z = values.inputs[0], values.pre
        instance = tuple(x.shape[1:])
        epsilon = stab if rule.name == "simple" else rule.param
        ratio = R / (z + epsilon * torch.sign(z) + stab * (z == 0))
        if self.weight is not None:
            ratio = ratio * self.weight
        _, _, s = self._statistics(x)
        scaled = self._grouped(ratio, instance) * s
        adjoint = (scaled - scaled.mean(-1, keepdim=True)).reshape(ratio.shape)
        return [x * adjoint]

    def deeplift(self, values, reference, m_out, m_pre, rule_name, winner_takes_all, stab):
        """Exact multipliers: the product rule on ``u ⊙ s``, ``s`` rescaled from ``σ²``."""
        m = sum_present(self.through_activation(values, reference, m_out, stab), m_pre)
        instance = values.in_shapes[0]
        if self.weight is not None:
            m = m * self.weight
        u, variance, s = self._statistics(values.inputs[0])
        u_ref, variance_ref, s_ref = self._statistics(reference.inputs[0])
        m = self._grouped(m, instance)
        m_u = m * (s + s_ref) / 2
        m_s = (m * (u + u_ref) / 2).sum(-1, keepdim=True)
        delta_v = variance - variance_ref
        near = delta_v.abs() <= stab
        slope = (s - s_ref) / torch.where(near, torch.ones_like(delta_v), delta_v)
        midpoint = (variance + variance_ref) / 2
        slope = torch.where(near, -0.5 * torch.rsqrt(midpoint + self.eps) ** 3, slope)
        m_u = m_u + m_s * slope * (u + u_ref) / u.shape[-1]
        m_x = m_u - m_u.mean(-1, keepdim=True)
        return [m_x.reshape(*m_x.shape[:-2], *instance)]

    def connection_weights(self, R: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """Refused: a normalisation of each instance has no connection weights."""
        raise ValueError(
            f"ConnectionWeights multiplies the weights along each path, which has no meaning "
            f"through {self.type_name} (a normalisation by each instance's own statistics); "
            "use LRP, DeepLift or the gradient methods for this model."
        )


class LayerNormLayer(GroupNormalisation):
    """Layer normalisation over the last axes of one instance (``nn.LayerNorm``)."""

    type_name = "LayerNorm_Layer"


# --- torch modules and functions -------------------------------------------------------------


def _layer_norm(call: Call, normalized_shape, weight, bias, eps: float) -> LayerNormLayer:
    normalized = tuple(
        [normalized_shape] if isinstance(normalized_shape, int) else normalized_shape
    )
    instance = call.in_shape
    if instance[len(instance) - len(normalized) :] != normalized:
        raise ValueError(
            f"'{call.name}' normalises over {normalized}, which are not the last axes of "
            f"its input (batch, {', '.join(map(str, instance))})."
        )
    groups = math.prod(instance) // math.prod(normalized)
    return LayerNormLayer(groups, weight, bias, eps)


def _group_norm(call: Call, num_groups: int, weight, bias, eps: float) -> GroupNormalisation:
    channels = call.in_shape[0]
    spatial = (1,) * (len(call.in_shape) - 1)
    shaped = [None if t is None else t.detach().reshape(channels, *spatial) for t in (weight, bias)]
    return GroupNormalisation(num_groups, *shaped, eps)


@register_module(nn.LayerNorm)
def _layer_norm_module(call: Call) -> LayerNormLayer:
    module = call.module
    return _layer_norm(call, module.normalized_shape, module.weight, module.bias, module.eps)


@register_function(F.layer_norm)
@takes_constants
def _layer_norm_function(call: Call) -> LayerNormLayer:
    kwargs = call.kwargs
    return _layer_norm(call, kwargs["normalized_shape"], kwargs.get("weight"),
                       kwargs.get("bias"), kwargs.get("eps", 1e-5))  # fmt: skip


@register_module(nn.GroupNorm)
def _group_norm_module(call: Call) -> GroupNormalisation:
    module = call.module
    return _group_norm(call, module.num_groups, module.weight, module.bias, module.eps)


@register_function(F.group_norm)
@takes_constants
def _group_norm_function(call: Call) -> GroupNormalisation:
    kwargs = call.kwargs
    return _group_norm(call, kwargs["num_groups"], kwargs.get("weight"), kwargs.get("bias"),
                       kwargs.get("eps", 1e-5))  # fmt: skip
