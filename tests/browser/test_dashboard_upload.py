"""Uploads in the browser: a JSON model and a CSV table, and files the page refuses."""

import json

import numpy as np
import pytest
import torch
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
