"""The layer interface of the converted graph, and the rule methods' defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

from attribution.rules import LinearMap, LRPRule, lrp_linear, rescale, reveal_cancel, sign_routed

if TYPE_CHECKING:
    from attribution.layers.activation import Activation


@dataclass
class LayerValues:
    """One layer's tensors in a forward pass, batch first: inputs, pre-activation, output."""

    inputs: list[Tensor]
    pre: Tensor
    out: Tensor

    @property
    def in_shapes(self) -> list[tuple[int, ...]]:
        """The input shapes of one instance."""
        return [tuple(x.shape[1:]) for x in self.inputs]


class Layer(nn.Module):
    """A node of the converted graph: a pre-activation map followed by an activation.

    Subclasses implement :meth:`preactivation`. Only dense and convolutional layers carry a
    fused activation (as in innsight); a standalone activation is an
    :class:`~attribution.layers.activation.ActivationLayer`, whose pre-activation is its
    input. Weights are float64 buffers copied from the source: ``layer.to(torch.float32)``
    casts them, and they never require gradients.

    The rule-based methods call :meth:`lrp`, :meth:`deeplift` and
    :meth:`connection_weights` on relevances/multipliers of shape ``(K, batch, *out)``, the
    ``K`` explained output nodes first. The defaults suit layers whose pre-activation is
    linear and mixes nothing (reshaping, padding, concatenation, global average pooling):
    they pass the signal back through :meth:`transpose`.
    """

    type_name: ClassVar[str]
    """innsight's class name for this layer type (``"Dense_Layer"``...), used in summaries
    and as the key of per-layer-type rule dictionaries."""

    fuses_activation: ClassVar[bool] = False
    """Whether a following activation is fused into this layer (dense and conv layers)."""

    def __init__(self, activation: Activation | None = None) -> None:
        super().__init__()
        self.activation = None if activation is None or activation.is_linear else activation

    def preactivation(self, *inputs: Tensor) -> Tensor:
        """The layer's output before its activation, for batched inputs."""
        raise NotImplementedError

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(pre-activation, activated output)``."""
        z = self.preactivation(*inputs)
        return z, z if self.activation is None else self.activation(z)

    def transpose(self, v: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """``Wᵀ v`` of the affine pre-activation map, one tensor per input.

        ``v`` has shape ``(K, batch, *out)``. The default differentiates the map (exact
        for any affine map); layers override it with a direct formula where one exists.
        """
        k, batch = v.shape[:2]
        with torch.enable_grad():
            points = [
                torch.zeros(k * batch, *shape, dtype=v.dtype, device=v.device, requires_grad=True)
                for shape in in_shapes
            ]
            z = self.preactivation(*points)
            grads = torch.autograd.grad(z, points, v.reshape(k * batch, *v.shape[2:]))
        return [g.reshape(k, batch, *g.shape[1:]) for g in grads]

    def lrp(
        self, values: LayerValues, R: Tensor, rule: LRPRule, winner_takes_all: bool, stab: float
    ) -> list[Tensor]:
        """LRP relevance of each input; the default redistributes by :meth:`transpose`."""
        return self.transpose(R, values.in_shapes)

    def deeplift(
        self,
        values: LayerValues,
        reference: LayerValues,
        m_out: Tensor | None,
        m_pre: Tensor | None,
        rule_name: str,
        winner_takes_all: bool,
        stab: float,
    ) -> list[Tensor]:
        """DeepLift multipliers of each input.

        ``m_out`` are multipliers of the activated output (from the layers this one feeds),
        ``m_pre`` of the pre-activation (the start at an output layer whose activation is
        ignored); either may be None. The default rescales ``m_out`` through the activation
        and passes the sum back by :meth:`transpose`.
        """
        m = sum_present(self.through_activation(values, reference, m_out, stab), m_pre)
        return self.transpose(m, values.in_shapes)

    def through_activation(
        self, values: LayerValues, reference: LayerValues, m_out: Tensor | None, stab: float
    ) -> Tensor | None:
        """Output multipliers taken to the pre-activation by the rescale rule."""
        if m_out is None or self.activation is None:
            return m_out
        return rescale(
            self.activation, values.pre, reference.pre, values.out, reference.out, m_out, stab
        )

    def connection_weights(self, R: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """The Connection Weights signal of each input (weights only, no activations)."""
        return self.transpose(R, in_shapes)

    def _buffer(self, name: str, value: object) -> None:
        """Store a detached float64 copy of ``value`` (decoupled from the source model)."""
        copy = None if value is None else torch.as_tensor(value).detach().clone().double()
        self.register_buffer(name, copy)


def sum_present(a: Tensor | None, b: Tensor | None) -> Tensor:
    """The sum of the present tensors (at least one is)."""
    if a is None:
        return b
    return a if b is None else a + b


def weighted_deeplift(
    layer: Layer,
    linear_map: LinearMap,
    values: LayerValues,
    reference: LayerValues,
    m_out: Tensor | None,
    m_pre: Tensor | None,
    rule_name: str,
    stab: float,
) -> list[Tensor]:
    """DeepLift through a dense or convolutional layer with a fused activation.

    ``rescale``: the default of :meth:`Layer.deeplift`. ``reveal_cancel``: ``m⁺``/``m⁻``
    from :func:`~attribution.rules.reveal_cancel`, routed to the inputs by the sign of
    ``Δx`` (without an activation to pass, both rules reduce to ``Wᵀ m``).
    """
    if rule_name == "rescale" or layer.activation is None or m_out is None:
        m = sum_present(layer.through_activation(values, reference, m_out, stab), m_pre)
        return layer.transpose(m, values.in_shapes)
    x, x_ref = values.inputs[0], reference.inputs[0]
    m_pos, m_neg = reveal_cancel(
        linear_map, layer.activation, x, x_ref, values.pre, reference.pre, values.out, m_out, stab
    )
    if m_pre is not None:
        m_pos, m_neg = m_pos + m_pre, m_neg + m_pre
    return [sign_routed(linear_map, x - x_ref, m_pos, m_neg)]


class LinearRules:
    """LRP by the rules of linear layers (:func:`~attribution.rules.lrp_linear`), for the
    layers whose pre-activation is a linear map: dense, convolution, average and adaptive
    pooling, means, scaling. The map is the layer itself (its ``apply``, ``adjoint`` and
    ``bias_parts``) unless :meth:`linear_map` says otherwise."""

    def linear_map(self, in_shape: tuple[int, ...]) -> LinearMap:
        """The rules' view of the layer for inputs of one instance's shape ``in_shape``."""
        return self

    def lrp(
        self, values: LayerValues, R: Tensor, rule: LRPRule, winner_takes_all: bool, stab: float
    ) -> list[Tensor]:
        """The LRP rule of linear layers."""
        linear_map = self.linear_map(values.in_shapes[0])
        return [lrp_linear(linear_map, values.inputs[0], values.pre, R, rule, stab)]
