"""innsight_plotly's look: colour scales, strips, menus and hover texts."""

from __future__ import annotations

DIVERGING = [[0.0, "blue"], [0.5, "white"], [1.0, "red"]]
"""innsight's default colour scale: blue (negative), white (0), red (positive)."""

COLORSCALES = {
    "Default": DIVERGING,
    **{
        name: name
        for name in (
            "Blackbody", "Bluered", "Blues", "Cividis", "Earth", "Electric", "Greens", "Greys",
            "Hot", "Jet", "Picnic", "Portland", "Rainbow", "RdBu", "Reds", "Viridis", "YlGnBu",
            "YlOrRd",
        )
    },
}  # fmt: skip
"""The colour scales innsight's dropdown offers (each also reversed)."""

TEMPLATE = {
    "layout": {
        "font": {"color": "#2a3f5f"},
        "hovermode": "closest",
        "hoverlabel": {"align": "left"},
    }
}
"""A lean plotly template: the figures style themselves, and plotly's default template
(colour scales and defaults for every trace type) doubles the time to draw them."""

STRIP_COLOR = "rgba(204,204,204,1)"
STRIP_PX = 22
PANEL_BACKGROUND = "#ebebeb"
GRID_COLOR = "#ffffff"
HOVER_BACKGROUND = "rgb(80,80,80)"
REFERENCE_COLOR = "red"
BOX_FILL = "rgba(40,40,40,0.75)"
BOX_LINE = "rgb(50,50,50)"
INFO_BACKGROUND = "rgb(96,96,96)"
"""The info strip above a panel (innsight's box inside it was 50 % transparent)."""

FRAME_COLOR = "rgb(90,90,90)"
IMAGE_X_AXIS = {
    "showticklabels": False, "zeroline": False, "showgrid": False, "ticks": "",
    "title": {"text": ""}, "constrain": "domain",
    "showline": True, "mirror": True, "linecolor": FRAME_COLOR, "linewidth": 1,
}  # fmt: skip
IMAGE_Y_AXIS = {**IMAGE_X_AXIS, "autorange": "reversed", "scaleanchor": "x"}
"""Image axes: no ticks, square pixels, first image row at the top, and a thin frame, so
that a border of zero (white) values stays visible (innsight draws no frame)."""

QUANTILES = [i / 8 for i in range(9)]
"""Pixel-wise quantile levels of ``plot_global`` for images: min, 12.5 %, ..., max."""
QUANTILE_LABELS = ["min", "q12.5%", "q25%", "q37.5%", "median", "q62.5%", "q75%", "q87.5%", "max"]
QUANTILE_TITLES = [
    "Minimum", *(f"Percentile ({q * 100:g}%)" for q in QUANTILES[1:4]), "Median",
    *(f"Percentile ({q * 100:g}%)" for q in QUANTILES[5:8]), "Maximum",
]  # fmt: skip
MEDIAN = 4

_AXIS_HOVER = {
    1: "<b>Feature:</b> %{x}",
    2: "<b>Length:</b> %{customdata}",
    3: "<b>Height:</b> %{y}<br><b>Width:</b> %{x}",
}


def hover_template(
    value_name: str, value: str, rank: int, input_name: str, extra: list[str], title: str = ""
) -> str:
    """innsight's hover text: value (4 significant digits), input layer, position, and the
    data point and output node in the secondary box."""
    head = f"<b>{title}</b><br>" if title else ""
    return (
        f"{head}<b>{value_name}:</b> %{{{value}:.4g}}<br><br><b>Input:</b> {input_name}<br>"
        f"{_AXIS_HOVER[rank]}<extra>{'<br>'.join(extra)}</extra>"
    )


def colorscale_menu(indices: list[int]) -> dict:
    """The "Colorscale" dropdown: every scale and its reverse, on bars and heatmaps."""
    buttons = []
    for reverse in (False, True):
        for name, scale in COLORSCALES.items():
            buttons.append(
                {
                    "label": f"{name} (rev.)" if reverse else name,
                    "method": "restyle",
                    "args": [
                        {
                            "colorscale": [scale],
                            "marker.colorscale": [scale],
                            "reversescale": reverse,
                            "marker.reversescale": reverse,
                        },
                        indices,
                    ],
                }
            )
    return {"buttons": buttons, "active": 0}


def choice_menu(options: list[tuple[str, dict]], indices: list[int], active: int = 0) -> dict:
    """A dropdown whose options restyle the traces at ``indices``."""
    return {
        "buttons": [
            {"label": label, "method": "restyle", "args": [args, indices]}
            for label, args in options
        ],
        "active": active,
    }


MENU_SPACING_PX = 95
"""Vertical distance of two stacked dropdowns."""


def place_menus(
    menus: list[tuple[str, dict]], plot_px: float, x: float
) -> tuple[list[dict], list[dict]]:
    """Stack the dropdowns left of the plot, each under a bold label, as innsight does.

    ``plot_px`` is the height of the plot area, to space the menus
    :data:`MENU_SPACING_PX` pixels apart; ``x`` (paper units, negative) is where their
    right edges go.
    """
    placed, labels = [], []
    for position, (title, menu) in enumerate(menus):
        y = 1.0 - MENU_SPACING_PX * position / plot_px
        placed.append(
            {**menu, "x": x, "xanchor": "right", "y": y - 26 / plot_px, "yanchor": "top",
             "direction": "down", "showactive": True}
        )  # fmt: skip
        labels.append(
            {"text": f"<b>{title}</b>", "x": x, "xanchor": "right", "y": y,
             "yanchor": "bottom", "xref": "paper", "yref": "paper", "showarrow": False,
             "font": {"size": 15}}
        )  # fmt: skip
    return placed, labels


def strip(
    text: str,
    refs: tuple[str, str],
    span: tuple[float, float],
    edge: float,
    side: str,
    offset: int = 1,
) -> tuple[dict, dict]:
    """A gray facet strip (shape and label) above (``side="top"``) or right of a panel.

    ``refs`` are the shape's ``xref`` and ``yref`` (``"paper"``, or a panel's ``"x3
    domain"`` so the strip follows a panel shrunk to square pixels). ``span`` is the
    strip's extent along the panel edge and ``edge`` the edge's position across it, in
    those units; the strip's depth is in pixels, so it keeps its size on resizing.
    """
    top = side == "top"
    xref, yref = refs
    rect = {
        "type": "rect", "fillcolor": STRIP_COLOR, "line": {"width": 0}, "layer": "below",
        "xref": xref, "yref": yref,
    }  # fmt: skip
    label = {
        "text": f"<b>{text}</b>", "showarrow": False, "xref": xref, "yref": yref,
        "font": {"size": 12}, "xanchor": "center", "yanchor": "middle",
    }  # fmt: skip
    pixels = (offset, offset + STRIP_PX)
    middle = (span[0] + span[1]) / 2
    if top:
        rect |= {"x0": span[0], "x1": span[1], "ysizemode": "pixel", "yanchor": edge,
                 "y0": pixels[0], "y1": pixels[1]}  # fmt: skip
        label |= {"x": middle, "y": edge, "yshift": sum(pixels) / 2}
    else:
        rect |= {"y0": span[0], "y1": span[1], "xsizemode": "pixel", "xanchor": edge,
                 "x0": pixels[0], "x1": pixels[1]}  # fmt: skip
        label |= {"x": edge, "y": middle, "xshift": sum(pixels) / 2, "textangle": 90}
    return rect, label
