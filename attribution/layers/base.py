"""The layer interface of the converted graph."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from attribution.layers.activation import Activation


class Layer(nn.Module):
    """A node of the converted graph: a pre-activation map followed by an activation.

    Subclasses implement :meth:`preactivation`. Only dense and convolutional layers carry a
    fused activation (as in innsight); a standalone activation is an
    :class:`~attribution.layers.activation.ActivationLayer`, whose pre-activation is its
    input. Weights are float64 buffers copied from the source: ``layer.to(torch.float32)``
    casts them, and they never require gradients.
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

    def _buffer(self, name: str, value: object) -> None:
        """Store a detached float64 copy of ``value`` (decoupled from the source model)."""
        copy = None if value is None else torch.as_tensor(value).detach().clone().double()
        self.register_buffer(name, copy)
