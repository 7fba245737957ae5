"""Keras and ONNX files whose few bytes declare gigabytes: refused before the allocation.

Each bomb is a tiny valid model rewritten to declare huge sizes (the big model is never
built): a Keras config with ``Dense(units=200_000_000)``, ``Conv2D(filters=10**7)``, an
``Embedding(input_dim=10**9)``, an input of 2.5 billion values or a layer whose
``build_config`` declares one, HDF5 datasets declared far beyond their stored bytes
(fill values) or kept in other files; ONNX tensors whose ``dims`` exceed their data,
inputs and paddings of billions of values, and operators that make tensors of computed
sizes. Each is refused within :data:`support.memory.MAX_SECONDS` while the process's
peak memory grows by less than :data:`support.memory.MAX_GROWTH`, the sizes read from
the config or graph before keras or numpy allocate anything. Valid models still load,
with the dashboard's bound.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py
import keras
import numpy as np
import pytest
import torch
from onnx import TensorProto, helper
from support.memory import refused_cheaply
from torch import nn

import attribution  # noqa: F401  (registers every model format)
from attribution import UnsupportedLayerError
from attribution.converter.loading import load_model

layers = keras.layers
LIMIT = 4_000_000
"""The dashboard's default ``--max-instance-values``."""
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning",
    "ignore:You are saving your model as an HDF5 file:UserWarning",
)


# --- Keras ------------------------------------------------------------------------------------


def _tiny() -> keras.Model:
    """Input (4, 4, 1) -> Conv2D(2, 3) -> Flatten -> Dense(3): 47 weights, named layers."""
    return keras.Sequential(
        [
            keras.Input((4, 4, 1), name="input_layer"),
            layers.Conv2D(2, 3, name="conv2d"),
            layers.Flatten(name="flatten"),
            layers.Dense(3, name="dense"),
        ]
    )


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory) -> dict[str, bytes]:
    """The tiny model as ``.keras`` and ``.h5`` bytes."""
    folder = tmp_path_factory.mktemp("keras")
    model = _tiny()
    files = {}
    for suffix in (".keras", ".h5"):
        model.save(folder / f"tiny{suffix}")
        files[suffix] = (folder / f"tiny{suffix}").read_bytes()
    return files


def _layer(config: dict, kind: str) -> dict:
    return next(entry for entry in config["config"]["layers"] if entry["class_name"] == kind)


def _rewrite_keras(data: bytes, edit: Callable[[dict], Any], weights: bytes | None = None):
    """The ``.keras`` archive with ``edit`` applied to its config (and other weights)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(entries["config.json"])
    edit(config)
    entries["config.json"] = json.dumps(config).encode()
    if weights is not None:
        entries["model.weights.h5"] = weights
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _rewrite_h5(data: bytes, path, edit: Callable[[h5py.File], Any]) -> bytes:
    """The ``.h5`` file (or weights file) with ``edit`` applied through h5py."""
    path.write_bytes(data)
    with h5py.File(path, "r+") as file:
        edit(file)
    return path.read_bytes()


def _edit_model_config(edit: Callable[[dict], Any]) -> Callable[[h5py.File], None]:
    def apply(file: h5py.File) -> None:
        config = json.loads(file.attrs["model_config"])
        edit(config)
        file.attrs["model_config"] = json.dumps(config)

    return apply


def _set(kind: str, **values: Any) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        _layer(config, kind)["config"].update(values)

    return edit


def _huge_dense(file: h5py.File) -> None:
    """Declare the Dense kernel and bias 2 million wide, storing nothing (fill values)."""
    names = _datasets(file)
    kernel = next(name for name in names if name.endswith(("vars/0", "/kernel")))
    bias = next(name for name in names if name.endswith(("vars/1", "/bias")))
    for name, shape in ((kernel, (8, 2_000_000)), (bias, (2_000_000,))):
        del file[name]
        file.create_dataset(name, shape=shape, dtype="float32")


def _datasets(file: h5py.File) -> list[str]:
    found: list[str] = []
    file.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(n for n in found if "dense" in n)


def _keras_bombs(files: dict[str, bytes], folder) -> dict[str, tuple[bytes, str, int | None]]:
    """name -> (file bytes, the refusal it must get, max_instance_values)."""
    keras_file, h5_file = files[".keras"], files[".h5"]
    weights = r"declares layers of \d+ weights \(the largest, the Keras layer '{}' \({}\)"
    values = r"the Keras layer '{}' \({}\) computes \(batch, {}\): {} values per instance"
    units = _set("Dense", units=200_000_000)
    filters = _set("Conv2D", filters=10**7)

    def embedding(config: dict) -> None:
        entry = _layer(config, "Dense")
        entry["class_name"] = "Embedding"
        entry["config"] = {"name": "embedding", "input_dim": 10**9, "output_dim": 64}

    def input_shape(config: dict) -> None:
        _layer(config, "InputLayer")["config"]["batch_shape"] = [None, 50000, 50000, 1]

    def build_shape(config: dict) -> None:
        _layer(config, "Dense")["build_config"] = {"input_shape": [None, 10**9]}

    def wide_dense(config: dict) -> None:
        _layer(config, "Dense")["config"]["units"] = 2_000_000

    weights_h5 = zipfile.ZipFile(io.BytesIO(keras_file)).read("model.weights.h5")
    filled = _rewrite_h5(weights_h5, folder / "filled.weights.h5", _huge_dense)
    fill = r"declares the weights '.*dense.*' of shape \(.*\) \(\d+ bytes\) but stores 0 bytes"
    return {
        "dense-units.keras": (
            _rewrite_keras(keras_file, units),
            weights.format("dense", "Dense"),
            None,
        ),
        "dense-units-limit.keras": (
            _rewrite_keras(keras_file, units),
            values.format("dense", "Dense", 200000000, 200000000) + r".*--max-instance-values",
            LIMIT,
        ),
        "conv-filters.keras": (
            _rewrite_keras(keras_file, filters),
            r"declares layers of 220000003 weights",
            None,
        ),
        "conv-filters-limit.keras": (
            _rewrite_keras(keras_file, filters),
            values.format("conv2d", "Conv2D", "2, 2, 10000000", 40000000),
            LIMIT,
        ),
        "embedding.keras": (
            _rewrite_keras(keras_file, embedding),
            r"embedding\.keras: Keras layer 'embedding' \(Embedding\): this layer type is not "
            "supported",
            None,
        ),
        "input.keras": (
            _rewrite_keras(keras_file, input_shape),
            r"the Keras input 'input_layer' has shape \(batch, 50000, 50000, 1\): 2500000000 "
            r"values per instance, more than the 4000000 allowed",
            LIMIT,
        ),
        "input-no-limit.keras": (
            _rewrite_keras(keras_file, input_shape),
            weights.format("dense", "Dense"),
            None,
        ),
        "build-shape.keras": (
            _rewrite_keras(keras_file, build_shape),
            weights.format("dense", "Dense"),
            None,
        ),
        "build-shape-limit.keras": (
            _rewrite_keras(keras_file, build_shape),
            r"'dense' \(Dense\) declares the build input shape \(batch, 1000000000\)",
            LIMIT,
        ),
        "fill-values.keras": (_rewrite_keras(keras_file, wide_dense, filled), fill, None),
        "dense-units.h5": (
            _rewrite_h5(h5_file, folder / "units.h5", _edit_model_config(units)),
            weights.format("dense", "Dense"),
            None,
        ),
        "conv-filters.h5": (
            _rewrite_h5(h5_file, folder / "filters.h5", _edit_model_config(filters)),
            values.format("conv2d", "Conv2D", "2, 2, 10000000", 40000000),
            LIMIT,
        ),
        "fill-values.h5": (
            _rewrite_h5(
                h5_file,
                folder / "fill.h5",
                lambda file: (_edit_model_config(wide_dense)(file), _huge_dense(file)),
            ),
            fill,
            None,
        ),
    }


KERAS_BOMBS = [
    "dense-units.keras", "dense-units-limit.keras", "conv-filters.keras",
    "conv-filters-limit.keras", "embedding.keras", "input.keras", "input-no-limit.keras",
    "build-shape.keras", "build-shape-limit.keras", "fill-values.keras", "dense-units.h5",
    "conv-filters.h5", "fill-values.h5",
]  # fmt: skip


@pytest.fixture(scope="module")
def keras_bombs(keras_files, tmp_path_factory) -> dict[str, tuple[bytes, str, int | None]]:
    return _keras_bombs(keras_files, tmp_path_factory.mktemp("bombs"))


@pytest.mark.parametrize("name", KERAS_BOMBS)
def test_keras_bomb_is_refused_before_keras_builds_it(keras_bombs, name):
    data, match, limit = keras_bombs[name]
    assert len(data) < 100_000
    seconds, growth = refused_cheaply(
        lambda: load_model(data, name, max_instance_values=limit), match
    )
    print(f"{name}: refused in {seconds:.3f} s, peak memory +{growth / 1e6:.1f} MB")


def test_keras_weights_in_other_files_are_refused(keras_files, tmp_path):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as file:
        file.create_dataset("kernel", data=np.zeros((8, 3), "float32"))

    def link(file: h5py.File) -> None:
        file["model_weights/extra"] = h5py.ExternalLink(str(secret), "kernel")

    def external(file: h5py.File) -> None:
        file.create_dataset("extra", shape=(4,), dtype="uint8", external=[(str(secret), 0, 4)])

    linked = _rewrite_h5(keras_files[".h5"], tmp_path / "linked.h5", link)
    with pytest.raises(ValueError, match=r"links 'model_weights/extra' to the file .*secret"):
        load_model(linked, "linked.h5")
    stored = _rewrite_h5(keras_files[".h5"], tmp_path / "external.h5", external)
    with pytest.raises(ValueError, match=r"keeps the data of 'extra' in other files"):
        load_model(stored, "external.h5")


def test_keras_archive_without_h5_weights_is_refused(keras_files):
    buffer = io.BytesIO()
    source = zipfile.ZipFile(io.BytesIO(keras_files[".keras"]))
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", source.read("config.json"))
        archive.writestr("model.weights.npz", b"")
    with pytest.raises(ValueError, match=r"keras cannot load npz\.keras: it holds its weights as "):
        load_model(buffer.getvalue(), "npz.keras")


def test_keras_malformed_config_is_a_clear_error(keras_files):
    data = _rewrite_keras(keras_files[".keras"], _set("Dense", units="many"))
    with pytest.raises(ValueError, match=r"keras cannot load bad\.keras: the layer 'dense'"):
        load_model(data, "bad.keras")


def _shared() -> keras.Model:
    """A functional model calling one Dense twice, with a Concatenate and an Add."""
    x = keras.Input((6,))
    shared = layers.Dense(6, activation="relu")
    a, b = shared(x), shared(layers.Dense(6)(x))
    both = layers.Concatenate()([layers.Add()([a, b]), x])
    return keras.Model(x, layers.Dense(2)(layers.BatchNormalization()(both)))


def _signal() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((12, 3)),
            layers.ZeroPadding1D((2, 1)),
            layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="elu"),
            layers.AveragePooling1D(2),
            layers.GlobalMaxPooling1D(),
            layers.Dense(2, activation="softmax"),
        ]
    )


def _image() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((9, 8, 2)),
            layers.ZeroPadding2D(((1, 0), (2, 1))),
            layers.Conv2D(3, (3, 2), strides=2, padding="same"),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(2, strides=1),
            layers.Dropout(0.3),
            layers.Flatten(),
            layers.Dense(4),
        ]
    )


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("build", [_tiny, _shared, _signal, _image])
def test_valid_keras_models_load_within_the_bounds(build, suffix, tmp_path):
    model = build()
    model.save(tmp_path / f"model{suffix}")
    for limit in (None, LIMIT):
        loaded = load_model(tmp_path / f"model{suffix}", max_instance_values=limit)
        assert loaded.converter is not None
    x = np.random.default_rng(0).normal(size=(2, *model.input_shape[1:])).astype("float32")
    inputs = torch.tensor(x).movedim(-1, 1) if x.ndim > 2 else torch.tensor(x)
    with torch.no_grad():
        got = loaded.converter.model(inputs)[0].numpy()
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-5)


# --- ONNX -------------------------------------------------------------------------------------


def _onnx(nodes: list, inputs: list, initializers: list = (), output_shape=(None, 3)) -> bytes:
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(output_shape))
    graph = helper.make_graph(nodes, "bomb", inputs, [output], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _input(*shape: int | None) -> Any:
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))


def _pooled(source: str) -> list:
    """GlobalAveragePool and Flatten of ``source`` into ``y``."""
    pool = helper.make_node("GlobalAveragePool", [source], ["p"])
    return [pool, helper.make_node("Flatten", ["p"], ["y"])]


def _onnx_bombs() -> dict[str, tuple[bytes, str, int | None, type[Exception]]]:
    """name -> (file bytes, the refusal it must get, max_instance_values, error)."""
    gemm = helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)
    empty = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[200_000_000, 4])
    short = TensorProto(
        name="W", data_type=TensorProto.FLOAT, dims=[200_000_000, 4], float_data=[1.0] * 8
    )
    constant = helper.make_node("Constant", [], ["W"], value=short)
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [1, 50000, 50000])
    filled = helper.make_node("ConstantOfShape", ["shape"], ["big"])
    add = helper.make_node("Add", ["x", "big"], ["y"])
    repeats = helper.make_tensor("repeats", TensorProto.INT64, [2], [1, 10**9])
    tile = helper.make_node("Tile", ["x", "repeats"], ["y"])
    expand = helper.make_node("Expand", ["x", "shape"], ["y"])
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 10**4, 10**4])
    resize = helper.make_node("Resize", ["x", "", "scales"], ["y"])
    pool = _pooled("x")
    weight = helper.make_tensor("W", TensorProto.FLOAT, [1, 1, 1, 1], [1.0])
    padded = helper.make_node("Conv", ["x", "W"], ["x1"], pads=[50000] * 4, name="conv")
    declared = r"declares the tensor 'W' of shape \(200000000, 4\) \(800000000 values\) but stores "
    unsupported = r"\({}\) of {}\.onnx: the operator {} has no innsight layer"
    return {
        "empty-weights.onnx": (
            _onnx([gemm], [_input(None, 4)], [empty]),
            declared + "0 ",
            None,
            ValueError,
        ),
        "short-weights.onnx": (
            _onnx([gemm], [_input(None, 4)], [short]),
            declared + "8 ",
            None,
            ValueError,
        ),
        "constant.onnx": (
            _onnx([constant, gemm], [_input(None, 4)]),
            declared + "8 ",
            None,
            ValueError,
        ),
        "input.onnx": (
            _onnx(pool, [_input(None, 1, 50000, 50000)], output_shape=(None, 1)),
            r"Input 'x' of input\.onnx is \(1, 50000, 50000\): 2500000000 values per instance, "
            r"more than the 4000000 allowed .*--max-instance-values",
            LIMIT,
            ValueError,
        ),
        "padding.onnx": (
            _onnx(
                [padded, *_pooled("x1")], [_input(None, 1, 8, 8)], [weight], output_shape=(None, 1)
            ),
            r"The output of the ONNX node 'conv' \(Conv\) of padding\.onnx is \(1, 100008, "
            r"100008\): 10001600064 values per instance",
            LIMIT,
            ValueError,
        ),
        "constant-of-shape.onnx": (
            _onnx([filled, add], [_input(1, 50000, 50000)], [shape]),
            unsupported.format("ConstantOfShape", "constant-of-shape", "ConstantOfShape"),
            None,
            UnsupportedLayerError,
        ),
        "tile.onnx": (
            _onnx([tile], [_input(None, 4)], [repeats]),
            unsupported.format("Tile", "tile", "Tile"),
            None,
            UnsupportedLayerError,
        ),
        "expand.onnx": (
            _onnx([expand], [_input(1, 1, 1)], [shape]),
            unsupported.format("Expand", "expand", "Expand"),
            None,
            UnsupportedLayerError,
        ),
        "resize.onnx": (
            _onnx([resize], [_input(None, 1, 8, 8)], [scales]),
            unsupported.format("Resize", "resize", "Resize"),
            None,
            UnsupportedLayerError,
        ),
    }


ONNX_BOMBS = _onnx_bombs()


@pytest.mark.parametrize("name", sorted(ONNX_BOMBS))
def test_onnx_bomb_is_refused_before_anything_is_allocated(name):
    data, match, limit, error = ONNX_BOMBS[name]
    assert len(data) < 10_000
    seconds, growth = refused_cheaply(
        lambda: load_model(data, name, max_instance_values=limit), match, error
    )
    print(f"{name}: refused in {seconds:.3f} s, peak memory +{growth / 1e6:.1f} MB")


class _Cnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(2, 3, 3, padding=1), nn.Linear(3 * 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(torch.max_pool2d(torch.relu(self.conv(x)), 2), 1))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("limit", [None, LIMIT])
def test_valid_onnx_model_loads_within_the_bounds(limit):
    torch.manual_seed(0)
    model, buffer, x = _Cnn().eval(), io.BytesIO(), torch.randn(2, 2, 8, 8)
    torch.onnx.export(model, (x,), buffer, dynamo=False)
    loaded = load_model(buffer.getvalue(), "cnn.onnx", max_instance_values=limit)
    with torch.no_grad():
        expected = model(x)
        got = loaded.converter.model(x)[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
