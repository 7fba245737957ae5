"""Uploads: decoding, reading CSV/NPY/NPZ without unpickling, shape checks, summaries."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from support.tripwire import TRIPPED, Tripwire

from attribution.methods.catalogue import METHODS, applicable
from dashboard import uploads
from dashboard.uploads import (
    check_data_fits,
    data_preview,
    decode_upload,
    model_summary,
    read_data,
)


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


IRIS = pd.DataFrame(
    {
        "sepal_len": [5.1, 7.0, 6.3],
        "sepal_wid": [3.5, 3.2, 3.3],
        "petal_len": [1.4, 4.7, 6.0],
        "petal_wid": [0.2, 1.4, 2.5],
        "species": ["setosa", "versicolor", "virginica"],
    }
)


# --- decode_upload --------------------------------------------------------------------------


def test_decode_upload(as_upload):
    assert decode_upload(as_upload(b"\x00\x01"), "m.pt", max_bytes=2) == b"\x00\x01"


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ("hello", r"The upload of m\.pt is malformed: expected 'data:<type>;base64,<data>'"),
        ("data:text/plain,abc", r"The upload of m\.pt is malformed"),
        ("data:x;base64,@@@@", r"m\.pt is malformed: its content is not base64"),
        ("data:x;base64,", r"m\.pt is empty\."),
        (None, r"The upload of m\.pt is malformed"),
    ],
)
def test_malformed_uploads_are_explained(contents, message):
    with pytest.raises(ValueError, match=message):
        decode_upload(contents, "m.pt", max_bytes=100)


def test_oversize_upload_names_the_limit(as_upload):
    with pytest.raises(
        ValueError,
        match=r"big\.npz has 3\.0 MB; uploads may have at most 1\.0 MB\. Upload a smaller file "
        r"\(fewer rows\), or start the dashboard with a higher limit \(--max-upload-mb\)\.",
    ):
        decode_upload(as_upload(b"\x00" * 3_000_000), "big.npz", max_bytes=1_000_000)


# --- CSV ------------------------------------------------------------------------------------


def test_csv_header_gives_the_input_names():
    data = read_data(_csv(IRIS), "iris.csv")
    assert data.format == "csv" and data.shapes == [(4,)] and data.n_rows == 3
    assert data.input_names == ["sepal_len", "sepal_wid", "petal_len", "petal_wid"]
    assert data.columns == [*data.input_names, "species"]
    assert data.ignored == ["species"]
    assert data.arrays[0].dtype == np.float32
    np.testing.assert_allclose(data.arrays[0][1], [7.0, 3.2, 4.7, 1.4], rtol=1e-6)


def test_csv_input_columns_choose_and_order():
    data = read_data(_csv(IRIS), "iris.csv", input_columns=["petal_wid", "sepal_len"])
    assert data.input_names == ["petal_wid", "sepal_len"]
    np.testing.assert_allclose(data.arrays[0][:, 0], [0.2, 1.4, 2.5], rtol=1e-6)
    assert data.ignored == ["sepal_wid", "petal_len", "species"]


@pytest.mark.parametrize(
    ("frame", "columns", "message"),
    [
        (IRIS, ["sepal_len", "species"], r"iris\.csv: the column\(s\) 'species' are not numeric "
         r"\(e\.g\. 'setosa'\); choose numeric input columns and leave labels out"),
        (IRIS, ["sepal_len", "colour"], r"iris\.csv has no column 'colour'; choose input "
         r"columns from sepal_len, sepal_wid, petal_len, petal_wid, species\."),
        (IRIS, [], r"iris\.csv got none; choose input columns from"),
        (IRIS[["species"]], None, r"iris\.csv has no numeric column \(species\); inputs must"),
        (pd.DataFrame({"a": [1.0, None, 3.0]}), None,
         r"iris\.csv has missing values in 'a' \(first in row 2\); fill them in"),
        (pd.DataFrame({"a": [1.0, np.inf]}), None,
         r"iris\.csv holds 1 missing or infinite values \(first in row 2\)"),
    ],
)  # fmt: skip
def test_csv_problems_are_explained(frame, columns, message):
    with pytest.raises(ValueError, match=message):
        read_data(_csv(frame), "iris.csv", input_columns=columns)


@pytest.mark.parametrize("content", [b"", b'a,b\n1,"2\n', b"\xff\xfe\x00a,b"])
def test_unreadable_csv_is_explained(content):
    with pytest.raises(ValueError, match=r"bad\.csv is not a readable CSV table: .* header row"):
        read_data(content, "bad.csv")


def test_csv_rows_are_reshaped_to_the_model_input():
    pixels = pd.DataFrame(np.arange(12.0).reshape(2, 6), columns=[f"p{k}" for k in range(6)])
    data = read_data(_csv(pixels), "img.csv", input_dim=(3, 1, 2), channels_last=True)
    assert data.shapes == [(3, 1, 2)]  # rows were (height, width, channel)-flattened
    np.testing.assert_array_equal(data.arrays[0][0, :, 0, 1], [3.0, 4.0, 5.0])


# --- NPY ------------------------------------------------------------------------------------


def test_npy_channels_last_moves_the_channel_axis(npy_bytes):
    images = np.random.default_rng(0).random((4, 8, 8, 3))
    data = read_data(npy_bytes(images), "x.npy", channels_last=True)
    assert data.shapes == [(3, 8, 8)] and data.channels_last and data.input_names is None
    np.testing.assert_allclose(data.arrays[0][2, 1], images[2, :, :, 1], rtol=1e-6)


def test_npy_singleton_axes_are_fitted_to_the_model(npy_bytes):
    data = read_data(npy_bytes(np.zeros((5, 8, 8))), "digits.npy", input_dim=(1, 8, 8))
    assert data.shapes == [(1, 8, 8)]


def test_object_arrays_are_refused_not_unpickled(npy_bytes, npz_bytes):
    objects = np.array([Tripwire(), Tripwire()], dtype=object).reshape(2, 1)
    buffer = io.BytesIO()
    np.save(buffer, objects, allow_pickle=True)
    with pytest.raises(ValueError, match=r"x\.npy holds Python objects \(an object array\)"):
        read_data(buffer.getvalue(), "x.npy")
    with pytest.raises(ValueError, match=r"x\.npz \(array 'input_1'\) holds Python objects"):
        read_data(npz_bytes(input_1=objects), "x.npz")
    assert TRIPPED == []


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros(5), r"x\.npy has shape \(5,\); it needs a batch axis first"),
        (np.zeros((0, 3)), r"x\.npy has shape \(0, 3\); it needs a batch axis first and at least"),
        (np.array([["a", "b"]]), r"x\.npy has values of type <U1; inputs must be numbers"),
        (np.array([[1.0, np.nan]]), r"x\.npy holds 1 missing or infinite values \(first in row 1"),
    ],
)
def test_npy_problems_are_explained(npy_bytes, array, message):
    with pytest.raises(ValueError, match=message):
        read_data(npy_bytes(array), "x.npy")


def test_damaged_npy_is_explained(npy_bytes, npz_bytes):
    with pytest.raises(
        ValueError, match=r"x\.npy declares 3200 bytes of values but has 300 bytes: it is truncated"
    ):
        read_data(npy_bytes(np.zeros((100, 4)))[:300], "x.npy")
    with pytest.raises(ValueError, match=r"x\.npy is not a readable NumPy file .* truncated"):
        read_data(npy_bytes(np.zeros((100, 4)))[:40], "x.npy")
    with pytest.raises(ValueError, match=r"x\.npy is not a NumPy \.npy file \(it is not \.npy\)"):
        read_data(b"\x80\x04junk", "x.npy")
    with pytest.raises(ValueError, match=r"it is an \.npz archive: name it \.npz"):
        read_data(npz_bytes(input_1=np.zeros((2, 2))), "x.npy")


# --- NPZ ------------------------------------------------------------------------------------


def test_npz_takes_numbered_inputs_in_order(npz_bytes):
    content = npz_bytes(
        label_1=np.zeros(3), input_2=np.ones((3, 2)), input_1=np.zeros((3, 1, 4, 4))
    )
    data = read_data(content, "two.npz")
    assert data.shapes == [(1, 4, 4), (2,)]
    assert data.columns == ["label_1", "input_2", "input_1"] and data.ignored == ["label_1"]


def test_npz_without_numbered_inputs_takes_all_or_the_chosen(npz_bytes):
    content = npz_bytes(x=np.zeros((3, 4)), y=np.zeros((3, 1)))
    assert read_data(content, "xy.npz").shapes == [(4,), (1,)]
    assert read_data(content, "xy.npz", input_columns=["x"]).shapes == [(4,)]
    with pytest.raises(ValueError, match=r"xy\.npz has no array 'z'; choose input arrays from x"):
        read_data(content, "xy.npz", input_columns=["z"])


def test_npz_problems_are_explained(npz_bytes, npy_bytes, monkeypatch):
    with pytest.raises(ValueError, match=r"have different numbers of rows \(\[2, 3\]\)"):
        read_data(npz_bytes(input_1=np.zeros((2, 1)), input_2=np.zeros((3, 1))), "r.npz")
    with pytest.raises(ValueError, match=r"r\.npz is not a NumPy \.npz archive \(it is an \.npy"):
        read_data(npy_bytes(np.zeros((2, 2))), "r.npz")
    with pytest.raises(ValueError, match=r"r\.npz is not a readable NumPy file"):
        read_data(npz_bytes(input_1=np.zeros((2, 2)))[:-30], "r.npz")
    with pytest.raises(ValueError, match=r"r\.npz \(array 'input_1'\) has shape \(3,\); it needs"):
        read_data(npz_bytes(input_1=np.zeros(3)), "r.npz")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("input_1", b"not an array")
    with pytest.raises(ValueError, match=r"r\.npz \(array 'input_1'\) is not a readable NumPy"):
        read_data(buffer.getvalue(), "r.npz")
    monkeypatch.setattr(uploads, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(
        ValueError, match=r"The input arrays of r\.npz hold more than 1000 bytes, the most"
    ):
        read_data(npz_bytes(input_1=np.zeros((20, 20))), "r.npz")


def test_unknown_data_suffix():
    with pytest.raises(ValueError, match=r"Cannot read d\.parquet: data files are \.csv"):
        read_data(b"x", "d.parquet")


# --- check_data_fits ------------------------------------------------------------------------


def test_fitting_data_passes(tabular_model, image_model, npy_bytes):
    check_data_fits(tabular_model, read_data(_csv(IRIS), "iris.csv"))
    images = npy_bytes(np.zeros((2, 8, 8, 1)))
    check_data_fits(image_model, read_data(images, "d.npy", input_dim=image_model.input_dim))


@pytest.mark.parametrize(
    ("array", "channels_last", "fix"),
    [
        (np.zeros((2, 8, 8, 3)), False, "switch channels-last on"),
        (np.zeros((2, 3, 8, 8)), True, "switch channels-last off"),
        (np.zeros((2, 8, 3, 8)), False, "the values per instance are right but not their layout"),
        (np.zeros((2, 5)), False, r"upload data with 192 values per instance, shaped \(batch, 3"),
    ],
)
def test_shape_mismatch_names_the_fix(rgb_model, npy_bytes, array, channels_last, fix):
    data = read_data(npy_bytes(array), "rgb.npy", channels_last=channels_last)
    with pytest.raises(ValueError, match=rf"expects \(batch, 3, 8, 8\) but rgb\.npy has .*{fix}"):
        check_data_fits(rgb_model, data)


def test_the_channels_message_of_the_issue(image_model, npy_bytes):
    data = read_data(npy_bytes(np.zeros((2, 8, 8, 1))), "digits.npy")  # no input_dim given
    assert data.shapes == [(8, 8, 1)]
    with pytest.raises(
        ValueError,
        match=r"^Sequential expects \(batch, 1, 8, 8\) but digits\.npy has \(batch, 8, 8, 1\): "
        r"switch channels-last on\.$",
    ):
        check_data_fits(image_model, data)


def test_wrong_number_of_columns_or_inputs(tabular_model, npz_bytes):
    frame = IRIS.assign(label=[0, 1, 2])
    with pytest.raises(ValueError, match=r"choose 4 input columns \(now 5\), e\.g\. leave a label"):
        check_data_fits(tabular_model, read_data(_csv(frame), "iris.csv"))
    content = npz_bytes(input_1=np.zeros((2, 4)), input_2=np.zeros((2, 1)))
    with pytest.raises(
        ValueError,
        match=r"Sequential has 1 input layer\(s\) \(batch, 4\) but two\.npz holds 2 input "
        r"array\(s\) \(batch, 4\), \(batch, 1\): choose the one array that is the input",
    ):
        check_data_fits(tabular_model, read_data(content, "two.npz"))


# --- summaries ------------------------------------------------------------------------------


def test_model_summary_of_a_converted_model(tabular_model):
    summary = model_summary(tabular_model)
    json.dumps(summary)
    assert summary["converted"] and summary["conversion_error"] is None
    assert summary["methods"] == list(METHODS)
    assert summary["inputs"] == [
        {
            "layer": "Input_1",
            "shape": [4],
            "axes": [
                {"title": "Feature", "names": ["sepal_len", "sepal_wid", "petal_len", "petal_wid"]}
            ],
        }
    ]
    assert summary["outputs"][0]["names"] == ["setosa", "versicolor", "virginica"]
    assert [(layer["type"], layer["output_dim"]) for layer in summary["layers"]] == [
        ("Dense_Layer", [8]),
        ("Dense_Layer", [3]),
    ]
    assert summary["layers"][0]["activation"] is not None


def test_model_summary_of_an_unconverted_model(scripted_model):
    summary = model_summary(scripted_model)
    json.dumps(summary)
    assert (summary["name"], summary["format"]) == ("cnn.pt", "TorchScript")
    assert not summary["converted"] and summary["layers"] == []
    assert summary["methods"] == applicable(converted=False, differentiable=True)
    assert "torch.fx cannot trace TorchScript" in summary["conversion_error"]
    assert [axis["title"] for axis in summary["inputs"][0]["axes"]] == [
        "Channels", "Image height", "Image width"
    ]  # fmt: skip


def test_data_preview_of_a_table():
    preview = data_preview(read_data(_csv(IRIS), "iris.csv"), rows=2)
    json.dumps(preview)
    (table,) = preview["inputs"]
    assert (preview["n_rows"], table["kind"], table["shape"]) == (3, "tabular", [3, 4])
    assert table["records"] == [
        {"sepal_len": 5.1, "sepal_wid": 3.5, "petal_len": 1.4, "petal_wid": 0.2},
        {"sepal_len": 7.0, "sepal_wid": 3.2, "petal_len": 4.7, "petal_wid": 1.4},
    ]
    assert preview["ignored"] == ["species"]
    assert table["stats"]["max"] == 7.0


def test_data_preview_of_images(npy_bytes, npz_bytes):
    images = np.arange(2 * 2 * 3 * 3, dtype=np.float32).reshape(2, 2, 3, 3)
    preview = data_preview(read_data(npy_bytes(images), "img.npy"), rows=1)
    json.dumps(preview)
    (view,) = preview["inputs"]
    assert view["kind"] == "image" and view["first"] == images[:1].tolist()
    assert view["channel_stats"][1]["min"] == 9.0
    big = npz_bytes(input_1=np.zeros((1, 3, 64, 64)), input_2=np.ones((1, 2)))
    views = data_preview(read_data(big, "big.npz"))["inputs"]
    assert np.shape(views[0]["first"]) == (1, 3, 32, 32) and views[0]["first_step"] == 2
    assert len(views[0]["channel_stats"]) == 3 and preview["row_names"] is None
    signal = npy_bytes(np.zeros((1, 2, 5000), dtype=np.float32))
    assert "first" not in data_preview(read_data(signal, "long.npy"))["inputs"][0]
    assert views[1]["records"] == [{"X1": 1.0, "X2": 1.0}]


# --- bounded before the work ------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"a,b,c\n1,2.5,-3\n4,5,6e2\n",
        b"a,b,c\r\n1,2.5,-3\r\n4,5,6e2\r\n",  # Windows line ends
        b"\xef\xbb\xbfa,b,c\n1,2.5,-3\n4,5,6e2\n",  # UTF-8 byte-order mark
        b'"a",b,c\n1,2.5,-3\n4,5,6e2\n',  # a quoted header: read by pandas
    ],
)
def test_numeric_csv_reads_the_same_on_every_path(content):
    data = read_data(content, "t.csv")
    assert data.columns == ["a", "b", "c"] and data.input_names == ["a", "b", "c"]
    np.testing.assert_array_equal(data.arrays[0], [[1, 2.5, -3], [4, 5, 600]])


def test_numeric_csv_columns_are_chosen_in_order():
    data = read_data(b"a,b,c\n1,2,3\n", "t.csv", input_columns=["c", "a"])
    assert data.input_names == ["c", "a"] and data.ignored == ["b"]
    np.testing.assert_array_equal(data.arrays[0], [[3, 1]])
    with pytest.raises(ValueError, match=r"t\.csv has no column 'z'; choose input columns from"):
        read_data(b"a,b,c\n1,2,3\n", "t.csv", input_columns=["z"])


def test_wide_csv_columns_are_counted_from_the_header():
    limits = uploads.UploadLimits(max_instance_values=3)
    with pytest.raises(ValueError, match=r"w\.csv has 4 columns; an instance may have at most 3"):
        read_data(b"a,b,c,d\n1,2,3,4\n", "w.csv", limits=limits)


def test_npz_members_are_bounded_by_the_limits(npz_bytes):
    content = npz_bytes(input_1=np.zeros((100, 100)))  # 80 kB unpacked
    limits = uploads.UploadLimits(max_uncompressed_bytes=50_000)
    with pytest.raises(ValueError, match=r"r\.npz unpacks to 80128 bytes; data files may unpack"):
        read_data(content, "r.npz", limits=limits)
    assert read_data(content, "r.npz").shapes == [(100,)]


def test_npy_float32_copy_is_bounded(npy_bytes, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(ValueError, match=r"The values of b\.npy hold more than 1000 bytes"):
        read_data(npy_bytes(np.zeros((20, 20), dtype=np.uint8)), "b.npy")  # 400 B, 1.6 kB float
