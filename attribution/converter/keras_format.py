"""Keras 3 models (``.keras``, ``.h5``, a ``keras.Model``) as innsight's named-list spec.

Keras is an optional extra (``keras = ["keras>=3", "h5py"]``) and runs on its torch backend
(``KERAS_BACKEND=torch``, set here before keras is first imported), so TensorFlow is not
needed. A Sequential or functional model is walked through its graph of layer calls
(each call of a shared layer becomes a layer of its own) and mapped to the spec: Dense,
Conv1D/Conv2D (valid, same, causal), Max/AveragePooling1D/2D, BatchNormalization,
Flatten, GlobalAverage/MaxPooling1D/2D, ZeroPadding1D/2D, Concatenate, Add, activations
(in layers or standalone, where a standalone one after a linear Dense or Conv is fused
into it as innsight does) and skipped layers (Dropout, noise, Identity).

Keras data is channels last, the spec channels first: ``input_dim`` and the weights are
moved to channels first, and a Flatten keeps Keras's channels-last order (stored with the
model as ``"channels_last": True``). Call the methods with ``channels_first=False`` on
channels-last data.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from attribution.converter.files import (
    ModelFormat,
    ModelObjectKind,
    open_zip,
    register_model_format,
    register_model_object,
)

MAX_FILE_BYTES = 512 * 2**20
"""The largest Keras file read (bytes)."""
_MAX_EXPANSION = 20
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

_SKIPPED = {
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianDropout", "GaussianNoise",
    "AlphaDropout", "ActivityRegularization", "Identity",
}  # fmt: skip
_ACTIVATIONS = {
    "linear": "linear", "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh",
    "softmax": "softmax", "elu": "elu", "softplus": "softplus", "gelu": "gelu",
    "silu": "silu", "swish": "silu",
}  # fmt: skip
_SUPPORTED = (
    "InputLayer, Dense, Conv1D, Conv2D, MaxPooling1D/2D, AveragePooling1D/2D, "
    "BatchNormalization, Flatten, GlobalAveragePooling1D/2D, GlobalMaxPooling1D/2D, "
    "ZeroPadding1D/2D, Concatenate, Add, Activation, ReLU, ELU, Softmax, "
    + ", ".join(sorted(_SKIPPED))
)
_EXTRA = 'Install the optional extra keras = ["keras>=3", "h5py"] (pip install keras h5py).'


def import_keras() -> Any:
    """Import keras on its torch backend.

    Raises
    ------
    ImportError
        Keras is not installed, or it was imported before with another backend.
    """
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as error:
        raise ImportError(f"Reading Keras models needs keras 3: {error}. {_EXTRA}") from None
    backend = keras.backend.backend()
    if backend != "torch":
        raise ImportError(
            f"keras was imported with the {backend!r} backend; Keras models are read with the "
            "torch backend: set the environment variable KERAS_BACKEND=torch before keras is "
            "first imported (or restart Python)."
        )
    return keras


# --- keras.Model -> spec ----------------------------------------------------------------------


def keras_spec(model: Any) -> dict:
    """innsight's named-list spec of a built Keras Sequential or functional model.

    Parameters
    ----------
    model : keras.Model
        Built (it has inputs of known shape), channels-last layers.

    Returns
    -------
    dict
        ``input_dim`` channels first; one ``Skipping`` layer per model input, then the
        layers in the order they are called.

    Raises
    ------
    ValueError
        A layer or option is not supported (the message names the layer and says what is),
        or the model is not built.
    """
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"The Keras model {model.name!r} is not built ({error}): give it an Input "
            "(keras.Input(shape=...)) or call model.build(input_shape) first."
        ) from None
    graph = _Graph(inputs)
    output_refs = [graph.tensor(t) for t in outputs]
    entries, refs = _fuse_activations(graph.entries, output_refs)
    numbers = {index: number for number, index in enumerate(sorted(entries), start=1)}
    layers = []
    for index in sorted(entries):
        layer = dict(entries[index]["spec"])
        sources = entries[index]["inputs"]
        layer["input_layers"] = [numbers[s] for s in sources] if sources else [0]
        readers = [numbers[i] for i in sorted(entries) if index in entries[i]["inputs"]]
        layer["output_layers"] = readers + ([-1] if index in refs else [])
        layers.append(layer)
    if any(numbers[ref] <= len(inputs) for ref in refs):
        raise ValueError(
            f"An output of the Keras model {model.name!r} is one of its inputs (passed "
            "through); every output must be computed by a layer."
        )
    return {
        "input_dim": [_channels_first(graph.shape(t), "the model input") for t in inputs],
        "input_nodes": list(range(1, len(inputs) + 1)),
        "output_nodes": [numbers[ref] for ref in refs],
        "layers": layers,
    }


class _Graph:
    """The layer calls reached from the outputs, as spec entries in call order."""

    def __init__(self, inputs: list) -> None:
        self.entries: dict[int, dict] = {}
        self.refs: dict[int, int] = {}
        for tensor in inputs:
            self.refs[id(tensor)] = self._add({"type": "Skipping"}, [])

    def _add(self, spec: dict, inputs: list[int]) -> int:
        index = len(self.entries)
        self.entries[index] = {"spec": spec, "inputs": inputs}
        return index

    @staticmethod
    def shape(tensor: Any) -> tuple:
        return tuple(tensor.shape[1:])

    def tensor(self, tensor: Any) -> int:
        """The entry computing ``tensor`` (converting its layer call first)."""
        if id(tensor) in self.refs:
            return self.refs[id(tensor)]
        layer, node_index, _ = tensor._keras_history
        name = type(layer).__name__
        if name == "InputLayer":
            raise ValueError(
                f"The Keras input {layer.name!r} is not among the model's inputs; only "
                "models whose inputs are all given are supported."
            )
        if hasattr(layer, "layers") and hasattr(layer, "inputs"):
            raise ValueError(
                f"The Keras layer {layer.name!r} is a nested model ({name}); build the model "
                "with its layers directly instead of nesting models."
            )
        node = layer._inbound_nodes[node_index]
        sources = [self.tensor(t) for t in node.input_tensors]
        shapes = [self.shape(t) for t in node.input_tensors]
        if name in _SKIPPED or (name == "Flatten" and len(shapes[0]) == 1):
            ref = sources[0]
        else:
            try:
                spec = _layer_spec(layer, name, shapes)
            except ValueError as error:
                raise ValueError(f"Keras layer {layer.name!r} ({name}): {error}") from None
            ref = self._add(spec, sources)
        self.refs[id(tensor)] = ref
        return ref


def _fuse_activations(entries: dict[int, dict], outputs: list[int]):
    """Fuse a standalone activation into the linear Dense/Conv it alone reads."""
    readers: dict[int, int] = {}
    for entry in entries.values():
        for source in entry["inputs"]:
            readers[source] = readers.get(source, 0) + 1
    alias: dict[int, int] = {}
    for index, entry in entries.items():
        if entry["spec"]["type"] != "Activation":
            continue
        source = alias.get(entry["inputs"][0], entry["inputs"][0])
        target = entries[source]["spec"]
        if (
            target["type"] in ("Dense", "Conv1D", "Conv2D")
            and target["activation_name"] == "linear"
            and readers[source] == 1
            and source not in outputs
        ):
            target["activation_name"] = entry["spec"]["act_name"]
            alias[index] = source
    kept = {}
    for index, entry in entries.items():
        if index not in alias:
            kept[index] = {**entry, "inputs": [alias.get(s, s) for s in entry["inputs"]]}
    return kept, [alias.get(ref, ref) for ref in outputs]


def _channels_first(shape: tuple, what: str) -> list[int]:
    if any(size is None for size in shape):
        raise ValueError(
            f"{what} has shape {shape} with unknown sizes; build the model with fixed sizes "
            "(keras.Input(shape=(...))) except the batch axis."
        )
    return [int(v) for v in (shape if len(shape) == 1 else (shape[-1], *shape[:-1]))]


def _numpy(variable: Any) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)


def _activation(config: dict, in_rank: int) -> str:
    """The innsight name of a layer's ``activation``."""
    name = config.get("activation", "linear")
    if not isinstance(name, str) or name not in _ACTIVATIONS:
        raise ValueError(
            f"the activation {name!r} is not supported; use one of "
            f"{', '.join(sorted(_ACTIVATIONS))} (leaky_relu is not: Keras's slope 0.2 "
            "differs from innsight's fixed 0.01)."
        )
    if name == "softmax" and in_rank > 1:
        raise ValueError(
            "softmax over the channels of a signal or image is not supported; apply it after "
            "Flatten or global pooling."
        )
    return _ACTIVATIONS[name]


def _channels_last(config: dict) -> None:
    if config.get("data_format", "channels_last") != "channels_last":
        raise ValueError(
            f"data_format is {config['data_format']!r}; only 'channels_last' (Keras's "
            "default) is supported."
        )


def _same_padding(sizes, kernel, strides, dilation) -> list[int]:
    """TensorFlow's 'same' padding, in ``F.pad`` order (last spatial axis first)."""
    padding: list[int] = []
    for n, k, s, d in reversed(list(zip(sizes, kernel, strides, dilation, strict=True))):
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        padding += [total // 2, total - total // 2]
    return padding


def _layer_spec(layer: Any, name: str, shapes: list[tuple]) -> dict:
    config = layer.get_config()
    rank = len(shapes[0])
    if name == "Dense":
        if rank != 1:
            raise ValueError(f"Dense on inputs of shape {shapes[0]} (not flat) is not supported.")
        bias = _numpy(layer.bias) if layer.use_bias else np.zeros(config["units"])
        return {
            "type": "Dense",
            "weight": _numpy(layer.kernel).T,
            "bias": bias,
            "activation_name": _activation(config, 1),
        }
    if name in ("Conv1D", "Conv2D"):
        return _conv_spec(layer, name, config, shapes[0])
    if name in ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D"):
        _channels_last(config)
        if config["padding"] != "valid":
            raise ValueError("padding='same' is not supported for pooling; use 'valid'.")
        return {
            "type": name,
            "kernel_size": list(config["pool_size"]),
            "strides": list(config["strides"] or config["pool_size"]),
        }
    if name in ("GlobalAveragePooling1D", "GlobalAveragePooling2D"):
        return _global_pooling(config, "average")
    if name in ("GlobalMaxPooling1D", "GlobalMaxPooling2D"):
        return _global_pooling(config, "max")
    if name == "BatchNormalization":
        return _batch_norm_spec(layer, config, rank)
    if name == "Flatten":
        _channels_last(config)
        return {"type": "Flatten", "channels_last": True}
    if name in ("ZeroPadding1D", "ZeroPadding2D"):
        _channels_last(config)
        pairs = [config["padding"]] if name == "ZeroPadding1D" else config["padding"]
        return {"type": "Padding", "padding": [int(p) for pair in pairs[::-1] for p in pair]}
    if name == "Concatenate":
        axis = config["axis"] - 1 if config["axis"] > 0 else rank + config["axis"]
        channels_first = 0 if axis == rank - 1 else axis + 1  # channels move to the front
        return {"type": "Concatenate", "axis": channels_first + 2}
    if name == "Add":
        if len({tuple(shape) for shape in shapes}) != 1:
            raise ValueError(f"Add of shapes {shapes} (broadcasting) is not supported.")
        return {"type": "Add"}
    return _activation_spec(name, config, rank)


def _conv_spec(layer: Any, name: str, config: dict, shape: tuple) -> dict:
    _channels_last(config)
    if config.get("groups", 1) != 1:
        raise ValueError(f"groups={config['groups']} is not supported; only groups=1.")
    n = int(name[-2])
    kernel = _numpy(layer.kernel)  # (*kernel_size, in, out)
    weight = np.transpose(kernel, (n + 1, n, *range(n)))
    padding = config["padding"]
    if padding == "valid":
        pad = [0] * (2 * n)
    elif padding == "same":
        pad = _same_padding(shape[:-1], config["kernel_size"], config["strides"],
                            config["dilation_rate"])  # fmt: skip
    else:  # causal (Conv1D): everything on the left
        pad = [(config["kernel_size"][0] - 1) * config["dilation_rate"][0], 0]
    bias = _numpy(layer.bias) if layer.use_bias else np.zeros(config["filters"])
    return {
        "type": name,
        "weight": weight,
        "bias": bias,
        "activation_name": _activation(config, len(shape)),
        "stride": list(config["strides"]),
        "padding": pad,
        "dilation": list(config["dilation_rate"]),
    }


def _global_pooling(config: dict, method: str) -> dict:
    _channels_last(config)
    if config.get("keepdims"):
        raise ValueError("keepdims=True is not supported; use keepdims=False.")
    return {"type": "GlobalPooling", "method": method}


def _batch_norm_spec(layer: Any, config: dict, rank: int) -> dict:
    axis = config["axis"]
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if axis not in (-1, rank):
        raise ValueError(
            f"axis={config['axis']} is not supported; only the channel (last) axis, -1."
        )
    mean = _numpy(layer.moving_mean)
    spec = {
        "type": "BatchNorm",
        "num_features": len(mean),
        "eps": float(config["epsilon"]),
        "run_mean": mean,
        "run_var": _numpy(layer.moving_variance),
        "beta": _numpy(layer.beta) if layer.center else np.zeros(len(mean)),
    }
    if layer.scale:
        spec["gamma"] = _numpy(layer.gamma)
    return spec


def _activation_spec(name: str, config: dict, rank: int) -> dict:
    if name == "Activation":
        act = _activation(config, rank)
    elif name == "ReLU" and not config.get("max_value") and not config.get("negative_slope") \
            and not config.get("threshold"):  # fmt: skip
        act = "relu"
    elif name == "ELU" and config.get("alpha", 1.0) == 1.0:
        act = "elu"
    elif name == "Softmax" and rank == 1 and config.get("axis", -1) in (-1, 1, [-1]):
        act = "softmax"
    elif name in ("ReLU", "ELU", "Softmax"):
        raise ValueError(
            f"the options {config} are not supported; only {name}() with its defaults "
            "(Softmax on flat inputs)."
        )
    else:
        raise ValueError(f"this layer type is not supported; supported: {_SUPPORTED}.")
    return {"type": "Activation", "act_name": act}


# --- files ------------------------------------------------------------------------------------


def read_keras(data: bytes, name: str) -> dict:
    """The spec of a ``.keras`` archive or an ``.h5`` file written by Keras.

    The file is loaded with ``keras.saving.load_model(path, compile=False,
    safe_mode=True)``: safe mode refuses to deserialise Python code (``Lambda`` layers,
    functions saved by bytecode), and nothing is unpickled. What remains trusted is
    keras's own parsing of the config (JSON) and of the weights (HDF5 via h5py): layers
    named in the config are built from keras's registered classes, so a file naming a
    custom class fails to load. Files larger than :data:`MAX_FILE_BYTES` are refused.

    Raises
    ------
    ValueError
        The file is too large, damaged, not a Keras model, holds code (refused by safe
        mode) or a layer that does not convert.
    ImportError
        Keras is not installed (see :func:`import_keras`).
    """
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(
            f"{name} has {len(data)} bytes, more than the {MAX_FILE_BYTES} read for a Keras "
            "model; it is refused."
        )
    suffix = os.path.splitext(name)[1].lower() or ".keras"
    if suffix == ".keras":
        open_zip(data, name, ".keras archive (a zip written by model.save)")
    elif not data.startswith(_HDF5_SIGNATURE):
        raise ValueError(
            f"{name} is not an HDF5 file (written by model.save('model.h5')): it lacks the "
            "HDF5 signature. Check that the file is complete and has the right suffix."
        )
    keras = import_keras()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model" + suffix)
        with open(path, "wb") as file:
            file.write(data)
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as error:
            reason = str(error).split("\n")[0]
            if "safe_mode" in str(error) or "unsafe" in str(error).lower():
                raise ValueError(
                    f"{name} holds Python code (e.g. a Lambda layer), which is refused: "
                    f"loading it could run any code ({reason}). Replace the Lambda by "
                    "built-in layers and save the model again."
                ) from None
            raise ValueError(
                f"keras cannot load {name}: {reason}. Check that it is a complete model "
                "saved with model.save('model.keras') or model.save('model.h5')."
            ) from None
    return keras_spec(model)


def _is_keras_model(obj: Any) -> bool:
    return type(obj).__module__.startswith("keras") and hasattr(obj, "layers")


def _adapt(model: Any) -> dict:
    import_keras()
    return keras_spec(model)


register_model_object(ModelObjectKind("Keras model", _is_keras_model, _adapt))
register_model_format(ModelFormat("Keras model", (".keras", ".h5"), read_keras))
