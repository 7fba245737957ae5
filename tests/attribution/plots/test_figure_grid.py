"""``InnsightFigure``: ``fig[i, j]`` sub-grids, plotly's own keys, HTML and JSON output."""

import base64
import copy
import json
import pickle

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from plotly.io.json import to_json_plotly

from attribution.plots import InnsightFigure


def trace_json(trace, drop=("xaxis", "yaxis")):
    """A trace as JSON without the keys that place it in a grid."""
    plain = {k: v for k, v in trace.to_plotly_json().items() if k not in drop}
    return json.loads(to_json_plotly(plain))


def assert_same_cells(sub, full, cells):
    """``sub``'s traces are the traces of ``full``'s cells ``cells`` (1-based), in order
    (the colour bar goes to the first image panel of each figure, so it is left out)."""
    expected = [t for n in cells for t in full.data if t.xaxis == ("x" if n == 1 else f"x{n}")]
    assert len(sub.data) == len(expected)
    drop = ("xaxis", "yaxis", "showscale", "colorbar")
    for got, want in zip(sub.data, expected, strict=True):
        assert trace_json(got, drop) == trace_json(want, drop)


def decode(obj):
    """Parsed plotly JSON with its base64 typed arrays turned into lists."""
    if isinstance(obj, dict):
        if set(obj) >= {"dtype", "bdata"}:
            array = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=obj["dtype"])
            if "shape" in obj:
                array = array.reshape([int(n) for n in str(obj["shape"]).split(",")])
            return array.tolist()
        return {key: decode(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [decode(value) for value in obj]
    return obj


@pytest.fixture(scope="module")
def grid(tabular):
    """3 data points × 2 output nodes of bars; cell (r, c) is n = 2r + c + 1."""
    return tabular.res.plot(data_idx=[0, 1, 2], output_idx=[0, 2])


def test_grid_shape(grid, two):
    assert grid.grid_shape == (3, 2)
    assert two.res.plot(data_idx=[0, 1], output_idx=[[0, 2], [1]]).grid_shape == (2, 6)


def test_single_panel(grid, tools):
    sub = grid[1, 1]
    assert isinstance(sub, InnsightFigure) and sub.grid_shape == (1, 1)
    assert_same_cells(sub, grid, [4])
    assert sub.data[0].xaxis == "x" and sub.data[0].yaxis == "y"
    found = tools.strips(sub)
    assert found["top"] == ["r"] and found["right"] == ["data_2"]
    assert [a.text for a in sub.layout.annotations if a.name == "info"] == [
        a.text for a in grid.layout.annotations if a.name == "info" and a.xref == "x4 domain"
    ]


def test_column_slice(grid, tools):
    sub = grid[:, 1]
    assert sub.grid_shape == (3, 1)
    assert_same_cells(sub, grid, [2, 4, 6])
    assert tools.strips(sub) == {"top": ["r"], "outer": [], "right": ["data_1", "data_2", "data_3"]}


def test_row_only_key_keeps_every_column(grid, tools):
    sub = grid[2]
    assert sub.grid_shape == (1, 2)
    assert_same_cells(sub, grid, [5, 6])
    assert tools.strips(sub)["right"] == ["data_3"]


def test_negative_and_list_indices(grid, tools):
    assert_same_cells(grid[-1, -1], grid, [6])
    sub = grid[[2, 0], [1, 0]]
    assert sub.grid_shape == (2, 2)
    assert_same_cells(sub, grid, [6, 5, 2, 1])
    assert tools.strips(sub) == {"top": ["r", "p"], "outer": [], "right": ["data_3", "data_1"]}
    assert_same_cells(grid[np.int64(1), np.array([0])], grid, [3])


def test_sub_grid_menus_point_at_its_own_traces(grid, tools):
    sub = grid[1:, :]
    assert len(sub.data) == 4
    targets = tools.menu(sub, "Colorscale").buttons[0].args[1]
    assert list(targets) == [0, 1, 2, 3]


def test_sub_grid_of_several_input_layers_keeps_the_output_strips(two, tools):
    fig = two.res.plot(data_idx=[0, 1], output_idx=[[0, 2], [1]])
    sub = fig[1, 1:4]
    assert sub.grid_shape == (1, 3)
    assert_same_cells(sub, fig, [8, 9, 10])
    found = tools.strips(sub)
    assert found["top"] == ["Input_2", "Input_1", "Input_2"]
    assert found["outer"] == ["Output_1: Y1", "Output_1: Y3"]
    assert found["right"] == ["data_2"]


def test_sub_grid_gets_its_own_colour_bar(image):
    fig = image.res.plot(data_idx=[0, 1], output_idx=[1, 2])
    sub = fig[1, 1]
    assert [t.showscale for t in sub.data] == [True]
    assert trace_json(sub.data[0], ("xaxis", "yaxis", "showscale", "colorbar")) == trace_json(
        fig.data[3], ("xaxis", "yaxis", "showscale", "colorbar")
    )
    assert sub.layout.yaxis.autorange == "reversed"


def test_global_sub_grid_keeps_the_data_point_menu(tabular, tools):
    fig = tabular.res.plot_global(output_idx=[0, 2], ref_data_idx=5, individual_max=2)
    sub = fig[0, 1]
    assert sub.grid_shape == (1, 1)
    assert [t.name for t in sub.data] == [t.name for t in fig.data[len(fig.data) // 2 :]]
    points = tools.menu(sub, "Data point")
    assert [b.label for b in points.buttons] == ["None", "data_6", "data_1", "data_2"]
    visible, indices = points.buttons[1].args
    assert [sub.data[i].name for i in indices] == [
        "selected_points_6",
        "selected_points_1",
        "selected_points_2",
    ]
    assert visible["visible"] == [True, False, False]
    box_targets = tools.menu(sub, "1D Plot Type").buttons[0].args[1]
    assert [sub.data[i].name for i in box_targets] == ["boxplot", "outliers", "violin"]


def test_global_image_sub_grid_keeps_the_slider(image):
    fig = image.res.plot_global(output_idx=[1, 2])
    sub = fig[0, -1]
    assert [t.name for t in sub.data] == [f"image_{k}" for k in range(1, 10)]
    (slider,) = sub.layout.sliders
    assert slider.active == 4
    assert list(slider.steps[0].args[1]) == list(range(9))
    assert trace_json(sub.data[4], ("xaxis", "yaxis", "showscale", "colorbar")) == trace_json(
        fig.data[13], ("xaxis", "yaxis", "showscale", "colorbar")
    )


@pytest.mark.parametrize(
    ("key", "error", "message"),
    [
        ((3, 0), IndexError, r"Row index 3 is out of range: the figure has 3 rows"),
        ((-4, 0), IndexError, "Row index -4 is out of range"),
        ((0, 2), IndexError, r"Column index 2 is out of range: the figure has 2 columns"),
        ((0, [0, 5]), IndexError, "Column index 5 is out of range"),
        ((0, []), IndexError, "column selection .* is empty"),
        ((slice(5, None), 0), IndexError, "row selection .* is empty"),
        ((0, 1.5), TypeError, "A column index must be an int, a slice or a list"),
        ((0, [True]), TypeError, "Column indices must be integers"),
    ],
)
def test_bad_keys(grid, key, error, message):
    with pytest.raises(error, match=message):
        grid[key]


def test_string_keys_work_as_in_plotly(grid):
    assert grid["layout"] is grid.layout
    assert grid["data"] == grid.data
    assert grid["layout.height"] == grid.layout.height
    assert grid["layout", "height"] == grid.layout.height
    assert grid["data"][0]["type"] == "bar"


def test_a_figure_without_grid_cannot_be_cut():
    with pytest.raises(TypeError, match="no panel grid"):
        InnsightFigure()[0, 0]


def test_write_html(grid, tmp_path):
    path = tmp_path / "figure.html"
    grid.write_html(path, include_plotlyjs=False)
    html = path.read_text()
    assert "Plotly.newPlot" in html and "data_3" in html


@pytest.mark.parametrize("kind", ["plot", "plot_global", "image"])
def test_json_round_trip(tabular, image, kind):
    fig = {
        "plot": lambda: tabular.res.plot(data_idx=[0, 1], output_idx=[0, 2]),
        "plot_global": lambda: tabular.res.plot_global(ref_data_idx=2),
        "image": lambda: image.res.plot_global(),
    }[kind]()
    text = fig.to_json()
    original = decode(json.loads(text))
    back = pio.from_json(text)
    assert isinstance(back, go.Figure)
    np.testing.assert_equal(decode(json.loads(back.to_json())), original)
    assert len(original["data"]) == len(fig.data)
    for parsed, trace in zip(original["data"], fig.data, strict=True):
        assert parsed["type"] == trace.type
        numeric = [k for k in ("x", "y", "z", "customdata", "q1", "median", "q3") if k in parsed]
        numeric = [k for k in numeric if np.asarray(trace[k]).dtype.kind in "fiu"]
        assert numeric  # every trace carries numbers
        for key in numeric:
            np.testing.assert_array_equal(
                np.asarray(parsed[key], dtype=float), np.asarray(trace[key], dtype=float)
            )
    annotations = [a["text"] for a in original["layout"]["annotations"]]
    assert annotations == [a.text for a in fig.layout.annotations]


@pytest.mark.parametrize("copy_figure", [lambda f: pickle.loads(pickle.dumps(f)), copy.deepcopy])
def test_copies_keep_the_panel_grid(tabular, copy_figure):
    fig = tabular.res.plot(data_idx=[0, 1], output_idx=[0, 2])
    copied = copy_figure(fig)
    assert isinstance(copied, InnsightFigure)
    assert copied.grid_shape == (2, 2)
    assert json.loads(copied.to_json()) == json.loads(fig.to_json())
    assert json.loads(copied[1, 0].to_json()) == json.loads(fig[1, 0].to_json())
