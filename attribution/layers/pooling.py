"""Average, max and global pooling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribution.converter.registry import Call, register_function, register_module, register_spec
from attribution.converter.spec_values import spec_ints
from attribution.layers.base import Layer


class PoolLayer(Layer):
    """Average or max pooling with torch's options (kernel_size, stride, padding, ...)."""

    n_spatial: ClassVar[int]
    _pool: ClassVar[Callable[..., Tensor]]

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options

    def preactivation(self, x: Tensor) -> Tensor:
        """The pooled input."""
        return type(self)._pool(x, **self.options)


class AvgPool1DLayer(PoolLayer):
    """Average pooling of signals."""

    type_name = "AvgPool1D_Layer"
    n_spatial = 1
    _pool = F.avg_pool1d


class AvgPool2DLayer(PoolLayer):
    """Average pooling of images."""

    type_name = "AvgPool2D_Layer"
    n_spatial = 2
    _pool = F.avg_pool2d


class MaxPool1DLayer(PoolLayer):
    """Max pooling of signals."""

    type_name = "MaxPool1D_Layer"
    n_spatial = 1
    _pool = F.max_pool1d


class MaxPool2DLayer(PoolLayer):
    """Max pooling of images."""

    type_name = "MaxPool2D_Layer"
    n_spatial = 2
    _pool = F.max_pool2d


class GlobalPoolLayer(Layer):
    """Pooling over all spatial axes of ``(batch, channels, *spatial)``.

    Parameters
    ----------
    keepdim : bool, default=False
        Keep the spatial axes with length 1 (as ``AdaptiveAvgPool2d(1)`` does).
    """

    _reduce: ClassVar[Callable[..., Tensor]]

    def __init__(self, keepdim: bool = False) -> None:
        super().__init__()
        self.keepdim = keepdim

    def preactivation(self, x: Tensor) -> Tensor:
        """The input reduced over its spatial axes."""
        return type(self)._reduce(x, dim=tuple(range(2, x.ndim)), keepdim=self.keepdim)


class GlobalAvgPoolLayer(GlobalPoolLayer):
    """Global average pooling."""

    type_name = "GlobalAvgPool_Layer"
    _reduce = torch.mean


class GlobalMaxPoolLayer(GlobalPoolLayer):
    """Global max pooling."""

    type_name = "GlobalMaxPool_Layer"
    _reduce = torch.amax


# --- torch modules and functions -------------------------------------------------------------

_AVG = {1: AvgPool1DLayer, 2: AvgPool2DLayer}
_MAX = {1: MaxPool1DLayer, 2: MaxPool2DLayer}
_AVG_KEYS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
_MAX_KEYS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")


def _check_rank(call: Call, n_spatial: int) -> None:
    """Pooling layers take ``(batch, channels, *spatial)``; torch would also take unbatched."""
    if len(call.in_shape) != n_spatial + 1:
        expected = "(batch, channels, length)" if n_spatial == 1 else "(batch, channels, h, w)"
        raise ValueError(
            f"'{call.name}' pools an input of shape (batch, "
            f"{', '.join(map(str, call.in_shape))}); {n_spatial}D pooling needs {expected}: "
            "check input_dim and the layers before it."
        )


def _pool_layer(layer_type: type[PoolLayer], call: Call, options: dict[str, Any]) -> PoolLayer:
    _check_rank(call, layer_type.n_spatial)
    if options.get("divisor_override") is not None:
        raise ValueError(f"average pooling at '{call.name}' uses divisor_override: unsupported.")
    keys = _MAX_KEYS if layer_type in _MAX.values() else _AVG_KEYS
    kept = {key: options[key] for key in keys if key in options}
    if kept.get("stride") in (None, [], ()):
        kept["stride"] = kept["kernel_size"]
    return layer_type(**kept)


def _register_pooling(layer_type: type[PoolLayer], module_type: type, function: Any) -> None:
    """Convert ``module_type`` and ``function`` (torch's pooling of one kind) to ``layer_type``."""
    register_module(module_type)(lambda call: _pool_layer(layer_type, call, vars(call.module)))
    register_function(function)(lambda call: _pool_layer(layer_type, call, call.kwargs))


_register_pooling(AvgPool1DLayer, nn.AvgPool1d, F.avg_pool1d)
_register_pooling(AvgPool2DLayer, nn.AvgPool2d, F.avg_pool2d)
_register_pooling(MaxPool1DLayer, nn.MaxPool1d, F.max_pool1d)
_register_pooling(MaxPool2DLayer, nn.MaxPool2d, F.max_pool2d)


def _global_pool(
    call: Call, layer_type: type[GlobalPoolLayer], n_spatial: int, output_size: Any
) -> Layer:
    _check_rank(call, n_spatial)
    sizes = output_size if isinstance(output_size, (tuple, list)) else [output_size]
    if any(size not in (1, None) for size in sizes) or call.out_shape[1:] != (1,) * n_spatial:
        raise ValueError(
            f"adaptive pooling at '{call.name}' has output_size {output_size!r}; only "
            "output_size=1 (global pooling) is supported."
        )
    return layer_type(keepdim=True)


_ADAPTIVE = {
    nn.AdaptiveAvgPool1d: (GlobalAvgPoolLayer, 1),
    nn.AdaptiveAvgPool2d: (GlobalAvgPoolLayer, 2),
    nn.AdaptiveMaxPool1d: (GlobalMaxPoolLayer, 1),
    nn.AdaptiveMaxPool2d: (GlobalMaxPoolLayer, 2),
}


def _adaptive_module(call: Call) -> Layer:
    module = call.module
    layer_type, n_spatial = next(
        value for cls, value in _ADAPTIVE.items() if isinstance(module, cls)
    )
    return _global_pool(call, layer_type, n_spatial, module.output_size)


register_module(*_ADAPTIVE)(_adaptive_module)


@register_function(F.adaptive_avg_pool1d)
def _adaptive_avg_function_1d(call: Call) -> Layer:
    return _global_pool(call, GlobalAvgPoolLayer, 1, call.kwargs["output_size"])


@register_function(F.adaptive_avg_pool2d)
def _adaptive_avg_function_2d(call: Call) -> Layer:
    return _global_pool(call, GlobalAvgPoolLayer, 2, call.kwargs["output_size"])


@register_function(torch.mean, "method:mean")
def _mean(call: Call) -> Layer:
    return _reduction(call, GlobalAvgPoolLayer)


@register_function(torch.amax, "method:amax")
def _amax(call: Call) -> Layer:
    return _reduction(call, GlobalMaxPoolLayer)


def _reduction(call: Call, layer_type: type[GlobalPoolLayer]) -> Layer:
    rank = len(call.in_shape) + 1
    dims = call.kwargs.get("dim")
    dims = [dims] if isinstance(dims, int) else list(dims or [])
    if rank < 3 or sorted(d % rank for d in dims) != list(range(2, rank)):
        raise ValueError(
            f"'{call.name}' reduces over axes {dims} of a tensor of shape "
            f"(batch, {', '.join(map(str, call.in_shape))}); only reductions over all spatial "
            "axes (global pooling) are supported."
        )
    return layer_type(keepdim=bool(call.kwargs.get("keepdim", False)))


# --- innsight's named-list format --------------------------------------------------------------


@register_spec("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D")
def _from_spec(spec: dict) -> PoolLayer:
    n = int(spec["type"][-2])
    layers = _MAX if spec["type"].startswith("Max") else _AVG
    kernel = spec_ints(spec, "kernel_size", None, lengths=(1, n))
    strides = spec_ints(spec, "strides", kernel, lengths=(1, n))
    return layers[n](kernel_size=kernel * (n // len(kernel)), stride=strides * (n // len(strides)))


@register_spec("GlobalPooling")
def _global_from_spec(spec: dict) -> GlobalPoolLayer:
    method = spec.get("method", "average")
    if method not in ("average", "max"):
        raise ValueError(f"'method' must be 'average' or 'max'; got {method!r}.")
    return GlobalAvgPoolLayer() if method == "average" else GlobalMaxPoolLayer()
