"""The features LIME and SHAP perturb: single input values, or groups of them.

Every value of every input layer belongs to one feature. By default each value is its own
feature (as innsight); ``feature_groups`` (an integer mask per input layer) or
``patch_size`` (square patches of images, windows of signals) group them, and a group's
attribution is broadcast back onto its values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribution._data import prepare_inputs


@dataclass
class Features:
    """Which feature each value belongs to, over all input layers flattened and joined."""

    index: Tensor  # (n_values,) int64: the feature of each value
    n_features: int
    dims: list[tuple[int, ...]]  # the input shapes, channels first
    grouped: bool  # whether some feature holds more than one value

    def flatten(self, inputs: list[Tensor]) -> Tensor:
        """``(batch, n_values)``: the input layers' values joined."""
        return torch.cat([x.flatten(1) for x in inputs], dim=1)

    def unflatten(self, values: Tensor) -> list[Tensor]:
        """``(batch, n_values, ...)`` split back into one tensor per input layer."""
        sizes = [math.prod(dim) for dim in self.dims]
        return [
            part.reshape(len(part), *dim, *part.shape[2:])
            for part, dim in zip(values.split(sizes, dim=1), self.dims, strict=True)
        ]

    def expand(self, mask: Tensor) -> Tensor:
        """A ``(..., n_features)`` choice of features as ``(..., n_values)``."""
        return mask[..., self.index]

    def per_value(self, attribution: Tensor) -> list[Tensor]:
        """``(batch, n_features, K)`` attributions onto the inputs' values, per layer."""
        return self.unflatten(attribution[:, self.index])


def features(
    dims: Sequence[tuple[int, ...]],
    feature_groups: Any = None,
    patch_size: int | Sequence[int] | None = None,
    *,
    channels_first: bool = True,
) -> Features:
    """The features of inputs of shapes ``dims`` (channels first).

    ``feature_groups`` is an integer array of one instance's shape per input layer (a
    list for several; in the data's layout): values with the same label form one
    feature (labels of different layers are different features). ``patch_size`` groups
    images into ``p × p`` patches (or ``(ph, pw)``) and signals into windows of ``p``
    steps, all channels together; tabular inputs stay one feature per value.
    """
    dims = [tuple(d) for d in dims]
    if feature_groups is not None and patch_size is not None:
        raise ValueError("Pass feature_groups or patch_size, not both.")
    if feature_groups is not None:
        masks = prepare_inputs(
            _with_batch(feature_groups, len(dims)), dims, channels_first=channels_first,
            dtype=torch.float64, name="feature_groups",
        )  # fmt: skip
        labels = [m[0].flatten() for m in masks]
        if any((lab != lab.round()).any() for lab in labels):
            raise ValueError("feature_groups must hold whole numbers (one label per group).")
    elif patch_size is not None:
        labels = [_patches(dim, patch_size) for dim in dims]
    else:
        labels = [torch.arange(math.prod(dim), dtype=torch.float64) for dim in dims]
    index, offset = [], 0
    for lab in labels:
        _, inverse = torch.unique(lab, return_inverse=True)
        index.append(inverse + offset)
        offset += int(inverse.max()) + 1 if len(inverse) else 0
    joined = torch.cat(index)
    return Features(joined, offset, dims, grouped=offset < len(joined))


def _with_batch(groups: Any, n_layers: int) -> Any:
    """One instance's mask per layer with a batch axis of 1, as ``prepare_inputs`` takes."""
    layers = list(groups) if n_layers > 1 else [groups]
    return [np.asarray(g)[None] for g in layers] if n_layers > 1 else np.asarray(layers[0])[None]


def _patches(dim: tuple[int, ...], patch_size: int | Sequence[int]) -> Tensor:
    """The patch label of each value of one instance of shape ``dim`` (channels first)."""
    spatial = dim[1:]
    if len(spatial) == 0:
        raise ValueError(
            f"patch_size groups images and signals; this input has shape {dim}. Use "
            "feature_groups to group tabular features."
        )
    sizes = [patch_size] * len(spatial) if isinstance(patch_size, int) else list(patch_size)
    if len(sizes) != len(spatial) or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(
            f"patch_size must be a positive integer or {len(spatial)} of them for inputs "
            f"of shape {dim}; got {patch_size!r}."
        )
    grids = torch.meshgrid(
        *[torch.arange(n) // s for n, s in zip(spatial, sizes, strict=True)], indexing="ij"
    )
    per_position = grids[0]
    for grid, n, s in zip(grids[1:], spatial[1:], sizes[1:], strict=True):
        per_position = per_position * math.ceil(n / s) + grid
    return per_position.expand(dim[0], *spatial).flatten().double()
