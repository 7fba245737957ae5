"""The view callbacks' functions: options, figures, the table and the downloads of a result."""

from __future__ import annotations

import base64
import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from support.dashboard import SESSION

import attribution
from dashboard.callbacks import views
from dashboard.callbacks.views import (
    download,
    global_figure,
    individual_figure,
    load_result,
    table_columns,
    table_rows,
    view_options,
)
from dashboard.store import Store
from dashboard.table import FOUR_DIGITS


@pytest.fixture
def iris_ref(compute) -> dict:
    """Gradient×Input of 4 iris rows for setosa and virginica."""
    return compute("iris", "Gradient", {"times_input": True}, ("0:0", "0:2"), 4)


def _types(figure) -> set[str]:
    return {trace.type for trace in figure.data}


def _texts(figure) -> list[str]:
    return [annotation.text for annotation in figure.layout.annotations]


# --- the stored result ---------------------------------------------------------------------


def test_load_result_reads_the_store_once(store, iris_ref):
    result = load_result(store, iris_ref, SESSION)
    assert result.method_name == "Gradient" and result.n_data == 4
    assert load_result(store, iris_ref, SESSION) is result
    stored = store.get_result(iris_ref["key"])
    np.testing.assert_array_equal(result.get_result("array"), stored.get_result("array"))


def test_a_missing_result_says_to_compute_again(tmp_path, iris_ref):
    views.RESULTS.clear()  # not read in this process before
    message = (
        r"This result is no longer in the cache \(evicted to keep it within its size limit\): "
        r"press Compute again\."
    )
    with Store(tmp_path / "empty") as store, pytest.raises(KeyError, match=message):
        load_result(store, iris_ref, SESSION)


def test_a_result_key_of_another_request_is_refused(store, iris_ref, compute):
    other = compute("iris", "SmoothGrad", {}, ("0:1",), 2)
    message = r"^This result does not belong to this page: press Compute again\.$"
    for forged in ({**iris_ref, "key": other["key"]}, {"key": iris_ref["key"]}, "key"):
        with pytest.raises(KeyError, match=message):
            load_result(store, forged, SESSION)


# --- view options --------------------------------------------------------------------------


def test_view_options_of_a_tabular_result(store, iris_ref):
    found = view_options(store, iris_ref, SESSION)
    assert found["rows"] == [{"label": f"data_{i + 1}", "value": i} for i in range(4)]
    assert found["selected_rows"] == [0, 1]
    assert found["nodes"] == [
        {"label": "setosa", "value": "0:0"},
        {"label": "virginica", "value": "0:2"},
    ]
    assert found["selected_nodes"] == ["0:0", "0:2"]
    assert found["global_nodes"] == ["0:0"]
    json.dumps(found)


def test_view_options_name_the_output_layers_of_two_output_models(store, compute):
    ref = compute("digits_table", "Gradient", {}, ("1:0", "0:3", "0:1", "0:7"), 2)
    found = view_options(store, ref, SESSION)
    assert found["nodes"] == [
        {"label": "Output_1: 1", "value": "0:1"},
        {"label": "Output_1: 3", "value": "0:3"},
        {"label": "Output_1: 7", "value": "0:7"},
        {"label": "Output_2: digit_plus_addend", "value": "1:0"},
    ]
    assert found["selected_nodes"] == ["0:1", "0:3", "0:7"]
    assert found["rows"] == [{"label": "data_1", "value": 0}, {"label": "data_2", "value": 1}]


def test_view_options_of_global_connection_weights(store, compute):
    ref = compute("iris", "ConnectionWeights", {}, ("0:1",), 5)
    found = view_options(store, ref, SESSION)
    assert found["rows"] == [{"label": "data_1", "value": 0}]
    assert found["nodes"] == [{"label": "versicolor", "value": "0:1"}]


# --- figures -------------------------------------------------------------------------------


def test_individual_figure_of_a_tabular_result(store, iris_ref):
    values = load_result(store, iris_ref, SESSION).get_result("array")  # (4, 4, 2)
    figure = individual_figure(store, iris_ref, SESSION, [1, 3], ["0:2"], "sum", [])
    assert _types(figure) == {"bar"}
    assert len(figure.data) == 2  # rows data_2 and data_4, one output node
    for trace, row in zip(figure.data, (1, 3), strict=True):
        assert list(trace.x) == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
        np.testing.assert_allclose(trace.y, values[row, :, 1], rtol=1e-6)
    texts = _texts(figure)
    assert "<b>virginica</b>" in texts and "<b>data_2</b>" in texts and "<b>data_4</b>" in texts
    assert "<b>setosa</b>" not in texts


def test_individual_figure_defaults(store, iris_ref):
    figure = individual_figure(store, iris_ref, SESSION, None, None, None, None)
    assert _types(figure) == {"bar"}
    assert len(figure.data) == 1  # innsight's default: data_1, the first explained node
    texts = _texts(figure)
    assert "<b>data_1</b>" in texts and "<b>data_2</b>" not in texts
    assert "<b>setosa</b>" in texts and "<b>virginica</b>" not in texts


def test_individual_figure_of_an_image_result(store, compute):
    ref = compute("digits", "LRP", {}, ("0:0", "0:1"), 2)
    figure = individual_figure(store, ref, SESSION, [0, 1], ["0:1"], "sum", ["same_scale"])
    assert _types(figure) == {"heatmap"}
    assert len(figure.data) == 2
    assert np.asarray(figure.data[0].z).shape == (8, 8)


def test_individual_figure_aggregates_channels(store, compute):
    ref = compute("signals", "Gradient", {"times_input": True}, ("0:0",), 2)
    values = load_result(store, ref, SESSION).get_result("array")[1, :, :, 0]  # (3 channels, 64)
    summed = individual_figure(store, ref, SESSION, [1], ["0:0"], "sum", [])
    normed = individual_figure(store, ref, SESSION, [1], ["0:0"], "norm", [])
    assert _types(summed) == _types(normed) == {"bar"}
    np.testing.assert_allclose(summed.data[0].y, values.sum(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        normed.data[0].y, np.sqrt((values**2).sum(axis=0)), rtol=1e-5, atol=1e-7
    )


def test_individual_figure_options(store, compute):
    """same_scale: one scale for both input layers; show_preds: the prediction box."""
    ref = compute("digits_table", "Gradient", {"times_input": True}, ("1:0",), 2)
    values = load_result(store, ref, SESSION).get_result("array")["Output_2"]
    image, table = values["Input_1"][0, 0, :, :, 0], values["Input_2"][0, :, 0]
    plain = individual_figure(store, ref, SESSION, [0], ["1:0"], "sum", [])
    same = individual_figure(store, ref, SESSION, [0], ["1:0"], "sum", ["same_scale"])
    assert [t.type for t in plain.data] == [t.type for t in same.data] == ["heatmap", "bar"]
    largest = np.abs(image).max() / max(np.abs(image).max(), np.abs(table).max())
    assert largest < 0.99  # the table has the larger values: the image gets paler
    assert np.nanmax(np.abs(np.asarray(plain.data[0].z, dtype=float))) == pytest.approx(1.0)
    assert np.nanmax(np.abs(np.asarray(same.data[0].z, dtype=float))) == pytest.approx(largest)
    assert not any(text.startswith("Pred.") for text in _texts(plain))
    preds = individual_figure(store, ref, SESSION, [0], ["1:0"], "sum", ["show_preds"])
    assert sum(text.startswith("Pred.") for text in _texts(preds)) == 2


def test_global_figure_of_a_tabular_result(store, iris_ref):
    values = load_result(store, iris_ref, SESSION).get_result("array")
    figure = global_figure(store, iris_ref, SESSION, ["0:0"], "abs", None)
    assert "box" in _types(figure)
    (box,) = [trace for trace in figure.data if trace.type == "box"]
    np.testing.assert_allclose(box.median, np.median(np.abs(values[:, :, 0]), axis=0), rtol=1e-6)
    signed = global_figure(store, iris_ref, SESSION, ["0:0"], "identity", None)
    (box,) = [trace for trace in signed.data if trace.type == "box"]
    np.testing.assert_allclose(box.median, np.median(values[:, :, 0], axis=0), rtol=1e-6)
    assert (np.median(values[:, :, 0], axis=0) < 0).any()  # the two differ


def test_global_figure_marks_the_reference_row(store, iris_ref):
    values = load_result(store, iris_ref, SESSION).get_result("array")
    figure = global_figure(store, iris_ref, SESSION, ["0:2"], "abs", 2)
    shown = [t for t in figure.data if t.name.startswith("selected_points") and t.visible]
    assert [t.name for t in shown] == ["selected_points_3"]
    marked = np.asarray(shown[0].y, dtype=float)
    np.testing.assert_allclose(marked[::3], np.abs(values[2, :, 1]), rtol=1e-6)


def test_global_figure_of_an_image_result(store, compute):
    ref = compute("digits", "Gradient", {}, ("0:3",), 3)
    figure = global_figure(store, ref, SESSION, None, None, None)
    assert _types(figure) == {"heatmap"}


def test_global_connection_weights_gives_a_note(store, compute):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the data is not passed to the global variant
        ref = compute("iris", "ConnectionWeights", {}, ("0:0", "0:1"), 5)
    figure = global_figure(store, ref, SESSION, ["0:0"], "abs", None)
    assert figure["data"] == []
    (note,) = figure["layout"]["annotations"]
    assert note["text"].startswith("Global Connection Weights explains no data points")
    individual = individual_figure(store, ref, SESSION, [0], ["0:0", "0:1"], "sum", [])
    assert _types(individual) == {"bar"} and len(individual.data) == 2
    local = compute("iris", "ConnectionWeights", {"times_input": True}, ("0:0",), 5)
    assert "box" in _types(global_figure(store, local, SESSION, ["0:0"], "abs", None))


# --- table ---------------------------------------------------------------------------------


def test_table_columns_name_innsights_columns_whole(store, iris_ref):
    frame = load_result(store, iris_ref, SESSION).get_result("data.frame")
    columns = table_columns(store, iris_ref, SESSION)
    assert (
        [c["field"] for c in columns] == [c["headerName"] for c in columns] == list(frame.columns)
    )
    by_name = {c["field"]: c for c in columns}
    assert by_name["value"]["valueFormatter"] == FOUR_DIGITS
    assert by_name["value"]["filter"] == "agNumberColumnFilter"
    assert by_name["feature"]["filter"] == "agTextColumnFilter"
    assert "valueFormatter" not in by_name["feature"]
    assert "valueFormatter" not in by_name["input_dimension"]  # whole numbers as they are
    assert by_name["decomp_goal"]["minWidth"] > by_name["data"]["minWidth"]


def _rows(store, ref, start=0, end=5, sort=None, filters=None) -> dict:
    request = {"startRow": start, "endRow": end, "sortModel": sort or [],
               "filterModel": filters or {}}  # fmt: skip
    return table_rows(store, ref, SESSION, request)


def test_table_rows_are_blocks_of_innsights_data_frame(store, iris_ref):
    frame = load_result(store, iris_ref, SESSION).get_result("data.frame")
    assert len(frame) == 4 * 4 * 2
    first = _rows(store, iris_ref, 0, 5)
    assert first["rowCount"] == 32
    _assert_page(first["rowData"], frame.iloc[:5])
    _assert_page(_rows(store, iris_ref, 30, 35)["rowData"], frame.iloc[30:])
    _assert_page(_rows(store, iris_ref, 15, 20)["rowData"], frame.iloc[15:20])
    assert _rows(store, iris_ref, 40, 45)["rowData"] == []
    assert len(_rows(store, iris_ref, 0, 10**9)["rowData"]) == 32  # at most MAX_BLOCK
    json.dumps(first)  # plain values for the grid


def test_table_rows_sort_over_all_rows(store, iris_ref):
    frame = load_result(store, iris_ref, SESSION).get_result("data.frame")
    up = frame.sort_values("value", kind="stable")
    _assert_page(_rows(store, iris_ref, 10, 15, [{"colId": "value", "sort": "asc"}])["rowData"],
                 up.iloc[10:15])  # fmt: skip
    down = _rows(store, iris_ref, 0, 1, [{"colId": "value", "sort": "desc"}])["rowData"]
    assert down[0]["value"] == pytest.approx(float(frame["value"].max()))
    # two keys; a category sorts in its order, and an unknown column is ignored
    sort = [{"colId": "output_node", "sort": "desc"}, {"colId": "value", "sort": "asc"},
            {"colId": "nope", "sort": "asc"}]  # fmt: skip
    want = frame.sort_values(["output_node", "value"], ascending=[False, True], kind="stable")
    _assert_page(_rows(store, iris_ref, 0, 32, sort)["rowData"], want)


def test_table_rows_filter_over_all_rows(store, iris_ref):
    frame = load_result(store, iris_ref, SESSION).get_result("data.frame")
    virginica = {"output_node": {"filterType": "text", "type": "contains", "filter": "VIRG"}}
    got = _rows(store, iris_ref, 0, 100, filters=virginica)
    want = frame[frame["output_node"] == "virginica"]
    assert got["rowCount"] == len(want) == 16
    _assert_page(got["rowData"], want)
    positive = {"value": {"filterType": "number", "type": "greaterThan", "filter": 0}}
    both = {**virginica, **positive}
    got = _rows(store, iris_ref, 0, 100, [{"colId": "value", "sort": "desc"}], both)
    want = want[want["value"] > 0].sort_values("value", ascending=False, kind="stable")
    _assert_page(got["rowData"], want)
    either = {"data": {"filterType": "text", "operator": "OR", "conditions": [
        {"filterType": "text", "type": "equals", "filter": "data_1"},
        {"filterType": "text", "type": "endsWith", "filter": "_4"},
    ]}}  # fmt: skip
    assert _rows(store, iris_ref, filters=either)["rowCount"] == 2 * 4 * 2
    in_range = {"value": {"filterType": "number", "type": "inRange", "filter": -1, "filterTo": 1}}
    count = int(((frame["value"] >= -1) & (frame["value"] <= 1)).sum())
    assert _rows(store, iris_ref, filters=in_range)["rowCount"] == count
    empty = {"value": {"filterType": "number", "type": "equals", "filter": None}}
    assert _rows(store, iris_ref, filters=empty)["rowCount"] == 32
    with pytest.raises(ValueError, match="The number filter 'regex' is not offered"):
        _rows(store, iris_ref, filters={"value": {"filterType": "number", "type": "regex"}})


def test_table_rows_keep_few_orders_in_memory(store, iris_ref):
    views.ORDERS.clear()
    for bound in range(20):
        filters = {"value": {"filterType": "number", "type": "lessThan", "filter": bound}}
        _rows(store, iris_ref, filters=filters)
    assert len(views.ORDERS._values) == views.ORDERS.size < 20


def _assert_page(records: list[dict], part: pd.DataFrame) -> None:
    assert len(records) == len(part)
    for record, (_, row) in zip(records, part.iterrows(), strict=True):
        assert list(record) == list(part.columns)
        for column, value in row.items():
            if isinstance(value, (float, np.floating)):
                assert record[column] == pytest.approx(float(value), rel=1e-6)
            else:
                assert record[column] == value


# --- downloads -----------------------------------------------------------------------------


def test_download_csv_is_the_data_frame(store, iris_ref):
    frame = load_result(store, iris_ref, SESSION).get_result("data.frame")
    file = download(store, iris_ref, SESSION, "csv")
    assert file["filename"] == f"Gradient_{iris_ref['key'][:8]}.csv"
    read = pd.read_csv(io.StringIO(file["content"]))
    assert list(read.columns) == list(frame.columns)
    assert len(read) == len(frame)
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            np.testing.assert_allclose(read[column], frame[column], rtol=1e-6)
        else:
            assert list(read[column].astype(str)) == list(frame[column].astype(str)), column


def test_download_npz_holds_the_arrays(store, iris_ref):
    file = download(store, iris_ref, SESSION, "npz")
    assert file["base64"] is True and file["filename"] == f"Gradient_{iris_ref['key'][:8]}.npz"
    with np.load(io.BytesIO(base64.b64decode(file["content"])), allow_pickle=False) as arrays:
        assert arrays.files == ["Output_1__Input_1"]
        np.testing.assert_array_equal(
            arrays["Output_1__Input_1"], load_result(store, iris_ref, SESSION).get_result("array")
        )


def test_download_npz_of_two_inputs_and_outputs(store, compute):
    ref = compute("digits_table", "Gradient", {}, ("0:2", "1:0"), 2)
    expected = load_result(store, ref, SESSION).get_result("array")
    file = download(store, ref, SESSION, "npz")
    with np.load(io.BytesIO(base64.b64decode(file["content"])), allow_pickle=False) as arrays:
        names = {f"{o}__{i}" for o, per_input in expected.items() for i in per_input}
        assert set(arrays.files) == names and len(names) == 4
        for output, per_input in expected.items():
            for layer, array in per_input.items():
                np.testing.assert_array_equal(arrays[f"{output}__{layer}"], array)


def test_download_parameters(store, iris_ref):
    file = download(store, iris_ref, SESSION, "params")
    assert file["filename"] == f"Gradient_{iris_ref['key'][:8]}_parameters.json"
    saved = json.loads(file["content"])
    assert saved["method"] == "Gradient"
    assert saved["kwargs"] == {"times_input": True, "ignore_last_act": True, "dtype": "float"}
    assert saved["from_data"] == {}
    assert saved["output_idx"] == [[0, 2]] and saved["rows"] == 4
    assert saved["model"] == saved["data"] == {"demo": "iris"}
    assert saved["engine"] == attribution.__version__


def test_download_python_script(store, iris_ref):
    file = download(store, iris_ref, SESSION, "python")
    assert file["filename"] == f"Gradient_{iris_ref['key'][:8]}.py"
    compile(file["content"], file["filename"], "exec")
    assert "attribution.Gradient(" in file["content"]
    assert "load_demo('iris')" in file["content"]


def test_global_figure_aggregates_channels_as_asked(store, compute):
    ref = compute("signals", "Gradient", {"times_input": True}, outputs=["0:0"], rows=6)
    result = load_result(store, ref, SESSION)
    values = np.abs(result.get_result("array")[..., 0])  # (rows, channels, length)
    for how, reduce in (("sum", values.sum(axis=1)), ("norm", np.sqrt((values**2).sum(axis=1)))):
        fig = global_figure(store, ref, SESSION, ["0:0"], "abs", None, how)
        box = next(t for t in fig.data if t.type == "box")
        np.testing.assert_allclose(box.median, np.median(reduce, axis=0), rtol=1e-5)
