"""Checks of user arguments, shared by the engine and the dashboard.

Messages name the argument, the value got, what is allowed, and the fix.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

DTYPES = {"float": torch.float32, "double": torch.float64}
"""innsight's dtype names and the torch types they stand for."""

DType = Literal["float", "double"]


def check_dtype(dtype: Any) -> torch.dtype:
    """The torch type for ``"float"`` or ``"double"``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be 'float' or 'double'; got {dtype!r}.")
    return DTYPES[dtype]


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """An integer of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_number(value: Any, name: str, minimum: float = 0.0) -> float:
    """A real number of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= minimum:
        raise ValueError(f"{name} must be a number >= {minimum}; got {value!r}.")
    return float(value)


def check_bool(value: Any, name: str) -> bool:
    """A boolean (numpy booleans too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


def check_index(index: Any, n: int, name: str, extent: str) -> int:
    """A 0-based index below ``n``; ``extent`` says what has ``n`` entries, for the message
    (e.g. "the result has 40 data points")."""
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
        raise TypeError(f"{name} entries must be integers; got {index!r}.")
    if not 0 <= index < n:
        raise ValueError(f"{name} {index} is out of range: {extent} (0-based, 0–{n - 1}).")
    return int(index)


def check_input_dim(input_dim: Any) -> list[tuple[int, ...]] | None:
    """Shapes of the input layers (channels first, no batch axis), or None.

    An int or a sequence of ints is one input layer; a sequence of sequences is several.
    """
    if input_dim is None:
        return None
    if isinstance(input_dim, numbers.Integral):
        input_dim = [input_dim]
    dims = list(input_dim)
    if dims and all(isinstance(d, numbers.Integral) for d in dims):
        dims = [dims]
    result = []
    for dim in dims:
        if isinstance(dim, numbers.Integral):
            dim = [dim]
        if (
            not isinstance(dim, (Sequence, np.ndarray, torch.Size))
            or not dim
            or not all(isinstance(d, numbers.Integral) and d > 0 for d in dim)
        ):
            raise ValueError(
                "input_dim must be the shape of one instance without the batch axis (channels "
                "first), e.g. (5,) or (3, 32, 32), or a list of such shapes for several input "
                f"layers; got {input_dim!r}."
            )
        result.append(tuple(int(d) for d in dim))
    return result


def resolve_output_idx(
    output_idx: Any, output_label: Any, output_names: list[list[str]]
) -> list[list[int] | None]:
    """The selected output nodes per output layer (0-based), or None for unused layers.

    ``output_idx`` and ``output_label`` select by index or by name: one value or a list for
    the first output layer, or a list with one entry (list or None) per output layer. With
    neither, innsight's default: the first ``min(10, n)`` nodes of the first output layer.
    """
    by_index = (
        None if output_idx is None else _per_layer(output_idx, "output_idx", len(output_names))
    )
    by_label = (
        None
        if output_label is None
        else _per_layer(output_label, "output_label", len(output_names))
    )
    if by_index is None and by_label is None:
        return [list(range(min(10, len(output_names[0]))))] + [None] * (len(output_names) - 1)
    if by_index is not None:
        by_index = [
            _check_indices(idx, k, names)
            for k, (idx, names) in enumerate(zip(by_index, output_names, strict=True))
        ]
    if by_label is not None:
        labelled = [
            _labels_to_indices(labels, k, names)
            for k, (labels, names) in enumerate(zip(by_label, output_names, strict=True))
        ]
        if by_index is not None and labelled != by_index:
            raise ValueError(
                f"output_idx {output_idx!r} and output_label {output_label!r} select different "
                "output nodes; give only one of them."
            )
        by_index = labelled
    if all(idx is None for idx in by_index):
        raise ValueError("No output node is selected: output_idx has only None entries.")
    return by_index


def _per_layer(value: Any, name: str, n_layers: int) -> list:
    if isinstance(value, (str, numbers.Integral)) or not isinstance(value, (Sequence, np.ndarray)):
        value = [value]
    value = list(value)
    nested = [
        v is None or (isinstance(v, (Sequence, np.ndarray)) and not isinstance(v, str))
        for v in value
    ]
    if any(nested) and not all(nested):
        raise TypeError(
            f"{name} must be a list of nodes of the first output layer, or a list with one "
            f"list (or None) per output layer; got {value!r}."
        )
    if not any(nested):
        return [value] + [None] * (n_layers - 1)
    if len(value) > n_layers:
        raise ValueError(
            f"{name} has {len(value)} entries, one per output layer, but the model has "
            f"{n_layers} output layer(s)."
        )
    return [None if v is None else list(v) for v in value] + [None] * (n_layers - len(value))


def _check_indices(indices: list | None, layer: int, names: list[str]) -> list[int] | None:
    if indices is None:
        return None
    n = len(names)
    where = f" of output layer {layer + 1}" if layer else ""
    checked = [
        check_index(index, n, "output_idx", f"output layer {layer + 1} has {n} outputs")
        for index in indices
    ]
    if len(set(checked)) != len(checked):
        raise ValueError(f"output_idx{where} repeats an index: {checked}.")
    return checked


def _labels_to_indices(labels: list | None, layer: int, names: list[str]) -> list[int] | None:
    if labels is None:
        return None
    unknown = [str(label) for label in labels if str(label) not in names]
    if unknown:
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise ValueError(
            f"output_label {', '.join(map(repr, unknown))} is not a label of output layer "
            f"{layer + 1}; its labels are {shown}."
        )
    return _check_indices([names.index(str(label)) for label in labels], layer, names)
