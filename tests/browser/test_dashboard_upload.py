"""Uploads in the browser: a JSON model and a CSV table, and files the page refuses."""

import json
import sys

import numpy as np
import pytest
import torch
from selenium.webdriver.common.keys import Keys
from torch import nn

from dashboard import ids
from dashboard.config import Config

pytestmark = pytest.mark.browser

FEATURES = ["age", "bmi", "bp"]
CLASSES = ["low", "high"]


@pytest.fixture
def model_json(tmp_path):
    """innsight's named-list spec of a dense network, 3 inputs → 2 named classes (no
    input names: the feature names come from the CSV header)."""
    rng = np.random.default_rng(0)
    spec = {
        "input_dim": [len(FEATURES)],
        "input_nodes": [1],
        "output_nodes": [2],
        "output_names": CLASSES,
        "layers": [
            {
                "type": "Dense",
                "weight": rng.normal(size=(5, 3)).tolist(),
                "bias": rng.normal(size=5).tolist(),
                "activation_name": "relu",
                "input_layers": [0],
                "output_layers": [2],
            },
            {
                "type": "Dense",
                "weight": rng.normal(size=(2, 5)).tolist(),
                "bias": rng.normal(size=2).tolist(),
                "activation_name": "softmax",
                "input_layers": [1],
                "output_layers": [-1],
            },
        ],
    }
    path = tmp_path / "patients.json"
    path.write_text(json.dumps(spec))
    return path


def _write_table(path, labels):
    """12 rows of the 3 features and a label column (not an input)."""
    values = np.random.default_rng(1).normal(size=(12, len(FEATURES))).round(3)
    lines = [",".join([*FEATURES, "label"])]
    for row, label in zip(values, labels, strict=True):
        lines.append(",".join([*map(str, row), str(label)]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def table_csv(tmp_path):
    """A numeric label column: read as a fourth input until it is deselected."""
    return _write_table(tmp_path / "patients.csv", [0, 1] * 6)


@pytest.fixture
def labelled_csv(tmp_path):
    """A text label column: left out of the inputs on reading."""
    return _write_table(tmp_path / "labelled.csv", ["yes", "no"] * 6)


def _load_model(page, model_json):
    page.upload(ids.MODEL_UPLOAD, model_json)
    page.wait_text(ids.MODEL_INFO, model_json.name, timeout=15)


def test_json_model_and_csv_give_bars_named_by_the_header(page, model_json, table_csv):
    _load_model(page, model_json)
    page.upload(ids.DATA_UPLOAD, table_csv)
    page.wait_text(ids.DATA_INFO, table_csv.name, timeout=5)  # received, columns listed
    page.choose_many(ids.DATA_COLUMNS, FEATURES)  # leave the label column out
    page.wait_text(ids.DATA_INFO, "Not inputs: label", timeout=15)
    assert page.selected(ids.DATA_COLUMNS) == FEATURES
    page.choose(ids.METHOD_SELECT, "SmoothGrad")
    page.wait_for(ids.parameter("noise_level"))
    assert page.selected(ids.OUTPUT_SELECT) == CLASSES

    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Done.", timeout=60)

    grid = page.wait_figure(ids.INDIVIDUAL_GRAPH, "bar")
    bars = [trace for trace in grid["data"] if trace["type"] == "bar"]
    assert len(bars) == 2 * len(CLASSES)  # data_1 and data_2 × both classes
    for trace in bars:
        assert trace["x"] == FEATURES
    assert page.alert_open() is False

    page.settle()
    assert page.duo.get_logs() == []


def test_refused_uploads_say_why_and_what_to_do_and_keep_what_was_loaded(
    open_page, model_json, labelled_csv, tmp_path
):
    # a server that offers .pt (the upload's file filter lets it through): still no pickle
    page = open_page(Config(cache_dir=tmp_path / "cache", workers=1, trust_torchscript=True))
    _load_model(page, model_json)
    page.upload(ids.DATA_UPLOAD, labelled_csv)
    page.wait_text(ids.DATA_INFO, "Not inputs: label", timeout=15)

    pickled = tmp_path / "pickled.pt"
    torch.save(nn.Sequential(nn.Linear(3, 2)), pickled)
    page.upload(ids.MODEL_UPLOAD, pickled)
    page.wait_text(ids.ERROR_ALERT, "pickled.pt", timeout=15)
    message = page.text(ids.ERROR_ALERT)
    assert "pickle" in message  # the problem
    assert "torch.export" in message  # the fix
    assert model_json.name in page.text(ids.MODEL_INFO)  # the JSON model stays loaded

    noise = tmp_path / "noise.csv"
    noise.write_bytes(np.random.default_rng(2).integers(0, 256, 600, dtype=np.uint8).tobytes())
    page.upload(ids.DATA_UPLOAD, noise)
    page.wait_text(ids.ERROR_ALERT, "noise.csv", timeout=15)
    message = page.text(ids.ERROR_ALERT)
    assert "not a readable CSV" in message  # the problem
    assert "UTF-8" in message and "header" in message  # the fix
    assert labelled_csv.name in page.text(ids.DATA_INFO)  # the table stays loaded

    page.choose(ids.METHOD_SELECT, "Gradient")
    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Done.", timeout=60)
    grid = page.wait_figure(ids.INDIVIDUAL_GRAPH, "bar")
    assert grid["types"].count("bar") == 2 * len(CLASSES)
    assert page.alert_open() is False  # a good run closes the alert
    assert model_json.name in page.text(ids.MODEL_INFO)

    page.settle()
    assert page.duo.get_logs() == []


def _answer(page, upload_id, path, expected: str | None = None) -> str:
    """Upload ``path`` and return the alert's text once it shows ``expected`` (default:
    the file's name)."""
    page.upload(upload_id, path)
    page.wait_text(ids.ERROR_ALERT, expected or path.name, timeout=15)
    return page.text(ids.ERROR_ALERT)


def _alert_in_view(page) -> bool:
    rect = page.driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.top, r.bottom, window.innerHeight];",
        page.element(ids.ERROR_ALERT),
    )
    return rect[0] >= 0 and rect[1] <= rect[2]


def test_every_upload_gets_an_answer_in_view(page, model_json, tmp_path, monkeypatch):
    state_dict = tmp_path / "weights.pth"
    torch.save(nn.Linear(3, 2).state_dict(), state_dict)
    message = _answer(page, ids.MODEL_UPLOAD, state_dict)
    assert "state dict" in message and "torch.export.save" in message
    assert ".pt2" in message and ".json" in message  # the suffixes the page reads

    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    assert "supported model files are" in _answer(page, ids.MODEL_UPLOAD, notes)

    # an optional format whose extra is not installed: the install command, no HTTP 500
    monkeypatch.setitem(sys.modules, "onnx", None)
    graph = tmp_path / "graph.onnx"
    graph.write_bytes(b"\x08\x07")
    assert "needs the package onnx" in _answer(page, ids.MODEL_UPLOAD, graph, "pip install")

    _load_model(page, model_json)
    table = tmp_path / "table.txt"
    table.write_text("age,bmi,bp\n1,2,3\n")
    assert "data files are .csv" in _answer(page, ids.DATA_UPLOAD, table)
    # the Compute end of the column is in view: the alert still is
    page.reveal(page.element(ids.COMPUTE_BUTTON))
    assert _alert_in_view(page)
    page.settle()


def test_names_typed_for_an_uploaded_model_are_its_names(page, model_json, table_csv):
    _load_model(page, model_json)
    page.reveal(page.element(ids.MODEL_OUTPUT_NAMES)).send_keys("healthy, ill", Keys.ENTER)
    page.wait_text(ids.MODEL_INFO, "healthy, ill", timeout=15)
    page.upload(ids.DATA_UPLOAD, table_csv)
    page.wait_text(ids.DATA_INFO, table_csv.name, timeout=15)
    assert page.store_data(ids.MODEL_REF)["output_names"] == ["healthy", "ill"]
    page.settle()


def test_a_changed_input_shape_reads_the_torchscript_upload_again(open_page, tmp_path):
    page = open_page(Config(cache_dir=tmp_path / "cache", workers=1, trust_torchscript=True))
    scripted = tmp_path / "scripted.pt"
    torch.jit.script(nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=1))).save(str(scripted))
    field = page.reveal(page.element(ids.MODEL_INPUT_DIM))
    field.send_keys("4", Keys.ENTER)  # wrong: the first layer takes 3 features
    _answer(page, ids.MODEL_UPLOAD, scripted)
    assert page.store_data(ids.MODEL_REF) is None
    field.send_keys(Keys.BACKSPACE, "3", Keys.ENTER)  # the same file, read with (3,)
    page.wait_text(ids.MODEL_INFO, "scripted.pt", timeout=15)
    assert page.store_data(ids.MODEL_REF)["input_dim"] == [[3]]
    page.settle()
