"""innsight's default names for input and output axes, and reading user-given names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_PREFIXES = {1: ("X",), 2: ("C", "L"), 3: ("C", "H", "W")}
AXIS_TITLES = {
    1: ("Feature",),
    2: ("Channels", "Signal length"),
    3: ("Channels", "Image height", "Image width"),
}
"""How innsight titles each axis of an input with 1, 2 or 3 axes per instance."""


def check_rank(dim: Sequence[int], what: str = "an input layer") -> None:
    """Inputs have 1 (tabular), 2 (signal) or 3 (image) axes per instance."""
    if len(dim) not in _PREFIXES:
        raise ValueError(
            f"{what} has shape (batch, {', '.join(map(str, dim))}); only tabular "
            "(batch, features), signal (batch, channels, length) and image (batch, channels, "
            "height, width) inputs are supported."
        )


def default_input_names(dim: Sequence[int]) -> list[list[str]]:
    """innsight's names: ``X1``... (tabular), ``C1``.../``L1``... or ``C1``/``H1``/``W1``..."""
    check_rank(dim)
    return [
        [f"{prefix}{i}" for i in range(1, size + 1)]
        for prefix, size in zip(_PREFIXES[len(dim)], dim, strict=True)
    ]


def default_output_names(n: int) -> list[str]:
    """``["Y1", ..., "Yn"]``."""
    return [f"Y{i}" for i in range(1, n + 1)]


def resolve_input_names(names: Any, dims: Sequence[Sequence[int]]) -> list[list[list[str]]]:
    """Names per input layer, per axis; ``None`` (anywhere) means innsight's defaults.

    For a single input layer the outer list may be left out, and for tabular inputs the
    axis list too: ``["a", "b"]`` is read as ``[[["a", "b"]]]``.
    """
    if names is None:
        return [default_input_names(dim) for dim in dims]
    if len(dims) == 1 and _is_layer_names(names, len(dims[0])):
        names = [names]
    names = _as_list(names, "input_names")
    if len(names) != len(dims):
        raise ValueError(
            f"input_names has names for {len(names)} input layers; the model has {len(dims)}."
        )
    resolved = []
    for layer, (layer_names, dim) in enumerate(zip(names, dims, strict=True), start=1):
        if layer_names is None:
            resolved.append(default_input_names(dim))
            continue
        if len(dim) == 1 and _is_flat(layer_names):
            layer_names = [layer_names]
        layer_names = _as_list(layer_names, "input_names")
        if len(layer_names) != len(dim):
            raise ValueError(
                f"input_names of input layer {layer} has {len(layer_names)} axes; the input "
                f"has {len(dim)} ({', '.join(AXIS_TITLES[len(dim)])})."
            )
        defaults = default_input_names(dim)
        resolved.append(
            [
                default
                if axis_names is None
                else _check_axis(axis_names, size, f"{title} of input layer {layer}", "input_names")
                for axis_names, size, title, default in zip(
                    layer_names, dim, AXIS_TITLES[len(dim)], defaults, strict=True
                )
            ]
        )
    return resolved


def resolve_output_names(names: Any, sizes: Sequence[int]) -> list[list[str]]:
    """Names per output layer; a flat list is read as the names of the only output layer."""
    if names is None:
        return [default_output_names(n) for n in sizes]
    if len(sizes) == 1 and _is_flat(names):
        names = [names]
    names = _as_list(names, "output_names")
    if len(names) != len(sizes):
        raise ValueError(
            f"output_names has names for {len(names)} output layers; the model has {len(sizes)}."
        )
    return [
        default_output_names(n)
        if layer_names is None
        else _check_axis(layer_names, n, f"output layer {k}", "output_names")
        for k, (layer_names, n) in enumerate(zip(names, sizes, strict=True), start=1)
    ]


def _is_flat(names: Any) -> bool:
    return _is_sequence(names) and all(not _is_sequence(name) for name in names)


def _is_layer_names(names: Any, rank: int) -> bool:
    if _is_flat(names):
        return True
    return (
        rank > 1
        and _is_sequence(names)
        and len(names) == rank
        and all(name is None or _is_flat(name) for name in names)
    )


def _is_sequence(value: Any) -> bool:
    if isinstance(value, (str, bytes, np.generic)):
        return False
    return isinstance(value, (Sequence, np.ndarray)) or hasattr(value, "tolist")


def _as_list(value: Any, argument: str) -> list:
    if not _is_sequence(value):
        raise TypeError(f"{argument} must be a list of names; got {type(value).__name__}.")
    return list(value.tolist() if hasattr(value, "tolist") else value)


def _check_axis(names: Any, size: int, where: str, argument: str) -> list[str]:
    if not _is_flat(names):
        raise TypeError(f"{argument} for {where} must be a list of names; got {names!r}.")
    labels = [str(name) for name in _as_list(names, argument)]
    if len(labels) != size:
        raise ValueError(f"{argument} for {where} has {len(labels)} names; it needs {size}.")
    if len(set(labels)) != len(labels):
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        raise ValueError(
            f"{argument} for {where} repeats {', '.join(duplicates)}; names must be unique."
        )
    return labels
