"""Readable grids: panel sizes, a figure that grows with its grid, info strips outside the
panels, row strips beside the last column, framed images; read from the figure layout."""

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from attribution import Converter, Gradient
from attribution.plots import _sizes, _style, plot_global_result

IMAGE_PX = 150  # the shorter side of an image panel, at least
BAR_PX, BOX_PX = 200, 260  # the width of a bar and of a box-plot panel, at least


@pytest.fixture(scope="module")
def digits():
    """Gradient × Input of a CNN on 8×8 one-channel images with 10 outputs, all computed;
    the images' first row is zero (a white border)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(128, 10)
    ).double()
    x = torch.from_numpy(np.random.default_rng(5).normal(size=(6, 1, 8, 8)))
    x[:, :, 0] = 0
    res = Gradient(Converter(model, input_dim=(1, 8, 8)), x, times_input=True,
                   output_idx=list(range(10)), dtype="double")  # fmt: skip
    return SimpleNamespace(res=res)


def plot_area(fig):
    """``(left, top, width, height)`` of the plot area in pixels."""
    layout = fig.layout
    width = layout.width - layout.margin.l - layout.margin.r
    height = layout.height - layout.margin.t - layout.margin.b
    return layout.margin.l, layout.margin.t, width, height


def panels(fig):
    """``{n: (x0, y0, x1, y1)}``: every panel's pixel box (y down from the figure's top)."""
    left, top, width, height = plot_area(fig)
    axes = fig.layout.to_plotly_json()
    boxes = {}
    n = 1
    while f"xaxis{'' if n == 1 else n}" in axes:
        name = "" if n == 1 else str(n)
        x_domain, y_domain = axes[f"xaxis{name}"]["domain"], axes[f"yaxis{name}"]["domain"]
        boxes[n] = (
            left + x_domain[0] * width,
            top + (1 - y_domain[1]) * height,
            left + x_domain[1] * width,
            top + (1 - y_domain[0]) * height,
        )
        n += 1
    return boxes


def info_boxes(fig):
    """``{n: (x0, y1, lines)}``: each info strip's left edge, its bottom edge (pixels) and
    its number of lines."""
    left, top, width, height = plot_area(fig)
    found = {}
    for a in fig.layout.annotations:
        if a.name != "info":
            continue
        n = int(a.xref.removesuffix(" domain")[1:] or 1)
        name = "" if n == 1 else str(n)
        assert a.yref == f"y{name} domain" and a.xanchor == "left" and a.yanchor == "bottom"
        x_domain, y_domain = fig.layout[f"xaxis{name}"].domain, fig.layout[f"yaxis{name}"].domain
        x = left + (x_domain[0] + a.x * (x_domain[1] - x_domain[0])) * width
        y = top + (1 - (y_domain[0] + a.y * (y_domain[1] - y_domain[0]))) * height
        found[n] = (x, y - (a.yshift or 0), a.text.count("<br>") + 1)
    return found


def size(box):
    x0, y0, x1, y1 = box
    return x1 - x0, y1 - y0


def overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_four_rows_of_ten_digit_images_are_readable(digits):
    fig = digits.res.plot(data_idx=[0, 1, 2, 3], output_idx=list(range(10)))
    boxes = panels(fig)
    assert len(boxes) == 40
    for box in boxes.values():
        width, height = size(box)
        assert width >= IMAGE_PX - 0.5 and height >= IMAGE_PX - 0.5
        assert width == pytest.approx(height, rel=1e-3)  # square, like the image
    assert not any(overlap(a, b) for i, a in boxes.items() for j, b in boxes.items() if i < j)
    left, _, width, _ = plot_area(fig)
    assert width >= 10 * IMAGE_PX and fig.layout.width > 1500
    assert max(box[2] for box in boxes.values()) == pytest.approx(left + width)
    assert fig.layout.autosize is False


def test_the_figure_grows_with_its_rows_and_columns(digits):
    def shape(rows, nodes):
        fig = digits.res.plot(data_idx=list(range(rows)), output_idx=list(range(nodes)))
        return fig.layout.width, fig.layout.height, size(panels(fig)[1])

    _, height_2x10, panel_2x10 = shape(2, 10)
    width_4x10, height_4x10, panel_4x10 = shape(4, 10)
    width_4x5, _, panel_4x5 = shape(4, 5)
    assert panel_2x10 == pytest.approx(panel_4x10)
    assert panel_4x5 == pytest.approx(panel_4x10)
    assert height_4x10 > height_2x10 + 2 * panel_4x10[1]
    assert width_4x10 > width_4x5 + 5 * panel_4x10[0]


def test_few_columns_share_the_width_and_large_panels_are_capped(digits):
    (one,) = panels(digits.res.plot()).values()
    assert size(one) == pytest.approx((_sizes.IMAGE_MAX_PX, _sizes.IMAGE_MAX_PX))
    three = panels(digits.res.plot(output_idx=[0, 1, 2]))
    assert all(IMAGE_PX < size(box)[0] < _sizes.IMAGE_MAX_PX for box in three.values())


def test_image_panels_follow_the_image_aspect(image):
    fig = image.res.plot(data_idx=[0, 1], output_idx=[1, 2])  # 5 × 7 images
    for box in panels(fig).values():
        width, height = size(box)
        assert width / height == pytest.approx(7 / 5, rel=1e-3)
        assert height >= IMAGE_PX - 0.5


def test_bar_and_box_panels_have_a_minimum_width(tabular):
    nodes = [0, 2]
    for fig, minimum, height in (
        (tabular.res.plot(data_idx=[0, 1], output_idx=nodes), BAR_PX, 200),
        (tabular.res.plot_global(output_idx=nodes), BOX_PX, 320),
    ):
        boxes = list(panels(fig).values())
        for box in boxes:
            assert size(box)[0] >= minimum - 0.5 and size(box)[1] == pytest.approx(height)
        assert boxes[1][0] - boxes[0][2] >= _sizes.AXIS_GAP_PX - 0.5  # room for the value axis


def test_many_features_widen_a_bar_panel():
    res = Gradient(Converter(nn.Linear(64, 2)), torch.randn(2, 64), output_idx=[0, 1])
    (box, _) = panels(res.plot(output_idx=[0, 1])).values()
    assert size(box)[0] >= 64 * _sizes.FEATURE_PX - 0.5


@pytest.mark.parametrize("kind", ["image", "bars", "bars hanging from the top"])
def test_info_strips_sit_above_their_panels(digits, tabular, kind):
    if kind == "image":
        fig = digits.res.plot(data_idx=[0, 1, 2], output_idx=[0, 1, 2, 3])
    elif kind == "bars":
        fig = tabular.res.plot(data_idx=[0, 1, 2], output_idx=[0, 2])
    else:
        model = nn.Linear(3, 2)
        with torch.no_grad():
            model.weight.copy_(torch.tensor([[-1.0, -2.0, 0.5], [1.0, 2.0, 0.5]]))
        res = Gradient(Converter(model), torch.ones(1, 3), times_input=True, output_idx=[0, 1])
        fig = res.plot(output_idx=[0, 1])
    boxes, infos = panels(fig), info_boxes(fig)
    assert set(infos) == set(boxes)
    strip_bottoms = [
        a.yshift - _style.STRIP_PX / 2 for a in fig.layout.annotations
        if a.name != "info" and a.yshift and a.textangle != 90
    ]  # fmt: skip
    for n, (x, bottom, lines) in infos.items():
        x0, y0, x1, _ = boxes[n]
        assert x == pytest.approx(x0) and bottom <= y0  # on top of its own panel
        needed = lines * _sizes.INFO_LINE_PX
        above = [b for b in boxes.values() if b[3] <= y0 and b[0] < x1 and x0 < b[2]]
        if above:  # the row gap holds the strip
            assert y0 - max(b[3] for b in above) >= needed + 2
        else:  # the column strips are lifted over it
            assert min(strip_bottoms) >= needed + 2


def test_info_strip_text_is_unchanged(tabular, tools):
    fig = tabular.res.plot(data_idx=[3], output_idx=[0])
    text = tools.info_box(fig, 1)
    assert re.fullmatch(r"Pred\.: \S+<br>Sum: \S+<br>Goal: \S+", text)


def test_without_info_strips_the_rows_are_closer(tabular):
    with_box = tabular.res.plot(data_idx=[0, 1], output_idx=[0, 2])
    without = tabular.res.plot(data_idx=[0, 1], output_idx=[0, 2], show_preds=False)
    assert without.layout.height < with_box.layout.height
    assert panels(without)[1][1] < panels(with_box)[1][1]


def test_row_strips_and_colour_bar_are_right_of_the_last_column(digits):
    fig = digits.res.plot(data_idx=[0, 1], output_idx=list(range(10)))
    left, _, width, _ = plot_area(fig)
    right_edge = max(box[2] for box in panels(fig).values())
    rects = [s for s in fig.layout.shapes if s.xsizemode == "pixel"]
    assert len(rects) == 2
    strip_end = 0
    for rect in rects:
        assert left + rect.xanchor * width >= right_edge - 1e-6
        assert rect.x0 >= 1 and rect.x1 > rect.x0
        strip_end = max(strip_end, rect.x1)
    (bar,) = [t.colorbar for t in fig.data if t.showscale]
    assert bar.xanchor == "left" and (bar.x - 1) * width >= strip_end
    assert fig.layout.margin.r >= strip_end + _sizes.COLORBAR_PX


def test_image_panels_are_framed(digits, image):
    for fig in (digits.res.plot(), image.res.plot_global()):
        for axis in (fig.layout.xaxis, fig.layout.yaxis):
            assert axis.showline and axis.mirror is True and axis.linewidth >= 1


def test_menus_fit_left_of_the_plot_and_above_its_bottom(digits, tabular):
    for fig in (
        digits.res.plot(data_idx=[0, 1, 2, 3], output_idx=list(range(10))),
        digits.res.plot(),
        tabular.res.plot_global(ref_data_idx=1),
    ):
        left, top, width, height = plot_area(fig)
        for menu in fig.layout.updatemenus:
            assert menu.xanchor == "right"
            right = left + menu.x * width
            assert right - _sizes.MENU_PX + 20 > 0 and right <= left  # not cut off on the left
        lowest = min(menu.y for menu in fig.layout.updatemenus)
        assert top + (1 - lowest) * height + 40 <= fig.layout.height


def test_a_single_reference_row_without_the_data_point_menu(tabular, tools):
    fig = plot_global_result(tabular.res, output_idx=[0], ref_data_idx=3, point_menu=False)
    assert tools.menu(fig, "Data point") is None
    points = [t for t in fig.data if t.name.startswith("selected_points")]
    assert [(t.name, t.visible) for t in points] == [("selected_points_4", True)]
    plain = plot_global_result(tabular.res, output_idx=[0], point_menu=False)
    assert not any(t.name.startswith("selected_points") for t in plain.data)
    assert tools.menu(plain, "Data point") is None
    with pytest.raises(TypeError, match="point_menu must be True or False"):
        plot_global_result(tabular.res, point_menu="no")


def test_ten_global_image_panels_are_readable(digits):
    fig = digits.res.plot_global(output_idx=list(range(10)))
    for box in panels(fig).values():
        assert min(size(box)) >= IMAGE_PX - 0.5
