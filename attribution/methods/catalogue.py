"""Every method, what it needs of a model, and its parameters with the engine's defaults.

The loader (which methods apply to a model), the dashboard (its method picker, parameter
form and job runner) and the ``torch_*`` functions read this one list; a new method is its
class (declaring ``method_name``, ``needs`` and ``goal``) plus one entry here.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

from attribution.methods.connection_weights import ConnectionWeights
from attribution.methods.deeplift import DeepLift, DeepSHAP
from attribution.methods.gradient import ExpectedGradient, Gradient, IntegratedGradient, SmoothGrad
from attribution.methods.lime import LIME
from attribution.methods.lrp import LRP
from attribution.methods.shap import SHAP

_ORDER = (
    Gradient, SmoothGrad, IntegratedGradient, ExpectedGradient,
    LRP, DeepLift, DeepSHAP, ConnectionWeights, LIME, SHAP,
)  # fmt: skip
METHODS: dict[str, type] = {method.method_name: method for method in _ORDER}
"""The methods by name, in the order the dashboard offers them."""

_NOT_PARAMETERS = {
    "self", "converter", "model", "data", "channels_first", "output_idx", "output_label",
    "verbose", "progress_callback", "memory_budget", "pred_fun", "input_dim",
    "input_names", "output_names", "feature_groups", "patch_size",
}  # fmt: skip
"""Arguments that say what to explain and how to report it, not how the method works."""


def method(name: str) -> type:
    """The method class called ``name``; a ValueError naming the methods otherwise."""
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; choose one of {', '.join(METHODS)}.")
    return METHODS[name]


def applicable(converted: bool, differentiable: bool) -> list[str]:
    """The methods that explain a model: all with a converted graph; those needing
    gradients for any torch module; those needing predictions for every model."""
    offered = {"graph": converted, "gradients": converted or differentiable, "predictions": True}
    return [name for name, cls in METHODS.items() if offered[cls.needs]]


@cache
def parameters(name: str) -> Mapping[str, Any]:
    """The method's own parameters and their defaults, read from its signature (once)."""
    signature = inspect.signature(method(name).__init__)
    return MappingProxyType({
        key: p.default
        for key, p in signature.parameters.items()
        if key not in _NOT_PARAMETERS and p.kind is not p.VAR_KEYWORD
    })  # fmt: skip
