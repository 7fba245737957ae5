"""Pixel sizes of the panels of a grid: readable minimums, and a figure that grows with them.

innsight's plotly figures squeeze every panel into the width of the page, so ten outputs of
8×8 images come out as 60-pixel thumbnails. Here a grid of a few columns shares
:data:`FILL_PX` as before, but no panel gets smaller than its minimum: a wider grid makes a
wider (and a taller grid a taller) figure, which the page scrolls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FILL_PX = 680
"""Width the panels of a grid with few columns share (a 1000-pixel figure less its menus,
margins and colour bar), as innsight's figures fill the page."""
IMAGE_MIN_PX = 150
"""An image panel's shorter side is at least this (unless its longer side would pass
:data:`IMAGE_LONG_PX`)."""
IMAGE_MAX_PX = 320
"""An image panel's longer side is at most this, unless the minimum needs more."""
IMAGE_LONG_PX = 640
"""No image side is longer than this: a very elongated image gets a thin panel."""
BAR_MIN_PX, BAR_ROW_PX = 200, 200
"""Width (at least) and height of a bar panel."""
BOX_MIN_PX, BOX_ROW_PX = 260, 320
"""Width (at least) and height of a box-plot panel."""
FEATURE_PX, FEATURES_MAX_PX = 10, 640
"""Bar and box panels are at least this wide per feature, up to the second number."""
ROW_GAP_PX = 28
"""Space between two rows of panels (the info strips come on top of it)."""
IMAGE_GAP_PX, AXIS_GAP_PX = 16, 56
"""Space between columns: image panels have no tick labels; bar and box panels have their
value axis on the left, in the gap."""
INFO_LINE_PX, INFO_PAD_PX = 14, 6
"""Height of a line of an info strip, and the space it keeps from the panel above."""
STRIP_GAP_PX = 4
"""Space between the last column and its row strips, and the strips and the colour bar."""
COLORBAR_PX = 120
"""Room right of the row strips for the colour bar and its title."""
MENU_PX = 150
"""Room left of the plot for the stacked dropdowns and their labels."""


@dataclass(frozen=True)
class Sizes:
    """Pixels of a grid: the width of each column, one row's height and the gaps."""

    widths: list[float]
    row_px: float
    column_gap: float
    row_gap: float

    def x_domains(self) -> list[tuple[float, float]]:
        """The columns' paper domains: their pixels over the plot width."""
        total, start, domains = self.plot_width, 0.0, []
        for width in self.widths:
            domains.append((start / total, min(1.0, (start + width) / total)))
            start += width + self.column_gap
        return domains

    def y_domains(self, n_rows: int) -> list[tuple[float, float]]:
        """The rows' paper domains, first row on top."""
        total = self.plot_height(n_rows)
        step = self.row_px + self.row_gap
        return [
            (max(0.0, 1 - (r * step + self.row_px) / total), 1 - r * step / total)
            for r in range(n_rows)
        ]

    @property
    def plot_width(self) -> float:
        return sum(self.widths) + (len(self.widths) - 1) * self.column_gap

    def plot_height(self, n_rows: int) -> float:
        return n_rows * self.row_px + (n_rows - 1) * self.row_gap


def panel_sizes(columns: list[tuple[str, object]], info_lines: int) -> Sizes:
    """The sizes of a grid whose columns hold ``(kind, content)``: ``("image", (height,
    width))``, ``("bar", n_features)``, ``("box", n_features)`` or ``("empty", None)``.

    ``info_lines`` is the number of text lines of the info strips above the panels (0 for
    none); the rows are spaced to hold them.
    """
    kinds = {kind for kind, _ in columns}
    images_only = kinds <= {"image", "empty"}
    column_gap = IMAGE_GAP_PX if images_only else AXIS_GAP_PX
    share = (FILL_PX - (len(columns) - 1) * column_gap) / len(columns)
    row_gap = ROW_GAP_PX + (info_lines * INFO_LINE_PX + INFO_PAD_PX if info_lines else 0)
    if images_only:
        scaled = [(shape, _image_scale(shape, share)) for kind, shape in columns if kind == "image"]
        row_px = max(shape[0] * scale for shape, scale in scaled)
        scales = iter(scaled)
        widths = [
            _scaled_width(next(scales)) if kind == "image" else IMAGE_MIN_PX for kind, _ in columns
        ]
        return Sizes(widths, row_px, column_gap, row_gap)
    row_px, minimum = (BOX_ROW_PX, BOX_MIN_PX) if "box" in kinds else (BAR_ROW_PX, BAR_MIN_PX)
    widths = []
    for kind, content in columns:
        if kind == "image":
            height, width = content
            widths.append(width * min(row_px / height, IMAGE_LONG_PX / width))
        elif kind == "empty":
            widths.append(minimum)
        else:
            widths.append(max(share, minimum, min(FEATURE_PX * content, FEATURES_MAX_PX)))
    return Sizes(widths, row_px, column_gap, row_gap)


def _scaled_width(scaled: tuple[tuple[int, int], float]) -> float:
    (_, width), scale = scaled
    return width * scale


def _image_scale(shape: tuple[int, int], share: float) -> float:
    """Pixels per image pixel: the share of the width, at least :data:`IMAGE_MIN_PX` on the
    shorter side and at most :data:`IMAGE_MAX_PX` on the longer one (the minimum wins),
    never more than :data:`IMAGE_LONG_PX` on either side."""
    height, width = shape
    scale = min(share / width, IMAGE_MAX_PX / max(height, width))
    scale = max(scale, IMAGE_MIN_PX / min(height, width))
    return float(min(scale, IMAGE_LONG_PX / max(height, width)))


def column_content(cells: list, c: int) -> tuple[str, object]:
    """``(kind, content)`` of grid column ``c`` (its first non-empty cell) for
    :func:`panel_sizes`."""
    for row in cells:
        cell = row[c]
        if cell.kind == "empty" or not cell.traces:
            continue
        trace = cell.traces[0][1]
        if cell.kind == "image":
            return "image", tuple(np.shape(trace["z"])[-2:])
        return cell.kind, len(trace["x"]) if trace.get("x") is not None else len(trace["y"])
    return "empty", None
