"""Reading typed values out of one layer of innsight's named-list model format."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

MAX_SPEC_INT = 2**31 - 1
"""The largest size, stride or padding a layer of a spec may declare."""


def spec_tensor(
    spec: dict, key: str, *, ndim: int, length: int | None = None, required: bool = True
) -> Tensor | None:
    """The float64 tensor under ``key`` with ``ndim`` axes (and ``length`` entries on axis 0)."""
    if spec.get(key) is None:
        if required:
            raise ValueError(f"the key '{key}' is missing.")
        return None
    try:
        value = torch.as_tensor(np.asarray(spec[key], dtype=np.float64))
    except (TypeError, ValueError) as error:
        raise ValueError(f"'{key}' must be numeric (nested lists or an array): {error}") from None
    if value.ndim == 0 and ndim == 1:
        value = value.reshape(1)
    if value.ndim != ndim:
        raise ValueError(f"'{key}' must have {ndim} axes; got shape {tuple(value.shape)}.")
    if length is not None and value.shape[0] != length:
        raise ValueError(f"'{key}' must have {length} entries; got {value.shape[0]}.")
    return value


def spec_ints(
    spec: dict, key: str, default: Sequence[int] | int | None, lengths: Sequence[int]
) -> tuple:
    """The integers under ``key`` (or ``default``; None: required), of a length in ``lengths``."""
    value = spec.get(key, default)
    if value is None:
        raise ValueError(f"the key '{key}' is missing.")
    values = np.atleast_1d(np.asarray(value))
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.number) or np.any(values % 1):
        raise ValueError(f"'{key}' must be an integer or a vector of integers; got {value!r}.")
    if len(values) not in lengths:
        allowed = " or ".join(map(str, lengths))
        raise ValueError(f"'{key}' must have length {allowed}; got {len(values)}.")
    if np.any(np.abs(values) > MAX_SPEC_INT):
        raise ValueError(
            f"'{key}' is {value!r}; sizes, strides and paddings must lie within ±{MAX_SPEC_INT}."
        )
    return tuple(int(v) for v in values)


def spec_axis(spec: dict, key: str, default: int) -> int:
    """The axis under ``key`` as an axis of one instance (0 = channels).

    The spec counts axes from 1 with the batch axis first, as innsight does (2 = the first
    axis after the batch); negative values count from the end.
    """
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"'{key}' must be an integer axis; got {value!r}.")
    if value in (0, 1):
        raise ValueError(
            f"'{key}' is {value}, but axes count from 1 with the batch axis first, and the "
            "batch axis cannot be used: give 2 for the first axis after the batch, or -1 for "
            "the last."
        )
    return int(value) - 2 if value > 0 else int(value)
