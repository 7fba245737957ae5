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

import json
import math
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from attribution.converter.files import (
    ModelFormat,
    ModelObjectKind,
    open_zip,
    register_model_format,
    register_model_object,
)
from attribution.errors import MissingDependencyError

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
    "silu": "silu", "swish": "silu", "relu6": "relu6", "hard_sigmoid": "hardsigmoid",
    "hard_silu": "hardswish", "hard_swish": "hardswish", "mish": "mish",
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
    MissingDependencyError
        Keras is not installed, or it was imported before with another backend.
    """
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as error:
        raise MissingDependencyError(
            f"Reading Keras models needs keras 3: {error}. {_EXTRA}"
        ) from None
    backend = keras.backend.backend()
    if backend != "torch":
        raise MissingDependencyError(
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
    elif name == "ReLU" and not config.get("negative_slope") and not config.get("threshold") \
            and config.get("max_value") in (None, 6, 6.0):  # fmt: skip
        act = "relu" if config.get("max_value") is None else "relu6"  # MobileNetV2's ReLU(6)
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


# --- sizes, read from the config before keras builds anything ---------------------------------

WEIGHTS_SLACK = 4096
"""How many more weights a config may declare than its weights file stores values (a file
keras wrote declares none more: every variable is stored)."""
_FILL_SLACK = 4096
"""How many bytes beyond twice those it stores an HDF5 dataset may declare (keras stores
every byte: fill values and compression are what a forged file would use)."""
_WEIGHTS_H5 = "model.weights.h5"
_MODELS = ("Sequential", "Functional", "Model")
_RESAVE = "Save the model again with model.save('model.keras') or model.save('model.h5')."


class _BadConfig(ValueError):
    """A config keras could not load either; the message says what is wrong in it."""


def _known(size: int | None) -> int:
    return 1 if size is None else size


def _shown(shape: tuple) -> str:
    return f"(batch, {', '.join('?' if s is None else str(s) for s in shape)})"


def _int(config: dict, key: str, default: Any = None) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _BadConfig(f"{key} is {value!r}, not a size")
    return value


def _ints(config: dict, key: str, n: int, default: Any = None) -> tuple[int, ...]:
    value = config.get(key, default)
    values = (value,) * n if isinstance(value, int) else value
    if not isinstance(values, (list, tuple)) or len(values) != n:
        raise _BadConfig(f"{key} is {value!r}, not {n} sizes")
    return tuple(_int({key: v}, key) for v in values)


def _batch_shape(value: Any, what: str) -> tuple:
    """A shape with the batch axis as in a config, without the batch axis."""
    valid = isinstance(value, (list, tuple)) and len(value) >= 1
    if not valid or any(s is not None and not isinstance(s, int) for s in value):
        raise _BadConfig(f"{what} is {value!r}, not a shape")
    if any(isinstance(s, bool) or (s is not None and s < 0) for s in value):
        raise _BadConfig(f"{what} is {value!r}, not a shape")
    return tuple(value[1:])


def _one(shapes: list[tuple], rank: int | None = None) -> tuple:
    if len(shapes) != 1 or (rank is not None and len(shapes[0]) != rank) or not shapes[0]:
        got = ", ".join(_shown(s) for s in shapes)
        raise _BadConfig(f"it is called on {got}, not on one input of rank {rank or 'one or more'}")
    return shapes[0]


def _length(size: int | None, kernel: int, stride: int, dilation: int, padding: Any):
    """The length of an axis after a convolution or pooling window."""
    if stride < 1:
        raise _BadConfig(f"a stride of {stride}")
    if size is None:
        return None
    if padding in ("same", "causal"):
        return -(-size // stride)
    if padding != "valid":
        raise _BadConfig(f"padding is {padding!r}")
    return max(size - dilation * (kernel - 1) - 1, -1) // stride + 1


def _size_dense(config: dict, shapes: list[tuple]) -> tuple[tuple, int]:
    shape = _one(shapes)
    units = _int(config, "units")
    return (*shape[:-1], units), units * (_known(shape[-1]) + bool(config.get("use_bias", True)))


def _size_conv(config: dict, shapes: list[tuple], n: int) -> tuple[tuple, int]:
    _channels_last(config)
    if config.get("groups", 1) != 1:
        raise ValueError(f"groups={config['groups']} is not supported; only groups=1.")
    shape = _one(shapes, n + 1)
    filters = _int(config, "filters")
    kernel = _ints(config, "kernel_size", n)
    strides, dilation = _ints(config, "strides", n, 1), _ints(config, "dilation_rate", n, 1)
    padding = config.get("padding", "valid")
    sizes = zip(shape[:-1], kernel, strides, dilation, strict=True)
    out = tuple(_length(size, k, s, d, padding) for size, k, s, d in sizes)
    weights = math.prod(kernel) * _known(shape[-1]) * filters
    return (*out, filters), weights + filters * bool(config.get("use_bias", True))


def _size_pooling(config: dict, shapes: list[tuple], n: int) -> tuple[tuple, int]:
    _channels_last(config)
    shape = _one(shapes, n + 1)
    pool = _ints(config, "pool_size", n)
    strides = _ints(config, "strides", n) if config.get("strides") is not None else pool
    padding = config.get("padding", "valid")
    sizes = zip(shape[:-1], pool, strides, strict=True)
    return (*(_length(size, p, s, 1, padding) for size, p, s in sizes), shape[-1]), 0


def _size_global_pooling(config: dict, shapes: list[tuple], n: int) -> tuple[tuple, int]:
    _channels_last(config)
    shape = _one(shapes, n + 1)
    return ((1,) * n if config.get("keepdims") else ()) + shape[-1:], 0


def _size_batch_norm(config: dict, shapes: list[tuple]) -> tuple[tuple, int]:
    shape = _one(shapes)
    axes = config.get("axis", -1)
    axes = axes if isinstance(axes, (list, tuple)) else [axes]
    features = 1
    for axis in axes:
        if (
            isinstance(axis, bool)
            or not isinstance(axis, int)
            or not -len(shape) <= axis <= len(shape)
            or axis == 0
        ):
            raise _BadConfig(f"axis {axis!r} is not an axis of {_shown(shape)}")
        features *= _known(shape[axis - 1 if axis > 0 else axis])
    kept = 2 + bool(config.get("center", True)) + bool(config.get("scale", True))
    return shape, kept * features


def _size_flatten(config: dict, shapes: list[tuple]) -> tuple[tuple, int]:
    _channels_last(config)
    shape = _one(shapes)
    return (None if None in shape else math.prod(shape),), 0


def _size_padding(config: dict, shapes: list[tuple], n: int) -> tuple[tuple, int]:
    _channels_last(config)
    shape = _one(shapes, n + 1)
    padding = config.get("padding", 1)
    if isinstance(padding, int) or n == 1:
        pairs = [_ints({"padding": padding}, "padding", 2)] * n
    elif isinstance(padding, (list, tuple)) and len(padding) == n:
        pairs = [_ints({"padding": p}, "padding", 2) for p in padding]
    else:
        raise _BadConfig(f"padding is {padding!r}")
    out = tuple(None if s is None else s + sum(p) for s, p in zip(shape, pairs, strict=False))
    return (*out, shape[-1]), 0


def _size_concatenate(config: dict, shapes: list[tuple]) -> tuple[tuple, int]:
    rank = len(shapes[0]) if shapes else 0
    axis = config.get("axis", -1)
    if not shapes or any(len(s) != rank for s in shapes) or not isinstance(axis, int):
        raise _BadConfig(f"it concatenates {shapes} along axis {axis!r}")
    axis = axis - 1 if axis > 0 else rank + axis
    if not 0 <= axis < rank:
        raise _BadConfig(f"axis {config['axis']} is not an axis of {_shown(shapes[0])}")
    sizes = [s[axis] for s in shapes]
    out = list(shapes[0])
    out[axis] = None if None in sizes else sum(sizes)
    return tuple(out), 0


def _size_add(config: dict, shapes: list[tuple]) -> tuple[tuple, int]:
    if not shapes:
        raise _BadConfig("it adds no inputs")
    return max(shapes, key=lambda s: math.prod(map(_known, s))), 0


def _size_same(config: dict, shapes: list[tuple]) -> tuple[tuple, int]:
    return _one(shapes), 0


_SIZES: dict[str, Callable[[dict, list[tuple]], tuple[tuple, int]]] = {
    "Dense": _size_dense,
    "Conv1D": partial(_size_conv, n=1),
    "Conv2D": partial(_size_conv, n=2),
    "MaxPooling1D": partial(_size_pooling, n=1),
    "MaxPooling2D": partial(_size_pooling, n=2),
    "AveragePooling1D": partial(_size_pooling, n=1),
    "AveragePooling2D": partial(_size_pooling, n=2),
    "GlobalAveragePooling1D": partial(_size_global_pooling, n=1),
    "GlobalAveragePooling2D": partial(_size_global_pooling, n=2),
    "GlobalMaxPooling1D": partial(_size_global_pooling, n=1),
    "GlobalMaxPooling2D": partial(_size_global_pooling, n=2),
    "BatchNormalization": _size_batch_norm,
    "Flatten": _size_flatten,
    "ZeroPadding1D": partial(_size_padding, n=1),
    "ZeroPadding2D": partial(_size_padding, n=2),
    "Concatenate": _size_concatenate,
    "Add": _size_add,
    **dict.fromkeys(("Activation", "ReLU", "ELU", "Softmax", *_SKIPPED), _size_same),
}
"""Per layer type: its output shape and number of weights from its config and input shapes
(without the batch axis): what keras will build, computed without building it."""


def _entry_name(entry: dict) -> str:
    config = entry.get("config")
    name = entry.get("name") or (config.get("name") if isinstance(config, dict) else None)
    return name if isinstance(name, str) else str(entry.get("class_name"))


def _check_kind(entry: Any, name: str) -> None:
    """Refuse, before keras builds it, a layer that would not convert (or not load)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
        raise _BadConfig(f"a layer is {str(entry)[:80]!r}, not a layer's config")
    kind, layer = entry.get("class_name"), _entry_name(entry)
    module, registered = entry.get("module"), entry.get("registered_name")
    if kind in ("Lambda", "__lambda__"):
        raise ValueError(
            f"{name} holds Python code (e.g. a Lambda layer), which is refused: loading it "
            f"could run any code (the layer {layer!r} is a {kind}). Replace the Lambda by "
            "built-in layers and save the model again."
        )
    custom = isinstance(module, str) and module.split(".")[0] != "keras"
    if not isinstance(kind, str) or custom or (isinstance(registered, str) and ">" in registered):
        raise _BadConfig(
            f"the layer {layer!r} is of the class {kind!r} of {module or registered!r}, not "
            "one of keras's layers (classes of other modules are not imported)"
        )
    if kind in _MODELS:
        raise ValueError(
            f"The Keras layer {layer!r} of {name} is a nested model ({kind}); build the model "
            "with its layers directly instead of nesting models."
        )
    if kind != "InputLayer" and kind not in _SIZES:
        raise ValueError(
            f"{name}: Keras layer {layer!r} ({kind}): this layer type is not supported; "
            f"supported: {_SUPPORTED}."
        )


class _Sizer:
    """Walks a model's config, checking every shape and counting the weights keras builds."""

    def __init__(self, name: str, max_instance_values: int | None) -> None:
        self.name, self.limit = name, max_instance_values
        self.weights: dict[str, tuple[int, str]] = {}  # layer -> (weights, type)

    def _check_values(self, shape: tuple, what: str) -> None:
        values = math.prod(map(_known, shape))
        if self.limit is not None and values > self.limit:
            raise ValueError(
                f"{self.name}: {what} {_shown(shape)}: {values} values per instance, more than "
                f"the {self.limit} allowed (max_instance_values; start the dashboard with a "
                "higher --max-instance-values if the machine has the memory); it is refused "
                "before keras builds the model. Check the layer's sizes and the model's input "
                "shape."
            )

    def input(self, entry: dict) -> tuple:
        config = entry.get("config", {})
        key = "batch_shape" if "batch_shape" in config else "batch_input_shape"
        shape = _batch_shape(config.get(key), f"the input {_entry_name(entry)!r}'s {key}")
        self._check_values(shape, f"the Keras input {_entry_name(entry)!r} has shape")
        return shape

    def layer(self, entry: dict, inputs: list[tuple] | None) -> tuple | None:
        """Size one call of a layer on ``inputs`` (None: unknown), and its ``build_config``
        (keras builds a layer from it when it is loaded); the call's output shape."""
        kind, layer = entry["class_name"], _entry_name(entry)
        what = f"the Keras layer {layer!r} ({kind})"
        built = entry.get("build_config")
        declared = built.get("input_shape") if isinstance(built, dict) else None
        counts, out = [self.weights.get(layer, (0, kind))[0]], None
        try:
            if declared is not None:
                nested = isinstance(declared, (list, tuple)) and declared
                nested = nested and all(isinstance(s, (list, tuple)) for s in declared)
                shapes = [_batch_shape(s, "its build input shape")
                          for s in (declared if nested else [declared])]  # fmt: skip
                for shape in shapes:
                    self._check_values(shape, f"{what} declares the build input shape")
                shape, count = _SIZES[kind](entry.get("config", {}), shapes)
                counts.append(count)
            if inputs is not None:
                out, count = _SIZES[kind](entry.get("config", {}), inputs)
                counts.append(count)
        except _BadConfig as error:
            raise _BadConfig(f"the layer {layer!r} ({kind}): {error}") from None
        except ValueError as error:
            if str(error).startswith(self.name):
                raise
            raise ValueError(f"{self.name}: Keras layer {layer!r} ({kind}): {error}") from None
        self.weights[layer] = (max(counts), kind)
        if out is not None:
            self._check_values(out, f"{what} computes")
        return out

    def sequential(self, body: dict, model: dict, layers: list[dict]) -> None:
        starts = []
        if layers and layers[0]["class_name"] == "InputLayer":
            starts.append(self.input(layers[0]))
            layers = layers[1:]
        elif layers and {"batch_shape", "batch_input_shape"} & set(layers[0].get("config", {})):
            starts.append(self.input(layers[0]))  # Keras 2: the first layer names the input
        built = model.get("build_config")
        built = built.get("input_shape") if isinstance(built, dict) else None
        for declared in (body.get("build_input_shape"), built):
            if declared is not None:
                shape = _batch_shape(declared, "the model's build input shape")
                self._check_values(shape, "the Keras model declares the build input shape")
                starts.append(shape)
        for start in dict.fromkeys(starts) or [None]:
            shape = start
            for entry in layers:
                if entry["class_name"] == "InputLayer":
                    shape = self.input(entry)
                else:
                    shape = self.layer(entry, None if shape is None else [shape])

    def functional(self, layers: list[dict]) -> None:
        shapes: dict[tuple[str, int], tuple] = {}
        calls: dict[tuple[str, int], tuple[dict, list[tuple[str, int]]]] = {}
        for entry in layers:
            layer, nodes = _entry_name(entry), entry.get("inbound_nodes") or []
            if layer in self.weights or (layer, 0) in shapes:
                raise _BadConfig(f"two layers are named {layer!r}")
            if entry["class_name"] == "InputLayer":
                shapes[(layer, 0)] = self.input(entry)
                continue
            if not isinstance(nodes, list):
                raise _BadConfig(f"the layer {layer!r} has inbound_nodes {nodes!r}")
            self.layer(entry, None)  # its build_config, even if it is never called
            for index, node in enumerate(nodes):
                calls[(layer, index)] = (entry, _node_inputs(node, layer))
        self._walk(shapes, calls)

    def _walk(self, shapes: dict, calls: dict) -> None:
        """Size the calls in an order where each one's inputs are known (Kahn's)."""
        readers: dict[tuple[str, int], list] = {}
        waiting = {}
        for key, (_, sources) in calls.items():
            for source in sources:
                if source not in shapes and source not in calls:
                    raise _BadConfig(
                        f"the layer {key[0]!r} reads call {source[1]} of {source[0]!r}, "
                        "which the config does not have"
                    )
                readers.setdefault(source, []).append(key)
            waiting[key] = sum(source not in shapes for source in sources)
        ready = [key for key, count in waiting.items() if count == 0]
        while ready:
            key = ready.pop()
            entry, sources = calls[key]
            shapes[key] = self.layer(entry, [shapes[source] for source in sources])
            for reader in readers.get(key, []):
                waiting[reader] -= 1
                if waiting[reader] == 0:
                    ready.append(reader)
        stuck = [key for key in calls if key not in shapes]
        if stuck:
            raise _BadConfig(f"the layer {stuck[0][0]!r} reads its own output (a cycle)")

    def check_weights(self, stored: int) -> None:
        total = sum(count for count, _ in self.weights.values())
        if total > stored + WEIGHTS_SLACK:
            layer, (count, kind) = max(self.weights.items(), key=lambda item: item[1][0])
            raise ValueError(
                f"{self.name}: its config declares layers of {total} weights (the largest, "
                f"the Keras layer {layer!r} ({kind}), has {count}), but the file stores only "
                f"{stored} values of weights. Keras would allocate every weight before "
                f"reading them: the config is damaged or forged, and it is refused. {_RESAVE}"
            )


def _node_inputs(node: Any, layer: str) -> list[tuple[str, int]]:
    """The (layer, call) pairs a call reads: Keras 3 nodes hold ``__keras_tensor__``
    dicts with a ``keras_history``, Keras 2 nodes lists ``[layer, call, tensor, kwargs]``."""
    histories: list[Any] = []
    stack = [node.get("args", []), node.get("kwargs", {})] if isinstance(node, dict) else [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict) and item.get("class_name") == "__keras_tensor__":
            config = item.get("config")
            histories.append(config.get("keras_history") if isinstance(config, dict) else None)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list) and item and isinstance(item[0], str):
            histories.append(item)  # Keras 2
        elif isinstance(item, list):
            stack.extend(reversed(item))
    sources = []
    for history in histories:
        valid = isinstance(history, list) and len(history) >= 3 and isinstance(history[0], str)
        if not valid or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in history[1:3]
        ):
            raise _BadConfig(f"the layer {layer!r} reads {history!r}, not a layer's output")
        if history[2] != 0:
            raise _BadConfig(f"the layer {layer!r} reads output {history[2]} of {history[0]!r}")
        sources.append((history[0], history[1]))
    if not sources:
        raise _BadConfig(f"a call of the layer {layer!r} has no inputs")
    return sources


def check_keras_sizes(
    config: Any, stored_values: int, name: str, max_instance_values: int | None = None
) -> None:
    """Refuse a Keras model config that would make keras allocate too much, before it does.

    Keras builds every layer of a config (allocating its weights) before reading the
    weights, and a few bytes of config can declare billions of them
    (``Dense(units=200_000_000)``). The layers are sized from the config alone: each
    call's output shape and each layer's weights (also for the shape its
    ``build_config`` declares, from which keras builds it).

    Parameters
    ----------
    config : dict
        The model's config (``config.json`` of a ``.keras`` archive, the ``model_config``
        of an ``.h5`` file), parsed.
    stored_values : int
        The values the file stores for weights (the elements of its HDF5 datasets).
    name : str
        The file name, for messages.
    max_instance_values : int, default=None
        The most values one instance may have at an input, a layer's output or a declared
        build shape. None: no bound.

    Raises
    ------
    ValueError
        A layer type that does not convert (or a Lambda, a nested model, a class of
        another module), a malformed config, a shape over ``max_instance_values``, or more
        weights than ``stored_values`` (plus :data:`WEIGHTS_SLACK`).
    """
    sizer = _Sizer(name, max_instance_values)
    try:
        kind = config.get("class_name") if isinstance(config, dict) else None
        body = config.get("config") if isinstance(config, dict) else None
        if (
            kind not in _MODELS
            or not isinstance(body, dict)
            or not isinstance(body.get("layers"), list)
        ):
            raise _BadConfig(
                f"its config is of a {kind!r}, not of a Sequential or functional model"
            )
        for entry in body["layers"]:
            _check_kind(entry, name)
        if kind == "Sequential":
            sizer.sequential(body, config, body["layers"])
        else:
            sizer.functional(body["layers"])
    except _BadConfig as error:
        raise ValueError(f"keras cannot load {name}: {error}. {_RESAVE}") from None
    sizer.check_weights(stored_values)


# --- the file's config and weights, read without building anything ---------------------------


def _import_h5py() -> Any:
    try:
        import h5py
    except ImportError as error:
        raise MissingDependencyError(
            f"Reading Keras models needs h5py: {error}. {_EXTRA}"
        ) from None
    return h5py


def _parse_config(raw: Any, name: str, where: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, TypeError, RecursionError) as error:  # also integers of 4300+ digits
        raise ValueError(
            f"keras cannot load {name}: its {where} is not JSON ({error}). {_RESAVE}"
        ) from None


_H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)
"""What h5py raises on a damaged file."""


def _dataset_problem(file: Any, link_name: str, link: Any) -> tuple[str | None, int]:
    """Why the HDF5 object at ``link_name`` is refused (None: it is not), and its values."""
    h5py = _import_h5py()
    if isinstance(link, h5py.ExternalLink):
        return f"links {link_name!r} to the file {link.filename!r}", 0
    dataset = file.get(link_name) if isinstance(link, h5py.HardLink) else None
    if not isinstance(dataset, h5py.Dataset):
        return None, 0
    if dataset.is_virtual or dataset.external:
        where = "an HDF5 virtual or external dataset"
        return f"keeps the data of {link_name!r} in other files ({where})", 0
    count = math.prod(dataset.shape or ())
    declared, stored = count * dataset.dtype.itemsize, dataset.id.get_storage_size()
    if declared > 2 * stored + _FILL_SLACK:
        return (
            f"declares the weights {link_name!r} of shape {dataset.shape} ({declared} bytes) "
            f"but stores {stored} bytes for them (HDF5 fill values or compression), which "
            "would be allocated in full when read"
        ), 0
    return None, count


def _stored_values(path: str, name: str) -> int:
    """The values an HDF5 file stores in its datasets.

    Refuses a dataset declaring far more bytes than it stores (HDF5 fill values or
    compression: a tiny file could declare gigabytes, which h5py allocates when keras reads
    it), data kept in other files (external storage, virtual datasets, external links: they
    would read files of the server), and files h5py cannot read.
    """
    h5py = _import_h5py()
    values, problems, errors = 0, [], []

    def visit(link_name: str, link: Any) -> bool | None:  # True stops the walk
        nonlocal values
        try:  # an exception raised through h5py's walk would upset its lock
            problem, count = _dataset_problem(file, link_name, link)
        except _H5_ERRORS as error:
            errors.append(error)
            return True
        if problem is not None:
            problems.append(problem)
            return True
        values += count
        return None

    try:
        with h5py.File(path, "r") as file:
            file.visititems_links(visit)
    except _H5_ERRORS as error:
        errors.append(error)
    if errors:
        raise ValueError(
            f"keras cannot load {name}: its weights are not a readable HDF5 file "
            f"({errors[0]}). {_RESAVE}"
        )
    if problems:
        raise ValueError(
            f"{name} {problems[0]}: a model file must hold its weights itself, as stored "
            f"bytes; it is refused. {_RESAVE}"
        )
    return values


def _keras_archive_sizes(archive: zipfile.ZipFile, folder: str, name: str) -> tuple[Any, int]:
    """The config of a ``.keras`` archive and the values its weights file stores."""
    entries = set(archive.namelist())
    if _WEIGHTS_H5 not in entries or "config.json" not in entries:
        npz = "model.weights.npz" in entries
        what = (
            "its weights as model.weights.npz, which is not read"
            if npz
            else (f"no {'config.json' if _WEIGHTS_H5 in entries else _WEIGHTS_H5}")
        )
        raise ValueError(f"keras cannot load {name}: it holds {what}. {_RESAVE}")
    weights = os.path.join(folder, "weights.h5")
    try:
        config = archive.read("config.json")
        with archive.open(_WEIGHTS_H5) as source, open(weights, "wb") as target:
            shutil.copyfileobj(source, target)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
        raise ValueError(f"keras cannot load {name}: it is damaged ({error}). {_RESAVE}") from None
    return _parse_config(config, name, "config.json"), _stored_values(weights, name)


def _h5_sizes(path: str, name: str) -> tuple[Any, int]:
    """The ``model_config`` of an ``.h5`` file and the values it stores."""
    h5py = _import_h5py()
    try:
        with h5py.File(path, "r") as file:
            config = file.attrs.get("model_config")
    except _H5_ERRORS as error:
        raise ValueError(
            f"keras cannot load {name}: it is not a readable HDF5 file ({error}). {_RESAVE}"
        ) from None
    if config is None:
        raise ValueError(
            f"keras cannot load {name}: it has no model_config (weights only, as "
            f"model.save_weights writes?). {_RESAVE}"
        )
    config = config.decode("utf-8", "replace") if isinstance(config, bytes) else config
    return _parse_config(config, name, "model_config"), _stored_values(path, name)


# --- files ------------------------------------------------------------------------------------


def read_keras(data: bytes, name: str, max_instance_values: int | None = None) -> dict:
    """The spec of a ``.keras`` archive or an ``.h5`` file written by Keras.

    The file is loaded with ``keras.saving.load_model(path, compile=False,
    safe_mode=True)``: safe mode refuses to deserialise Python code (``Lambda`` layers,
    functions saved by bytecode), and nothing is unpickled. What remains trusted is
    keras's own parsing of the config (JSON) and of the weights (HDF5 via h5py): layers
    named in the config are built from keras's registered classes, so a file naming a
    custom class fails to load.

    Keras builds every layer (allocating its weights) before anything else sees the model,
    so the config (``config.json``, or the ``.h5``'s ``model_config`` attribute) and the
    HDF5 datasets' declared shapes are read first, building nothing
    (:func:`check_keras_sizes`): files larger than :data:`MAX_FILE_BYTES`, layer types
    that do not convert, layers of more weights than the file stores, datasets declaring
    more bytes than they store, and with ``max_instance_values`` larger shapes are refused.

    Parameters
    ----------
    data : bytes
        The file's content.
    name : str
        The file name, for messages.
    max_instance_values : int, default=None
        The most values one instance may have at an input or at the output of any layer.
        None: no bound (the weights are still bounded by the file).

    Raises
    ------
    ValueError
        The file is too large, damaged, not a Keras model, holds code (refused by safe
        mode), a layer that does not convert, or sizes beyond those bounds.
    MissingDependencyError
        Keras is not installed (see :func:`import_keras`).
    """
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(
            f"{name} has {len(data)} bytes, more than the {MAX_FILE_BYTES} read for a Keras "
            "model; it is refused."
        )
    suffix = os.path.splitext(name)[1].lower() or ".keras"
    if suffix == ".keras":
        archive, _ = open_zip(data, name, ".keras archive (a zip written by model.save)")
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
        if suffix == ".keras":
            config, stored = _keras_archive_sizes(archive, folder, name)
        else:
            config, stored = _h5_sizes(path, name)
        check_keras_sizes(config, stored, name, max_instance_values)
        model = _load(keras, path, name)
    return keras_spec(model)


def _load(keras: Any, path: str, name: str) -> Any:
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
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


def _is_keras_model(obj: Any) -> bool:
    return type(obj).__module__.startswith("keras") and hasattr(obj, "layers")


def _adapt(model: Any) -> dict:
    import_keras()
    return keras_spec(model)


register_model_object(ModelObjectKind("Keras model", _is_keras_model, _adapt))
register_model_format(ModelFormat("Keras model", (".keras", ".h5"), read_keras, bounds_sizes=True))
