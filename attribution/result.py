"""Attribution results: the tensors, the names to read them, and innsight's views of them."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

ResultType = Literal["array", "torch", "data.frame"]
_TYPE_ALIASES = {"torch_tensor": "torch", "torch.tensor": "torch", "numpy": "array"}
_DF_COLUMNS = [
    "data", "model_input", "model_output", "feature", "feature_2", "channel", "output_node",
    "value", "pred", "decomp_sum", "decomp_goal", "input_dimension",
]  # fmt: skip


class AttributionResult:
    """Attributions for selected output nodes, as innsight's method objects hold them.

    Attributes
    ----------
    result : list of list of Tensor or None
        ``result[k][j]`` has shape ``(batch, *input_dim_j, n_selected_k)`` for output layer
        ``k`` and input layer ``j``, in the data's channel order; None where output layer
        ``k`` has no selected node or is not connected to input layer ``j``.
    preds : list of Tensor or None
        Per output layer, the (activated) model output ``(batch, n_selected_k)``.
    decomp_goal : list of Tensor or None
        Per output layer, what the attributions of each instance should sum to (the
        differentiated output for gradients, ``f(x) - f(x_ref)`` for path methods), or None.
    output_idx : list of list of int or None
        The selected nodes per output layer (0-based).
    input_names, output_names : list
        Names per input layer and axis (channels first), and labels per output layer.
    input_dim : list of tuple
        Input shapes, channels first, without the batch axis.
    channels_first : bool
        Whether ``result`` has the channel axis first (as the data had).
    """

    def __init__(
        self,
        *,
        method_name: str,
        value_name: str,
        result: list[list[Tensor | None]],
        preds: list[Tensor | None],
        decomp_goal: list[Tensor | None],
        output_idx: list[list[int] | None],
        input_names: list[list[list[str]]],
        output_names: list[list[str]],
        input_dim: list[tuple[int, ...]],
        channels_first: bool = True,
        fields: dict[str, str] | None = None,
        other_fields: dict[str, str] | None = None,
    ) -> None:
        self.method_name = method_name
        self.value_name = value_name
        self.result = result
        self.preds = preds
        self.decomp_goal = decomp_goal
        self.output_idx = output_idx
        self.input_names = input_names
        self.output_names = output_names
        self.input_dim = input_dim
        self.channels_first = channels_first
        self._fields = fields or {}
        self._other_fields = other_fields or {}

    @property
    def n_data(self) -> int:
        """Number of explained instances (rows); 1 for global Connection Weights."""
        return next(len(t) for per_input in self.result for t in per_input if t is not None)

    def get_result(self, type: ResultType = "array") -> Any:
        """The attributions as numpy arrays, torch tensors or innsight's tidy data frame.

        Parameters
        ----------
        type : {"array", "torch", "data.frame"}, default="array"
            ``"array"`` and ``"torch"`` give one array ``(batch, *input_dim, n_outputs)``
            when the model has one input and one output layer, else a dict
            ``{"Output_1": {"Input_1": array, ...}, ...}`` over the output layers with
            selected nodes (None for unconnected input layers). ``"data.frame"`` gives one
            row per value with innsight's columns (see Notes).

        Notes
        -----
        Data frame columns, in innsight's order: ``data`` (``data_1``... for row 0...),
        ``model_input``, ``model_output``, ``feature`` (feature, signal position or image
        height), ``feature_2`` (image width; only if an input is an image), ``channel``
        (only if an input is not tabular), ``output_node``, ``value``, ``pred`` (the
        activated output), ``decomp_sum`` (sum of ``value`` over the input layer),
        ``decomp_goal`` and ``input_dimension`` (1 tabular, 2 signal, 3 image). Rows vary
        fastest by data, then channel, feature, feature_2 and output node; blocks follow
        per input layer, then per output layer. Unconnected pairs have no rows.
        """
        kind = _TYPE_ALIASES.get(type, type)
        if kind == "data.frame":
            return self._data_frame()
        if kind not in ("array", "torch"):
            raise ValueError(f"type must be 'array', 'torch' or 'data.frame'; got {type!r}.")
        convert = (lambda t: t.numpy()) if kind == "array" else (lambda t: t)
        if len(self.result) == 1 and len(self.input_dim) == 1:
            return convert(self.result[0][0])
        return {
            f"Output_{k + 1}": {
                f"Input_{j + 1}": None if tensor is None else convert(tensor)
                for j, tensor in enumerate(per_input)
            }
            for k, per_input in enumerate(self.result)
            if self.output_idx[k]
        }

    def _channels_first(self, tensor: Tensor, dim: tuple[int, ...]) -> Tensor:
        if self.channels_first or len(dim) == 1:
            return tensor
        return tensor.movedim(-2, 1)

    def _data_frame(self) -> pd.DataFrame:
        blocks = []
        for k, per_input in enumerate(self.result):
            if not self.output_idx[k]:
                continue
            labels = [self.output_names[k][i] for i in self.output_idx[k]]
            preds = None if self.preds[k] is None else self.preds[k].numpy()
            goal = None if self.decomp_goal[k] is None else self.decomp_goal[k].numpy()
            for j, tensor in enumerate(per_input):
                if tensor is not None:
                    values = self._channels_first(tensor, self.input_dim[j]).numpy()
                    blocks.append(_block(values, k, j, self.input_names[j], labels, preds, goal))
        frame = pd.concat(blocks, ignore_index=True)
        ranks = {
            len(self.input_dim[j])
            for k, per_input in enumerate(self.result)
            for j, t in enumerate(per_input)
            if t is not None
        }
        columns = [
            c
            for c in _DF_COLUMNS
            if (c != "feature_2" or 3 in ranks) and (c != "channel" or ranks - {1})
        ]
        frame = frame.reindex(columns=columns)
        categories = {
            "data": [f"data_{i + 1}" for i in range(self.n_data)],
            "model_output": [f"Output_{k + 1}" for k in range(len(self.output_names))],
        }
        for column in ("data", "model_output", "feature", "feature_2", "channel", "output_node"):
            if column in frame:
                levels = categories.get(column) or list(dict.fromkeys(frame[column].dropna()))
                frame[column] = pd.Categorical(frame[column], categories=levels)
        return frame

    def __repr__(self) -> str:
        return "\n".join(self._summary())

    def _summary(self) -> list[str]:
        lines = [f"── Method {self.method_name} " + "─" * max(3, 50 - len(self.method_name))]
        if self._fields:
            lines.append("Fields (method-specific):")
            lines += [f"  • {key}: {value}" for key, value in self._fields.items()]
        lines.append("Fields (other):")
        several = len(self.output_idx) > 1
        for k, idx in enumerate(self.output_idx):
            if idx:
                labels = ", ".join(f"'{self.output_names[k][i]}'" for i in idx)
                where = f" (output layer {k + 1})" if several else ""
                lines.append(
                    f"  • output_idx{where}: {', '.join(map(str, idx))} "
                    f"(→ corresponding labels: {labels})"
                )
        lines += [f"  • {key}: {value}" for key, value in self._other_fields.items()]
        lines.append(f"  • channels_first: {self.channels_first}")
        lines.append("── Result (result) " + "─" * 34)
        for k, per_input in enumerate(self.result):
            if not self.output_idx[k]:
                continue
            for j, tensor in enumerate(per_input):
                if len(self.result) > 1 or len(per_input) > 1:
                    lines.append(f"  Output layer {k + 1}, input layer {j + 1}:")
                if tensor is None:
                    lines.append(f"    (not connected to output layer {k + 1})")
                    continue
                lines += _tensor_summary(tensor)
        return lines


def _tensor_summary(tensor: Tensor) -> list[str]:
    values = tensor.double()
    finite = values[~torch.isnan(values)]
    lines = [f"    Shape: {tuple(tensor.shape)}"]
    if finite.numel():
        lines.append(
            f"    Range: min: {finite.min().item():.4g}, median: "
            f"{finite.median().item():.4g}, max: {finite.max().item():.4g}"
        )
    lines.append(f"    Number of NaN values: {int(torch.isnan(values).sum())}")
    return lines


def _block(
    values: np.ndarray,
    output_layer: int,
    input_layer: int,
    names: list[list[str]],
    labels: list[str],
    preds: np.ndarray | None,
    goal: np.ndarray | None,
) -> pd.DataFrame:
    """The rows of one (output layer, input layer) pair, ``data`` varying fastest."""
    shape = values.shape  # (batch, *axes, n_out)
    rank = len(shape) - 2
    index = np.stack([axis.ravel(order="F") for axis in np.indices(shape)])
    data_i, out_i = index[0], index[-1]
    # innsight's axis roles: tabular (feature); signal (channel, feature); image
    # (channel, feature = height, feature_2 = width).
    axis_columns = {
        1: ["feature"],
        2: ["channel", "feature"],
        3: ["channel", "feature", "feature_2"],
    }[rank]
    decomp_sum = values.sum(axis=tuple(range(1, rank + 1)))
    block = {
        "data": np.array([f"data_{i + 1}" for i in range(shape[0])])[data_i],
        "model_input": f"Input_{input_layer + 1}",
        "model_output": f"Output_{output_layer + 1}",
    }
    for column, axis, axis_names in zip(axis_columns, range(1, rank + 1), names, strict=True):
        block[column] = np.asarray(axis_names)[index[axis]]
    block |= {
        "output_node": np.asarray(labels)[out_i],
        "value": values.ravel(order="F"),
        "pred": np.nan if preds is None else preds[data_i, out_i],
        "decomp_sum": decomp_sum[data_i, out_i],
        "decomp_goal": np.nan if goal is None else goal[data_i, out_i],
        "input_dimension": rank,
    }
    return pd.DataFrame(block)
