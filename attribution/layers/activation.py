"""Activation functions by innsight name, and the standalone activation layer."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribution.converter.registry import Call, register_function, register_module, register_spec
from attribution.layers._axes import instance_dim
from attribution.layers.base import Layer


def _softmax(z: Tensor, dim: int = -1) -> Tensor:
    return torch.softmax(z, dim + 1 if dim >= 0 else dim)


def _log_softmax(z: Tensor, dim: int = -1) -> Tensor:
    return torch.log_softmax(z, dim + 1 if dim >= 0 else dim)


_FUNCTIONS: dict[str, Callable[..., Tensor]] = {
    "linear": lambda z: z,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "softplus": F.softplus,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": _softmax,
    "gelu": F.gelu,
    "silu": F.silu,
    "relu6": F.relu6,
    "hardtanh": F.hardtanh,
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "mish": F.mish,
    "log_softmax": _log_softmax,
}
_ALIASES = {"logistic": "sigmoid"}
_PER_INSTANCE = ("softmax", "log_softmax")
"""Activations over an axis, not value by value: their derivative is the Jacobian's
diagonal."""
_INNSIGHT_DEFAULTS = {"leaky_relu": {"negative_slope": 0.01}}

ACTIVATION_NAMES = sorted([*_FUNCTIONS, *_ALIASES])
"""The activation names accepted in ``activation_name``/``act_name`` of a model spec."""


class Activation:
    """An activation function by innsight name, with its parameters.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATION_NAMES` (``"logistic"`` is read as ``"sigmoid"``).
    **params
        Keyword arguments of the torch function, e.g. ``negative_slope`` for
        ``"leaky_relu"`` or ``dim`` (an axis of one instance) for ``"softmax"``.
    """

    def __init__(self, name: str, **params: object) -> None:
        name = _ALIASES.get(name, name)
        if name not in _FUNCTIONS:
            raise ValueError(
                f"Unknown activation '{name}'. Supported activations: "
                f"{', '.join(ACTIVATION_NAMES)}."
            )
        self.name = name
        self.params = {**_INNSIGHT_DEFAULTS.get(name, {}), **params}

    @property
    def is_linear(self) -> bool:
        """True for the identity."""
        return self.name == "linear"

    def __call__(self, z: Tensor) -> Tensor:
        return _FUNCTIONS[self.name](z, **self.params)

    def derivative(self, z: Tensor) -> Tensor:
        """The element-wise derivative ``f'(z)``; for softmax and log-softmax the Jacobian's
        diagonal."""
        if self.name in _PER_INSTANCE:
            s = _softmax(z, **self.params)
            return s * (1 - s) if self.name == "softmax" else 1 - s
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(self(z).sum(), z)
        return gradient

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{self.name}({args})" if args else self.name


LINEAR = Activation("linear")


class ActivationLayer(Layer):
    """A standalone activation: its pre-activation is its input.

    Used where the activation does not directly follow a dense or convolutional layer,
    e.g. after pooling, flattening, batch normalisation or an addition.
    """

    type_name = "Activation_Layer"

    def preactivation(self, x: Tensor) -> Tensor:
        """The input itself."""
        return x

    def transpose(self, v: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """The identity."""
        return [v]


# --- torch modules and functions -------------------------------------------------------------


@register_module(nn.ReLU)
@register_function(F.relu, torch.relu, "method:relu")
def _relu(call: Call) -> Activation:
    return Activation("relu")


@register_module(nn.LeakyReLU)
def _leaky_relu_module(call: Call) -> Activation:
    return Activation("leaky_relu", negative_slope=call.module.negative_slope)


@register_function(F.leaky_relu)
def _leaky_relu(call: Call) -> Activation:
    return Activation("leaky_relu", negative_slope=call.kwargs["negative_slope"])


@register_module(nn.ELU)
def _elu_module(call: Call) -> Activation:
    return Activation("elu", alpha=call.module.alpha)


@register_function(F.elu)
def _elu(call: Call) -> Activation:
    return Activation("elu", alpha=call.kwargs["alpha"])


@register_module(nn.Softplus)
def _softplus_module(call: Call) -> Activation:
    return Activation("softplus", beta=call.module.beta, threshold=call.module.threshold)


@register_function(F.softplus)
def _softplus(call: Call) -> Activation:
    return Activation("softplus", beta=call.kwargs["beta"], threshold=call.kwargs["threshold"])


@register_module(nn.Sigmoid)
@register_function(torch.sigmoid, F.sigmoid, "method:sigmoid")
def _sigmoid(call: Call) -> Activation:
    return Activation("sigmoid")


@register_module(nn.Tanh)
@register_function(torch.tanh, F.tanh, "method:tanh")
def _tanh(call: Call) -> Activation:
    return Activation("tanh")


@register_module(nn.Softmax)
def _softmax_module(call: Call) -> Activation:
    if call.module.dim is None:
        raise ValueError(f"nn.Softmax at '{call.name}' has no dim: set dim explicitly.")
    return _softmax_over(call, call.module.dim)


@register_function(F.softmax, torch.softmax, "method:softmax")
def _softmax_function(call: Call) -> Activation:
    if call.kwargs.get("dim") is None:
        raise ValueError(f"softmax at '{call.name}' has no dim: set dim explicitly.")
    return _softmax_over(call, call.kwargs["dim"])


def _softmax_over(call: Call, dim: int) -> Activation:
    return Activation("softmax", dim=instance_dim(dim, len(call.in_shape) + 1))


@register_module(nn.GELU)
def _gelu_module(call: Call) -> Activation:
    return Activation("gelu", approximate=call.module.approximate)


@register_function(F.gelu)
def _gelu(call: Call) -> Activation:
    return Activation("gelu", approximate=call.kwargs.get("approximate", "none"))


_WITHOUT_PARAMETERS = {
    "silu": (nn.SiLU, F.silu),
    "relu6": (nn.ReLU6, F.relu6),
    "hardswish": (nn.Hardswish, F.hardswish),
    "hardsigmoid": (nn.Hardsigmoid, F.hardsigmoid),
    "mish": (nn.Mish, F.mish),
}
"""Activations whose module and function take no options, by innsight-style name."""

for _name, (_module, _function) in _WITHOUT_PARAMETERS.items():
    register_function(_function)(register_module(_module)(lambda call, n=_name: Activation(n)))


@register_module(nn.Hardtanh)
def _hardtanh_module(call: Call) -> Activation:
    return Activation("hardtanh", min_val=call.module.min_val, max_val=call.module.max_val)


@register_function(F.hardtanh)
def _hardtanh(call: Call) -> Activation:
    return Activation("hardtanh", min_val=call.kwargs.get("min_val", -1.0),
                      max_val=call.kwargs.get("max_val", 1.0))  # fmt: skip


@register_module(nn.LogSoftmax)
def _log_softmax_module(call: Call) -> Activation:
    if call.module.dim is None:
        raise ValueError(f"nn.LogSoftmax at '{call.name}' has no dim: set dim explicitly.")
    return Activation("log_softmax", dim=instance_dim(call.module.dim, len(call.in_shape) + 1))


@register_function(F.log_softmax, torch.log_softmax, "method:log_softmax")
def _log_softmax_function(call: Call) -> Activation:
    if call.kwargs.get("dim") is None:
        raise ValueError(f"log_softmax at '{call.name}' has no dim: set dim explicitly.")
    return Activation("log_softmax", dim=instance_dim(call.kwargs["dim"], len(call.in_shape) + 1))


@register_spec("Activation")
def _from_spec(spec: dict) -> Activation:
    return Activation(spec["act_name"])
