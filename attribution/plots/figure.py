"""The grid of panels behind every plot, and the figure class that can be cut into sub-grids.

Builders fill a :class:`Grid` of :class:`Cell` objects (traces in the cell's own axes);
:meth:`Grid.figure` lays them out as innsight_plotly does (one row per data point, one
column per output node × input layer, gray strips) and adds the menus that fit the traces
it holds. ``fig[i, j]`` re-assembles a part of the grid, so a sub-grid keeps its strips,
menus and colour bar.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import plotly.graph_objects as go

from attribution.plots import _style

GAP_PX = 28


@dataclass
class Cell:
    """One panel: its traces (with their roles), annotations, shapes and axis styling.

    Roles: ``"value"`` (bars or heatmap), ``"box"``, ``"outlier"``, ``"violin"``,
    ``"point:<data label>"`` (a row drawn on a box plot), ``"quantile:<k>"`` (image
    quantile k of :data:`_style.QUANTILES`). ``xref``/``yref`` of ``"x"``, ``"y"``,
    ``"x domain"`` and ``"y domain"`` refer to the cell's own axes.
    """

    kind: str  # "bar", "image", "box" or "empty"
    traces: list[tuple[str, dict]] = field(default_factory=list)
    annotations: list[dict] = field(default_factory=list)
    shapes: list[dict] = field(default_factory=list)
    xaxis: dict = field(default_factory=dict)
    yaxis: dict = field(default_factory=dict)


@dataclass
class Grid:
    """Cells by ``[row][column]`` with the strip labels of the rows and columns."""

    cells: list[list[Cell]]
    node_labels: list[str]
    input_labels: list[str]
    row_labels: list[str] | None
    multiplot: bool
    value_name: str
    point_labels: list[str] = field(default_factory=list)
    active_point: str | None = None

    def select(self, key: Any) -> Grid:
        """The sub-grid of rows ``i`` and columns ``j`` for ``key = (i, j)`` (or rows ``i``)."""
        rows_key, columns_key = key if isinstance(key, tuple) else (key, slice(None))
        rows = _positions(rows_key, len(self.cells), "row")
        columns = _positions(columns_key, len(self.node_labels), "column")
        return replace(
            self,
            cells=[[self.cells[r][c] for c in columns] for r in rows],
            node_labels=[self.node_labels[c] for c in columns],
            input_labels=[self.input_labels[c] for c in columns],
            row_labels=None if self.row_labels is None else [self.row_labels[r] for r in rows],
        )

    def figure(self) -> InnsightFigure:
        """Lay the cells out, add strips, colour bar and menus."""
        return InnsightFigure(_assemble(self), panel_grid=self)


class InnsightFigure(go.Figure):
    """A plotly ``Figure`` of a grid of panels, with innsight's sub-grid selection.

    ``fig[i, j]`` (rows ``i``, columns ``j``: an int, a slice or a list of ints, 0-based)
    is a new figure of that part of the grid with its strips and menus; ``fig[i, j]`` with
    two ints is a single panel. String keys work as for any plotly figure
    (``fig["layout"]``). It shows itself in Jupyter and writes with ``write_html``.
    """

    def __init__(self, *args: Any, panel_grid: Grid | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._panel_grid = panel_grid

    def __reduce__(self) -> tuple:
        """Pickle and deep-copy with the panel grid, so copies can still be indexed."""
        _, (props,) = super().__reduce__()
        return (_restore, (props, self._panel_grid))

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str) or (
            isinstance(key, tuple) and any(isinstance(k, str) for k in key)
        ):
            return super().__getitem__(key)
        if self._panel_grid is None:
            raise TypeError("This figure has no panel grid to select from.")
        return self._panel_grid.select(key).figure()

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the panel grid."""
        return len(self._panel_grid.cells), len(self._panel_grid.node_labels)


def _restore(props: dict, panel_grid: Grid | None) -> InnsightFigure:
    return InnsightFigure(props, panel_grid=panel_grid)


def _positions(key: Any, size: int, what: str) -> list[int]:
    if isinstance(key, slice):
        positions = list(range(size))[key]
    else:
        keys = [key] if isinstance(key, (numbers.Integral, np.integer)) else key
        if isinstance(keys, (str, bytes)) or not hasattr(keys, "__iter__"):
            raise TypeError(f"A {what} index must be an int, a slice or a list; got {key!r}.")
        positions = []
        for index in keys:
            if isinstance(index, bool) or not isinstance(index, (numbers.Integral, np.integer)):
                raise TypeError(f"{what.capitalize()} indices must be integers; got {index!r}.")
            if not -size <= index < size:
                raise IndexError(
                    f"{what.capitalize()} index {index} is out of range: the figure has "
                    f"{size} {what}s (0-based)."
                )
            positions.append(int(index) % size)
    if not positions:
        raise IndexError(f"The {what} selection {key!r} is empty.")
    return positions


def _axis_id(letter: str, n: int) -> str:
    return letter if n == 1 else f"{letter}{n}"


def _bind(item: dict, n: int) -> dict:
    """Point an annotation's or shape's cell-relative references at cell ``n``'s axes."""
    bound = dict(item)
    for ref, letter in (("xref", "x"), ("yref", "y")):
        value = bound.get(ref)
        if value in (letter, f"{letter} domain"):
            bound[ref] = value.replace(letter, _axis_id(letter, n), 1)
    return bound


def _assemble(grid: Grid) -> dict:
    n_rows, n_cols = len(grid.cells), len(grid.node_labels)
    kinds = {cell.kind for row in grid.cells for cell in row}
    top = 50 + (2 + _style.STRIP_PX if grid.multiplot else 0)
    roles_present = {role for row in grid.cells for cell in row for role, _ in cell.traces}
    bottom = 100 if any(role.startswith("quantile:") for role in roles_present) else 50
    row_px = _row_height(grid, kinds, n_cols)
    plot_px = n_rows * row_px + (n_rows - 1) * GAP_PX
    h_gap = 0.02 if kinds <= {"image", "empty"} else 0.045
    width = (1 - (n_cols - 1) * h_gap) / n_cols
    x_domains = [(c * (width + h_gap), c * (width + h_gap) + width) for c in range(n_cols)]
    y_domains = [
        (1 - (r * (row_px + GAP_PX) + row_px) / plot_px, 1 - r * (row_px + GAP_PX) / plot_px)
        for r in range(n_rows)
    ]
    x_domains[-1] = (x_domains[-1][0], 1.0)
    y_domains[-1] = (0.0, y_domains[-1][1])

    data: list[dict] = []
    roles: list[str] = []
    layout: dict[str, Any] = {}
    annotations: list[dict] = []
    shapes: list[dict] = []
    colorbar_cell = next(
        ((r, c) for r, row in enumerate(grid.cells) for c, cell in enumerate(row)
         if cell.kind == "image"),
        None,
    )  # fmt: skip
    for r, row in enumerate(grid.cells):
        for c, cell in enumerate(row):
            n = r * n_cols + c + 1
            x_axis = {"domain": list(x_domains[c]), "anchor": _axis_id("y", n), **cell.xaxis}
            y_axis = {"domain": list(y_domains[r]), "anchor": _axis_id("x", n), **cell.yaxis}
            if y_axis.get("scaleanchor") == "x":
                y_axis["scaleanchor"] = _axis_id("x", n)
            if cell.kind in ("bar", "box"):
                x_axis["showticklabels"] = r == n_rows - 1
                if r:
                    x_axis["matches"] = _axis_id("x", c + 1)
            layout[f"xaxis{n if n > 1 else ''}"] = x_axis
            layout[f"yaxis{n if n > 1 else ''}"] = y_axis
            for role, trace in cell.traces:
                trace = {**trace, "xaxis": _axis_id("x", n), "yaxis": _axis_id("y", n)}
                if trace["type"] == "heatmap":
                    trace |= _colorbar(grid.value_name, (r, c) == colorbar_cell)
                data.append(trace)
                roles.append(role)
            annotations += [_bind(a, n) for a in cell.annotations]
            shapes += [_bind(s, n) for s in cell.shapes]

    strip_annotations, strip_shapes = _strips(grid, y_domains, x_domains)
    menus, menu_labels, sliders = _menus(grid, roles, data, plot_px)
    layout |= {
        "height": top + bottom + plot_px,
        "margin": {"t": top, "r": 50, "b": bottom, "l": 190 if menus else 60},
        "showlegend": False,
        "template": _style.TEMPLATE,
        "plot_bgcolor": _style.PANEL_BACKGROUND,
        "hoverlabel": {"bgcolor": _style.HOVER_BACKGROUND},
        "annotations": annotations + strip_annotations + menu_labels,
        "shapes": shapes + strip_shapes,
        "updatemenus": menus,
        "sliders": sliders,
    }
    return {"data": data, "layout": layout}


def _colorbar(value_name: str, shown: bool) -> dict:
    if not shown:
        return {"showscale": False}
    return {
        "showscale": True,
        "colorbar": {
            "title": {"text": f"<b>{value_name}</b><br>(normalized)"},
            "len": 0.8,
            "x": 1.02,
            "xpad": 22,
        },
    }


def _strips(grid: Grid, y_domains: list, x_domains: list) -> tuple[list[dict], list[dict]]:
    """Top strips over the first row, right strips beside the last column, and with several
    input layers a strip per output node across its columns.

    Along a panel edge a strip follows the panel's axis domain (image panels shrink to
    square pixels); across the edge it sits at the grid row's or column's outer line, so
    strips of panels of different kinds line up.
    """
    n_cols = len(grid.node_labels)
    top = y_domains[0][1]
    strips = []
    texts = grid.input_labels if grid.multiplot else grid.node_labels
    for c, text in enumerate(texts):
        strips.append(_style.strip(text, (_domain_ref("x", c + 1), "paper"), (0, 1), top, "top"))
    if grid.multiplot:
        start = 0
        for c in range(1, n_cols + 1):
            if c == n_cols or grid.node_labels[c] != grid.node_labels[start]:
                span = (x_domains[start][0], x_domains[c - 1][1])
                offset = _style.STRIP_PX + 3
                strips.append(
                    _style.strip(
                        grid.node_labels[start], ("paper", "paper"), span, top, "top", offset
                    )
                )
                start = c
    right = x_domains[-1][1]
    for r, text in enumerate(grid.row_labels or []):
        refs = ("paper", _domain_ref("y", (r + 1) * n_cols))
        strips.append(_style.strip(text, refs, (0, 1), right, "right"))
    return [label for _, label in strips], [shape for shape, _ in strips]


def _domain_ref(letter: str, n: int) -> str:
    return f"{_axis_id(letter, n)} domain"


def _row_height(grid: Grid, kinds: set[str], n_cols: int) -> int:
    """Pixels per grid row: image panels about as tall as they are wide in a 1000 px figure."""
    if "box" in kinds:
        return 320
    if kinds <= {"image", "empty"}:
        height, width = next(
            np.shape(trace["z"])
            for row in grid.cells for cell in row for _, trace in cell.traces
        )  # fmt: skip
        panel_width = 680 / n_cols  # 1000 px less the menus, margins and colour bar
        return int(min(320, max(90, panel_width * height / width)))
    return 200


def _menus(grid: Grid, roles: list[str], data: list[dict], plot_px: int) -> tuple[list, list, list]:
    def where(test: Any) -> list[int]:
        return [i for i, role in enumerate(roles) if test(role)]

    coloured = where(lambda role: role == "value" or role.startswith("quantile:"))
    images = [i for i in coloured if data[i]["type"] == "heatmap"]
    boxes = where(lambda role: role in ("box", "outlier", "violin"))
    points = where(lambda role: role.startswith("point:"))
    quantiles = where(lambda role: role.startswith("quantile:"))
    menus = []
    if coloured:
        menus.append(("Colorscale", _style.colorscale_menu(coloured)))
    if images:
        options = [(label, {"type": label.lower()}) for label in ("Heatmap", "Contour")]
        menus.append(("2D Plot Type", _style.choice_menu(options, images)))
    if boxes:
        options = [
            (label, {"visible": [(roles[i] == "violin") == violin for i in boxes]})
            for label, violin in (("Boxplot", False), ("Violin", True))
        ]
        menus.append(("1D Plot Type", _style.choice_menu(options, boxes)))
    if points:
        options = [
            (label, {"visible": [roles[i] == f"point:{label}" for i in points]})
            for label in ["None", *grid.point_labels]
        ]
        active = 1 + grid.point_labels.index(grid.active_point) if grid.active_point else 0
        menus.append(("Data point", _style.choice_menu(options, points, active)))
    placed, labels = _style.place_menus(menus, plot_px)
    sliders = []
    if quantiles:
        steps = [
            {
                "label": label,
                "method": "restyle",
                "args": [{"visible": [roles[i] == f"quantile:{k}" for i in quantiles]}, quantiles],
            }
            for k, label in enumerate(_style.QUANTILE_LABELS)
        ]
        sliders.append(
            {"active": _style.MEDIAN, "steps": steps, "currentvalue": {"prefix": "Quantile: "},
             "x": 0, "len": 1, "y": 0, "yanchor": "top", "pad": {"t": 40}}
        )  # fmt: skip
    return placed, labels, sliders
