"""Layers that move values without mixing them: flatten, reshape, permutations, padding,
and skipped calls."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribution.converter.registry import (
    SKIP,
    Call,
    register_function,
    register_module,
    register_module_name,
    register_spec,
)
from attribution.converter.spec_values import spec_axis, spec_ints
from attribution.layers._axes import batched_dim, instance_dim
from attribution.layers.base import Layer


class FlattenLayer(Layer):
    """Flatten the axes ``start_dim..end_dim`` of one instance (0 = first axis after batch).

    Parameters
    ----------
    start_dim, end_dim : int, default=0, -1
    channels_last : bool, default=False
        Move the channel axis last before flattening, for models whose dense weights expect
        channels-last order (Keras). The order is stored with the model, so it does not
        depend on the ``channels_first`` flag of a method call (unlike innsight).
    """

    type_name = "Flatten_Layer"

    def __init__(self, start_dim: int = 0, end_dim: int = -1, channels_last: bool = False):
        super().__init__()
        self.start_dim, self.end_dim, self.channels_last = start_dim, end_dim, channels_last

    def preactivation(self, x: Tensor) -> Tensor:
        """The flattened input."""
        if self.channels_last:
            x = x.movedim(1, -1)
        return torch.flatten(x, batched_dim(self.start_dim), batched_dim(self.end_dim))

    def transpose(self, v: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """The values put back into the input's shape."""
        shape = in_shapes[0]
        if self.channels_last:
            shape = (*shape[1:], shape[0])
        v = v.reshape(*v.shape[:2], *shape)
        return [v.movedim(-1, 2) if self.channels_last else v]


class ReshapeLayer(Layer):
    """One instance reshaped to ``out_dim`` (values keep their order: a pure reordering)."""

    type_name = "Reshape_Layer"

    def __init__(self, out_dim: Sequence[int]) -> None:
        super().__init__()
        self.out_dim = tuple(out_dim)

    def preactivation(self, x: Tensor) -> Tensor:
        """The reshaped input."""
        return x.reshape(len(x), *self.out_dim)

    def transpose(self, v: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """The values put back into the input's shape."""
        return [v.reshape(*v.shape[:2], *in_shapes[0])]


class PermuteLayer(Layer):
    """The axes of one instance reordered: axis ``k`` of the output is axis ``order[k]``
    of the input (0 = the first axis after the batch)."""

    type_name = "Permute_Layer"

    def __init__(self, order: Sequence[int]) -> None:
        super().__init__()
        self.order = tuple(order)

    def preactivation(self, x: Tensor) -> Tensor:
        """The input with its axes reordered."""
        return x.permute(0, *(axis + 1 for axis in self.order))

    def transpose(self, v: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """The inverse reordering (after the explained-output and batch axes)."""
        inverse = sorted(range(len(self.order)), key=self.order.__getitem__)
        return [v.permute(0, 1, *(axis + 2 for axis in inverse))]


class PaddingLayer(Layer):
    """Pad the spatial axes.

    Parameters
    ----------
    padding : tuple of int
        In ``torch.nn.functional.pad`` order, e.g. ``(left, right, top, bottom)``.
    mode : {"constant", "reflect", "replicate", "circular"}, default="constant"
    value : float, default=0
    """

    type_name = "Padding_Layer"

    def __init__(self, padding: Sequence[int], mode: str = "constant", value: float = 0.0):
        super().__init__()
        self.padding, self.mode, self.value = tuple(padding), mode, float(value or 0.0)

    def preactivation(self, x: Tensor) -> Tensor:
        """The padded input."""
        value = self.value if self.mode == "constant" else None
        return F.pad(x, self.padding, mode=self.mode, value=value)

    def transpose(self, v: Tensor, in_shapes: list[tuple[int, ...]]) -> list[Tensor]:
        """Cropping (constant padding), or the adjoint of the reflection/replication."""
        k, batch = v.shape[:2]
        flat = v.reshape(k * batch, *v.shape[2:])
        gradient = pad_adjoint(flat, self.padding, self.mode, in_shapes[0])
        return [gradient.reshape(k, batch, *in_shapes[0])]


def pad_adjoint(v: Tensor, padding: Sequence[int], mode: str, in_shape: tuple[int, ...]):
    """The adjoint of ``F.pad(·, padding, mode)`` for ``v`` of shape ``(N, *padded)``.

    Constant padding adds values that depend on no input, so its adjoint crops; reflected,
    replicated and circular padding copy inputs, so their adjoint adds the copies back.
    """
    if mode == "constant":
        index = [slice(None)] * v.ndim
        for axis, (before, after) in enumerate(zip(padding[0::2], padding[1::2], strict=True)):
            dim = v.ndim - 1 - axis
            index[dim] = slice(before, v.shape[dim] - after)
        return v[tuple(index)]
    with torch.enable_grad():
        point = torch.zeros(len(v), *in_shape, dtype=v.dtype, device=v.device, requires_grad=True)
        (gradient,) = torch.autograd.grad(F.pad(point, padding, mode=mode), point, v)
    return gradient


# --- torch modules and functions -------------------------------------------------------------


@register_module(nn.Flatten)
def _flatten_module(call: Call) -> FlattenLayer:
    rank = len(call.in_shape) + 1
    return FlattenLayer(
        instance_dim(call.module.start_dim, rank), instance_dim(call.module.end_dim, rank)
    )


@register_function(torch.flatten, "method:flatten")
def _flatten_function(call: Call) -> FlattenLayer:
    rank = len(call.in_shape) + 1
    start = instance_dim(call.kwargs.get("start_dim", 0), rank)
    return FlattenLayer(start, instance_dim(call.kwargs.get("end_dim", -1), rank))


@register_function(torch.reshape, "method:view", "method:reshape")
def _reshape(call: Call) -> FlattenLayer | ReshapeLayer | object:
    if call.out_shape == call.in_shape:
        return SKIP
    if call.out_shape == (math.prod(call.in_shape),):
        return FlattenLayer()
    return ReshapeLayer(call.out_shape)


@register_function(torch.permute, "method:permute")
def _permute(call: Call) -> PermuteLayer:
    dims = call.kwargs.get("dims", call.kwargs.get("args", ())[1:])
    if len(dims) == 1 and isinstance(dims[0], Sequence):  # x.permute((0, 2, 1))
        dims = dims[0]
    return _reordering(call, [d % (len(call.in_shape) + 1) for d in dims])


@register_function(torch.transpose, torch.swapaxes, "method:transpose", "method:swapaxes")
def _transpose(call: Call) -> PermuteLayer:
    rank = len(call.in_shape) + 1
    given = call.kwargs.get("args", (None, None, None))[1:]
    first = call.kwargs.get("dim0", call.kwargs.get("axis0", given[0]))
    second = call.kwargs.get("dim1", call.kwargs.get("axis1", given[1]))
    order = list(range(rank))
    order[first % rank], order[second % rank] = order[second % rank], order[first % rank]
    return _reordering(call, order)


@register_function(torch.movedim, "method:movedim")
def _movedim(call: Call) -> PermuteLayer:
    rank = len(call.in_shape) + 1
    given = call.kwargs.get("args", ())[1:]
    source = call.kwargs.get("source", given[0] if given else None)
    destination = call.kwargs.get("destination", given[1] if len(given) > 1 else None)
    if not isinstance(source, int) or not isinstance(destination, int):
        raise ValueError(f"'{call.name}' moves several axes at once: use permute instead.")
    order = list(range(rank))
    order.insert(destination % rank, order.pop(source % rank))
    return _reordering(call, order)


def _reordering(call: Call, order: list[int]) -> PermuteLayer | object:
    """A permutation of all axes (batch first) that keeps the batch axis in place."""
    if order[0] != 0:
        raise ValueError(
            f"'{call.name}' moves the batch axis (axes {order}); only reorderings of one "
            "instance's axes are supported."
        )
    if order == sorted(order):
        return SKIP
    return PermuteLayer([axis - 1 for axis in order[1:]])


_PAD_MODES = {
    nn.ZeroPad1d: "constant",
    nn.ZeroPad2d: "constant",
    nn.ConstantPad1d: "constant",
    nn.ConstantPad2d: "constant",
    nn.ReflectionPad1d: "reflect",
    nn.ReflectionPad2d: "reflect",
    nn.ReplicationPad1d: "replicate",
    nn.ReplicationPad2d: "replicate",
    nn.CircularPad1d: "circular",
    nn.CircularPad2d: "circular",
}


@register_module(*_PAD_MODES)
def _pad_module(call: Call) -> PaddingLayer:
    mode = next(mode for cls, mode in _PAD_MODES.items() if isinstance(call.module, cls))
    return PaddingLayer(call.module.padding, mode, getattr(call.module, "value", 0.0))


@register_function(F.pad)
def _pad_function(call: Call) -> PaddingLayer:
    return PaddingLayer(
        call.kwargs["pad"], call.kwargs.get("mode", "constant"), call.kwargs.get("value")
    )


@register_module(nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
@register_function(F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout, "method:contiguous")
@register_module_name("torchvision.ops.stochastic_depth.StochasticDepth")
def _skip(call: Call) -> object:
    """The identity of inference: dropout and stochastic depth (the model is converted in
    eval mode)."""
    return SKIP


# --- innsight's named-list format --------------------------------------------------------------


@register_spec("Flatten")
def _flatten_from_spec(spec: dict) -> FlattenLayer:
    channels_last = spec.get("channels_last", False)
    if not isinstance(channels_last, bool):
        raise ValueError(f"'channels_last' must be true or false; got {channels_last!r}.")
    return FlattenLayer(
        spec_axis(spec, "start_dim", 2), spec_axis(spec, "end_dim", -1), channels_last
    )


@register_spec("Padding")
def _padding_from_spec(spec: dict) -> PaddingLayer:
    padding = spec_ints(spec, "padding", None, lengths=(2, 4))
    mode = spec.get("mode", "constant")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(
            f"'mode' must be one of 'constant', 'reflect', 'replicate', 'circular'; got {mode!r}."
        )
    return PaddingLayer(padding, mode, spec.get("value", 0.0))


@register_spec("Skipping")
def _skipping_from_spec(spec: dict) -> object:
    return SKIP
