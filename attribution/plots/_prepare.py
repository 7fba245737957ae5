"""From a result to plot-ready arrays: selected rows and nodes, channel aggregation, scaling.

innsight's preparation (notes section 5.0): rows and output nodes are picked from what was
computed, signal and image channels are aggregated, and colours use ``value / max|value|``
within a normalisation group.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from attribution._validation import check_index, resolve_output_idx

if TYPE_CHECKING:
    from attribution.result import AttributionResult

Aggregation = Literal["sum", "mean", "norm"] | Callable[..., Any]
Preprocess = Literal["abs", "identity", "square"] | Callable[..., Any]

_AGGREGATIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "sum": lambda values, axis: values.sum(axis=axis),
    "mean": lambda values, axis: values.mean(axis=axis),
    "norm": lambda values, axis: np.sqrt((values**2).sum(axis=axis)),
}
_PREPROCESSES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "abs": np.abs,
    "identity": lambda values: values,
    "square": np.square,
}


@dataclass
class Column:
    """One grid column: an output node seen from one input layer.

    ``values`` is ``(rows, *axes)`` after channel aggregation (features; signal positions;
    image height × width), or None when the input layer does not reach the output layer.
    """

    output_layer: int
    node: int
    node_label: str
    input_layer: int
    rank: int
    axis_names: list[list[str]]
    values: np.ndarray | None
    preds: np.ndarray | None = None
    goals: np.ndarray | None = None
    sums: np.ndarray | None = None

    @property
    def output_name(self) -> str:
        return f"Output_{self.output_layer + 1}"

    @property
    def input_name(self) -> str:
        return f"Input_{self.input_layer + 1}"


def check_data_idx(data_idx: Any, n_data: int, name: str = "data_idx") -> list[int]:
    """Row indices (0-based) of the explained data, one int or a list of them."""
    if isinstance(data_idx, (numbers.Integral, np.integer)) and not isinstance(data_idx, bool):
        data_idx = [data_idx]
    if isinstance(data_idx, range):
        data_idx = list(data_idx)
    if not isinstance(data_idx, (Sequence, np.ndarray)) or isinstance(data_idx, str):
        raise TypeError(f"{name} must be a row index or a list of them; got {data_idx!r}.")
    extent = f"the result has {n_data} data points"
    rows = [check_index(index, n_data, name, extent) for index in data_idx]
    if not rows:
        raise ValueError(f"{name} is empty; select at least one data point.")
    return rows


def select_nodes(
    result: AttributionResult, output_idx: Any, output_label: Any
) -> list[tuple[int, int]]:
    """``(output layer, node)`` pairs to plot, a subset of those the result computed.

    With neither argument: the first computed node of the first output layer that has any
    (innsight's default).
    """
    computed = result.output_idx
    if output_idx is None and output_label is None:
        k = next(k for k, idx in enumerate(computed) if idx)
        return [(k, computed[k][0])]
    if output_idx is not None and output_label is not None:
        warnings.warn(
            "Both output_idx and output_label are given; output_label is ignored.", stacklevel=4
        )
        output_label = None
    selection = resolve_output_idx(output_idx, output_label, result.output_names)
    pairs = []
    for k, nodes in enumerate(selection):
        for node in nodes or []:
            if node not in (computed[k] or []):
                done = ", ".join(f"{i} ('{result.output_names[k][i]}')" for i in computed[k] or [])
                raise ValueError(
                    f"Output node {node} ('{result.output_names[k][node]}') of output layer "
                    f"{k + 1} was not computed; this result has "
                    f"{done or 'none of that layer'}. Plot one of those, or compute the "
                    "method again with that node in output_idx."
                )
            pairs.append((k, node))
    return pairs


def aggregate_channels(values: np.ndarray, rank: int, how: Aggregation) -> np.ndarray:
    """Aggregate axis 1 (channels) of ``(rows, channels, *spatial)`` for signals and images."""
    if not callable(how) and not (isinstance(how, str) and how in _AGGREGATIONS):
        raise ValueError(
            f"aggr_channels must be 'sum', 'mean', 'norm' or a function f(values, axis) that "
            f"reduces the channel axis (e.g. numpy.max); got {how!r}."
        )
    if rank == 1:
        return values
    reduced = np.asarray(how(values, 1)) if callable(how) else _AGGREGATIONS[how](values, 1)
    expected = values.shape[:1] + values.shape[2:]
    if reduced.shape != expected:
        raise ValueError(
            f"aggr_channels {how!r} returned shape {reduced.shape}; it must reduce the "
            f"channel axis (axis=1) of {values.shape} to {expected}."
        )
    return reduced


def preprocess_values(values: np.ndarray, how: Preprocess) -> np.ndarray:
    """``plot_global``'s element-wise ``preprocess``, applied before channel aggregation."""
    if callable(how):
        processed = np.asarray(how(values))
    elif isinstance(how, str) and how in _PREPROCESSES:
        processed = _PREPROCESSES[how](values)
    else:
        raise ValueError(
            "preprocess must be 'abs', 'identity', 'square' or an element-wise function; "
            f"got {how!r}."
        )
    if processed.shape != values.shape:
        raise ValueError(
            f"preprocess {how!r} changed the shape {values.shape} to {processed.shape}; it "
            "must work element-wise."
        )
    return processed


def collect_columns(
    result: AttributionResult,
    rows: list[int],
    nodes: list[tuple[int, int]],
    aggr_channels: Aggregation,
    preprocess: Preprocess | None = None,
) -> list[Column]:
    """One :class:`Column` per (output node, input layer), output-node major."""
    columns = []
    for k, node in nodes:
        position = result.output_idx[k].index(node)
        label = result.output_names[k][node]
        if len(result.output_names) > 1:
            label = f"Output_{k + 1}: {label}"
        preds = _pick(result.preds[k], rows, position)
        goals = _pick(result.decomp_goal[k], rows, position)
        for j, tensor in enumerate(result.result[k]):
            dim = result.input_dim[j]
            column = Column(k, node, label, j, len(dim), result.input_names[j], None, preds, goals)
            if tensor is not None:
                raw = result._channels_first(tensor, dim)[rows, ..., position]
                column.sums = raw.double().flatten(1).sum(1).cpu().numpy()
                values = raw.detach().cpu().float().numpy()
                if preprocess is not None:
                    values = preprocess_values(values, preprocess)
                column.values = aggregate_channels(values, len(dim), aggr_channels)
            columns.append(column)
    return columns


def _pick(tensor: torch.Tensor | None, rows: list[int], position: int) -> np.ndarray | None:
    if tensor is None:
        return None
    return tensor[rows, position].detach().double().cpu().numpy()


def group_scales(columns: list[Column], groups: list[list[int]]) -> list[np.ndarray | None]:
    """``max|value|`` per row of each column, shared by each group of columns.

    ``groups`` lists column positions that share one scale; each scale has shape ``(rows,)``.
    """
    scales: list[np.ndarray | None] = [None] * len(columns)
    for group in groups:
        present = [columns[c].values for c in group if columns[c].values is not None]
        if not present:
            continue
        largest = np.max([np.abs(v).reshape(len(v), -1).max(1) for v in present], axis=0)
        for c in group:
            if columns[c].values is not None:
                scales[c] = largest
    return scales


def normalise(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """innsight's ``fill = value / max|value|`` (0 where the max is 0), row-wise if
    ``scale`` has one entry per row of ``values``."""
    scale = np.reshape(scale, np.shape(scale) + (1,) * (values.ndim - np.ndim(scale)))
    scale = np.broadcast_to(scale, values.shape)
    return np.divide(values, scale, out=np.zeros(values.shape, np.float32), where=scale > 0)


def scale_groups(columns: list[Column], across_inputs: bool) -> list[list[int]]:
    """Column positions per normalisation group: per node, or per (node, input layer)."""
    if not across_inputs:
        return [[c] for c in range(len(columns))]
    groups: dict[tuple[int, int], list[int]] = {}
    for c, column in enumerate(columns):
        groups.setdefault((column.output_layer, column.node), []).append(c)
    return list(groups.values())
