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

from attribution.plots import _sizes, _style


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
    info_lines = max(
        (a["text"].count("<br>") + 1 for row in grid.cells for cell in row
         for a in cell.annotations if a.get("name") == "info"),
        default=0,
    )  # fmt: skip
    sizes = _sizes.panel_sizes(
        [_sizes.column_content(grid.cells, c) for c in range(n_cols)], info_lines
    )
    info_px = sizes.row_gap - _sizes.ROW_GAP_PX
    plot_px, plot_width = sizes.plot_height(n_rows), sizes.plot_width
    x_domains, y_domains = sizes.x_domains(), sizes.y_domains(n_rows)
    top = 30 + info_px + (2 + _style.STRIP_PX) * (2 if grid.multiplot else 1)
    roles_present = {role for row in grid.cells for cell in row for role, _ in cell.traces}
    bottom = 130 if any(role.startswith("quantile:") for role in roles_present) else 50

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
    strip_px = _style.STRIP_PX + _sizes.STRIP_GAP_PX if grid.row_labels else 0
    colorbar_x = 1 + (strip_px + _sizes.STRIP_GAP_PX) / plot_width
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
                    trace |= _colorbar(grid.value_name, (r, c) == colorbar_cell, colorbar_x)
                data.append(trace)
                roles.append(role)
            annotations += [_bind(a, n) for a in cell.annotations]
            shapes += [_bind(s, n) for s in cell.shapes]

    strip_annotations, strip_shapes = _strips(grid, y_domains, x_domains, info_px)
    menu_x = -_menu_offset(sizes) / plot_width
    menus, menu_labels, sliders = _menus(grid, roles, data, plot_px, menu_x)
    menu_px = _style.MENU_SPACING_PX * len(menus)
    bottom = max(bottom, menu_px - plot_px + 20)
    left = _sizes.MENU_PX + _menu_offset(sizes) if menus else 60
    right = strip_px + (_sizes.COLORBAR_PX if colorbar_cell else 0) + 20
    layout |= {
        "width": round(left + plot_width + right),
        "height": round(top + bottom + plot_px),
        "autosize": False,
        "margin": {"t": top, "r": right, "b": bottom, "l": left},
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


def _menu_offset(sizes: _sizes.Sizes) -> int:
    """Pixels between the plot and the dropdowns: room for the first panel's value axis."""
    return 10 if sizes.column_gap == _sizes.IMAGE_GAP_PX else 60


def _colorbar(value_name: str, shown: bool, x: float) -> dict:
    if not shown:
        return {"showscale": False}
    return {
        "showscale": True,
        "colorbar": {
            "title": {"text": f"<b>{value_name}</b><br>(normalized)"},
            "len": 0.8,
            "x": x,
            "xanchor": "left",
            "xpad": 0,
        },
    }


def _strips(
    grid: Grid, y_domains: list, x_domains: list, lift: float
) -> tuple[list[dict], list[dict]]:
    """Top strips over the first row, right strips beside the last column, and with several
    input layers a strip per output node across its columns. The top strips are ``lift``
    pixels higher, above the first row's info strips; the right strips start right of the
    last column (they never cover it).

    Along a panel edge a strip follows the panel's axis domain (image panels shrink to
    square pixels); across the edge it sits at the grid row's or column's outer line, so
    strips of panels of different kinds line up.
    """
    n_cols = len(grid.node_labels)
    top = y_domains[0][1]
    strips = []
    texts = grid.input_labels if grid.multiplot else grid.node_labels
    for c, text in enumerate(texts):
        refs = (_domain_ref("x", c + 1), "paper")
        strips.append(_style.strip(text, refs, (0, 1), top, "top", 1 + lift))
    if grid.multiplot:
        start = 0
        for c in range(1, n_cols + 1):
            if c == n_cols or grid.node_labels[c] != grid.node_labels[start]:
                span = (x_domains[start][0], x_domains[c - 1][1])
                offset = _style.STRIP_PX + 3 + lift
                strips.append(
                    _style.strip(
                        grid.node_labels[start], ("paper", "paper"), span, top, "top", offset
                    )
                )
                start = c
    right = x_domains[-1][1]
    for r, text in enumerate(grid.row_labels or []):
        refs = ("paper", _domain_ref("y", (r + 1) * n_cols))
        strips.append(_style.strip(text, refs, (0, 1), right, "right", _sizes.STRIP_GAP_PX))
    return [label for _, label in strips], [shape for shape, _ in strips]


def _domain_ref(letter: str, n: int) -> str:
    return f"{_axis_id(letter, n)} domain"


def _menus(
    grid: Grid, roles: list[str], data: list[dict], plot_px: float, menu_x: float
) -> tuple[list, list, list]:
    """innsight's dropdowns for the traces present (stacked at paper ``x = menu_x``, left
    of the plot) and the quantile slider. The "Data point" dropdown needs point labels: a
    grid without them draws its points (the dashboard's reference row) with no menu."""

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
    if points and grid.point_labels:
        options = [
            (label, {"visible": [roles[i] == f"point:{label}" for i in points]})
            for label in ["None", *grid.point_labels]
        ]
        active = 1 + grid.point_labels.index(grid.active_point) if grid.active_point else 0
        menus.append(("Data point", _style.choice_menu(options, points, active)))
    placed, labels = _style.place_menus(menus, plot_px, menu_x)
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
