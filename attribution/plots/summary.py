"""``plot_global()``: box plots per feature, or pixel-wise quantile heatmaps for images.

Box statistics, Tukey outliers and violin densities are computed here, so the figure
carries a few numbers per feature instead of every data point: it stays small and fast
for thousands of rows.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from attribution._validation import check_bool, check_int
from attribution.plots import _style
from attribution.plots._prepare import (
    Aggregation,
    Column,
    Preprocess,
    check_data_idx,
    collect_columns,
    group_scales,
    normalise,
    scale_groups,
    select_nodes,
)
from attribution.plots.figure import Cell, Grid, InnsightFigure
from attribution.plots.individual import not_connected_cell

if TYPE_CHECKING:
    from attribution.result import AttributionResult

_SEGMENT_HALF_WIDTH = 0.375
_VIOLIN_HALF_WIDTH = 0.4
_VIOLIN_POINTS = 40


def plot_global_result(
    result: AttributionResult,
    output_idx: Any = None,
    output_label: Any = None,
    data_idx: Any = "all",
    ref_data_idx: Any = None,
    aggr_channels: Aggregation = "sum",
    preprocess: Preprocess = "abs",
    individual_data_idx: Any = None,
    individual_max: int = 20,
    *,
    point_menu: bool = True,
) -> InnsightFigure:
    """The figure of :meth:`AttributionResult.plot_global` (see there).

    ``point_menu=False`` leaves out innsight's "Data point" dropdown and the rows it would
    offer: only ``ref_data_idx`` is drawn. The dashboard uses it, as its own reference-row
    control is the one choice of the row.

    Where it differs from innsight's plotly figure, for readability: panels have a minimum
    size (box panels 260 px wide, image panels 150 px on the shorter side) and the figure's
    ``width`` grows with the number of panels (see :mod:`attribution.plots._sizes`); image
    panels are framed.
    """
    point_menu = check_bool(point_menu, "point_menu")
    if not result.has_data:
        raise ValueError(
            "plot_global summarises results over data points, and global Connection Weights "
            "(times_input=False) has none. Use plot() for it, or compute ConnectionWeights(conv, "
            "data, times_input=True) to summarise the local variant."
        )
    n_data = result.n_data
    rows = list(range(n_data)) if _is_all(data_idx) else check_data_idx(data_idx, n_data)
    nodes = select_nodes(result, output_idx, output_label)
    columns = collect_columns(result, list(range(n_data)), nodes, aggr_channels, preprocess)
    ranks = {c.rank for c in columns if c.values is not None}
    individuals = _individual_rows(ref_data_idx, individual_data_idx, individual_max, n_data)
    if not point_menu:
        individuals = individuals[:1] if ref_data_idx is not None else []
    if ref_data_idx is not None and ranks == {3}:
        warnings.warn("ref_data_idx is ignored for image inputs.", stacklevel=3)
    selected = [replace(c, values=None if c.values is None else c.values[rows]) for c in columns]
    quantiles = [
        replace(c, values=None if c.values is None or c.rank < 3 else _pixel_quantiles(c.values))
        for c in selected
    ]
    scales = group_scales(quantiles, scale_groups(quantiles, True))
    point_labels = [f"data_{i + 1}" for i in individuals] if point_menu and ranks - {3} else []
    reference = None if ref_data_idx is None else f"data_{ref_data_idx + 1}"
    cells = [
        _cell(result.value_name, column, chosen, image, scale, individuals, reference)
        for column, chosen, image, scale in zip(columns, selected, quantiles, scales, strict=True)
    ]
    grid = Grid(
        cells=[cells],
        node_labels=[c.node_label for c in columns],
        input_labels=[c.input_name for c in columns],
        row_labels=None,
        multiplot=len(result.input_dim) > 1,
        value_name=result.value_name,
        point_labels=point_labels,
        active_point=reference if point_labels else None,
    )
    return grid.figure()


def _is_all(data_idx: Any) -> bool:
    return isinstance(data_idx, str) and data_idx == "all"


def _individual_rows(
    ref_data_idx: Any, individual_data_idx: Any, individual_max: Any, n_data: int
) -> list[int]:
    """``unique([ref_data_idx, *individual_data_idx[:individual_max]])``, as innsight."""
    individual_max = min(check_int(individual_max, "individual_max"), n_data)
    rows = (
        list(range(n_data))
        if individual_data_idx is None
        else check_data_idx(individual_data_idx, n_data, "individual_data_idx")
    )
    rows = rows[:individual_max]
    if ref_data_idx is not None:
        if isinstance(ref_data_idx, (bool, np.bool_)) or not isinstance(
            ref_data_idx, (numbers.Integral, np.integer)
        ):
            raise TypeError(f"ref_data_idx must be a single row index; got {ref_data_idx!r}.")
        rows = check_data_idx(ref_data_idx, n_data, "ref_data_idx") + rows
    return list(dict.fromkeys(rows))


def _pixel_quantiles(values: np.ndarray) -> np.ndarray:
    """``(9, height, width)``: the quantiles of :data:`_style.QUANTILES` over the rows."""
    return np.quantile(values, _style.QUANTILES, axis=0).astype(np.float32)


def _cell(
    value_name: str,
    column: Column,
    selected: Column,
    quantiles: Column,
    scale: np.ndarray | None,
    individuals: list[int],
    reference: str | None,
) -> Cell:
    if column.values is None:
        return not_connected_cell(column)
    extra = [column.output_name, column.node_label.split(": ", 1)[-1]]
    if column.rank == 3:
        return _quantile_cell(value_name, quantiles, scale, extra)
    cell = _box_cell(value_name, selected, extra)
    positions = np.arange(1, selected.values.shape[1] + 1, dtype=np.float32)
    for row in individuals:
        label = f"data_{row + 1}"
        cell.traces.append(
            (f"point:{label}", _segments(positions, column.values[row], label, label == reference))
        )
    return cell


def _quantile_cell(value_name: str, quantiles: Column, scale: np.ndarray, extra: list[str]) -> Cell:
    """Nine heatmaps of pixel-wise quantiles over the rows; the median is shown first.

    Each quantile map is normalised by its own largest ``|value|`` (shared across the output
    node's input layers), as innsight's ggplot2 summary normalises its median: one scale
    for all nine would leave the lower quantiles nearly white.
    """
    cell = Cell("image", xaxis=dict(_style.IMAGE_X_AXIS), yaxis=dict(_style.IMAGE_Y_AXIS))
    fills = normalise(quantiles.values, scale)
    for k, (values, fill) in enumerate(zip(quantiles.values, fills, strict=True)):
        trace = {
            "type": "heatmap", "name": f"image_{k + 1}", "z": fill, "customdata": values,
            "x": quantiles.axis_names[2], "y": quantiles.axis_names[1], "zmin": -1, "zmid": 0,
            "zmax": 1, "colorscale": _style.DIVERGING, "visible": k == _style.MEDIAN,
            "hovertemplate": _style.hover_template(
                value_name, "customdata", 3, quantiles.input_name, extra, _style.QUANTILE_TITLES[k]
            ),
        }  # fmt: skip
        cell.traces.append((f"quantile:{k}", trace))
    return cell


def _box_cell(value_name: str, column: Column, extra: list[str]) -> Cell:
    """A box per feature (Tukey whiskers), outliers as markers, and a hidden violin."""
    values = column.values
    positions = np.arange(1, values.shape[1] + 1, dtype=np.float32)
    stats, outlier = tukey_boxes(values)
    x_axis = {"gridcolor": _style.GRID_COLOR, "title": {"text": ""}, "zeroline": False}
    if column.rank == 1:
        x_axis |= {"tickvals": positions, "ticktext": column.axis_names[0]}
    cell = Cell("box", xaxis=x_axis, yaxis={"gridcolor": _style.GRID_COLOR, "zeroline": False})
    box = {
        "type": "box", "x": positions, **stats, "fillcolor": _style.BOX_FILL,
        "line": {"color": _style.BOX_LINE}, "boxpoints": False, "hoverinfo": "y",
        "name": "boxplot",
    }  # fmt: skip
    feature, row = np.nonzero(outlier.T)
    outliers = {
        "type": "scattergl" if feature.size > 5000 else "scatter", "mode": "markers",
        "x": positions[feature], "y": values[row, feature].astype(np.float32),
        "marker": {"color": _style.BOX_LINE, "opacity": 0.8, "size": 3}, "name": "outliers",
        "hovertemplate": f"<b>Outlier</b><br><b>{value_name}:</b> %{{y:.4g}}<br>"
        f"<b>Input:</b> {column.input_name}<extra>{'<br>'.join(extra)}</extra>",
    }  # fmt: skip
    violin_x, violin_y = violin_outlines(values, positions)
    violin = {
        "type": "scatter", "mode": "lines", "x": violin_x, "y": violin_y, "fill": "toself",
        "fillcolor": _style.BOX_FILL, "line": {"color": _style.BOX_LINE, "width": 1},
        "visible": False, "hoverinfo": "skip", "name": "violin",
    }  # fmt: skip
    cell.traces += [("box", box), ("outlier", outliers), ("violin", violin)]
    return cell


def tukey_boxes(values: np.ndarray, coef: float = 1.5) -> tuple[dict, np.ndarray]:
    """R's ``boxplot.stats`` per column of ``values`` (rows × features).

    Returns the box statistics (``q1``, ``median``, ``q3`` from Tukey's hinges, whiskers at
    the most extreme values within ``coef`` × IQR of the hinges) and the outlier mask.
    """
    ordered = np.sort(values, axis=0)
    n = len(ordered)
    n4 = np.floor((n + 3) / 2) / 2
    depths = np.array([n4, (n + 1) / 2, n + 1 - n4]) - 1  # 0-based
    hinges = 0.5 * (ordered[np.floor(depths).astype(int)] + ordered[np.ceil(depths).astype(int)])
    lower, median, upper = hinges
    spread = coef * (upper - lower)
    outlier = (values < lower - spread) | (values > upper + spread)
    inside = np.where(outlier, np.nan, values)
    stats = {
        "q1": lower, "median": median, "q3": upper,
        "lowerfence": np.nanmin(inside, axis=0), "upperfence": np.nanmax(inside, axis=0),
    }  # fmt: skip
    return {k: v.astype(np.float32) for k, v in stats.items()}, outlier


def violin_outlines(values: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed outlines of Gaussian kernel densities per column, gaps (NaN) between them.

    The bandwidth follows plotly.js's violins (Silverman's rule); each violin spans its
    column's range and is scaled to the same maximal width.
    """
    n, n_features = values.shape
    spread = np.minimum(values.std(0), np.subtract(*np.percentile(values, [75, 25], 0)) / 1.349)
    bandwidth = 1.059 * spread * n ** (-0.2)
    fallback = np.maximum(np.abs(values).max(0), 1.0) * 1e-3
    bandwidth = np.where(bandwidth > 0, bandwidth, fallback)
    low, high = values.min(0) - bandwidth, values.max(0) + bandwidth
    steps = np.linspace(0.0, 1.0, _VIOLIN_POINTS)[:, None]
    grid = low + steps * (high - low)  # (points, features)
    density = np.zeros_like(grid)
    for start in range(0, n, 256):
        chunk = values[start : start + 256]
        density += np.exp(-0.5 * ((grid[None] - chunk[:, None]) / bandwidth) ** 2).sum(0)
    width = _VIOLIN_HALF_WIDTH * density / density.max(0)
    gap = np.full((1, n_features), np.nan)
    x = np.concatenate([positions + width, (positions - width)[::-1], gap])
    y = np.concatenate([grid, grid[::-1], gap])
    return x.T.ravel().astype(np.float32), y.T.ravel().astype(np.float32)


def _segments(positions: np.ndarray, values: np.ndarray, label: str, visible: bool) -> dict:
    """Red horizontal segments marking one data point's value per feature."""
    gap = np.full_like(positions, np.nan)
    x = np.stack([positions - _SEGMENT_HALF_WIDTH, positions + _SEGMENT_HALF_WIDTH, gap], 1).ravel()
    y = np.stack([values, values, gap], 1).ravel().astype(np.float32)
    return {
        "type": "scatter", "mode": "lines", "x": x, "y": y, "visible": visible,
        "name": f"selected_points_{label.removeprefix('data_')}",
        "line": {"color": _style.REFERENCE_COLOR, "width": 2},
        "hovertemplate": f"<b>Selected Point</b><br>%{{y:.4g}}<extra>{label}</extra>",
    }  # fmt: skip
