"""Attribution results: the tensors, the names to read them, and innsight's views of them."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

if TYPE_CHECKING:
    from attribution.plots._prepare import Aggregation, Preprocess
    from attribution.plots.figure import InnsightFigure

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
    has_data : bool
        False for results that explain no data (global Connection Weights).
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
        has_data: bool = True,
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
        self.has_data = has_data

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

    def plot(
        self,
        data_idx: int | list[int] = 0,
        output_idx: Any = None,
        output_label: Any = None,
        aggr_channels: Aggregation = "sum",
        same_scale: bool = False,
        show_preds: bool = True,
    ) -> InnsightFigure:
        """Attributions of single data points as a grid of panels, as innsight's plotly plot.

        One row per data point (right strip ``data_i``), one column per output node and
        input layer (top strip with the node label; with several input layers the input
        layer's name, under a strip for the node). Tabular inputs are drawn as bars per
        feature in input-name order, signals as bars over the positions (bars rather than a
        line, because every bar carries its own colour), images as heatmaps. Colours show
        innsight's normalised value ``value / max|value|`` on a blue-white-red scale (red
        positive); bar heights and hover texts show the raw value.

        Parameters
        ----------
        data_idx : int or list of int, default=0
            Rows of the explained data to show (0-based). Ignored, with a warning, for global
            Connection Weights.
        output_idx, output_label : optional
            Output nodes to show, by index or label, in the forms the methods accept; they
            must have been computed. Default: the first computed node.
        aggr_channels : {"sum", "mean", "norm"} or callable, default="sum"
            How signal and image channels are combined: ``"norm"`` is ``sqrt(sum(x**2))``;
            a callable is called as ``f(values, axis)`` and must reduce ``axis`` (e.g.
            ``numpy.max``). Tabular inputs are not aggregated.
        same_scale : bool, default=False
            Normalise colours per (data point, output node) across input layers instead of
            per panel; only matters for several input layers.
        show_preds : bool, default=True
            Show a small box per panel with the prediction (``Pred.``), the sum of the
            panel's attributions (``Sum``) and the decomposition goal (``Goal``), as
            innsight's ggplot2 plots do.

        Returns
        -------
        InnsightFigure
            A plotly ``Figure``; ``fig[i, j]`` selects rows ``i`` and columns ``j``.

        Notes
        -----
        Images are drawn in natural orientation, first row at the top; innsight draws the
        first row at the bottom. The figure has innsight's menus: a colour scale dropdown
        and, for images, Heatmap/Contour.

        Examples
        --------
        >>> import torch
        >>> from attribution import Converter, Gradient
        >>> conv = Converter(torch.nn.Sequential(torch.nn.Linear(3, 2)))
        >>> res = Gradient(conv, torch.ones(4, 3), output_idx=[0, 1])
        >>> fig = res.plot(data_idx=[0, 2], output_idx=[0, 1])
        >>> fig.grid_shape, [trace.type for trace in fig.data]
        ((2, 2), ['bar', 'bar', 'bar', 'bar'])
        """
        from attribution.plots import plot_individual

        return plot_individual(
            self, data_idx, output_idx, output_label, aggr_channels, same_scale, show_preds
        )

    def plot_global(
        self,
        output_idx: Any = None,
        output_label: Any = None,
        data_idx: str | list[int] = "all",
        ref_data_idx: int | None = None,
        aggr_channels: Aggregation = "sum",
        preprocess: Preprocess = "abs",
        individual_data_idx: list[int] | None = None,
        individual_max: int = 20,
    ) -> InnsightFigure:
        """Attributions summarised over data points, as innsight's plotly boxplot.

        One panel per output node and input layer. Tabular and signal inputs get a box per
        feature (Tukey's hinges and 1.5 × IQR whiskers, outliers as points) with a
        Boxplot/Violin switch, and a "Data point" dropdown that draws one row's values as
        red segments. Images get pixel-wise quantile heatmaps (min, 12.5 %, ..., max) with
        a slider; the median is shown first. Colours are normalised per output node over
        the rows and input layers.

        Parameters
        ----------
        output_idx, output_label : optional
            Output nodes, as for :meth:`plot`.
        data_idx : "all" or list of int, default="all"
            Rows (0-based) that feed the statistics.
        ref_data_idx : int, optional
            A row of all the data drawn in red from the start (tabular and signal inputs;
            ignored with a warning for images).
        aggr_channels : {"sum", "mean", "norm"} or callable, default="sum"
            As for :meth:`plot`, applied after ``preprocess``.
        preprocess : {"abs", "identity", "square"} or callable, default="abs"
            Element-wise function applied to the attributions first, so that positive and
            negative values do not cancel.
        individual_data_idx : list of int, optional
            Rows offered in the "Data point" dropdown (default: all), with
            ``ref_data_idx`` first.
        individual_max : int, default=20
            At most this many rows of ``individual_data_idx`` are offered.

        Returns
        -------
        InnsightFigure

        Raises
        ------
        ValueError
            For global Connection Weights, which explains no data points.

        Notes
        -----
        The figure carries box statistics and violin outlines computed here instead of the
        raw values, so it stays small for thousands of rows; plotly's own violin trace
        would need every value.

        Examples
        --------
        >>> import torch
        >>> from attribution import Converter, Gradient
        >>> conv = Converter(torch.nn.Sequential(torch.nn.Linear(3, 2)))
        >>> res = Gradient(conv, torch.randn(30, 3), times_input=True)
        >>> fig = res.plot_global(ref_data_idx=4)
        >>> [trace.type for trace in fig.data][:3]
        ['box', 'scatter', 'scatter']
        """
        from attribution.plots import plot_global_result

        return plot_global_result(
            self, output_idx, output_label, data_idx, ref_data_idx, aggr_channels,
            preprocess, individual_data_idx, individual_max,
        )  # fmt: skip

    def boxplot(self, *args: Any, **kwargs: Any) -> InnsightFigure:
        """Alias of :meth:`plot_global` (innsight's name); warns for image inputs, whose
        summary is a quantile heatmap rather than a box plot."""
        if any(len(dim) == 3 for dim in self.input_dim):
            warnings.warn(
                "boxplot() of image inputs shows pixel-wise quantiles; plot_global() is the "
                "same figure under a name that says so.",
                stacklevel=2,
            )
        return self.plot_global(*args, **kwargs)

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
