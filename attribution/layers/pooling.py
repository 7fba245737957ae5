"""Average, max and global pooling."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribution.converter.registry import Call, register_function, register_module, register_spec
from attribution.converter.spec_values import spec_ints
from attribution.layers.base import Layer, LayerValues, LinearRules, sum_present
from attribution.rules import LRPRule, Part, lrp_linear


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


class Averaging(LinearRules):
    """Layers that average (non-negative weights, no bias): the rules of linear layers
    through an :class:`AveragingMap`."""

    def linear_map(self, in_shape: tuple[int, ...]) -> AveragingMap:
        """The rules' view of the layer (its ``W⁻`` is zero)."""
        return AveragingMap(self, in_shape)


class AvgPoolLayer(Averaging, PoolLayer):
    """Average pooling: a linear map with non-negative weights ``1/k`` and no bias."""


class AveragingMap:
    """An averaging layer (average, adaptive or global average pooling: non-negative
    weights, no bias) as a :class:`~attribution.rules.LinearMap`."""

    def __init__(self, layer: Layer, in_shape: tuple[int, ...]) -> None:
        self.layer = layer
        self.in_shape = in_shape

    def apply(self, x: Tensor, part: Part) -> Tensor | None:
        """The pooling (None for the zero negative part)."""
        return None if part == "neg" else self.layer.preactivation(x)

    def adjoint(self, v: Tensor, part: Part) -> Tensor | None:
        """The transposed pooling (None for the zero negative part)."""
        return None if part == "neg" else self.layer.transpose(v, [self.in_shape])[0]

    def bias_parts(self) -> tuple[float, float]:
        """No bias."""
        return 0.0, 0.0


class AvgPool1DLayer(AvgPoolLayer):
    """Average pooling of signals."""

    type_name = "AvgPool1D_Layer"
    n_spatial = 1
    _pool = F.avg_pool1d


class AvgPool2DLayer(AvgPoolLayer):
    """Average pooling of images."""

    type_name = "AvgPool2D_Layer"
    n_spatial = 2
    _pool = F.avg_pool2d


class AdaptiveAvgPool1DLayer(AvgPool1DLayer):
    """Adaptive average pooling of signals to ``output_size`` (windows of varying size)."""

    _pool = F.adaptive_avg_pool1d


class AdaptiveAvgPool2DLayer(AvgPool2DLayer):
    """Adaptive average pooling of images to ``output_size`` (windows of varying size, as
    the ``AdaptiveAvgPool2d((7, 7))`` of VGG and AlexNet)."""

    _pool = F.adaptive_avg_pool2d


class MaxPoolLayer(PoolLayer):
    """Max pooling.

    With ``winner_takes_all`` (the default) relevance and multipliers go to the maximum of
    each window (where windows overlap, their shares add up); otherwise the layer is
    treated as average pooling over the same windows, and DeepLift rescales by
    ``(max(x) − max(x_ref)) / avg(x − x_ref)``, which keeps summation-to-delta.
    """

    _average: ClassVar[type[AvgPoolLayer]]

    def average(self) -> AvgPoolLayer:
        """Average pooling over the same windows."""
        dilation = self.options.get("dilation", 1)
        if dilation not in (1, (1,) * self.n_spatial, [1] * self.n_spatial):
            raise ValueError(
                f"winner_takes_all=False treats max pooling as average pooling, which has no "
                f"dilation; this layer has dilation {dilation}. Use winner_takes_all=True."
            )
        options = {key: value for key, value in self.options.items() if key != "dilation"}
        return type(self)._average(**options)

    def route(self, x: Tensor, R: Tensor) -> Tensor:
        """``R`` sent to the position of each window's maximum of ``x``."""
        _, indices = type(self)._pool(x, **self.options, return_indices=True)
        return scatter_to_positions(R, indices, tuple(x.shape[1:]))

    def lrp(
        self, values: LayerValues, R: Tensor, rule: LRPRule, winner_takes_all: bool, stab: float
    ) -> list[Tensor]:
        """Winner takes all, or the average-pooling rule ``rule``."""
        x = values.inputs[0]
        if winner_takes_all:
            return [self.route(x, R)]
        average = self.average()
        linear_map = average.linear_map(values.in_shapes[0])
        return [lrp_linear(linear_map, x, average.preactivation(x), R, rule, stab)]

    def deeplift(self, values, reference, m_out, m_pre, rule_name, winner_takes_all, stab):
        """Winner takes all, or rescaled average pooling."""
        m = sum_present(m_out, m_pre)
        x = values.inputs[0]
        if winner_takes_all:
            return [self.route(x, m)]
        return rescaled_average(self.average(), values, reference, m, stab)

    def connection_weights(self, R: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """To the first position of each window (innsight pools a tensor of ones)."""
        ones = torch.ones(1, *in_shapes[0], dtype=R.dtype, device=R.device)
        return [self.route(ones, R)]


class MaxPool1DLayer(MaxPoolLayer):
    """Max pooling of signals."""

    type_name = "MaxPool1D_Layer"
    n_spatial = 1
    _pool = F.max_pool1d
    _average = AvgPool1DLayer


class MaxPool2DLayer(MaxPoolLayer):
    """Max pooling of images."""

    type_name = "MaxPool2D_Layer"
    n_spatial = 2
    _pool = F.max_pool2d
    _average = AvgPool2DLayer


class AdaptiveMaxPool1DLayer(MaxPool1DLayer):
    """Adaptive max pooling of signals to ``output_size``."""

    _pool = F.adaptive_max_pool1d
    _average = AdaptiveAvgPool1DLayer


class AdaptiveMaxPool2DLayer(MaxPool2DLayer):
    """Adaptive max pooling of images to ``output_size``."""

    _pool = F.adaptive_max_pool2d
    _average = AdaptiveAvgPool2DLayer


def rescaled_average(
    average: Layer, values: LayerValues, reference: LayerValues, m: Tensor, stab: float
) -> list[Tensor]:
    """DeepLift through max pooling treated as ``average`` pooling over the same windows.

    The multipliers are rescaled by ``(max(x) − max(x_ref)) / avg(x − x_ref)`` and spread
    evenly over each window, so that ``Σ m_in Δx = Σ m Δy`` (summation-to-delta).
    """
    delta = average.preactivation(values.inputs[0] - reference.inputs[0])
    ratio = (values.out - reference.out) / (delta + stab * (delta == 0))
    return average.transpose(m * ratio, values.in_shapes)


def scatter_to_positions(R: Tensor, indices: Tensor, in_shape: tuple[int, ...]) -> Tensor:
    """Add ``R`` ``(K, batch, channels, *out)`` into the input positions ``indices``.

    ``indices`` ``(batch, channels, *out)`` index the flattened spatial axes of the input,
    as torch's max pooling returns them.
    """
    k, batch, channels = R.shape[:3]
    index = indices.reshape(1, len(indices), channels, -1).expand(k, -1, -1, -1)
    spread = R.new_zeros(k, batch, channels, math.prod(in_shape[1:]))
    spread.scatter_add_(3, index, R.reshape(k, batch, channels, -1))
    return spread.reshape(k, batch, *in_shape)


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


class GlobalAvgPoolLayer(Averaging, GlobalPoolLayer):
    """Global average pooling: every position gets ``1/N`` of the signal.

    LRP treats it as the linear map it is, with the layer type's rule (as average
    pooling): a position's relevance is its share of the mean. innsight spreads relevance
    evenly over the positions, whatever their values (rule ``"equal"``); that gives
    positions whose activation is 0 relevance, so LRP-0 no longer equals Gradient × Input
    on ReLU networks (on DenseNet-121 and GoogLeNet the difference was as large as the
    relevances).
    """

    type_name = "GlobalAvgPool_Layer"
    _reduce = torch.mean

    def lrp(
        self, values: LayerValues, R: Tensor, rule: LRPRule, winner_takes_all: bool, stab: float
    ) -> list[Tensor]:
        """The rule of average pooling, or innsight's even split (``equal``)."""
        if rule.name == "equal":
            return self.transpose(R, values.in_shapes)
        return super().lrp(values, R, rule, winner_takes_all, stab)


class GlobalMaxPoolLayer(GlobalPoolLayer):
    """Global max pooling: the signal goes to the position of each channel's maximum.

    (innsight gives every tied maximum the whole signal; here the first one gets it, so
    relevance is conserved.) With ``winner_takes_all=False`` it is treated like global
    average pooling, as :class:`MaxPoolLayer` is treated like average pooling: LRP
    spreads relevance evenly, and DeepLift rescales by ``(max(x) − max(x_ref)) /
    mean(x − x_ref)``, which keeps summation-to-delta (the maxima of ``x`` alone do not
    where those of ``x_ref`` sit elsewhere).
    """

    type_name = "GlobalMaxPool_Layer"
    _reduce = torch.amax

    def route(self, x: Tensor, R: Tensor) -> Tensor:
        """``R`` sent to the position of each channel's maximum of ``x``."""
        indices = x.flatten(2).argmax(-1, keepdim=True)
        return scatter_to_positions(R, indices, tuple(x.shape[1:]))

    def average(self) -> GlobalAvgPoolLayer:
        """Global average pooling with the same output shape."""
        return GlobalAvgPoolLayer(self.keepdim)

    def lrp(
        self, values: LayerValues, R: Tensor, rule: LRPRule, winner_takes_all: bool, stab: float
    ) -> list[Tensor]:
        """To the maxima, or evenly (``winner_takes_all=False``)."""
        if winner_takes_all:
            return [self.route(values.inputs[0], R)]
        average = self.average()
        averaged = LayerValues(values.inputs, average.preactivation(*values.inputs), values.out)
        return average.lrp(averaged, R, rule, winner_takes_all, stab)

    def deeplift(self, values, reference, m_out, m_pre, rule_name, winner_takes_all, stab):
        """To the maxima of ``x``, or rescaled global average pooling."""
        m = sum_present(m_out, m_pre)
        if winner_takes_all:
            return [self.route(values.inputs[0], m)]
        return rescaled_average(self.average(), values, reference, m, stab)

    def connection_weights(self, R: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """To the first position (innsight pools a tensor of ones)."""
        ones = torch.ones(1, *in_shapes[0], dtype=R.dtype, device=R.device)
        return [self.route(ones, R)]


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


def _adaptive_pool(call: Call, kind: str, n_spatial: int, output_size: Any) -> Layer:
    """Global pooling where every output size is 1, else adaptive pooling to the size."""
    _check_rank(call, n_spatial)
    if call.out_shape[1:] == (1,) * n_spatial:
        return (GlobalAvgPoolLayer if kind == "avg" else GlobalMaxPoolLayer)(keepdim=True)
    layers = {
        ("avg", 1): AdaptiveAvgPool1DLayer, ("avg", 2): AdaptiveAvgPool2DLayer,
        ("max", 1): AdaptiveMaxPool1DLayer, ("max", 2): AdaptiveMaxPool2DLayer,
    }  # fmt: skip
    return layers[kind, n_spatial](output_size=tuple(call.out_shape[1:]))


_ADAPTIVE = {
    nn.AdaptiveAvgPool1d: ("avg", 1),
    nn.AdaptiveAvgPool2d: ("avg", 2),
    nn.AdaptiveMaxPool1d: ("max", 1),
    nn.AdaptiveMaxPool2d: ("max", 2),
}


def _adaptive_module(call: Call) -> Layer:
    module = call.module
    if getattr(module, "return_indices", False):
        raise ValueError(f"adaptive max pooling at '{call.name}' returns indices: unsupported.")
    kind, n_spatial = next(value for cls, value in _ADAPTIVE.items() if isinstance(module, cls))
    return _adaptive_pool(call, kind, n_spatial, module.output_size)


register_module(*_ADAPTIVE)(_adaptive_module)


for _function, (_kind, _n_spatial) in {
    F.adaptive_avg_pool1d: ("avg", 1), F.adaptive_avg_pool2d: ("avg", 2),
    F.adaptive_max_pool1d: ("max", 1), F.adaptive_max_pool2d: ("max", 2),
}.items():  # fmt: skip
    register_function(_function)(
        lambda call, k=_kind, n=_n_spatial: _adaptive_pool(call, k, n, call.kwargs["output_size"])
    )


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
    axes = sorted(d % rank for d in dims)
    keepdim = bool(call.kwargs.get("keepdim", False))
    if rank >= 3 and axes == list(range(2, rank)):
        return layer_type(keepdim=keepdim)
    if layer_type is GlobalAvgPoolLayer and axes and 0 not in axes:
        return MeanLayer(tuple(axis - 1 for axis in axes), keepdim)
    raise ValueError(
        f"'{call.name}' reduces over axes {dims} of a tensor of shape "
        f"(batch, {', '.join(map(str, call.in_shape))}); only means over any of one "
        "instance's axes, and maxima over all spatial axes (global pooling), are supported."
    )


class MeanLayer(Averaging, Layer):
    """The mean over some axes of one instance (``x.mean(-1)`` over tokens or features),
    a linear map with non-negative weights: the rules of average pooling."""

    type_name = "Mean_Layer"

    def __init__(self, axes: tuple[int, ...], keepdim: bool = False) -> None:
        super().__init__()
        self.axes, self.keepdim = axes, keepdim

    def preactivation(self, x: Tensor) -> Tensor:
        """The mean over the axes."""
        return x.mean(tuple(axis + 1 for axis in self.axes), keepdim=self.keepdim)


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
