"""Layer types of the converted graph, one module per family.

Importing this package registers every layer's converters (torch modules and functions,
and innsight's named-list types) in :mod:`attribution.converter.registry`.
"""

from attribution.layers import (
    activation,
    conv,
    dense,
    group_norm,
    merge,
    norm,
    pooling,
    reshape,
    scale,
)
from attribution.layers.activation import Activation, ActivationLayer
from attribution.layers.base import Layer

__all__ = [
    "Activation",
    "ActivationLayer",
    "Layer",
    "activation",
    "conv",
    "dense",
    "group_norm",
    "merge",
    "norm",
    "pooling",
    "reshape",
    "scale",
]
