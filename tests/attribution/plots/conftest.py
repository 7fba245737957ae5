"""Seeded models, their attributions and small readers of plotly figures for the plot tests.

The results are built once per session (a few rows of double-precision attributions); the
tests only read them. Helper functions are handed out by the ``tools`` fixture because test
modules cannot import each other under ``--import-mode=importlib``.
"""

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from attribution import Converter, Gradient

BOLD = re.compile(r"^<b>(.*)</b>$")


def _seeded(build):
    torch.manual_seed(0)
    return build().double().eval()


@pytest.fixture(scope="session")
def tabular():
    """Gradient × Input of an MLP (5 named features, 4 named outputs) on 40 heavy-tailed rows,
    so that the box plots have outliers; nodes 0 and 2 computed."""
    model = _seeded(
        lambda: nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 4), nn.Softmax(dim=1))
    )
    conv = Converter(model, input_names=list("abcde"), output_names=["p", "q", "r", "s"])
    x = torch.from_numpy(np.random.default_rng(1).standard_t(2, size=(40, 5)))
    res = Gradient(conv, x, times_input=True, output_idx=[0, 2], dtype="double")
    return SimpleNamespace(conv=conv, x=x, res=res)


@pytest.fixture(scope="session")
def signal():
    """Gradient × Input of a Conv1d model on 2 channels × 10 positions, nodes 0 and 2."""
    model = _seeded(
        lambda: nn.Sequential(nn.Conv1d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(24, 3))
    )
    conv = Converter(model, input_dim=(2, 10))
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(12, 2, 10)))
    res = Gradient(conv, x, times_input=True, output_idx=[0, 2], dtype="double")
    return SimpleNamespace(conv=conv, x=x, res=res)


@pytest.fixture(scope="session")
def image():
    """Gradient × Input of a Conv2d model on non-square 3×5×7 images, nodes 1 and 2."""
    model = _seeded(
        lambda: nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 7, 3)
        )
    )
    conv = Converter(model, input_dim=(3, 5, 7))
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(12, 3, 5, 7)))
    res = Gradient(conv, x, times_input=True, output_idx=[1, 2], dtype="double")
    return SimpleNamespace(conv=conv, x=x, res=res)


@pytest.fixture(scope="session")
def two(two_in_two_out):
    """Image + tabular input, two output layers: nodes 0 and 2 of output 1, node 1 of
    output 2 (which does not read the image)."""
    model = _seeded(two_in_two_out)
    conv = Converter(model, input_dim=[(2, 6, 6), (4,)])
    rng = np.random.default_rng(4)
    x = [torch.from_numpy(rng.normal(size=(6, 2, 6, 6))), torch.from_numpy(rng.normal(size=(6, 4)))]
    res = Gradient(conv, x, times_input=True, output_idx=[[0, 2], [1]], dtype="double")
    return SimpleNamespace(conv=conv, x=x, res=res)


def axis_id(letter, n):
    """Plotly's axis name of grid cell ``n`` (1-based, row-major)."""
    return letter if n == 1 else f"{letter}{n}"


def cell_traces(fig, n):
    """The traces drawn in cell ``n``."""
    return [t for t in fig.data if t.xaxis == axis_id("x", n) and t.yaxis == axis_id("y", n)]


def unbold(text):
    match = BOLD.match(text)
    assert match, f"strip text {text!r} is not bold"
    return match.group(1)


def paper(fig, ref, value):
    """``value`` in ``ref`` units ("paper" or a panel's "x3 domain") as a paper coordinate."""
    if ref == "paper":
        return value
    axis_id = ref.removesuffix(" domain")
    low, high = fig.layout[f"{axis_id[0]}axis{axis_id[1:]}"].domain
    return low + value * (high - low)


def strips(fig):
    """Strip labels: ``top`` (per column), ``outer`` (output strips above them, several input
    layers only) and ``right`` (per row), bold markup removed."""
    found = {"top": [], "outer": [], "right": []}
    for a in fig.layout.annotations:
        if a.name == "info":
            continue
        if a.textangle == 90:
            found["right"].append((paper(fig, a.yref, a.y), unbold(a.text)))
        elif a.yshift:
            found["top"].append((a.yshift, paper(fig, a.xref, a.x), unbold(a.text)))
    shifts = sorted({shift for shift, _, _ in found["top"]})
    assert len(shifts) <= 2
    top = sorted((x, text) for shift, x, text in found["top"] if shift == shifts[0])
    outer = sorted((x, text) for shift, x, text in found["top"] if shift != shifts[0])
    right = sorted(found["right"], reverse=True)  # top row first
    return {
        "top": [text for _, text in top],
        "outer": [text for _, text in outer],
        "right": [text for _, text in right],
    }


def info_box(fig, n):
    """The text of cell ``n``'s info box, or None."""
    boxes = [
        a.text
        for a in fig.layout.annotations
        if a.name == "info" and a.xref == f"{axis_id('x', n)} domain"
    ]
    assert len(boxes) <= 1
    return boxes[0] if boxes else None


def menu(fig, title):
    """The dropdown under the bold label ``title`` (labels follow the menus' order)."""
    labels = [a.text for a in fig.layout.annotations if a.font.size == 15]
    assert len(labels) == len(fig.layout.updatemenus)
    if f"<b>{title}</b>" not in labels:
        return None
    return fig.layout.updatemenus[labels.index(f"<b>{title}</b>")]


def colour_at(colorscale, cmin, cmax, value):
    """The colour a value gets on a colour scale given as ``[[position, colour], ...]``;
    only values that fall exactly on a stop are needed here."""
    position = (value - cmin) / (cmax - cmin)
    (colour,) = [c for p, c in colorscale if np.isclose(p, position)]
    return colour


def fivenum(column):
    """R's ``fivenum`` (Tukey's five numbers), written out with a plain loop."""
    x = sorted(float(v) for v in column)
    n = len(x)
    n4 = np.floor((n + 3) / 2) / 2
    out = []
    for depth in (1, n4, (n + 1) / 2, n + 1 - n4, n):  # 1-based depths
        out.append(0.5 * (x[int(np.floor(depth)) - 1] + x[int(np.ceil(depth)) - 1]))
    return out


def boxplot_stats(column, coef=1.5):
    """R's ``boxplot.stats``: (lower whisker, lower hinge, median, upper hinge, upper
    whisker) and the outliers, in the column's order."""
    _, lower, median, upper, _ = fivenum(column)
    spread = coef * (upper - lower)
    inside = [v for v in column if lower - spread <= v <= upper + spread]
    outliers = [v for v in column if not lower - spread <= v <= upper + spread]
    return (min(inside), lower, median, upper, max(inside)), outliers


def aggregate(values, how):
    """Channel aggregation (axis 1) written out with numpy, independent of the package."""
    if how == "sum":
        return values.sum(axis=1)
    if how == "mean":
        return values.mean(axis=1)
    if how == "norm":
        return np.sqrt((values**2).sum(axis=1))
    return how(values, axis=1)


@pytest.fixture(scope="session")
def tools():
    return SimpleNamespace(
        axis_id=axis_id,
        cell_traces=cell_traces,
        strips=strips,
        info_box=info_box,
        menu=menu,
        colour_at=colour_at,
        fivenum=fivenum,
        boxplot_stats=boxplot_stats,
        aggregate=aggregate,
        unbold=unbold,
    )
