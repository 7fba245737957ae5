"""Each model format family end to end in the browser: a file written by its own framework
(ONNX, Keras, scikit-learn) or images in a zip, uploaded, converted, explained and drawn."""

from __future__ import annotations

import base64
import io
import json
import warnings
import zipfile

import numpy as np
import pytest
import skops.io
import torch
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from torch import nn

from attribution import LRP, Converter
from attribution.converter import keras_format
from attribution.methods.catalogue import applicable
from dashboard import ids

UNCONVERTED_METHODS = applicable(converted=False, differentiable=True)
"""The methods that explain a model that does not convert."""

pytestmark = pytest.mark.browser

FEATURES = ["alpha", "beta", "gamma", "delta"]
CLASSES = ["Y1", "Y2", "Y3"]  # ONNX names no outputs: the converter's names

_PLOTTED_Y = """
const plot = document.querySelector(arguments[0] + ' .js-plotly-plot');
return plot.data.map(t => JSON.stringify(t.y === undefined ? null : t.y));
"""
"""Every trace's y as the page holds it, in JSON: a list, or numpy's typed-array form
``{"dtype", "bdata"}`` (base64) that plotly.py writes and plotly.js reads."""


def _export_onnx(model: nn.Module, example: torch.Tensor, path) -> None:
    """``model`` as an ONNX file (the TorchScript-based exporter, any batch size)."""
    with warnings.catch_warnings():  # torch deprecates this exporter
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, example, path, dynamo=False, input_names=["x"], output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )  # fmt: skip


def _offered(page, dropdown_id: str) -> list[str]:
    """The labels a single-choice dropdown offers (opened, read, closed again)."""
    page.reveal(page.element(dropdown_id)).click()
    page.duo.wait_for_element(".dash-dropdown-option")
    labels = [o.text for o in page.driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")]
    page.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    page.duo.wait_for_element(f"#{dropdown_id}[aria-expanded='false']", timeout=5)
    return labels


def _plotted_y(page, graph_id: str) -> list[np.ndarray]:
    """The y values of every trace of a drawn graph."""
    found = []
    for text in page.driver.execute_script(_PLOTTED_Y, f"#{graph_id}"):
        y = json.loads(text)
        if isinstance(y, dict):
            y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"]))
        found.append(np.asarray(y, dtype=float))
    return found


def _selected(page, dropdown_id: str) -> list[str]:
    """The labels a multi-choice dropdown holds as selected, clipped ones too (the box shows
    "setosa, versi… 3 selected"; a clipped item's WebElement ``text`` is empty)."""
    items = page.element(dropdown_id).find_elements(By.CSS_SELECTOR, ".dash-dropdown-value-item")
    return [item.get_attribute("textContent") for item in items]


def _strips(grid: dict) -> list[str]:
    """The bold strip texts of a grid (column and row titles)."""
    texts = grid["annotations"]
    return [t.removeprefix("<b>").removesuffix("</b>") for t in texts if t.startswith("<b>")]


def _table(tmp_path):
    """6 rows of the 4 features, and the CSV file with them under a header."""
    values = np.random.default_rng(0).normal(size=(6, 4)).round(3)
    csv_path = tmp_path / "table.csv"
    lines = [",".join(FEATURES), *(",".join(map(str, row)) for row in values)]
    csv_path.write_text("\n".join(lines) + "\n")
    return values, csv_path


def _compute(page, method: str, trace_type: str) -> dict:
    """Click Compute; the individual grid once it shows ``trace_type`` traces."""
    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Done.", timeout=60)
    grid = page.wait_figure(ids.INDIVIDUAL_GRAPH, trace_type)
    assert page.alert_open() is False, f"{method}: {page.text(ids.ERROR_ALERT)}"
    return grid


def test_onnx_mlp_and_csv_give_the_lrp_of_the_converted_file(page, tmp_path):
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(-1)).eval()
    model_path = tmp_path / "model.onnx"
    _export_onnx(mlp, torch.zeros(2, 4), model_path)
    values, csv_path = _table(tmp_path)

    page.upload(ids.MODEL_UPLOAD, model_path)
    page.wait_text(ids.MODEL_INFO, model_path.name, timeout=20)
    card = page.text(ids.MODEL_INFO)
    assert "ONNX" in card
    methods = applicable(converted=True, differentiable=True)
    assert all(method in card for method in methods), card
    assert sorted(_offered(page, ids.METHOD_SELECT)) == sorted(methods)
    page.upload(ids.DATA_UPLOAD, csv_path)
    page.wait_text(ids.DATA_INFO, "6 rows", timeout=15)
    page.choose(ids.METHOD_SELECT, "LRP")
    page.wait_for(ids.rule("rule_name", "Dense_Layer"))
    assert _selected(page, ids.OUTPUT_SELECT) == CLASSES

    grid = _compute(page, "LRP", "bar")
    bars = [t for t in grid["data"] if t["type"] == "bar"]
    assert len(bars) == 2 * len(CLASSES)  # data_1 and data_2 × the 3 outputs
    assert all(t["x"] == FEATURES for t in bars)
    plotted = _plotted_y(page, ids.INDIVIDUAL_GRAPH)
    expected = LRP(Converter(model_path), values.astype(np.float32)).get_result()[0]  # (4, 3)
    for column, name in enumerate(CLASSES):  # the first row's bars come first
        np.testing.assert_allclose(plotted[column], expected[:, column], atol=1e-4, err_msg=name)

    page.settle()
    assert page.duo.get_logs() == []


@pytest.mark.filterwarnings(  # keras's torch backend, not the dashboard
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
def test_keras_cnn_and_channels_last_npy_give_heatmaps(page, tmp_path):
    keras = keras_format.import_keras()  # on the torch backend
    layers = keras.layers
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(2, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model_path = tmp_path / "model.keras"
    model.save(model_path)
    images = np.random.default_rng(1).uniform(size=(4, 8, 8, 1)).astype(np.float32)
    npy_path = tmp_path / "images.npy"
    np.save(npy_path, images)

    page.upload(ids.MODEL_UPLOAD, model_path)
    page.wait_text(ids.MODEL_INFO, model_path.name, timeout=30)
    assert "Keras" in page.text(ids.MODEL_INFO)
    page.click(ids.DATA_CHANNELS_LAST)
    assert page.element(ids.DATA_CHANNELS_LAST).is_selected()
    page.upload(ids.DATA_UPLOAD, npy_path)
    page.wait_text(ids.DATA_INFO, "4 rows", timeout=15)
    assert "(4, 1, 8, 8) (image)" in page.text(ids.DATA_INFO)  # read channels first
    page.choose(ids.METHOD_SELECT, "Gradient")
    page.click(ids.parameter("times_input"))
    assert page.element(ids.parameter("times_input")).is_selected()

    grid = _compute(page, "Gradient × input", "heatmap")
    assert grid["types"].count("heatmap") == 2 * 3  # data_1 and data_2 × the 3 outputs

    page.settle()
    assert page.duo.get_logs() == []


def test_sklearn_mlp_skops_and_iris_csv_give_bars_named_by_the_features(page, tmp_path):
    iris = load_iris(as_frame=True)
    X, species = iris.data, iris.target_names[iris.target]
    mlp = MLPClassifier(hidden_layer_sizes=(5,), max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, species)
    model_path = tmp_path / "model.skops"
    model_path.write_bytes(skops.io.dumps(mlp))
    rows = X.iloc[[0, 50, 100, 1, 51]].assign(species=species[[0, 50, 100, 1, 51]])
    csv_path = tmp_path / "iris.csv"
    rows.to_csv(csv_path, index=False)
    features = list(X.columns)
    classes = [str(c) for c in mlp.classes_]

    page.upload(ids.MODEL_UPLOAD, model_path)
    page.wait_text(ids.MODEL_INFO, model_path.name, timeout=20)
    assert "skops" in page.text(ids.MODEL_INFO)
    page.upload(ids.DATA_UPLOAD, csv_path)
    page.wait_text(ids.DATA_INFO, "Not inputs: species", timeout=15)
    assert "5 rows" in page.text(ids.DATA_INFO)
    page.choose(ids.METHOD_SELECT, "DeepLift")
    page.wait_for(ids.parameter("rule_name"))
    assert _selected(page, ids.OUTPUT_SELECT) == classes

    grid = _compute(page, "DeepLift", "bar")
    bars = [t for t in grid["data"] if t["type"] == "bar"]
    assert len(bars) == 2 * len(classes)
    assert all(t["x"] == features for t in bars)
    assert [s for s in _strips(grid) if s in classes] == classes

    page.settle()
    assert page.duo.get_logs() == []


def test_cnn_and_a_zip_of_png_images_give_smoothgrad_heatmaps(page, tmp_path):
    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3), nn.Softmax(-1)
    ).eval()
    model_path = tmp_path / "model.onnx"
    _export_onnx(cnn, torch.zeros(2, 1, 8, 8), model_path)
    pixels = np.random.default_rng(2).integers(0, 256, size=(5, 8, 8), dtype=np.uint8)
    zip_path = tmp_path / "images.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for k, grey in enumerate(pixels):
            png = io.BytesIO()
            Image.fromarray(grey).save(png, format="PNG")
            archive.writestr(f"digit_{k}.png", png.getvalue())

    page.upload(ids.MODEL_UPLOAD, model_path)
    page.wait_text(ids.MODEL_INFO, model_path.name, timeout=20)
    page.upload(ids.DATA_UPLOAD, zip_path)
    page.wait_text(ids.DATA_INFO, "5 rows", timeout=15)
    assert "(5, 1, 8, 8) (image)" in page.text(ids.DATA_INFO)  # grey, channels first
    page.wait_figure(ids.DATA_INFO, "heatmap", timeout=10)  # the thumbnails
    page.choose(ids.METHOD_SELECT, "SmoothGrad")
    page.set_number(ids.parameter("n"), 5)

    grid = _compute(page, "SmoothGrad", "heatmap")
    assert grid["types"].count("heatmap") == 2 * 3

    page.settle()
    assert page.duo.get_logs() == []


def test_torch_export_program_gets_the_gradient_family(page, tmp_path):
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(mlp, (torch.zeros(2, 4),), dynamic_shapes=({0: batch},))
    model_path = tmp_path / "model.pt2"
    torch.export.save(program, model_path)
    values, csv_path = _table(tmp_path)

    page.upload(ids.MODEL_UPLOAD, model_path)
    page.wait_text(ids.MODEL_INFO, model_path.name, timeout=20)
    assert sorted(_offered(page, ids.METHOD_SELECT)) == sorted(UNCONVERTED_METHODS)
    page.upload(ids.DATA_UPLOAD, csv_path)
    page.wait_text(ids.DATA_INFO, "6 rows", timeout=15)
    page.choose(ids.METHOD_SELECT, "Gradient")

    grid = _compute(page, "Gradient", "bar")
    assert all(t["x"] == FEATURES for t in grid["data"] if t["type"] == "bar")
    plotted = _plotted_y(page, ids.INDIVIDUAL_GRAPH)
    x = torch.tensor(values[:1], dtype=torch.float32, requires_grad=True)
    mlp(x)[0, 0].backward()
    np.testing.assert_allclose(plotted[0], x.grad[0].numpy(), atol=1e-5)
    page.settle()
    assert page.duo.get_logs() == []
