"""Layers with several inputs: addition (residual connections), element-wise products
(gates) and concatenation."""

from __future__ import annotations

import math
import operator

import torch
from torch import Tensor

from attribution.converter.registry import Call, register_function, register_spec
from attribution.converter.spec_values import spec_axis
from attribution.layers._axes import batched_dim, instance_dim
from attribution.layers.base import Layer, LayerValues, sum_present
from attribution.rules import LRPRule, lrp_linear


class AddLayer(Layer):
    """The element-wise sum of its inputs (all of the same shape)."""

    type_name = "Add_Layer"

    def preactivation(self, *inputs: Tensor) -> Tensor:
        """The sum of the inputs."""
        return torch.stack(inputs).sum(0) if len(inputs) > 2 else inputs[0] + inputs[1]

    def transpose(self, v: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """A copy for each input."""
        return [v] * len(in_shapes)

    def lrp(
        self, values: LayerValues, R: Tensor, rule: LRPRule, winner_takes_all: bool, stab: float
    ) -> list[Tensor]:
        """Each input's share of the sum, by the rule of a linear layer whose weights are 1
        (:func:`~attribution.rules.lrp_linear`: ``R_i = x_i / z̃ · R`` for ``simple`` and
        ``epsilon``, the αβ split by sign for ``alpha_beta``), as Zennit's residual
        canonizer does; ``equal`` gives each of the ``n`` inputs ``R / n``, as innsight.

        The proportional rule is the default because the equal split is not a relevance
        rule of the sum: a branch whose output is near zero gets half the relevance, and
        the layers before it divide that by its small output; on a bias-free ResNet-50
        relevances reached 1e27 for outputs of about 126.
        """
        if rule.name == "equal":
            return [R / len(values.inputs)] * len(values.inputs)
        stacked = torch.stack(values.inputs, dim=1)
        relevance = lrp_linear(_SumMap(), stacked, values.pre, R, rule, stab)
        return list(relevance.unbind(dim=2))

    def connection_weights(self, R: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """An equal share for each input, as innsight splits it."""
        return [R / len(in_shapes)] * len(in_shapes)


class ProductLayer(Layer):
    """The element-wise product ``a ⊙ b`` of two tensors the model computes (a gate times a
    signal: squeeze-and-excitation, GLU), broadcast as torch does.

    Rules:

    - LRP: the signal takes all relevance and the gate none (Arras et al. 2017, "signal
      take all", as the transformer-LRP literature treats gates); the signal is the input
      with more values (the gate of squeeze-and-excitation is ``(C, 1, 1)``). Where both
      have the same shape, relevance is split equally (the uniform rule of AttnLRP,
      Achtibat et al. 2024). Relevance is conserved either way.
    - DeepLift and DeepSHAP: the product rule ``m_a = m · (b + b_ref) / 2`` and
      ``m_b = m · (a + a_ref) / 2`` (the Shapley values of the two factors), whose
      contributions sum exactly to ``a b − a_ref b_ref``.
    - The gradient family differentiates it as it is; Connection Weights, which multiplies
      weights only, has no meaning for it (an error says so).
    """

    type_name = "Multiply_Layer"

    def preactivation(self, a: Tensor, b: Tensor) -> Tensor:
        """``a ⊙ b``."""
        return a * b

    def lrp(
        self, values: LayerValues, R: Tensor, rule: LRPRule, winner_takes_all: bool, stab: float
    ) -> list[Tensor]:
        """All relevance to the signal (the larger input), or half to each."""
        sizes = [math.prod(shape) for shape in values.in_shapes]
        if sizes[0] == sizes[1]:
            return [R / 2, R / 2]
        signal = sizes.index(max(sizes))
        shares = [R, R.new_zeros(*R.shape[:2], *values.in_shapes[1 - signal])]
        return shares if signal == 0 else shares[::-1]

    def deeplift(self, values, reference, m_out, m_pre, rule_name, winner_takes_all, stab):
        """The product rule: each factor's multiplier is the other's mean of x and x_ref."""
        m = sum_present(m_out, m_pre)
        (a, b), (a_ref, b_ref) = values.inputs, reference.inputs
        return [
            _reduced(m * (b + b_ref) / 2, values.in_shapes[0]),
            _reduced(m * (a + a_ref) / 2, values.in_shapes[1]),
        ]

    def connection_weights(self, R: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """Refused: a product of two computed tensors has no connection weights."""
        raise ValueError(
            "ConnectionWeights multiplies the weights along each path, which has no meaning "
            "through a product of two tensors the model computes (a gate); use LRP, DeepLift "
            "or the gradient methods for this model."
        )


def _reduced(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``t`` ``(K, batch, *out)`` summed over the axes an input of ``shape`` was broadcast
    along, to ``(K, batch, *shape)``."""
    extra = t.ndim - 2 - len(shape)
    if extra:
        t = t.sum(tuple(range(2, 2 + extra)))
    axes = tuple(2 + i for i, n in enumerate(shape) if n == 1 and t.shape[2 + i] != 1)
    return t.sum(axes, keepdim=True) if axes else t


class _SumMap:
    """The sum over axis 1 of stacked inputs ``(batch, n, *shape)``, as a linear map with
    weights 1 (no negative part, no bias), for the rules of linear layers."""

    def apply(self, x: Tensor, part: str) -> Tensor | None:
        return None if part == "neg" else x.sum(1)

    def adjoint(self, v: Tensor, part: str) -> Tensor | None:
        if part == "neg":
            return None
        return v.unsqueeze(2)  # (K, batch, 1, *shape): broadcast over the n inputs

    def bias_parts(self) -> tuple[float, float]:
        return 0.0, 0.0


class ConcatenateLayer(Layer):
    """Concatenation of its inputs along ``axis`` (an axis of one instance, 0 = channels)."""

    type_name = "Concatenate_Layer"

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def preactivation(self, *inputs: Tensor) -> Tensor:
        """The concatenated inputs."""
        return torch.cat(inputs, dim=batched_dim(self.axis))

    def transpose(self, v: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """The parts of each input."""
        axis = self.axis if self.axis < 0 else self.axis - len(in_shapes[0])
        sizes = [shape[axis] for shape in in_shapes]
        return list(torch.split(v, sizes, dim=axis))


@register_function(operator.add, torch.add, "method:add")
def _add(call: Call) -> AddLayer:
    if len(call.in_shapes) != 2:
        raise ValueError(
            f"'{call.name}' adds a constant to a tensor; only sums of two tensors (e.g. "
            "residual connections) are supported."
        )
    if call.kwargs.get("alpha", 1) != 1:
        raise ValueError(f"'{call.name}' uses alpha={call.kwargs['alpha']}; only alpha=1.")
    if call.in_shapes[0] != call.in_shapes[1]:
        raise ValueError(
            f"'{call.name}' adds tensors of shapes {call.in_shapes[0]} and {call.in_shapes[1]} "
            "by broadcasting; only tensors of equal shape can be added."
        )
    return AddLayer()


@register_function(torch.cat, torch.concat, torch.concatenate)
def _concatenate(call: Call) -> ConcatenateLayer:
    dim = call.kwargs.get("dim", call.kwargs.get("axis", 0))
    return ConcatenateLayer(instance_dim(dim, len(call.in_shape) + 1))


@register_spec("Add")
def _add_from_spec(spec: dict) -> AddLayer:
    return AddLayer()


@register_spec("Concatenate")
def _concatenate_from_spec(spec: dict) -> ConcatenateLayer:
    return ConcatenateLayer(spec_axis(spec, "axis", -1))
