"""``AttributionResult.plot_global()`` / ``boxplot()``: box plots and image quantiles."""

import warnings

import numpy as np
import pytest
import torch

from attribution import AttributionResult, ConnectionWeights

QUANTILES = np.linspace(0, 1, 9)


def arr(trace, name):
    return np.asarray(trace[name], dtype=np.float64)


def close(actual, desired):
    """Equal up to float32 rounding (the figure stores float32 values)."""
    desired = np.asarray(desired, dtype=np.float64)
    scale = np.nanmax(np.abs(desired)) if desired.size else 1.0
    np.testing.assert_allclose(actual, desired, rtol=1e-5, atol=1e-6 * scale)


def named(fig, name):
    (trace,) = [t for t in fig.data if t.name == name]
    return trace


def stats_of(values, tools):
    """R's boxplot.stats per column of ``values`` (rows × features), computed here."""
    per_column = [tools.boxplot_stats(list(values[:, f])) for f in range(values.shape[1])]
    stats = np.array([s for s, _ in per_column])  # (features, 5)
    outliers = sorted((f + 1, v) for f, (_, out) in enumerate(per_column) for v in out)
    return stats, outliers


def assert_box_matches(fig, values, tools, box_index=0):
    box = [t for t in fig.data if t.type == "box"][box_index]
    stats, _ = stats_of(values, tools)
    close(arr(box, "x"), np.arange(1, values.shape[1] + 1))
    for i, key in enumerate(["lowerfence", "q1", "median", "q3", "upperfence"]):
        close(arr(box, key), stats[:, i])


def handmade(column_a, column_b=None):
    """A tabular result of two features whose values are given directly."""
    a = torch.tensor(column_a, dtype=torch.float64)
    b = -a if column_b is None else torch.tensor(column_b, dtype=torch.float64)
    values = torch.stack([a, b], 1)[..., None]  # (rows, 2 features, 1 node)
    return AttributionResult(
        method_name="Test", value_name="Relevance", result=[[values]], preds=[None],
        decomp_goal=[None], output_idx=[[0]], input_names=[[["a", "b"]]],
        output_names=[["y"]], input_dim=[(2,)],
    )  # fmt: skip


# --- box statistics ------------------------------------------------------------------------


def test_box_statistics_of_a_known_vector():
    # x = 1..9, 100 (n = 10): Tukey's depths 1, 3, 5.5, 8, 10 give hinges 3 and 8 and the
    # median 5.5; IQR 5, fences 3 - 7.5 = -4.5 and 8 + 7.5 = 15.5, so 100 is an outlier and
    # the whiskers end at 1 and 9: R's boxplot.stats(c(1:9, 100)) is 1 3 5.5 8 9, out 100.
    # Feature b = -x mirrors it: -9 -8 -5.5 -3 -1, out -100.
    res = handmade([*range(1, 10), 100])
    fig = res.plot_global(preprocess="identity")
    box = fig.data[0]
    assert box.type == "box"
    close(arr(box, "lowerfence"), [1, -9])
    close(arr(box, "q1"), [3, -8])
    close(arr(box, "median"), [5.5, -5.5])
    close(arr(box, "q3"), [8, -3])
    close(arr(box, "upperfence"), [9, -1])
    outliers = named(fig, "outliers")
    assert sorted(zip(arr(outliers, "x"), arr(outliers, "y"), strict=True)) == [
        (1.0, 100.0),
        (2.0, -100.0),
    ]


def test_box_statistics_of_an_odd_number_of_rows():
    # rows 0..6 hold 1..7 (n = 7): depths 1, 2.5, 4, 5.5, 7 give 1, 2.5, 4, 5.5, 7; the
    # fences -2 and 10 leave no outlier (R: boxplot.stats(1:7)$stats).
    res = handmade([*range(1, 10), 100])
    fig = res.plot_global(preprocess="identity", data_idx=list(range(7)))
    box = fig.data[0]
    got = [arr(box, key)[0] for key in ("lowerfence", "q1", "median", "q3", "upperfence")]
    assert got == [1, 2.5, 4, 5.5, 7]
    assert len(named(fig, "outliers").x) == 0


@pytest.mark.parametrize("preprocess", ["abs", "identity"])
def test_box_statistics_equal_r_boxplot_stats(tabular, tools, preprocess):
    fig = tabular.res.plot_global(output_idx=[0, 2], preprocess=preprocess)
    raw = tabular.res.get_result()  # (40, 5, 2)
    for c in range(2):
        values = np.abs(raw[..., c]) if preprocess == "abs" else raw[..., c]
        assert_box_matches(fig, values, tools, box_index=c)


def test_outliers_are_exactly_the_points_outside_the_fences(tabular, tools):
    fig = tabular.res.plot_global(output_idx=[2], preprocess="identity")
    values = tabular.res.get_result()[..., 1]
    _, expected = stats_of(values, tools)
    assert len(expected) >= 3  # the heavy-tailed data does have outliers
    outliers = named(fig, "outliers")
    got = sorted(zip(arr(outliers, "x"), arr(outliers, "y"), strict=True))
    assert [x for x, _ in got] == [x for x, _ in expected]
    close([y for _, y in got], [y for _, y in expected])
    box = named(fig, "boxplot")
    for x, y in got:
        f = int(x) - 1
        assert y < box.lowerfence[f] or y > box.upperfence[f]
    assert outliers.mode == "markers"


def test_box_trace_hides_its_own_points_and_has_feature_ticks(tabular):
    fig = tabular.res.plot_global()
    box = named(fig, "boxplot")
    assert box.boxpoints is False
    assert list(fig.layout.xaxis.ticktext) == list("abcde")
    close(np.asarray(fig.layout.xaxis.tickvals, dtype=float), np.arange(1, 6))


def test_data_idx_selects_the_rows_of_the_statistics(tabular, tools):
    rows = list(range(0, 40, 3))
    fig = tabular.res.plot_global(data_idx=rows, preprocess="identity")
    values = tabular.res.get_result()[rows, :, 0]
    assert_box_matches(fig, values, tools)
    everything = tabular.res.plot_global(preprocess="identity")
    assert not np.allclose(arr(fig.data[0], "median"), arr(everything.data[0], "median"))


# --- preprocess and channel aggregation ----------------------------------------------------


@pytest.mark.parametrize(
    ("preprocess", "function"),
    [
        ("abs", np.abs),
        ("identity", lambda v: v),
        ("square", np.square),
        (lambda v: np.maximum(v, 0), lambda v: np.maximum(v, 0)),
    ],
)
def test_preprocess_comes_before_channel_aggregation(signal, tools, preprocess, function):
    fig = signal.res.plot_global(output_idx=[2], preprocess=preprocess)
    raw = signal.res.get_result()[..., 1]  # (12, 2 channels, 10)
    assert_box_matches(fig, function(raw).sum(axis=1), tools)


def test_abs_before_the_sum_differs_from_abs_of_the_sum(signal):
    # guards the test above: the order of the two steps is visible in this data
    raw = signal.res.get_result()[..., 0]
    assert not np.allclose(np.abs(raw).sum(1), np.abs(raw.sum(1)))


@pytest.mark.parametrize("how", ["mean", "norm", np.max])
def test_aggr_channels_in_global_plots(signal, tools, how):
    fig = signal.res.plot_global(aggr_channels=how, preprocess="identity")
    values = tools.aggregate(signal.res.get_result()[..., 0], how)
    assert_box_matches(fig, values, tools)


@pytest.mark.parametrize(
    ("preprocess", "error", "message"),
    [
        ("log", ValueError, "preprocess must be 'abs', 'identity', 'square'"),
        (np.sum, ValueError, "it must work element-wise"),
    ],
)
def test_bad_preprocess(tabular, preprocess, error, message):
    with pytest.raises(error, match=message):
        tabular.res.plot_global(preprocess=preprocess)


# --- individual data points ----------------------------------------------------------------


def segments_of(fig):
    return [t for t in fig.data if (t.name or "").startswith("selected_points_")]


def test_reference_row_is_drawn_in_red_at_its_values(tabular):
    fig = tabular.res.plot_global(output_idx=[0, 2], data_idx=list(range(10)), ref_data_idx=37)
    expected = np.abs(tabular.res.get_result()[37])  # (5, 2): a row outside data_idx
    refs = [t for t in segments_of(fig) if t.name == "selected_points_38"]
    assert len(refs) == 2  # one per panel
    for c, ref in enumerate(refs):
        assert ref.visible is True and ref.line.color == "red" and ref.mode == "lines"
        y = arr(ref, "y").reshape(5, 3)
        assert np.isnan(y[:, 2]).all()
        close(y[:, 0], expected[:, c])
        close(y[:, 1], expected[:, c])
        x = arr(ref, "x").reshape(5, 3)
        close(x[:, 0], np.arange(1, 6) - 0.375)
        close(x[:, 1], np.arange(1, 6) + 0.375)
    assert all(t.visible is False for t in segments_of(fig) if t.name != "selected_points_38")


def test_without_reference_no_row_is_visible(tabular, tools):
    fig = tabular.res.plot_global()
    assert segments_of(fig) and not any(t.visible for t in segments_of(fig))
    assert tools.menu(fig, "Data point").active == 0


def test_individual_rows_default_to_the_first_twenty_after_the_reference(tabular):
    fig = tabular.res.plot_global(ref_data_idx=30)
    names = [t.name for t in segments_of(fig)]
    assert names == ["selected_points_31"] + [f"selected_points_{i + 1}" for i in range(20)]


def test_data_point_menu_toggles_one_row(tabular, tools):
    fig = tabular.res.plot_global(output_idx=[0, 2], ref_data_idx=7, individual_max=4)
    points = tools.menu(fig, "Data point")
    labels = [b.label for b in points.buttons]
    assert labels == ["None", "data_8", "data_1", "data_2", "data_3", "data_4"]
    assert points.active == 1
    for button in points.buttons:
        assert button.method == "restyle"
        visible, indices = button.args
        targets = [fig.data[i] for i in indices]
        assert [t.name for t in targets] == [t.name for t in segments_of(fig)]
        wanted = button.label.replace("data_", "selected_points_")
        assert visible["visible"] == [t.name == wanted for t in targets]
        assert sum(visible["visible"]) == (0 if button.label == "None" else 2)


@pytest.mark.parametrize(
    ("kwargs", "rows"),
    [
        ({"individual_max": 3}, [0, 1, 2]),
        ({"individual_max": 3, "ref_data_idx": 1}, [1, 0, 2]),
        ({"individual_max": 3, "ref_data_idx": 9}, [9, 0, 1, 2]),
        ({"individual_max": 2, "ref_data_idx": np.int64(4)}, [4, 0, 1]),
        ({"individual_data_idx": [5, 7, 9, 11], "individual_max": 3}, [5, 7, 9]),
        ({"individual_data_idx": [5, 7, 9], "ref_data_idx": 7}, [7, 5, 9]),
        ({"individual_max": 1000}, list(range(40))),
    ],
)
def test_individual_rows(tabular, kwargs, rows):
    fig = tabular.res.plot_global(**kwargs)
    assert [t.name for t in segments_of(fig)] == [f"selected_points_{i + 1}" for i in rows]
    values = np.abs(tabular.res.get_result()[..., 0])
    for trace, row in zip(segments_of(fig), rows, strict=True):
        close(arr(trace, "y").reshape(-1, 3)[:, 0], values[row])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"individual_max": 0}, ValueError, "individual_max must be an integer >= 1; got 0"),
        ({"individual_max": 2.5}, ValueError, "individual_max must be an integer"),
        ({"individual_data_idx": [50]}, ValueError, "individual_data_idx 50 is out of range"),
        ({"ref_data_idx": 40}, ValueError, "ref_data_idx 40 is out of range"),
        ({"ref_data_idx": -1}, ValueError, "ref_data_idx -1 is out of range"),
        ({"ref_data_idx": [1]}, TypeError, "ref_data_idx must be a single row index"),
        ({"ref_data_idx": True}, TypeError, "ref_data_idx must be a single row index"),
        ({"ref_data_idx": "3"}, TypeError, "ref_data_idx must be a single row index"),
        ({"ref_data_idx": (1, 2)}, TypeError, "ref_data_idx must be a single row index"),
        ({"ref_data_idx": np.array([1, 2])}, TypeError, "ref_data_idx must be a single row"),
        ({"ref_data_idx": 2.0}, TypeError, "ref_data_idx must be a single row index"),
        ({"data_idx": "some"}, TypeError, "data_idx must be a row index"),
        ({"data_idx": [3, 40]}, ValueError, "data_idx 40 is out of range"),
        ({"output_idx": [1]}, ValueError, r"Output node 1 \('q'\) .* was not computed"),
        ({"aggr_channels": "median"}, ValueError, "aggr_channels must be"),
    ],
)
def test_bad_arguments(tabular, kwargs, error, message):
    with pytest.raises(error, match=message):
        tabular.res.plot_global(**kwargs)


# --- box / violin ---------------------------------------------------------------------------


def test_box_violin_menu(tabular, tools):
    fig = tabular.res.plot_global(output_idx=[0, 2])
    plot_type = tools.menu(fig, "1D Plot Type")
    assert [b.label for b in plot_type.buttons] == ["Boxplot", "Violin"]
    for button, violin in zip(plot_type.buttons, (False, True), strict=True):
        visible, indices = button.args
        names = [fig.data[i].name for i in indices]
        assert names == ["boxplot", "outliers", "violin"] * 2
        assert visible["visible"] == [(name == "violin") == violin for name in names]


def test_violin_outline_is_hidden_and_covers_the_values(tabular):
    fig = tabular.res.plot_global()
    violin = named(fig, "violin")
    assert violin.visible is False and violin.fill == "toself"
    values = np.abs(tabular.res.get_result()[..., 0])
    x, y = arr(violin, "x"), arr(violin, "y")
    parts = np.split(np.arange(len(x)), np.flatnonzero(np.isnan(x)) + 1)
    parts = [p[~np.isnan(x[p])] for p in parts if (~np.isnan(x[p])).any()]
    assert len(parts) == 5  # one closed outline per feature
    for f, part in enumerate(parts):
        assert np.all(np.abs(x[part] - (f + 1)) <= 0.4 + 1e-6)
        assert y[part].min() <= values[:, f].min() and y[part].max() >= values[:, f].max()


def test_tabular_global_layout(tabular, tools):
    fig = tabular.res.plot_global(output_idx=[2, 0])
    assert fig.grid_shape == (1, 2)
    found = tools.strips(fig)
    assert found["top"] == ["r", "p"] and found["right"] == [] and found["outer"] == []
    assert tools.menu(fig, "Colorscale") is None and tools.menu(fig, "2D Plot Type") is None
    assert fig.layout.sliders == ()
    names = ["boxplot", "outliers", "violin"] + [f"selected_points_{i}" for i in range(1, 21)]
    assert [t.name for t in fig.data] == names * 2  # per panel, in this order
    assert [t.type for t in fig.data[:3]] == ["box", "scatter", "scatter"]
    assert all(t.line.color == "red" for t in segments_of(fig))


# --- images --------------------------------------------------------------------------------


def test_image_quantile_heatmaps(image, tools):
    rows = [0, 2, 3, 5, 8, 9, 11]
    fig = image.res.plot_global(output_idx=[2], data_idx=rows)
    values = np.abs(image.res.get_result()[rows, ..., 1]).sum(axis=1)  # (7, 5, 7)
    heatmaps = list(fig.data)
    assert [t.name for t in heatmaps] == [f"image_{k}" for k in range(1, 10)]
    assert [t.visible for t in heatmaps] == [k == 4 for k in range(9)]
    for k, trace in enumerate(heatmaps):
        quantile = np.quantile(values, QUANTILES[k], axis=0)
        close(arr(trace, "customdata"), quantile)
        # each quantile map is normalised by its own largest |value|
        close(arr(trace, "z"), quantile / np.abs(quantile).max())
        assert (trace.zmin, trace.zmax) == (-1, 1)
    assert "<b>Median</b>" in heatmaps[4].hovertemplate
    assert "<b>Minimum</b>" in heatmaps[0].hovertemplate
    assert "<b>Maximum</b>" in heatmaps[8].hovertemplate
    assert "<b>Percentile (12.5%)</b>" in heatmaps[1].hovertemplate
    assert fig.layout.yaxis.autorange == "reversed"


def test_image_quantile_slider(image):
    fig = image.res.plot_global(output_idx=[1, 2])
    (slider,) = fig.layout.sliders
    assert slider.active == 4 and len(slider.steps) == 9
    assert slider.steps[0].label == "min" and slider.steps[8].label == "max"
    assert slider.steps[4].label == "median"
    for k, step in enumerate(slider.steps):
        visible, indices = step.args
        assert [fig.data[i].name for i in indices] == [f"image_{j}" for j in range(1, 10)] * 2
        assert visible["visible"] == [j == k for j in range(9)] * 2


def test_image_global_menus(image, tools):
    fig = image.res.plot_global()
    assert list(tools.menu(fig, "Colorscale").buttons[0].args[1]) == list(range(9))
    assert tools.menu(fig, "2D Plot Type") is not None
    assert tools.menu(fig, "Data point") is None and tools.menu(fig, "1D Plot Type") is None
    # every quantile of the first image panel carries the colour bar (one is visible at a
    # time); the second panel's quantiles carry none
    fig = image.res.plot_global(output_idx=[1, 2])
    assert [t.showscale for t in fig.data] == [True] * 9 + [False] * 9
    assert fig.data[0].colorbar.title.text == "<b>Relevance</b><br>(normalized)"


def test_image_reference_row_is_ignored_with_a_warning(image):
    with pytest.warns(UserWarning, match="ref_data_idx is ignored for image inputs"):
        fig = image.res.plot_global(ref_data_idx=3)
    assert not segments_of(fig)


def test_two_input_global_image_scale_ignores_the_tabular_input(two, tools):
    # a tenth of the channel sum keeps the image below the tabular input; the image's quantile
    # maps are still normalised by their own largest value (the box plots have no colours)
    def tenth(values, axis):
        return values.sum(axis=axis) / 10

    fig = two.res.plot_global(output_idx=[[0], [1]], aggr_channels=tenth)
    expected = two.res.get_result()
    image_values = np.abs(expected["Output_1"]["Input_1"][..., 0]).sum(axis=1) / 10
    tab_values = np.abs(expected["Output_1"]["Input_2"][..., 0])
    assert tab_values.max() > 1.5 * image_values.max()
    median = named(fig, "image_5")
    image_median = np.quantile(image_values, 0.5, axis=0)
    close(arr(median, "z"), image_median / np.abs(image_median).max())
    found = tools.strips(fig)
    assert found["top"] == ["Input_1", "Input_2"] * 2
    assert found["outer"] == ["Output_1: Y1", "Output_2: Y2"]
    assert tools.cell_traces(fig, 3) == []  # the image does not reach Output_2
    assert_box_matches(fig, tab_values, tools, box_index=0)
    assert_box_matches(fig, np.abs(expected["Output_2"]["Input_2"][..., 0]), tools, 1)


# --- boxplot() and global Connection Weights -----------------------------------------------


def test_boxplot_is_plot_global(tabular):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        box = tabular.res.boxplot(output_idx=[2], ref_data_idx=4)
    assert box.to_json() == tabular.res.plot_global(output_idx=[2], ref_data_idx=4).to_json()


@pytest.mark.parametrize("case", ["image", "two"])
def test_boxplot_warns_for_images(image, two, case):
    res = {"image": image, "two": two}[case].res
    with pytest.warns(UserWarning, match=r"boxplot\(\) of image inputs"):
        fig = res.boxplot()
    assert fig.to_json() == res.plot_global().to_json()


def test_global_connection_weights_have_no_global_plot(tabular):
    res = ConnectionWeights(tabular.conv)
    with pytest.raises(ValueError, match="global Connection Weights .* has none"):
        res.plot_global()
    with pytest.raises(ValueError, match="global Connection Weights"):
        res.boxplot()


def test_local_connection_weights_have_a_global_plot(tabular, tools):
    res = ConnectionWeights(tabular.conv, tabular.x, times_input=True, dtype="double")
    fig = res.plot_global(preprocess="identity")
    assert_box_matches(fig, res.get_result()[..., 0], tools)


def test_output_idx_wins_over_output_label_with_a_warning(tabular, tools):
    with pytest.warns(UserWarning, match="output_label is ignored") as record:
        fig = tabular.res.plot_global(output_idx=[2], output_label=["p"], preprocess="identity")
    assert record[0].filename == __file__
    assert tools.strips(fig)["top"] == ["r"]
    assert_box_matches(fig, tabular.res.get_result()[..., 1], tools)
