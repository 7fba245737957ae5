"""Turning user data (numpy, pandas, torch, lists of them) into channels-first tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

_ARRAY_TYPES = (np.ndarray, pd.DataFrame, pd.Series, Tensor)


def prepare_inputs(
    data: Any,
    input_dims: Sequence[tuple[int, ...]],
    *,
    channels_first: bool = True,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    name: str = "data",
) -> list[Tensor]:
    """One tensor ``(batch, *input_dim)`` (channels first) per input layer.

    Parameters
    ----------
    data : array-like or list of array-likes
        numpy arrays, pandas DataFrames, torch tensors or nested lists of numbers; a list
        of them (one per input layer) for models with several input layers. A single
        instance (without batch axis) gets a batch axis of length 1.
    input_dims : list of tuple
        The model's input shapes, channels first, without the batch axis.
    channels_first : bool, default=True
        False when the channel axis of ``data`` is its last axis.
    name : str, default="data"
        The argument name used in messages (``"x_ref"``, ``"data_ref"``...).
    """
    parts = _split_layers(data, len(input_dims), name)
    tensors = []
    for layer, (part, dim) in enumerate(zip(parts, input_dims, strict=True), start=1):
        where = f"{name} for input layer {layer}" if len(input_dims) > 1 else name
        x = _as_tensor(part, where)
        expected = dim if channels_first or len(dim) == 1 else (*dim[1:], dim[0])
        if tuple(x.shape) == expected:
            x = x.unsqueeze(0)
        if x.ndim != len(dim) + 1 or tuple(x.shape[1:]) != expected:
            raise ValueError(_shape_message(where, tuple(x.shape), dim, channels_first))
        if not channels_first and len(dim) > 1:
            x = x.movedim(-1, 1)
        tensors.append(x.to(device=device, dtype=dtype).contiguous())
    batches = {x.shape[0] for x in tensors}
    if len(batches) > 1:
        raise ValueError(
            f"The input layers of {name} have different numbers of rows: {sorted(batches)}."
        )
    return tensors


def _is_list_of_arrays(data: Any) -> bool:
    """A list with one array per input layer (not a nested list of numbers)."""
    return isinstance(data, (list, tuple)) and any(isinstance(p, _ARRAY_TYPES) for p in data)


def _split_layers(data: Any, n_layers: int, name: str) -> list[Any]:
    is_list_of_arrays = _is_list_of_arrays(data)
    if n_layers == 1:
        if is_list_of_arrays and len(data) == 1:
            return list(data)
        if is_list_of_arrays:
            raise ValueError(
                f"{name} is a list of {len(data)} arrays, but the model has one input layer: "
                "pass a single array."
            )
        return [data]
    if not isinstance(data, (list, tuple)) or len(data) != n_layers:
        got = f"a list of {len(data)}" if isinstance(data, (list, tuple)) else "one array"
        raise ValueError(
            f"The model has {n_layers} input layers, so {name} must be a list of {n_layers} "
            f"arrays (one per input layer); got {got}."
        )
    return list(data)


def _as_tensor(value: Any, where: str) -> Tensor:
    if isinstance(value, Tensor):
        tensor = value.detach()
    else:
        if isinstance(value, (pd.DataFrame, pd.Series)):
            value = value.to_numpy()
        try:
            array = np.array(value, dtype=np.float64)  # a writable copy
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"{where} must be numeric (a numpy array, pandas DataFrame, torch tensor or "
                f"nested list of numbers): {error}"
            ) from None
        tensor = torch.from_numpy(array)
    if not (
        tensor.is_floating_point()
        or tensor.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8)
    ):
        raise TypeError(f"{where} must be numeric; got a tensor of type {tensor.dtype}.")
    return tensor


def _shape_message(where: str, shape: tuple, dim: tuple, channels_first: bool) -> str:
    layout = "channels first" if channels_first else "channels last"
    expected = dim if channels_first or len(dim) == 1 else (*dim[1:], dim[0])
    message = (
        f"{where} has shape {shape}, but the model expects (batch, "
        f"{', '.join(map(str, expected))}) ({layout})."
    )
    if len(dim) > 1 and len(shape) == len(dim) + 1:
        flipped = (*dim[1:], dim[0]) if channels_first else dim
        if tuple(shape[1:]) == flipped:
            other = "False" if channels_first else "True"
            message += f" The data looks {'channels last' if channels_first else 'channels first'}"
            message += f": pass channels_first={other}."
    return message


def infer_input_dims(data: Any) -> list[tuple[int, ...]]:
    """The per-instance shapes of ``data`` (one array, or a list of arrays per input)."""
    parts = list(data) if _is_list_of_arrays(data) else [data]
    dims = []
    for layer, part in enumerate(parts, start=1):
        shape = tuple(_as_tensor(part, f"data for input {layer}").shape)
        if len(shape) < 2:
            raise ValueError(
                f"data for input {layer} has shape {shape}; it needs a batch axis first, "
                "e.g. (batch, features)."
            )
        dims.append(shape[1:])
    return dims
