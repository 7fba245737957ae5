"""The loading callbacks' functions: demos, model and data uploads, what the page shows."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import warnings
import zipfile

import numpy as np
import pytest
import torch
from dash import html
from support.dashboard import SESSION

import demo_data
from attribution.errors import MissingDependencyError
from attribution.methods.catalogue import METHODS, applicable
from dashboard.callbacks.loading import (
    demo_refs,
    describe,
    parse_input_dim,
    readable_data_ref,
    receive_data,
    receive_model,
    with_options,
)
from dashboard.config import Config
from dashboard.sources import model_from_ref

UNCONVERTED_METHODS = applicable(converted=False, differentiable=True)
"""The methods that explain a model that does not convert."""

ALL_METHODS = list(METHODS)


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(cache_dir=tmp_path / "unused", max_upload_bytes=100_000)


def _spec() -> dict:
    torch.manual_seed(0)
    return {
        "input_dim": [3],
        "input_nodes": [1],
        "output_nodes": [2],
        "input_names": ["age", "bmi", "bp"],
        "output_names": ["low", "high"],
        "layers": [
            {"type": "Dense", "weight": torch.randn(5, 3).tolist(), "bias": [0.1] * 5,
             "activation_name": "relu", "input_layers": [0], "output_layers": [2]},
            {"type": "Dense", "weight": torch.randn(2, 5).tolist(), "bias": [0.0, 0.2],
             "activation_name": "softmax", "input_layers": [1], "output_layers": [-1]},
        ],
    }  # fmt: skip


def _text(component) -> str:
    """All text in a Dash component tree, a line per ``Div``."""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, list):
        return "".join(_text(c) for c in component)
    children = getattr(component, "children", None)
    text = "" if children is None else _text(children)
    return f"{text}\n" if isinstance(component, html.Div) else text


# --- demos ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", demo_data.DEMOS)
def test_demo_refs(name):
    assert demo_refs(name) == ({"kind": "demo", "name": name}, {"kind": "demo", "name": name})


def test_an_unknown_demo_lists_the_demos():
    with pytest.raises(
        ValueError, match=r"^Unknown demo 'cifar'; the demos are iris, diabetes, signals, "
        r"digits, digits_table\.$",
    ):  # fmt: skip
        demo_refs("cifar")


# --- input shapes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "dims"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("4", [[4]]),
        ("1,8,8", [[1, 8, 8]]),
        (" 1, 8 ,8 ", [[1, 8, 8]]),
        ("1,8,8; 3", [[1, 8, 8], [3]]),
        ("3,64;10;1,2,2", [[3, 64], [10], [1, 2, 2]]),
    ],
)
def test_parse_input_dim(text, dims):
    assert parse_input_dim(text) == dims


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1x8x8", r"^The input shape '1x8x8' is not a list of whole numbers: write it like 1,8,8"),
        ("1,,8", r"^The input shape '1,,8' is not a list of whole numbers"),
        ("1.5,8", r"^The input shape '1\.5,8' is not a list of whole numbers"),
        ("1,8,8;", r"^The input shape '1,8,8;' is not a list of whole numbers"),
        ("1,0,8", r"^The input shape '1,0,8' has a size below 1\.$"),
        ("3;-2", r"^The input shape '3;-2' has a size below 1\.$"),
    ],
)
def test_parse_input_dim_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_input_dim(text)


# --- model uploads -------------------------------------------------------------------------


def test_receive_a_json_spec(store, config, as_upload):
    data = json.dumps(_spec()).encode()
    contents = as_upload(data, "application/json")
    assert contents.startswith("data:application/json;base64,")
    ref = receive_model(store, config, contents, "model.json", "", SESSION)
    sha = hashlib.sha256(data).hexdigest()
    assert ref == {"kind": "upload", "sha": sha, "input_dim": None}
    assert (
        store.get_upload(sha, owner=SESSION).data == data
        and store.get_upload(sha, owner=SESSION).filename == "model.json"
    )
    model = model_from_ref(store, ref, SESSION)
    assert (model.name, model.format) == ("model.json", "innsight's JSON spec")
    assert model.input_names == [[["age", "bmi", "bp"]]] and model.output_names == [["low", "high"]]
    assert model.methods == ALL_METHODS


def test_the_input_shape_applies_to_torchscript_only(store, config, as_upload):
    contents = as_upload(json.dumps(_spec()).encode(), "application/json")
    # a JSON spec knows its input: a shape typed for TorchScript is not applied to it
    ref = receive_model(store, config, contents, "model.json", "4", SESSION)
    assert ref["input_dim"] is None
    assert model_from_ref(store, ref, SESSION).input_dim == [(3,)]


@pytest.mark.parametrize(
    ("module", "filename", "extra"),
    [("keras", "model.keras", "pip install keras"), ("skops.io", "model.skops", "[sklearn]"),
     ("onnx", "model.onnx", "[onnx]")],
)  # fmt: skip
def test_a_format_whose_extra_is_missing_says_what_to_install(
    store, config, as_upload, monkeypatch, module, filename, extra
):
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as members:
        members.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
    contents = as_upload(archive.getvalue(), "application/octet-stream")
    with pytest.raises(MissingDependencyError, match=re.escape(extra)):
        receive_model(store, config, contents, filename, None, SESSION)


def test_names_typed_for_an_upload_replace_the_files(store, config, as_upload):
    contents = as_upload(json.dumps(_spec()).encode(), "application/json")
    ref = receive_model(store, config, contents, "model.json", None, SESSION, "no, yes", "a, b, c")
    model = model_from_ref(store, ref, SESSION)
    assert model.output_names == [["no", "yes"]]
    assert model.input_names == [[["a", "b", "c"]]]
    with pytest.raises(ValueError, match="output_names for output layer 1 has 3 names; it needs 2"):
        receive_model(store, config, contents, "model.json", None, SESSION, "a, b, c")


def test_a_pickled_module_is_refused_with_how_to_export(store, config, as_upload):
    buffer = io.BytesIO()
    torch.save(torch.nn.Sequential(torch.nn.Linear(3, 2)), buffer)
    with pytest.raises(
        ValueError,
        match=r"model\.pt is a torch\.save archive of a pickled torch\.nn\.modules\.container\."
        r"Sequential \(torch\.save\(model\)\); loading it would run code from the file, so it "
        r"is refused\. Export the model in Python instead: torch\.export\.save",
    ):
        receive_model(store, config, as_upload(buffer.getvalue()), "model.pt", None, SESSION)


def test_an_oversize_upload_names_the_limit(store, config, as_upload):
    data = json.dumps({**_spec(), "padding": "x" * 120_000}).encode()
    with pytest.raises(
        ValueError,
        match=r"^big\.json has 0\.1 MB; uploads may have at most 0\.1 MB\. Upload a "
        r"smaller file .*--max-upload-mb",
    ):
        receive_model(store, config, as_upload(data, "application/json"), "big.json", None, SESSION)
    assert store.volume < 100_000  # nothing stored


def test_a_malformed_upload_value(store, config):
    with pytest.raises(ValueError, match=r"^The upload of m\.json is malformed: expected 'data:"):
        receive_model(store, config, "not a data url", "m.json", None, SESSION)


# --- data uploads --------------------------------------------------------------------------


def test_receive_data_needs_a_model(store, config, as_upload):
    with pytest.raises(
        ValueError, match=r"^Load a model before the data: the data is read in its shape\.$"
    ):
        receive_data(
            store, config, as_upload(b"a,b\n1,2\n", "text/csv"), "t.csv", None, False, SESSION
        )


def test_receive_data_that_fits(store, config, as_upload, demo_ref):
    csv = b"sl,sw,pl,pw,species\n5.1,3.5,1.4,0.2,setosa\n6.2,2.9,4.3,1.3,versicolor\n"
    ref = receive_data(
        store, config, as_upload(csv, "text/csv"), "f.csv", demo_ref("iris"), False, SESSION
    )
    assert ref == {"kind": "upload", "sha": hashlib.sha256(csv).hexdigest(),
                   "input_columns": None, "channels_last": False}  # fmt: skip
    assert store.get_upload(ref["sha"], owner=SESSION).filename == "f.csv"


def test_data_that_does_not_fit_is_kept_and_its_card_says_why(
    store, config, as_upload, demo_ref, npy_bytes
):
    csv = b"a,b,c\n1,2,3\n"
    ref = receive_data(store, config, as_upload(csv), "t.csv", demo_ref("iris"), False, SESSION)
    card = _text(describe(store, demo_ref("iris"), ref, SESSION)["data_info"])
    assert re.search(
        r"IrisMLP expects \(batch, 4\) but t\.csv has \(batch, 3\): choose 4 input columns "
        r"\(now 3\)",
        card,
    )
    signals = np.zeros((2, 64, 3), dtype=np.float32)  # channels last
    upload = as_upload(npy_bytes(signals))
    ref = receive_data(store, config, upload, "x.npy", demo_ref("signals"), False, SESSION)
    card = _text(describe(store, demo_ref("signals"), ref, SESSION)["data_info"])
    assert "SignalCNN expects (batch, 3, 64) but x.npy has (batch, 64, 3): switch " in card
    ref = receive_data(store, config, upload, "x.npy", demo_ref("signals"), True, SESSION)
    assert ref["channels_last"] is True
    card = _text(describe(store, demo_ref("signals"), ref, SESSION)["data_info"])
    assert "expects" not in card


def test_unreadable_data_is_refused(store, config, as_upload, demo_ref):
    with pytest.raises(ValueError, match=r"t\.csv"):
        receive_data(store, config, as_upload(b"\xff\xfe\x00garbage"), "t.csv",
                     demo_ref("iris"), False, SESSION)  # fmt: skip


def test_with_options_and_readable_data_ref(store, demo_ref):
    csv = b"sl,sw,pl,pw,extra\n5.1,3.5,1.4,0.2,9\n"
    sha = store.put_bytes(csv, "f.csv", owner=SESSION)
    ref = {"kind": "upload", "sha": sha, "input_columns": None, "channels_last": False}
    assert (
        readable_data_ref(store, demo_ref("iris"), ref, SESSION) is ref
    )  # 5 columns: kept, not fitting
    chosen = with_options(ref, ["sl", "sw", "pl", "pw"], None)
    assert chosen == {**ref, "input_columns": ["sl", "sw", "pl", "pw"], "channels_last": False,
                      "image_mean": None, "image_std": None}  # fmt: skip
    assert ref["input_columns"] is None  # not mutated
    assert readable_data_ref(store, demo_ref("iris"), chosen, SESSION) is chosen
    assert "expects" not in _text(describe(store, demo_ref("iris"), chosen, SESSION)["data_info"])
    with pytest.raises(ValueError, match="f.csv has no column .nope.; choose input columns"):
        readable_data_ref(store, demo_ref("iris"), with_options(ref, ["nope"], None), SESSION)
    assert with_options(ref, [], 1) == {**ref, "input_columns": None, "channels_last": True,
                                        "image_mean": None, "image_std": None}  # fmt: skip


def test_image_scaling_options_are_parsed():
    ref = {"kind": "upload", "sha": "s", "input_columns": None, "channels_last": False}
    scaled = with_options(ref, None, False, "0.485, 0.456; 0.406", " 0.2 ")
    assert (scaled["image_mean"], scaled["image_std"]) == ([0.485, 0.456, 0.406], [0.2])
    with pytest.raises(ValueError, match=r"Give both the image mean and the std"):
        with_options(ref, None, False, "0.5", "")
    with pytest.raises(ValueError, match=r"The image std 'a' is not a list of numbers"):
        with_options(ref, None, False, "0.5", "a")


# --- describe ------------------------------------------------------------------------------


def test_describe_without_a_model():
    found = describe(None, None, None, SESSION)
    assert found["methods"] == [] and found["method"] is None
    assert found["outputs"] == [] and found["selected_outputs"] == []
    assert found["summary"] == "" and found["rule_types"] == [] and found["n_rows"] is None
    assert _text(found["model_info"]) == "No model loaded."
    assert _text(found["data_info"]) == "No data loaded."
    with_data = describe(
        None, None, {"kind": "demo", "name": "iris"}, SESSION
    )  # data waits for a model
    assert _text(with_data.pop("data_info")) == "No data loaded."
    assert with_data.keys() == found.keys() - {"data_info"} and with_data["n_rows"] is None


def test_describe_a_demo(store, demo_ref, capsys):
    ref = demo_ref("iris")
    found = describe(store, ref, ref, SESSION)
    assert found["methods"] == [{"label": m, "value": m} for m in ALL_METHODS]
    assert found["method"] == "Gradient"
    assert found["outputs"] == [
        {"label": "setosa", "value": "0:0"},
        {"label": "versicolor", "value": "0:1"},
        {"label": "virginica", "value": "0:2"},
    ]
    assert found["selected_outputs"] == ["0:0", "0:1", "0:2"]
    assert found["rule_types"] == ["Dense_Layer"]
    print(model_from_ref(store, ref, SESSION).converter)
    printed = capsys.readouterr().out.strip()
    assert "Dense_Layer" in printed and printed in found["summary"]
    assert found["n_rows"] == 50
    info = _text(found["model_info"])
    assert "IrisMLP" in info and "Inputs: Input_1 (4,)" in info
    assert "setosa, versicolor, virginica" in info and "Layers: 2" in info
    assert "iris (demo test set): 50 rows\nInput_1 (50, 4) (tabular)\n" in _text(found["data_info"])
    json.dumps(found["methods"] + found["outputs"])  # JSON for the page


def test_describe_selects_the_first_ten_nodes_of_output_layer_1(store, demo_ref):
    digits = describe(store, demo_ref("digits"), None, SESSION)
    assert digits["selected_outputs"] == [f"0:{i}" for i in range(10)]
    assert digits["rule_types"] == ["Dense_Layer", "Conv2D_Layer", "MaxPool2D_Layer"]
    assert digits["n_rows"] is None and _text(digits["data_info"]) == "No data loaded."
    both = describe(store, demo_ref("digits_table"), demo_ref("digits_table"), SESSION)
    assert both["selected_outputs"] == [f"0:{i}" for i in range(10)]
    assert both["outputs"][0] == {"label": "Output_1: 0", "value": "0:0"}
    assert both["outputs"][-1] == {"label": "Output_2: digit_plus_addend", "value": "1:0"}
    assert len(both["outputs"]) == 11


def test_describe_an_unconverted_upload_with_csv(trusting_store, config, as_upload):
    store = trusting_store
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 3))), buffer)
        model_ref = receive_model(
            store, config, as_upload(buffer.getvalue()), "lin.pt", "2", SESSION
        )
    csv = b"x,y,name\n1,2,a\n3,4,b\n5,6,c\n"
    data_ref = receive_data(store, config, as_upload(csv), "d.csv", model_ref, False, SESSION)
    found = describe(store, model_ref, data_ref, SESSION)
    assert [m["value"] for m in found["methods"]] == applicable(
        converted=False, differentiable=True
    )
    assert found["rule_types"] == []
    assert found["summary"].startswith("lin.pt (TorchScript) is not converted:\n")
    assert found["summary"].endswith(f"{', '.join(UNCONVERTED_METHODS)} explain it directly.")
    assert found["columns"] == [{"label": c, "value": c} for c in ("x", "y", "name")]
    assert found["n_rows"] == 3
    info = _text(found["model_info"])
    assert "Not converted" in info and "torch.fx cannot trace TorchScript" in info
    data_info = _text(found["data_info"])
    assert "d.csv: 3 rows\n" in data_info and "Not inputs: name\n" in data_info
