"""``plot()``: a grid of one panel per data point × output node × input layer."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from attribution._validation import check_bool
from attribution.plots import _style
from attribution.plots._prepare import (
    Aggregation,
    Column,
    check_data_idx,
    collect_columns,
    group_scales,
    normalise,
    scale_groups,
    select_nodes,
)
from attribution.plots.figure import Cell, Grid, InnsightFigure

if TYPE_CHECKING:
    from attribution.result import AttributionResult

_BAR_AXIS = {"gridcolor": _style.GRID_COLOR, "title": {"text": ""}, "zeroline": False}


def plot_individual(
    result: AttributionResult,
    data_idx: Any = 0,
    output_idx: Any = None,
    output_label: Any = None,
    aggr_channels: Aggregation = "sum",
    same_scale: bool = False,
    show_preds: bool = True,
) -> InnsightFigure:
    """The figure of :meth:`AttributionResult.plot` (see there).

    Where it differs from innsight's plotly figure, for readability: panels have a minimum
    size (image panels at least 150 px on the shorter side, bar panels 200 px wide) and the
    figure's ``width`` and ``height`` grow with the grid instead of squeezing it into the
    page (see :mod:`attribution.plots._sizes`); the info box is a strip above each panel,
    never over its pixels or bars; image panels are framed.
    """
    same_scale = check_bool(same_scale, "same_scale")
    show_preds = check_bool(show_preds, "show_preds")
    if result.has_data:
        rows = check_data_idx(data_idx, result.n_data)
    else:
        if data_idx not in (0, [0]):
            warnings.warn(
                "data_idx is ignored: global Connection Weights has one result for all data.",
                stacklevel=3,
            )
        rows = [0]
    nodes = select_nodes(result, output_idx, output_label)
    columns = collect_columns(result, rows, nodes, aggr_channels)
    scales = group_scales(columns, scale_groups(columns, same_scale))
    fills = [
        None if s is None else normalise(c.values, s) for c, s in zip(columns, scales, strict=True)
    ]
    labels = [f"data_{row + 1}" for row in rows]
    cells = [
        [
            _cell(result.value_name, column, fill, r, label, show_preds)
            for column, fill in zip(columns, fills, strict=True)
        ]
        for r, label in enumerate(labels)
    ]
    grid = Grid(
        cells=cells,
        node_labels=[c.node_label for c in columns],
        input_labels=[c.input_name for c in columns],
        row_labels=labels,
        multiplot=len(result.input_dim) > 1,
        value_name=result.value_name,
    )
    return grid.figure()


def _cell(
    value_name: str,
    column: Column,
    fill: np.ndarray | None,
    r: int,
    data_label: str,
    show_preds: bool,
) -> Cell:
    if column.values is None:
        return not_connected_cell(column)
    values = column.values[r]
    extra = [data_label, column.output_name, column.node_label.split(": ", 1)[-1]]
    if column.rank == 3:
        cell = Cell(
            "image",
            xaxis=dict(_style.IMAGE_X_AXIS),
            yaxis=dict(_style.IMAGE_Y_AXIS),
        )
        trace = {
            "type": "heatmap", "z": fill[r], "customdata": values,
            "x": column.axis_names[2], "y": column.axis_names[1],
            "zmin": -1, "zmid": 0, "zmax": 1, "colorscale": _style.DIVERGING,
            "hovertemplate": _style.hover_template(
                value_name, "customdata", 3, column.input_name, extra
            ),
        }  # fmt: skip
    else:
        signal = column.rank == 2
        cell = Cell(
            "bar",
            xaxis={**_BAR_AXIS, "type": "linear" if signal else "category"},
            yaxis=dict(_BAR_AXIS),
            shapes=[_ZERO_LINE],
        )
        trace = {
            "type": "bar",
            "x": np.arange(1, len(values) + 1) if signal else column.axis_names[0],
            "y": values,
            "marker": {
                "color": fill[r], "colorscale": _style.DIVERGING, "cmin": -1, "cmid": 0,
                "cmax": 1, "showscale": False,
            },
            "hovertemplate": _style.hover_template(value_name, "y", column.rank,
                                                   column.input_name, extra),
        }  # fmt: skip
        if signal:
            trace["customdata"] = column.axis_names[1]
    cell.traces.append(("value", trace))
    if show_preds:
        cell.annotations.append(_info_box(column, r))
    return cell


_ZERO_LINE = {
    "type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": "y", "y0": 0, "y1": 0,
    "line": {"color": "black", "width": 1},
}  # fmt: skip


def not_connected_cell(column: Column) -> Cell:
    """An empty panel for an input layer that does not reach the output layer."""
    hidden = {"visible": False}
    note = {
        "text": f"{column.input_name} does not reach<br>{column.output_name}",
        "xref": "x domain", "yref": "y domain", "x": 0.5, "y": 0.5, "showarrow": False,
    }  # fmt: skip
    return Cell("empty", annotations=[note], xaxis=hidden, yaxis=hidden)


def _info_box(column: Column, r: int) -> dict:
    """innsight's info box (prediction, sum of attributions, decomposition goal) as a strip
    above the panel, left-aligned.

    innsight's ggplot2 plots draw the box inside the panel, where it covers pixels or bars;
    here it sits outside the data area (``y`` at the top of the panel's domain, anchored at
    its bottom), and the figure spaces the rows to hold it.
    """
    lines = [
        f"{name}: {values[r]:.4g}"
        for name, values in (("Pred.", column.preds), ("Sum", column.sums),
                             ("Goal", column.goals))
        if values is not None
    ]  # fmt: skip
    return {
        "text": "<br>".join(lines), "xref": "x domain", "yref": "y domain",
        "x": 0, "xanchor": "left", "y": 1, "yanchor": "bottom", "yshift": 2,
        "align": "left", "showarrow": False, "bgcolor": _style.INFO_BACKGROUND,
        "font": {"color": "white", "size": 10}, "name": "info",
    }  # fmt: skip
