"""Keras 3 models (torch backend): files written by keras, checked against keras itself."""

from __future__ import annotations

import io
import json
import os
import re
import sys
import zipfile

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py
import keras
import numpy as np
import pytest
import torch

from attribution import LRP, Converter, Gradient
from attribution.converter.keras_format import import_keras, keras_spec
from attribution.converter.loading import load_model
from attribution.methods.catalogue import applicable

layers = keras.layers
ATOL = 1e-5
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def _randomize(model: keras.Model, seed: int = 0) -> keras.Model:
    """Give every weight a random value; batch-norm variances stay positive."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for weight in layer.weights:
            shape = tuple(weight.shape)
            if "variance" in weight.path:
                values.append(rng.uniform(0.5, 2.0, shape))
            else:
                values.append(rng.normal(0.0, 0.5, shape))
        layer.set_weights([v.astype("float32") for v in values])
    return model


def _mlp() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((5,)),
            layers.Dense(6, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(4, activation="tanh"),
            layers.Dense(3),
            layers.Activation("softmax"),
        ]
    )


def _cnn(padding: str) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((13, 16, 2)),
            layers.Conv2D(3, 3, strides=2, padding=padding, activation="relu"),
            layers.BatchNormalization(),
            layers.Conv2D(4, (2, 3), padding=padding, dilation_rate=(1, 2)),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(3, activation="softmax"),
        ]
    )


def _signal() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((12, 3)),
            layers.Conv1D(4, 3, padding="same", activation="elu"),
            layers.Conv1D(2, 2, strides=2, padding="causal", activation="softplus"),
            layers.GlobalAveragePooling1D(),
            layers.Dense(2, activation="sigmoid"),
        ]
    )


def _signal_pooling() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((14, 2)),
            layers.ZeroPadding1D((2, 1)),
            layers.Conv1D(3, 3, dilation_rate=2),
            layers.ReLU(),
            layers.MaxPooling1D(2),
            layers.AveragePooling1D(2, strides=1),
            layers.Flatten(),
            layers.BatchNormalization(),
            layers.Dense(5, activation="gelu"),
            layers.ELU(),
            layers.Dense(3, activation="silu"),
            layers.Dense(2),
            layers.Softmax(),
        ]
    )


def _padded() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((6, 5, 2)),
            layers.ZeroPadding2D(((1, 2), (0, 1))),
            layers.Conv2D(3, 2),
            layers.AveragePooling2D((2, 3), strides=(2, 1)),
            layers.Activation("relu"),
            layers.Flatten(),
            layers.Dense(2),
        ]
    )


def _functional() -> keras.Model:
    image = keras.Input((6, 6, 2), name="image")
    table = keras.Input((4,), name="table")
    a = layers.Conv2D(3, 3, activation="relu")(image)
    b = layers.Conv2D(2, 3, padding="valid")(image)
    merged = layers.Concatenate()([a, b])
    pooled = layers.GlobalMaxPooling2D()(merged)
    dense = layers.Dense(5, activation="relu")(table)
    added = layers.Add()([pooled, dense])
    both = layers.Concatenate(axis=1)([added, table])
    out = layers.Dense(3)(both)
    return keras.Model([image, table], out)


MODELS = {
    "mlp-softmax": (_mlp, [(5,)]),
    "cnn-valid": (lambda: _cnn("valid"), [(13, 16, 2)]),
    "cnn-same": (lambda: _cnn("same"), [(13, 16, 2)]),
    "conv1d-global": (_signal, [(12, 3)]),
    "zeropad-avgpool": (_padded, [(6, 5, 2)]),
    "signal-pooling": (_signal_pooling, [(14, 2)]),
    "functional": (_functional, [(6, 6, 2), (4,)]),
}


def _data(shapes: list[tuple[int, ...]], seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(4, *shape)).astype("float32") for shape in shapes]


def _keras_output(model: keras.Model, data: list[np.ndarray]) -> np.ndarray:
    return np.asarray(model.predict(data if len(data) > 1 else data[0], verbose=0))


def _converted_output(converter: Converter, data: list[np.ndarray]) -> np.ndarray:
    inputs = [torch.tensor(x).movedim(-1, 1) if x.ndim > 2 else torch.tensor(x) for x in data]
    with torch.no_grad():
        return converter.model(*inputs)[0].numpy()


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("key", list(MODELS))
def test_saved_model_converts_and_matches_keras(key, suffix, tmp_path):
    build, shapes = MODELS[key]
    model = _randomize(build())
    path = tmp_path / f"model{suffix}"
    model.save(path)
    converter = Converter(path)
    assert converter.input_dim == [
        shape if len(shape) == 1 else (shape[-1], *shape[:-1]) for shape in shapes
    ]
    data = _data(shapes)
    np.testing.assert_allclose(
        _converted_output(converter, data), _keras_output(model, data), atol=ATOL
    )


def _keras_gradient(model: keras.Model, x: np.ndarray, classes: list[int]) -> np.ndarray:
    """d output[:, k] / d x for each k, by torch autograd through keras's torch backend."""
    columns = []
    for k in classes:
        point = torch.tensor(x, requires_grad=True)
        (gradient,) = torch.autograd.grad(model(point)[:, k].sum(), point)
        columns.append(gradient.numpy())
    return np.stack(columns, axis=-1)


@pytest.mark.parametrize(
    "key", ["mlp-softmax", "cnn-same", "conv1d-global", "zeropad-avgpool", "signal-pooling"]
)
def test_gradient_times_input_matches_keras_autograd(key):
    build, shapes = MODELS[key]
    model = _randomize(build())
    (x,) = _data(shapes)
    converter = Converter(model)
    result = Gradient(
        converter, x, channels_first=False, times_input=True, ignore_last_act=False,
        output_idx=[0, 1],
    ).get_result()  # fmt: skip
    expected = _keras_gradient(model, x, [0, 1]) * x[..., None]
    np.testing.assert_allclose(result, expected, atol=ATOL)
    relevance = LRP(converter, x, channels_first=False, output_idx=[0, 1]).get_result()
    assert relevance.shape == expected.shape and np.isfinite(relevance).all()


def test_trailing_softmax_is_fused_so_ignore_last_act_explains_the_logits():
    model = _randomize(_mlp())
    converter = Converter(model)
    last = converter.model.nodes[-1].layer
    assert (last.type_name, last.activation.name) == ("Dense_Layer", "softmax")
    logits = keras.Model(model.inputs, model.layers[-2].output)
    (x,) = _data([(5,)])
    result = Gradient(converter, x, channels_first=False, output_idx=[0, 2]).get_result()
    np.testing.assert_allclose(result, _keras_gradient(logits, x, [0, 2]), atol=ATOL)


def test_shared_layer_calls_become_separate_layers():
    dense = layers.Dense(3, activation="relu")
    left, right = keras.Input((4,)), keras.Input((4,))
    model = _randomize(keras.Model([left, right], layers.Add()([dense(left), dense(right)])))
    spec = keras_spec(model)
    assert [layer["type"] for layer in spec["layers"]].count("Dense") == 2
    data = _data([(4,), (4,)])
    np.testing.assert_allclose(
        _converted_output(Converter(spec), data), _keras_output(model, data), atol=ATOL
    )


def test_load_model_of_keras_bytes_gives_every_method(tmp_path):
    path = tmp_path / "m.keras"
    _randomize(_cnn("same")).save(path)
    loaded = load_model(path.read_bytes(), "m.keras")
    assert loaded.format == "Keras model"
    assert loaded.methods == applicable(converted=True, differentiable=True)
    assert loaded.input_dim == [(2, 13, 16)]


def test_load_model_takes_a_keras_model_not_as_a_torch_module():
    model = _randomize(_cnn("same"))
    assert isinstance(model, torch.nn.Module)  # keras layers on torch are torch modules
    loaded = load_model(model)
    assert (loaded.format, loaded.input_dim) == ("Keras model", [(2, 13, 16)])
    data = _data([(13, 16, 2)])
    np.testing.assert_allclose(
        _converted_output(loaded.converter, data), _keras_output(model, data), atol=ATOL
    )


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_layer_is_refused_by_safe_mode(suffix, tmp_path):
    model = keras.Sequential([keras.Input((3,)), layers.Lambda(lambda t: t * 2.0), layers.Dense(2)])
    path = tmp_path / f"lambda{suffix}"
    model.save(path)
    with pytest.raises(ValueError, match=rf"lambda\{suffix} holds Python code .*Lambda"):
        Converter(path)


def _keras2_h5(path, kernel: np.ndarray, bias: np.ndarray) -> None:
    """A Dense model in the HDF5 layout of tf.keras 2 (``model.save("m.h5")`` in TF 2.15).

    Written with h5py because TensorFlow is not installed here: the ``model_config`` of
    Keras 2 (``batch_input_shape``, plain dtype strings), ``backend="tensorflow"``, and
    weights under ``model_weights/<layer>/<layer>/<name>:0``.
    """
    dense = {
        "name": "dense", "trainable": True, "dtype": "float32", "units": kernel.shape[1],
        "activation": "relu", "use_bias": True,
        "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
        "kernel_constraint": None, "bias_constraint": None,
    }  # fmt: skip
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [
                {"class_name": "InputLayer", "config": {
                    "batch_input_shape": [None, kernel.shape[0]], "dtype": "float32",
                    "sparse": False, "ragged": False, "name": "dense_input"}},
                {"class_name": "Dense", "config": dense},
            ],
        },
    }  # fmt: skip
    with h5py.File(path, "w") as file:
        file.attrs.update(model_config=json.dumps(config), keras_version="2.15.0",
                          backend="tensorflow")  # fmt: skip
        weights = file.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([b"dense"])
        group = weights.create_group("dense")
        group.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
        group.create_dataset("dense/kernel:0", data=kernel)
        group.create_dataset("dense/bias:0", data=bias)


def test_keras2_layout_h5_loads(tmp_path):
    rng = np.random.default_rng(3)
    kernel, bias = rng.normal(size=(4, 3)), rng.normal(size=3)
    _keras2_h5(tmp_path / "old.h5", kernel.astype("float32"), bias.astype("float32"))
    (x,) = _data([(4,)])
    converter = Converter(tmp_path / "old.h5")
    expected = np.maximum(x @ kernel + bias, 0.0)
    np.testing.assert_allclose(_converted_output(converter, [x]), expected, atol=ATOL)


@pytest.mark.parametrize("name", ["junk.keras", "junk.h5"])
def test_random_bytes_are_a_clear_error(name):
    data = np.random.default_rng(0).bytes(2000)
    kind = r"a \.keras archive" if name.endswith(".keras") else "an HDF5 file"
    with pytest.raises(ValueError, match=rf"{re.escape(name)} is not {kind}"):
        load_model(data, name)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (layers.Reshape((3, 2)), r"'reshape' \(Reshape\): this layer type is not supported"),
        (layers.Dense(6, activation="leaky_relu"), r"activation 'leaky_relu' is not supported"),
        (layers.LeakyReLU(), r"LeakyReLU\): this layer type is not supported"),
    ],
)
def test_unsupported_layers_name_the_layer(layer, message):
    model = keras.Sequential([keras.Input((6,)), layer, layers.Flatten(), layers.Dense(2)])
    with pytest.raises(ValueError, match=message):
        Converter(model)


def test_channels_first_layers_are_refused():
    model = keras.Sequential(
        [keras.Input((2, 5, 5)), layers.Conv2D(2, 3, data_format="channels_first"),
         layers.Flatten(), layers.Dense(2)]
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"data_format is 'channels_first'"):
        Converter(model)


def test_unbuilt_model_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'unbuilt' is not built.*keras\.Input"):
        Converter(keras.Sequential([layers.Dense(2)], name="unbuilt"))


def test_missing_keras_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(ImportError, match=r'keras = \["keras>=3", "h5py"\]'):
        import_keras()


def test_other_backend_is_named(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ImportError, match=r"'jax' backend.*KERAS_BACKEND=torch"):
        import_keras()


def test_config_naming_another_module_is_not_imported(tmp_path, monkeypatch):
    """safe_mode builds keras's own classes only: a class of another module is not imported."""
    (tmp_path / "keras_tripmod.py").write_text("raise SystemExit('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    keras.Sequential([keras.Input((3,)), layers.Dense(2)]).save(tmp_path / "ok.keras")
    with zipfile.ZipFile(tmp_path / "ok.keras") as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(entries["config.json"])
    config["config"]["layers"][1].update(module="keras_tripmod", class_name="Trip")
    entries["config.json"] = json.dumps(config).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match=r"keras cannot load bad\.keras"):
        load_model(buffer.getvalue(), "bad.keras")
    assert "keras_tripmod" not in sys.modules


def test_lime_and_shap_explain_a_keras_model_from_its_predictions_in_its_layout():
    from attribution import LIME, SHAP

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6, 6, 2)), keras.layers.Conv2D(3, 3, activation="relu"),
        keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax"),
    ])  # fmt: skip
    images = np.random.default_rng(0).normal(size=(3, 6, 6, 2)).astype("float32")
    reference = np.zeros((1, 6, 6, 2), dtype="float32")
    result = SHAP(model, images, reference, channels_first=False, patch_size=3, nsim=2,
                  adjust=True, seed=0)  # fmt: skip
    np.testing.assert_allclose(result.preds[0].numpy(), model.predict(images, verbose=0),
                               rtol=1e-5)  # fmt: skip
    assert result.get_result().shape == (3, 6, 6, 2, 2)  # the data's layout, channels last
    np.testing.assert_allclose(result.get_result().sum((1, 2, 3)) / 9 / 2,
                               result.decomp_goal[0].numpy(), rtol=1e-4, atol=1e-6)  # fmt: skip
    lime = LIME(model, images, images, channels_first=False, n_permutations=100, seed=0)
    assert lime._other_fields["output_type"] == "classification"


def test_mobilenet_activations_convert_and_match_keras(tmp_path):
    """MobileNetV2's ReLU(max_value=6) and MobileNetV3's hard sigmoid / hard swish."""
    model = _randomize(keras.Sequential([
        keras.Input((6, 6, 2)), layers.Conv2D(4, 3, activation="relu6"), layers.ReLU(6.0),
        layers.Conv2D(4, 1, activation="hard_swish"), layers.Activation("hard_sigmoid"),
        layers.Flatten(), layers.Dense(3, activation="mish"),
    ]))  # fmt: skip
    path = tmp_path / "mobile.keras"
    model.save(path)
    converter = Converter(path)
    data = _data([(6, 6, 2)])
    np.testing.assert_allclose(
        _converted_output(converter, data), _keras_output(model, data), atol=ATOL
    )
    names = [getattr(n.layer.activation, "name", None) for n in converter.model.nodes]
    assert {"relu6", "hardswish", "hardsigmoid", "mish"} <= set(names)
