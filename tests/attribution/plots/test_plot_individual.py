"""``AttributionResult.plot()``: panels per data point × output node × input layer."""

import re
import warnings

import numpy as np
import pytest
import torch

from attribution import LRP, ConnectionWeights, DeepLift, Gradient
from attribution.plots import InnsightFigure


def values(trace, name):
    return np.asarray(trace[name], dtype=np.float64)


def close(actual, desired):
    """Equal up to float32 rounding (the figure stores float32 values)."""
    desired = np.asarray(desired, dtype=np.float64)
    np.testing.assert_allclose(actual, desired, rtol=1e-5, atol=1e-6 * np.abs(desired).max())


# --- tabular -------------------------------------------------------------------------------


def test_tabular_grid_has_one_bar_per_data_point_and_node(tabular, tools):
    fig = tabular.res.plot(data_idx=[0, 3], output_idx=[0, 2])
    expected = tabular.res.get_result()  # (40, 5, 2)
    assert isinstance(fig, InnsightFigure)
    assert fig.grid_shape == (2, 2)
    assert [t.type for t in fig.data] == ["bar"] * 4
    for r, row in enumerate([0, 3]):
        for c in range(2):
            n = r * 2 + c + 1
            (bar,) = tools.cell_traces(fig, n)
            assert list(bar.x) == list("abcde")
            close(values(bar, "y"), expected[row, :, c])


def test_tabular_x_axis_is_categorical_and_each_bar_cell_has_a_zero_line(tabular):
    fig = tabular.res.plot(output_idx=[0, 2])
    assert fig.layout.xaxis.type == "category" and fig.layout.xaxis2.type == "category"
    zero_lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert sorted(s.yref for s in zero_lines) == ["y", "y2"]
    assert all(s.y0 == s.y1 == 0 for s in zero_lines)


def test_tabular_strips_name_the_nodes_and_the_data_points(tabular, tools):
    fig = tabular.res.plot(data_idx=[1, 4, 2], output_idx=[2, 0])
    found = tools.strips(fig)
    assert found["top"] == ["r", "p"]
    assert found["right"] == ["data_2", "data_5", "data_3"]
    assert found["outer"] == []


def test_tabular_default_node_is_the_first_computed_one(tabular, tools):
    fig = tabular.res.plot()
    assert fig.grid_shape == (1, 1)
    assert tools.strips(fig)["top"] == ["p"]
    close(values(fig.data[0], "y"), tabular.res.get_result()[0, :, 0])


def test_output_label_selects_the_node(tabular, tools):
    fig = tabular.res.plot(data_idx=5, output_label="r")
    assert tools.strips(fig)["top"] == ["r"]
    close(values(fig.data[0], "y"), tabular.res.get_result()[5, :, 1])


def test_tabular_fill_is_value_over_the_largest_absolute_value_of_the_panel(tabular):
    fig = tabular.res.plot(data_idx=[0, 7], output_idx=[0, 2])
    expected = tabular.res.get_result()
    for i, (row, c) in enumerate([(0, 0), (0, 1), (7, 0), (7, 1)]):
        raw = expected[row, :, c]
        fill = np.asarray(fig.data[i].marker.color)
        assert fill.dtype == np.float32
        close(fill, raw / np.abs(raw).max())
        assert np.abs(fill).max() == pytest.approx(1.0)


def test_positive_values_are_red_and_negative_values_blue(tabular, tools):
    fig = tabular.res.plot(data_idx=list(range(6)), output_idx=[0, 2])
    signs_seen = set()
    for bar in fig.data:
        raw, fill = values(bar, "y"), values(bar.marker, "color")
        np.testing.assert_array_equal(np.sign(fill), np.sign(raw))
        signs_seen |= set(np.sign(raw))
        marker = bar.marker
        assert (marker.cmin, marker.cmid, marker.cmax) == (-1, 0, 1)
        assert marker.showscale is False
        scale = [list(stop) for stop in marker.colorscale]
        assert tools.colour_at(scale, marker.cmin, marker.cmax, 1.0) == "red"
        assert tools.colour_at(scale, marker.cmin, marker.cmax, -1.0) == "blue"
        assert tools.colour_at(scale, marker.cmin, marker.cmax, 0.0) == "white"
    assert signs_seen >= {-1.0, 1.0}  # both colours actually occur


def test_tabular_inputs_are_not_aggregated(tabular):
    for how in ("sum", "norm", np.max):
        fig = tabular.res.plot(data_idx=2, aggr_channels=how)
        close(values(fig.data[0], "y"), tabular.res.get_result()[2, :, 0])


# --- signal --------------------------------------------------------------------------------


def test_signal_bars_stand_at_positions_named_in_customdata(signal, tools):
    fig = signal.res.plot(data_idx=[3], output_idx=[0, 2])
    expected = signal.res.get_result()  # (12, 2, 10, 2)
    assert [t.type for t in fig.data] == ["bar", "bar"]
    assert fig.layout.xaxis.type == "linear"
    for c, bar in enumerate(fig.data):
        np.testing.assert_array_equal(np.asarray(bar.x), np.arange(1, 11))
        assert list(bar.customdata) == [f"L{i}" for i in range(1, 11)]
        raw = expected[3, :, :, c].sum(axis=0)
        close(values(bar, "y"), raw)
        close(values(bar.marker, "color"), raw / np.abs(raw).max())
        assert "<b>Length:</b> %{customdata}" in bar.hovertemplate


@pytest.mark.parametrize("how", ["sum", "mean", "norm", np.max])
def test_signal_channels_are_aggregated(signal, tools, how):
    fig = signal.res.plot(data_idx=[1, 6], output_idx=[2], aggr_channels=how)
    raw = signal.res.get_result()[[1, 6], :, :, 1]  # (2, channels, length)
    expected = tools.aggregate(raw, how)
    for r in range(2):
        close(values(fig.data[r], "y"), expected[r])
    if how == "norm":
        assert (expected >= 0).all()


def test_aggregations_differ_from_each_other(signal):
    # guards the parametrised test above against channels that make every rule agree
    ys = [values(signal.res.plot(aggr_channels=how).data[0], "y") for how in ("sum", "norm")]
    assert not np.allclose(*ys)


@pytest.mark.parametrize("rank", ["signal", "image"])
def test_channels_last_data_gives_the_same_plot(signal, image, rank):
    case = {"signal": signal, "image": image}[rank]
    last_x = case.x.movedim(1, -1)
    first = case.res.plot(data_idx=[0, 5], output_idx=case.res.output_idx[0])
    last = Gradient(
        case.conv,
        last_x,
        times_input=True,
        channels_first=False,
        output_idx=case.res.output_idx[0],
        dtype="double",
    ).plot(data_idx=[0, 5], output_idx=case.res.output_idx[0])
    assert len(first.data) == len(last.data) == 4
    for a, b in zip(first.data, last.data, strict=True):
        fields = ("z", "customdata") if rank == "image" else ("y", "marker.color")
        for field in fields:
            got_a = np.asarray(a[field], dtype=np.float64)
            got_b = np.asarray(b[field], dtype=np.float64)
            assert got_a.shape == got_b.shape
            close(got_b, got_a)


# --- image ---------------------------------------------------------------------------------


def test_image_cell_is_a_normalised_heatmap(image):
    fig = image.res.plot(data_idx=4, output_idx=[2])
    raw = image.res.get_result()[4, :, :, :, 1].sum(axis=0)  # (5, 7)
    (heat,) = fig.data
    assert heat.type == "heatmap"
    z, custom = values(heat, "z"), values(heat, "customdata")
    assert z.shape == custom.shape == (5, 7)
    close(custom, raw)
    close(z, raw / np.abs(raw).max())
    np.testing.assert_array_equal(np.sign(z), np.sign(raw))
    assert (heat.zmin, heat.zmax) == (-1, 1)
    scale = [list(stop) for stop in heat.colorscale]
    assert scale[0][1] == "blue" and scale[-1][1] == "red"
    assert list(heat.x) == [f"W{i}" for i in range(1, 8)]
    assert list(heat.y) == [f"H{i}" for i in range(1, 6)]


def test_image_has_natural_orientation(image):
    fig = image.res.plot(data_idx=0, output_idx=[1])
    heat = fig.data[0]
    raw = image.res.get_result()[0, :, :, :, 0].sum(axis=0)
    assert heat.y[0] == "H1"  # z row 0 is the first image row ...
    close(values(heat, "customdata")[0], raw[0])
    assert fig.layout.yaxis.autorange == "reversed"  # ... drawn at the top


@pytest.mark.parametrize("how", ["sum", "mean", "norm", np.max])
def test_image_channels_are_aggregated(image, tools, how):
    fig = image.res.plot(data_idx=[2, 9], output_idx=[1], aggr_channels=how)
    expected = tools.aggregate(image.res.get_result()[[2, 9], ..., 0], how)
    for r in range(2):
        custom = values(fig.data[r], "customdata")
        close(custom, expected[r])
        close(values(fig.data[r], "z"), expected[r] / np.abs(expected[r]).max())


def test_only_the_first_image_cell_shows_the_colour_bar(image):
    fig = image.res.plot(data_idx=[0, 1], output_idx=[1, 2])
    assert [t.showscale for t in fig.data] == [True, False, False, False]
    assert fig.data[0].colorbar.title.text == "<b>Relevance</b><br>(normalized)"


def test_image_hover_names_height_and_width(image):
    fig = image.res.plot(data_idx=3, output_idx=[2])
    template = fig.data[0].hovertemplate
    assert "<b>Relevance:</b> %{customdata:.4g}" in template
    assert "<b>Height:</b> %{y}<br><b>Width:</b> %{x}" in template
    assert template.endswith("<extra>data_4<br>Output_1<br>Y3</extra>")


# --- several input and output layers -------------------------------------------------------


def test_two_inputs_two_outputs_grid_and_strips(two, tools):
    fig = two.res.plot(data_idx=[0, 2], output_idx=[[0, 2], [1]])
    assert fig.grid_shape == (2, 6)
    found = tools.strips(fig)
    assert found["top"] == ["Input_1", "Input_2"] * 3
    assert found["outer"] == ["Output_1: Y1", "Output_1: Y3", "Output_2: Y2"]
    assert found["right"] == ["data_1", "data_3"]
    # per row: heatmap, bars, heatmap, bars, (empty: image does not reach Output_2), bars
    assert [t.type for t in fig.data] == ["heatmap", "bar", "heatmap", "bar", "bar"] * 2
    for n in (5, 11):
        assert tools.cell_traces(fig, n) == []
    notes = [a.text for a in fig.layout.annotations if "does not reach" in (a.text or "")]
    assert notes == ["Input_1 does not reach<br>Output_2"] * 2


def test_two_inputs_values_per_cell(two, tools):
    fig = two.res.plot(data_idx=[3], output_idx=[[2], [1]])
    expected = two.res.get_result()
    image_raw = expected["Output_1"]["Input_1"][3, ..., 1].sum(axis=0)
    close(values(tools.cell_traces(fig, 1)[0], "customdata"), image_raw)
    (bar,) = tools.cell_traces(fig, 2)
    assert list(bar.x) == ["X1", "X2", "X3", "X4"]
    close(values(bar, "y"), expected["Output_1"]["Input_2"][3, :, 1])
    (bar,) = tools.cell_traces(fig, 4)
    close(values(bar, "y"), expected["Output_2"]["Input_2"][3, :, 0])
    assert bar.hovertemplate.endswith("<extra>data_4<br>Output_2<br>Y2</extra>")


@pytest.mark.parametrize("same_scale", [False, True])
def test_normalisation_groups(two, tools, same_scale):
    row = 1
    fig = two.res.plot(data_idx=row, output_idx=[[0], [1]], same_scale=same_scale)
    expected = two.res.get_result()
    image_raw = expected["Output_1"]["Input_1"][row, ..., 0].sum(axis=0)
    tab_raw = expected["Output_1"]["Input_2"][row, :, 0]
    tab2_raw = expected["Output_2"]["Input_2"][row, :, 0]
    image_max, tab_max = np.abs(image_raw).max(), np.abs(tab_raw).max()
    assert not np.isclose(image_max, tab_max)  # otherwise both groupings agree
    shared = max(image_max, tab_max)
    scales = (shared, shared) if same_scale else (image_max, tab_max)
    z = values(tools.cell_traces(fig, 1)[0], "z")
    fill = values(tools.cell_traces(fig, 2)[0].marker, "color")
    close(z, image_raw / scales[0])
    close(fill, tab_raw / scales[1])
    # Output_2 reads only the tabular input: its own maximum either way
    fill2 = values(tools.cell_traces(fig, 4)[0].marker, "color")
    close(fill2, tab2_raw / np.abs(tab2_raw).max())


def test_two_inputs_colour_bar_on_the_first_image_cell_only(two):
    fig = two.res.plot(data_idx=[0, 1], output_idx=[[0, 2], None])
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 4
    assert [t.showscale for t in heatmaps] == [True, False, False, False]
    assert all(t.marker.showscale is False for t in fig.data if t.type == "bar")


# --- info box ------------------------------------------------------------------------------


def test_info_box_shows_prediction_sum_and_goal(two, tools):
    rows = [0, 4]
    fig = two.res.plot(data_idx=rows, output_idx=[[2], [1]])
    expected = two.res.get_result()
    cells = {  # grid column -> (output layer, position of the node, input layer)
        0: ("Output_1", 0, 1, "Input_1"),
        1: ("Output_1", 0, 1, "Input_2"),
        3: ("Output_2", 1, 0, "Input_2"),
    }
    for r, row in enumerate(rows):
        for c, (out, k, position, inp) in cells.items():
            text = tools.info_box(fig, r * 4 + c + 1)
            pred = two.res.preds[k][row, position].item()
            goal = two.res.decomp_goal[k][row, position].item()
            total = expected[out][inp][row, ..., position].sum()
            match = re.fullmatch(r"Pred\.: (\S+)<br>Sum: (\S+)<br>Goal: (\S+)", text)
            assert match, text
            shown = [float(v) for v in match.groups()]
            np.testing.assert_allclose(shown, [pred, total, goal], rtol=6e-4)
            assert match.group(1) == f"{pred:.4g}" and match.group(3) == f"{goal:.4g}"
        assert tools.info_box(fig, r * 4 + 3) is None  # the empty cell


def test_info_box_numbers_have_four_significant_digits(tabular, tools):
    fig = tabular.res.plot(data_idx=list(range(5)), output_idx=[0, 2])
    texts = [a.text for a in fig.layout.annotations if a.name == "info"]
    assert len(texts) == 10
    for text in texts:
        for number in re.findall(r": (\S+?)(?:<br>|$)", text):
            digits = re.sub(r"e[+-]\d+$", "", number).lstrip("-").replace(".", "").lstrip("0")
            assert len(digits) <= 4, number


def test_show_preds_false_removes_the_info_boxes(tabular):
    with_box = tabular.res.plot(data_idx=[0, 1], output_idx=[0, 2])
    without = tabular.res.plot(data_idx=[0, 1], output_idx=[0, 2], show_preds=False)
    assert sum(a.name == "info" for a in with_box.layout.annotations) == 4
    assert not any(a.name == "info" for a in without.layout.annotations)
    assert not any("Pred." in (a.text or "") for a in without.layout.annotations)


# --- hover and value names -----------------------------------------------------------------


def test_bar_hover_template(tabular):
    fig = tabular.res.plot(data_idx=6, output_idx=[2])
    template = fig.data[0].hovertemplate
    assert template.startswith("<b>Relevance:</b> %{y:.4g}")
    assert "<b>Input:</b> Input_1" in template and "<b>Feature:</b> %{x}" in template
    assert template.endswith("<extra>data_7<br>Output_1<br>r</extra>")


@pytest.mark.parametrize(
    ("method", "kwargs", "name"),
    [
        (Gradient, {}, "Gradient"),
        (Gradient, {"times_input": True}, "Relevance"),
        (LRP, {}, "Relevance"),
        (DeepLift, {}, "Contribution"),
    ],
)
def test_value_name_per_method(tabular, method, kwargs, name):
    res = method(tabular.conv, tabular.x[:3], **kwargs)
    fig = res.plot()
    assert res.value_name == name
    assert fig.data[0].hovertemplate.startswith(f"<b>{name}:</b> %{{y:.4g}}")


def test_value_name_titles_the_colour_bar(image):
    res = Gradient(image.conv, image.x[:2])
    assert res.plot().data[0].colorbar.title.text == "<b>Gradient</b><br>(normalized)"


# --- menus ---------------------------------------------------------------------------------


def test_colorscale_menu_restyles_every_bar(tabular, tools):
    fig = tabular.res.plot(data_idx=[0, 1], output_idx=[0, 2])
    assert len(fig.layout.updatemenus) == 1
    scales = tools.menu(fig, "Colorscale")
    labels = [b.label for b in scales.buttons]
    assert len(labels) == 38
    assert labels[0] == "Default" and labels[19] == "Default (rev.)"
    assert labels[19:] == [f"{label} (rev.)" for label in labels[:19]]
    for i, button in enumerate(scales.buttons):
        assert button.method == "restyle"
        style, indices = button.args
        assert list(indices) == [0, 1, 2, 3]
        assert style["reversescale"] is (i >= 19) and style["marker.reversescale"] is (i >= 19)
    default = scales.buttons[0].args[0]["marker.colorscale"][0]
    assert [list(stop) for stop in default] == [list(s) for s in fig.data[0].marker.colorscale]
    assert tools.menu(fig, "2D Plot Type") is None


def test_images_get_a_heatmap_contour_menu(image, tools):
    fig = image.res.plot(data_idx=[0, 1], output_idx=[1])
    plot_type = tools.menu(fig, "2D Plot Type")
    assert [b.label for b in plot_type.buttons] == ["Heatmap", "Contour"]
    assert [b.args[0] for b in plot_type.buttons] == [{"type": "heatmap"}, {"type": "contour"}]
    assert list(plot_type.buttons[0].args[1]) == [0, 1]
    assert len(tools.menu(fig, "Colorscale").buttons) == 38


def test_two_input_menus_cover_bars_and_heatmaps(two, tools):
    fig = two.res.plot(output_idx=[[0], [1]])
    kinds = [t.type for t in fig.data]
    scale_targets = list(tools.menu(fig, "Colorscale").buttons[0].args[1])
    assert scale_targets == list(range(len(kinds)))
    heat_targets = list(tools.menu(fig, "2D Plot Type").buttons[0].args[1])
    assert heat_targets == [i for i, kind in enumerate(kinds) if kind == "heatmap"]


def test_signal_has_no_heatmap_menu(signal, tools):
    fig = signal.res.plot()
    assert tools.menu(fig, "2D Plot Type") is None
    assert tools.menu(fig, "Colorscale") is not None


# --- global Connection Weights -------------------------------------------------------------


def test_global_connection_weights_plots_one_row(image, tools):
    res = ConnectionWeights(image.conv, output_idx=[0, 2])
    fig = res.plot(output_idx=[0, 2])
    assert fig.grid_shape == (1, 2)
    assert tools.strips(fig)["right"] == ["data_1"]
    raw = res.get_result()[0, ..., 1].sum(axis=0)
    close(values(fig.data[1], "customdata"), raw)
    close(values(fig.data[1], "z"), raw / np.abs(raw).max())
    info = tools.info_box(fig, 1)
    assert info.startswith("Sum: ") and "Pred." not in info and "Goal" not in info
    assert fig.data[0].hovertemplate.startswith("<b>Relative Importance:</b>")


def test_global_connection_weights_warns_that_data_idx_is_ignored(tabular):
    res = ConnectionWeights(tabular.conv)
    with pytest.warns(UserWarning, match="data_idx is ignored"):
        fig = res.plot(data_idx=3)
    assert fig.grid_shape == (1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res.plot(data_idx=0)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"data_idx": 40}, ValueError, r"data_idx 40 is out of range: .* 40 data points"),
        ({"data_idx": -1}, ValueError, "data_idx -1 is out of range"),
        ({"data_idx": [0, 99]}, ValueError, "data_idx 99 is out of range"),
        ({"data_idx": []}, ValueError, "data_idx is empty"),
        ({"data_idx": "1"}, TypeError, "data_idx must be a row index"),
        ({"data_idx": True}, TypeError, "data_idx must be a row index"),
        ({"data_idx": [0, 1.5]}, TypeError, "data_idx entries must be integers; got 1.5"),
        ({"output_idx": [1]}, ValueError, r"Output node 1 \('q'\) .* was not computed"),
        ({"output_label": ["s"]}, ValueError, r"Output node 3 \('s'\) .* was not computed"),
        ({"output_idx": [9]}, ValueError, "output_idx 9 is out of range"),
        ({"aggr_channels": "max"}, ValueError, "aggr_channels must be 'sum', 'mean', 'norm'"),
        ({"same_scale": "yes"}, TypeError, "same_scale must be True or False"),
        ({"show_preds": 1}, TypeError, "show_preds must be True or False"),
    ],
)
def test_bad_arguments(tabular, kwargs, error, message):
    with pytest.raises(error, match=message):
        tabular.res.plot(**kwargs)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("max", "aggr_channels must be 'sum', 'mean', 'norm' or a function"),
        (lambda v, axis: v, r"must reduce the channel axis \(axis=1\)"),
    ],
)
def test_bad_aggr_channels(signal, how, message):
    with pytest.raises(ValueError, match=message):
        signal.res.plot(aggr_channels=how)


def test_cells_use_row_major_axes(signal, tools):
    fig = signal.res.plot(data_idx=[2, 8], output_idx=[0, 2])
    expected = signal.res.get_result()[..., :].sum(axis=1)  # (12, 10, 2)
    for r, row in enumerate([2, 8]):
        for c in range(2):
            (bar,) = tools.cell_traces(fig, r * 2 + c + 1)
            close(values(bar, "y"), expected[row, :, c])
    assert fig.layout.xaxis3.matches == "x"  # second row shares the first row's x axes
    assert fig.layout.xaxis.showticklabels is False and fig.layout.xaxis3.showticklabels


def test_torch_tensor_result_is_unchanged_by_plotting(signal):
    before = signal.res.get_result("torch").clone()
    signal.res.plot(data_idx=[0, 1], aggr_channels="norm")
    torch.testing.assert_close(signal.res.get_result("torch"), before)


def test_output_idx_wins_over_output_label_with_a_warning(tabular, tools):
    with pytest.warns(UserWarning, match="output_label is ignored") as record:
        fig = tabular.res.plot(output_idx=[2], output_label=["p"])
    assert record[0].filename == __file__  # points at the caller
    assert tools.strips(fig)["top"] == ["r"]
    close(values(fig.data[0], "y"), tabular.res.get_result()[0, :, 1])
