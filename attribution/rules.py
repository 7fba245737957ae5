"""The rules of the rule-based methods: LRP formulas, DeepLift multipliers, rule choice.

The formulas follow innsight (``R/InterpretingLayer.R``, ``R/Layer_*.R``; see the notes in
the project's reference folder). Relevances and multipliers carry the explained output
nodes first: tensors ``(K, batch, *shape)``, against layer values ``(batch, *shape)``.

Linear layers take part through a :class:`LinearMap`: ``W x`` and ``Wᵀ v`` for the whole
weight, its positive part ``W⁺`` or its negative part ``W⁻``, plus the bias split.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

Part = Literal["all", "pos", "neg"]

LRP_RULES = ("simple", "epsilon", "alpha_beta", "pass", "equal")
"""LRP rule names; ``pass`` only for batch normalisation (the layer is skipped), ``equal``
only for sums (innsight's equal split, see :func:`lrp_rules_for`)."""

_ONLY_FOR = {"pass": ("BatchNorm_Layer",), "equal": ("Add_Layer", "GlobalAvgPool_Layer")}
"""Rules that only some layer types take."""

LRP_DEFAULT_PARAMS: dict[str, float | None] = {
    "simple": None, "epsilon": 0.01, "alpha_beta": 0.5, "pass": None, "equal": None,
}  # fmt: skip
"""Defaults of ``rule_param``: ε for ``epsilon`` (innsight's documented 0.01; its code falls
back to 0.001) and α for ``alpha_beta``."""

RULE_LAYER_TYPES = (
    "Dense_Layer", "Conv1D_Layer", "Conv2D_Layer", "BatchNorm_Layer", "AvgPool1D_Layer",
    "AvgPool2D_Layer", "MaxPool1D_Layer", "MaxPool2D_Layer", "Add_Layer",
    "GlobalAvgPool_Layer",
)  # fmt: skip
"""innsight's layer-type names that per-layer-type rule dictionaries may use as keys."""

DEEPLIFT_RULES = ("rescale", "reveal_cancel")


def lrp_rules_for(layer_type: str) -> tuple[str, ...]:
    """The LRP rules a layer type takes: every rule but those only another type takes."""
    return tuple(r for r in LRP_RULES if layer_type in _ONLY_FOR.get(r, (layer_type,)))


def stabilizer(dtype: torch.dtype) -> float:
    """innsight's numerical stabiliser: 1e-6 in float, 1e-15 in double precision."""
    return 1e-15 if dtype == torch.float64 else 1e-6


@dataclass(frozen=True)
class LRPRule:
    """One LRP rule with its parameter (ε or α; None for ``simple`` and ``pass``)."""

    name: str
    param: float | None = None


_WHAT = {
    "pass": "skips a layer whose input and output have the same size",
    "equal": "splits relevance evenly over a sum's inputs or a global average's "
    "positions, as innsight does",
}


def resolve_lrp_rules(rule_name: Any, rule_param: Any) -> dict[str, LRPRule]:
    """The rule for each of :data:`RULE_LAYER_TYPES` (other layers have no rule choice).

    ``rule_name`` and ``rule_param`` are a value for all layer types or dicts keyed by
    layer-type name; types missing from a dict get ``"simple"`` / the rule's default.
    """
    if isinstance(rule_name, str) and rule_name in _ONLY_FOR:
        only = _ONLY_FOR[rule_name]
        raise ValueError(
            f"rule_name {rule_name!r} {_WHAT[rule_name]}, so it is only for "
            f"{' and '.join(only)}: use rule_name={{{only[0]!r}: {rule_name!r}}}."
        )
    names = _per_type(rule_name, "rule_name", "simple")
    params = _per_type(rule_param, "rule_param", None)
    rules = {}
    for layer_type in RULE_LAYER_TYPES:
        name = names[layer_type]
        if not isinstance(name, str) or name not in LRP_RULES:
            raise ValueError(
                f"rule_name {name!r} is not an LRP rule; valid rules: {', '.join(LRP_RULES)} "
                "('pass' for BatchNorm_Layer only, 'equal' for Add_Layer only)."
            )
        if name not in lrp_rules_for(layer_type):
            only, what = " and ".join(_ONLY_FOR[name]), _WHAT[name]
            raise ValueError(
                f"rule_name {name!r} is only for {only} ({what}); got it for {layer_type}, "
                f"whose valid rules are {', '.join(lrp_rules_for(layer_type))}."
            )
        param = params[layer_type]
        if param is None:
            param = LRP_DEFAULT_PARAMS[name]
        elif isinstance(param, bool) or not isinstance(param, numbers.Real):
            raise TypeError(
                f"rule_param must be a number (ε for 'epsilon', α for 'alpha_beta') or None "
                f"for the rule's default; got {param!r} for {layer_type}."
            )
        rules[layer_type] = LRPRule(name, None if param is None else float(param))
    return rules


def _per_type(value: Any, argument: str, default: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {layer_type: default if value is None else value for layer_type in RULE_LAYER_TYPES}
    unknown = sorted(set(value) - set(RULE_LAYER_TYPES))
    if unknown:
        raise ValueError(
            f"{argument} has keys {', '.join(map(repr, unknown))}, which are not layer types "
            f"with rules; valid keys: {', '.join(RULE_LAYER_TYPES)}."
        )
    return {layer_type: value.get(layer_type, default) for layer_type in RULE_LAYER_TYPES}


class LinearMap(Protocol):
    """What a linear layer offers the rules: its weight in parts, and its bias in parts."""

    def apply(self, x: Tensor, part: Part) -> Tensor | None:
        """``W x`` without bias, for the weight part (None where that part is zero)."""

    def adjoint(self, v: Tensor, part: Part) -> Tensor | None:
        """``Wᵀ v`` for ``v`` of shape ``(K, batch, *out)`` (None where the part is zero)."""

    def bias_parts(self) -> tuple[Tensor | float, Tensor | float]:
        """``(b⁺, b⁻)`` shaped to broadcast against the output (0 without bias)."""


def weight_part(weight: Tensor, part: Part) -> Tensor:
    """``W``, ``W⁺`` or ``W⁻``."""
    if part == "all":
        return weight
    return weight.clamp(min=0) if part == "pos" else weight.clamp(max=0)


def _add(*terms: Tensor | None) -> Tensor | float:
    present = [t for t in terms if t is not None]
    return sum(present[1:], present[0]) if present else 0.0


def lrp_linear(
    layer: LinearMap, x: Tensor, z: Tensor, R: Tensor, rule: LRPRule, stab: float
) -> Tensor:
    """LRP through ``z = W x + b`` (dense, convolution, average pooling).

    ``simple``/``epsilon``: ``R_in = x ⊙ Wᵀ(R / z̃)`` with ``z̃ = z + ε·sign(z)`` (ε the
    stabiliser for ``simple``), plus the stabiliser where ``z = 0``.
    ``alpha_beta``: ``R_in = α R⁺ + (1 − α) R⁻`` with the bias split by sign into
    ``z⁺ = W⁺x⁺ + W⁻x⁻ + b⁺`` and ``z⁻ = W⁻x⁺ + W⁺x⁻ + b⁻`` (innsight's variant; with
    β = α − 1 it is the usual αβ rule).
    """
    if rule.name in ("simple", "epsilon"):
        epsilon = stab if rule.name == "simple" else rule.param
        denominator = z + epsilon * torch.sign(z) + stab * (z == 0)
        return x * layer.adjoint(R / denominator, "all")
    if rule.name == "alpha_beta":
        alpha = rule.param
        x_pos, x_neg = x.clamp(min=0), x.clamp(max=0)
        b_pos, b_neg = layer.bias_parts()
        z_pos = _add(layer.apply(x_pos, "pos"), layer.apply(x_neg, "neg")) + b_pos
        ratio = R / (z_pos + stab * (z_pos == 0) + stab * torch.sign(z_pos))
        relevance = alpha * _add(
            _times(x_pos, layer.adjoint(ratio, "pos")),
            _times(x_neg, layer.adjoint(ratio, "neg")),
        )
        if alpha != 1:
            z_neg = _add(layer.apply(x_pos, "neg"), layer.apply(x_neg, "pos")) + b_neg
            ratio = R / (z_neg - stab * (z_neg == 0) + stab * torch.sign(z_neg))
            relevance = relevance + (1 - alpha) * _add(
                _times(x_neg, layer.adjoint(ratio, "pos")),
                _times(x_pos, layer.adjoint(ratio, "neg")))  # fmt: skip
        return relevance
    raise ValueError(
        f"rule_name '{rule.name}' only works for layers whose input and output have the same "
        "size (BatchNorm_Layer)."
    )


def _times(x: Tensor, v: Tensor | None) -> Tensor | None:
    return None if v is None else x * v


def rescale(
    activation, z: Tensor, z_ref: Tensor, out: Tensor, out_ref: Tensor, m: Tensor, stab: float
) -> Tensor:
    """DeepLift's rescale rule through an activation: ``m · Δy/Δz``.

    Where ``|Δz| ≤`` the stabiliser the gradient at the midpoint ``f'((z + z_ref)/2)`` is
    used instead, as innsight does.
    """
    delta_z = z - z_ref
    ratio = (out - out_ref) / (delta_z + stab * (delta_z == 0))
    near = delta_z.abs() <= stab
    if near.any():
        ratio = torch.where(near, activation.derivative((z + z_ref) / 2), ratio)
    return m * ratio


def reveal_cancel(
    layer: LinearMap,
    activation,
    x: Tensor,
    x_ref: Tensor,
    z: Tensor,
    z_ref: Tensor,
    out: Tensor,
    m: Tensor,
    stab: float,
) -> tuple[Tensor, Tensor]:
    """DeepLift's RevealCancel rule through ``y = f(W x + b)``: the multipliers ``m⁺, m⁻``.

    ``Δz⁺ = W⁺Δx⁺ + W⁻Δx⁻`` and ``Δz⁻ = W⁻Δx⁺ + W⁺Δx⁻``; the output change is split into
    Shapley-like halves ``Δy⁺``/``Δy⁻``, giving ``m⁺ = m Δy⁺/Δz⁺`` and ``m⁻ = m Δy⁻/Δz⁻``
    (then :func:`sign_routed` takes them to the inputs). Where ``Δz⁺`` or ``Δz⁻`` is zero,
    the other part takes all of ``Δy``, so that softmax keeps summation-to-delta.
    """
    delta_x = x - x_ref
    dx_pos, dx_neg = delta_x.clamp(min=0), delta_x.clamp(max=0)
    dz_pos = _add(layer.apply(dx_pos, "pos"), layer.apply(dx_neg, "neg"))
    dz_neg = _add(layer.apply(dx_pos, "neg"), layer.apply(dx_neg, "pos"))
    f_ref = activation(z_ref)
    dy_pos = 0.5 * (activation(z_ref + dz_pos) - f_ref) + 0.5 * (out - activation(z_ref + dz_neg))
    dy_neg = 0.5 * (activation(z_ref + dz_neg) - f_ref) + 0.5 * (out - activation(z_ref + dz_pos))
    # Where one part of Δz is zero the other carries all of Δy: for element-wise f that
    # part of Δy is zero anyway; for softmax it keeps summation-to-delta.
    pos_zero, neg_zero = dz_pos == 0, dz_neg == 0
    total = dy_pos + dy_neg
    dy_pos = torch.where(pos_zero, 0.0, torch.where(neg_zero, total, dy_pos))
    dy_neg = torch.where(neg_zero, 0.0, torch.where(pos_zero, total, dy_neg))
    m_pos = m * dy_pos / (dz_pos + stab * pos_zero)
    m_neg = m * dy_neg / (dz_neg - stab * neg_zero)
    return m_pos, m_neg


def sign_routed(layer: LinearMap, delta_x: Tensor, m_pos: Tensor, m_neg: Tensor) -> Tensor:
    """RevealCancel's linear part: ``m⁺``/``m⁻`` reach inputs by the sign of ``Δx``."""
    positive = _add(layer.adjoint(m_pos, "pos"), layer.adjoint(m_neg, "neg"))
    negative = _add(layer.adjoint(m_pos, "neg"), layer.adjoint(m_neg, "pos"))
    zero = layer.adjoint((m_pos + m_neg) / 2, "all")
    return torch.where(delta_x > 0, positive, torch.where(delta_x < 0, negative, zero))


def lrp_scaling(
    f: Tensor, c: Tensor, x: Tensor, y: Tensor, R: Tensor, rule: LRPRule, stab: float
) -> Tensor:
    """LRP through the element-wise ``y = f x + c`` of batch normalisation.

    ``simple``: ``R_in = f x / y ⊙ R``; ``epsilon``: ``y + ε·sign(y)`` as denominator;
    ``alpha_beta``: ``α (fx)⁺ / ((fx)⁺ + c⁺) + (1 − α)(fx)⁻ / ((fx)⁻ + c⁻)``; ``pass``:
    ``R_in = R``. The stabiliser is added where a denominator is 0.
    """
    if rule.name == "pass":
        return R
    fx = f * x
    if rule.name == "simple":
        return fx / (y + stab * (y == 0)) * R
    if rule.name == "epsilon":
        return fx / (y + rule.param * torch.sign(y) + stab * (y == 0)) * R
    alpha = rule.param
    pos, neg = fx.clamp(min=0), fx.clamp(max=0)
    ratio = alpha * pos / (pos + stab * (pos == 0) + c.clamp(min=0)) + (1 - alpha) * neg / (
        neg - stab * (neg == 0) + c.clamp(max=0)
    )
    return ratio * R
