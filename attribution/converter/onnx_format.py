"""Reading ONNX models (``.onnx``) as innsight's named-list spec.

The ONNX graph is mapped node by node onto the spec's layer types: ``Gemm`` and
``MatMul`` (+ ``Add`` of a constant bias) become ``Dense``, ``Conv`` ``Conv1D``/``Conv2D``,
``MaxPool``/``AveragePool`` the pooling layers, ``BatchNormalization`` ``BatchNorm``,
``GlobalAveragePool``/``GlobalMaxPool`` ``GlobalPooling``, ``Flatten`` and ``Reshape`` to
``(batch, n)`` ``Flatten``, ``Concat`` ``Concatenate``, ``Add`` of two tensors ``Add``, and
``Relu``/``Sigmoid``/``Tanh``/``Softmax``/``LeakyRelu``/``Elu``/``Softplus`` activations
(fused into a directly preceding dense or convolutional layer, as innsight does).
``Identity`` and ``Dropout`` are skipped; ``Shape``/``Gather``/``Unsqueeze``/``Concat`` of
sizes (``x.view(x.size(0), -1)``) are evaluated as constants. Any other operator raises
:class:`~attribution.errors.UnsupportedLayerError` naming it.

Why not ``onnx2torch``: it imports torchvision, which does not install beside the CPU
torch these machines use, and its modules (``OnnxGemm``...) would each need a converter;
the spec keeps the graph's shapes, so ``Converter(path)`` needs no ``input_dim``.

Safety: the file is parsed as a protobuf (no code runs), its size is bounded, tensors
stored in files next to the model (external data) are refused, and ``onnx.checker``
validates the graph before it is read. Sizes are bounded before the memory they imply:
a tensor may declare no more values than it stores (:func:`check_tensor_data`, before
``numpy_helper.to_array`` reads any), and with ``max_instance_values`` the graph's input
shapes and the shape each layer computes are checked as the graph is read. Operators that
make tensors of computed sizes (``ConstantOfShape``, ``Expand``, ``Tile``, ``Resize``...)
do not convert and are refused before anything runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from attribution.converter.files import ModelFormat, register_model_format
from attribution.converter.spec import check_instance_values
from attribution.errors import MissingDependencyError, UnsupportedLayerError

MAX_ONNX_BYTES = 512 * 2**20
"""The largest ONNX file read (bytes); a model above it is refused."""

_INSTALL_HINT = "Install the ONNX extra: pip install 'innsight-python[onnx]' (or pip install onnx)."
_ACTIVATIONS = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softmax": "softmax",
    "LeakyRelu": "leaky_relu",
    "Elu": "elu",
    "Softplus": "softplus",
}
_FIXED_ATTRIBUTES = {"LeakyRelu": ("alpha", 0.01), "Elu": ("alpha", 1.0)}
_SKIPPED = ("Identity", "Dropout")
_NO_AUTO_PAD = (b"NOTSET", b"VALID")
_LAYER_OPS = (
    "Gemm", "MatMul", "Add", "Conv", "MaxPool", "AveragePool", "BatchNormalization",
    "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape", "Concat", "Constant",
    "Shape", "Gather", "Unsqueeze",
)  # fmt: skip
_BATCH = 0
"""The batch size in shapes computed in the graph (``x.view(x.size(0), -1)``): Reshape reads
0 as "keep this axis", which is what it means at the batch axis."""
SUPPORTED_OPS = sorted([*_LAYER_OPS, *_ACTIVATIONS, *_SKIPPED])
"""The ONNX operators that convert."""
_DATA_FIELDS = (
    "float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data",
)  # fmt: skip
_EXPORT_AGAIN = "Export it again, e.g. with torch.onnx.export(model, x, 'model.onnx')."


def _import_onnx() -> Any:
    try:
        import onnx
        import onnx.checker
        import onnx.numpy_helper
    except ImportError:
        raise MissingDependencyError(
            f"Reading .onnx files needs the package onnx. {_INSTALL_HINT}"
        ) from None
    return onnx


def read_onnx(data: bytes, name: str, max_instance_values: int | None = None) -> dict:
    """innsight's spec of the ONNX model in ``data``.

    Parameters
    ----------
    data : bytes
        The ``.onnx`` file's content.
    name : str
        The file name, for messages.
    max_instance_values : int, default=None
        The most values one instance may have at a graph input or at the output of any
        layer, checked as the graph is read. None: no bound (tensors are still bounded by
        the bytes the file stores for them).

    Returns
    -------
    dict
        innsight's named-list spec (``input_dim``, ``input_nodes``, ``output_nodes``,
        ``layers``).

    Raises
    ------
    ValueError
        The file is too large, not an ONNX model, refers to external data, declares a
        tensor larger than it stores, fails ``onnx.checker``, has shapes the spec cannot
        express, or larger than ``max_instance_values``.
    UnsupportedLayerError
        An operator (or an attribute value of one) has no spec layer; the message names it.
    """
    onnx = _import_onnx()
    if len(data) > MAX_ONNX_BYTES:
        raise ValueError(
            f"{name} has {len(data)} bytes, more than the {MAX_ONNX_BYTES} read from an ONNX "
            "file; it is refused. Explain a smaller model, or load it in Python."
        )
    try:
        model = onnx.load_model_from_string(bytes(data))
    except Exception as error:  # protobuf's DecodeError and friends
        raise ValueError(
            f"{name} is not an ONNX model (it does not parse as an ONNX ModelProto: {error}). "
            "Check that the file is complete; write it with torch.onnx.export(model, x, "
            "'model.onnx')."
        ) from None
    tensors = [*model.graph.initializer]
    tensors += [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    tensors += [t for n in model.graph.node for a in n.attribute for t in a.tensors]
    external = [t.name for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise ValueError(
            f"{name} keeps the tensor {external[0]!r} in a separate file (external data), "
            "which is not read. Save the model as one file: onnx.save_model(model, path, "
            "save_as_external_data=False)."
        )
    check_tensor_data(tensors, name)
    try:
        onnx.checker.check_model(model)
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"{name} is not a valid ONNX model (onnx.checker: {reason}). {_EXPORT_AGAIN}"
        ) from None
    return _GraphReader(onnx, model.graph, name, max_instance_values).spec()


def check_tensor_data(tensors: list, name: str) -> None:
    """Refuse a tensor whose ``dims`` declare more values than it stores.

    ``numpy_helper.to_array`` reads a tensor at its declared shape, so a few bytes with
    ``dims`` of billions would be trouble should a check of the data come too late; this
    one needs only the lengths of the stored fields. Up to two values per stored byte or
    entry are allowed (4-bit types pack two per byte).

    Parameters
    ----------
    tensors : list of onnx.TensorProto
        The initializers and the tensors of node attributes.
    name : str
        The file name, for messages.

    Raises
    ------
    ValueError
        A tensor declares more; the message names it, its shape and what it stores.
    """
    for tensor in tensors:
        declared = math.prod(tensor.dims)
        stored = max(len(tensor.raw_data), *(len(getattr(tensor, f)) for f in _DATA_FIELDS))
        if declared > 2 * stored:
            raise ValueError(
                f"{name} declares the tensor {tensor.name!r} of shape {tuple(tensor.dims)} "
                f"({declared} values) but stores {stored} bytes or values for it: the file is "
                f"damaged or forged; it is refused. {_EXPORT_AGAIN}"
            )


class _GraphReader:
    """Maps one ONNX graph onto spec layers, tracking each tensor's per-instance shape."""

    def __init__(self, onnx: Any, graph: Any, name: str, limit: int | None = None) -> None:
        self.onnx, self.graph, self.name, self.limit = onnx, graph, name, limit
        self.constants: dict[str, np.ndarray] = {
            t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer
        }
        self.layers: list[dict] = []
        self.source: dict[str, int] = {}  # tensor name -> spec layer number
        self.produced: dict[int, str] = {}  # spec layer number -> the tensor it writes
        self.shape: dict[str, tuple[int, ...]] = {}
        self.users: dict[str, int] = {}
        for node in graph.node:
            for tensor in node.input:
                self.users[tensor] = self.users.get(tensor, 0) + 1
        self.outputs = {o.name for o in graph.output}

    def spec(self) -> dict:
        input_dim = []
        for value in self.graph.input:
            if value.name in self.constants:
                continue
            dim = self._input_shape(value)
            if self.limit is not None:
                check_instance_values([dim], self.limit, f"Input {value.name!r} of {self.name}")
            input_dim.append(list(dim))
            self.source[value.name] = self._add({"type": "Skipping"}, [0])
            self.shape[value.name] = dim
        input_nodes = list(range(1, len(input_dim) + 1))
        for node in self.graph.node:
            self._convert(node)
        output_nodes = []
        for value in self.graph.output:
            if value.name not in self.source or self.source[value.name] in input_nodes:
                raise ValueError(
                    f"Output {value.name!r} of {self.name} is not computed from the model's "
                    "inputs; only such outputs can be explained."
                )
            if len(self.shape[value.name]) != 1:
                raise ValueError(
                    f"Output {value.name!r} of {self.name} has shape (batch, "
                    f"{', '.join(map(str, self.shape[value.name]))}); outputs must have shape "
                    "(batch, n) as in innsight: flatten them in the model before exporting."
                )
            layer = self.layers[self.source[value.name] - 1]
            layer["output_layers"].append(-1)
            output_nodes.append(self.source[value.name])
        return {
            "input_dim": input_dim,
            "input_nodes": input_nodes,
            "output_nodes": output_nodes,
            "layers": self.layers,
        }

    def _input_shape(self, value: Any) -> tuple[int, ...]:
        tensor_type = value.type.tensor_type
        dims = tensor_type.shape.dim if tensor_type.HasField("shape") else []
        sizes = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if len(sizes) < 2 or any(s is None or s <= 0 for s in sizes[1:]):
            shown = ", ".join("?" if s is None else str(s) for s in sizes)
            raise ValueError(
                f"Input {value.name!r} of {self.name} has shape ({shown}); an input needs a "
                "batch axis first and fixed sizes on every other axis. Export with "
                "dynamic_axes={name: {0: 'batch'}} only."
            )
        return tuple(sizes[1:])

    def _add(self, layer: dict, inputs: list[int]) -> int:
        layer["input_layers"] = inputs
        layer["output_layers"] = []
        self.layers.append(layer)
        number = len(self.layers)
        for source in inputs:
            if source:
                self.layers[source - 1]["output_layers"].append(number)
        return number

    def _unsupported(self, node: Any, why: str) -> UnsupportedLayerError:
        return UnsupportedLayerError(
            f"Cannot convert the ONNX node {node.name or node.output[0]!r} ({node.op_type}) of "
            f"{self.name}: {why}. Supported operators: {', '.join(SUPPORTED_OPS)}. The "
            "gradient family still explains the model as a torch module: rebuild it in "
            "torch and use torch_grad.",
            path=node.name or node.output[0],
            type_name=node.op_type,
        )

    def _attributes(self, node: Any) -> dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def _tensor_input(self, node: Any, tensor: str) -> tuple[int, tuple[int, ...]]:
        if tensor not in self.source:
            raise self._unsupported(
                node,
                f"its input {tensor!r} is a constant, not a tensor "
                "computed from the model's inputs",
            )
        return self.source[tensor], self.shape[tensor]

    def _constant(self, node: Any, tensor: str, what: str) -> np.ndarray:
        if tensor not in self.constants:
            raise self._unsupported(node, f"its {what} {tensor!r} is computed, not a constant")
        return self.constants[tensor].astype(np.float64)

    def _emit(self, node: Any, layer: dict, inputs: list[int], shape: tuple[int, ...]) -> None:
        if self.limit is not None:
            what = f"The output of the ONNX node {node.name or node.output[0]!r} ({node.op_type})"
            check_instance_values([shape], self.limit, f"{what} of {self.name}")
        number = self._add(layer, inputs)
        self.source[node.output[0]] = number
        self.produced[number] = node.output[0]
        self.shape[node.output[0]] = shape

    def _alias(self, node: Any, tensor: str) -> None:
        self.source[node.output[0]] = self.source[tensor]
        self.shape[node.output[0]] = self.shape[tensor]

    def _convert(self, node: Any) -> None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise self._unsupported(node, f"operators of the domain {node.domain!r} are unknown")
        if op == "Constant":
            value = next(iter(self._attributes(node).values()))
            is_tensor = isinstance(value, self.onnx.TensorProto)
            self.constants[node.output[0]] = (
                self.onnx.numpy_helper.to_array(value) if is_tensor else np.asarray(value)
            )
        elif op in ("Shape", "Gather", "Unsqueeze") or (
            op == "Concat" and all(tensor in self.constants for tensor in node.input)
        ):
            self._shape_arithmetic(node)
        elif op in _SKIPPED and node.input[0] in self.constants:  # a shared initializer
            self.constants[node.output[0]] = self.constants[node.input[0]]
        elif op in _SKIPPED:
            self._tensor_input(node, node.input[0])
            self._alias(node, node.input[0])
        elif op in _ACTIVATIONS:
            self._activation(node)
        elif op in ("Gemm", "MatMul"):
            self._dense(node)
        elif op == "Add":
            self._add_node(node)
        elif op == "Conv":
            self._conv(node)
        elif op in ("MaxPool", "AveragePool"):
            self._pool(node)
        elif op == "BatchNormalization":
            self._batch_norm(node)
        elif op in ("GlobalAveragePool", "GlobalMaxPool"):
            source, shape = self._tensor_input(node, node.input[0])
            method = "average" if op == "GlobalAveragePool" else "max"
            self._emit(node, {"type": "GlobalPooling", "method": method}, [source], shape[:1])
        elif op in ("Flatten", "Reshape"):
            self._flatten(node)
        elif op == "Concat":
            self._concat(node)
        else:
            raise self._unsupported(node, f"the operator {op} has no innsight layer")

    def _shape_arithmetic(self, node: Any) -> None:
        """Sizes the exporter computes for ``view``/``reshape``, kept as constants."""
        op, attributes = node.op_type, self._attributes(node)
        if op == "Shape":
            _, shape = self._tensor_input(node, node.input[0])
            start, end = attributes.get("start", 0), attributes.get("end")
            self.constants[node.output[0]] = np.array([_BATCH, *shape], np.int64)[start:end]
            return
        if node.input[0] not in self.constants:
            raise self._unsupported(node, "only sizes (of Shape) can be gathered or unsqueezed")
        values = [self.constants[tensor] for tensor in node.input if tensor]
        if op == "Gather":
            result = np.take(values[0], values[1], axis=attributes.get("axis", 0))
        elif op == "Unsqueeze":
            axes = attributes["axes"] if "axes" in attributes else values[1]
            result = np.expand_dims(values[0], tuple(int(a) for a in np.ravel(axes)))
        else:
            result = np.concatenate(values, axis=attributes["axis"])
        self.constants[node.output[0]] = result

    def _activation(self, node: Any) -> None:
        op, attributes = node.op_type, self._attributes(node)
        source, shape = self._tensor_input(node, node.input[0])
        if op in _FIXED_ATTRIBUTES:
            key, value = _FIXED_ATTRIBUTES[op]
            if not math.isclose(attributes.get(key, value), value, rel_tol=1e-6):
                raise self._unsupported(
                    node, f"{key}={attributes[key]:g} differs from innsight's {value:g}"
                )
        if op == "Softmax" and (len(shape) != 1 or attributes.get("axis", -1) not in (-1, 1)):
            raise self._unsupported(
                node, "only a softmax over the last axis of (batch, n) is supported"
            )
        name = _ACTIVATIONS[op]
        previous = self.layers[source - 1]
        fusable = (
            previous["type"] in ("Dense", "Conv1D", "Conv2D")
            and "activation_name" not in previous
            and self.produced[source] == node.input[0]  # read by this node only
            and self.users.get(node.input[0]) == 1
            and node.input[0] not in self.outputs
        )
        if fusable:
            previous["activation_name"] = name
            self._alias(node, node.input[0])
        else:
            self._emit(node, {"type": "Activation", "act_name": name}, [source], shape)

    def _dense(self, node: Any) -> None:
        attributes = self._attributes(node)
        source, shape = self._tensor_input(node, node.input[0])
        if len(shape) != 1 or attributes.get("transA", 0):
            raise self._unsupported(
                node,
                f"it multiplies a tensor of shape (batch, "
                f"{', '.join(map(str, shape))}); only (batch, n) is supported",
            )
        matrix = self._constant(node, node.input[1], "weight")
        weight = matrix if attributes.get("transB", 0) else matrix.T
        weight = weight * attributes.get("alpha", 1.0)
        if weight.ndim != 2 or weight.shape[1] != shape[0]:
            raise ValueError(
                f"The ONNX node {node.name!r} ({node.op_type}) of {self.name} has a weight of "
                f"shape {matrix.shape} for {shape[0]} inputs; the file is inconsistent."
            )
        layer = {"type": "Dense", "weight": weight}
        if len(node.input) > 2 and node.input[2]:
            bias = self._constant(node, node.input[2], "bias") * attributes.get("beta", 1.0)
            layer["bias"] = _vector(bias, weight.shape[0])
        self._emit(node, layer, [source], (weight.shape[0],))

    def _add_node(self, node: Any) -> None:
        left, right = node.input
        if left in self.constants:
            left, right = right, left
        if right in self.constants:  # a bias after MatMul
            source, shape = self._tensor_input(node, left)
            layer = self.layers[source - 1]
            bias = self.constants[right].astype(np.float64)
            plain = layer["type"] == "Dense" and not {"bias", "activation_name"} & set(layer)
            shared = self.users.get(left) != 1 or left in self.outputs
            if not plain or self.produced[source] != left or shared:
                raise self._unsupported(
                    node, "it adds a constant to something other than a MatMul without bias"
                )
            layer["bias"] = _vector(bias, shape[0])
            self._alias(node, left)
            self.produced[source] = node.output[0]
            return
        sources = [self._tensor_input(node, tensor) for tensor in node.input]
        if sources[0][1] != sources[1][1]:
            raise self._unsupported(
                node,
                f"it adds tensors of shapes {sources[0][1]} and "
                f"{sources[1][1]}; broadcasting is not supported",
            )
        self._emit(node, {"type": "Add"}, [s for s, _ in sources], sources[0][1])

    def _conv(self, node: Any) -> None:
        attributes = self._attributes(node)
        source, shape = self._tensor_input(node, node.input[0])
        weight = self._constant(node, node.input[1], "weight")
        n = len(shape) - 1
        if n not in (1, 2) or weight.ndim != n + 2 or weight.shape[1] != shape[0]:
            raise self._unsupported(
                node,
                f"only 1D and 2D convolutions without groups are "
                f"supported; got input {shape}, weight {weight.shape}",
            )
        if attributes.get("group", 1) != 1 or attributes.get("auto_pad", b"NOTSET") not in (
            _NO_AUTO_PAD
        ):
            raise self._unsupported(
                node,
                "group and auto_pad are not supported; export with groups=1 and explicit padding",
            )
        strides = list(attributes.get("strides", [1] * n))
        dilations = list(attributes.get("dilations", [1] * n))
        pads = list(attributes.get("pads", [0] * 2 * n))  # begins of all axes, then ends
        kernel = weight.shape[2:]
        out = tuple(
            (shape[1 + i] + pads[i] + pads[n + i] - dilations[i] * (kernel[i] - 1) - 1)
            // strides[i]
            + 1
            for i in range(n)
        )
        # the spec pads (left, right) per axis, last axis first, as torch.nn.functional.pad
        padding = [p for i in reversed(range(n)) for p in (pads[i], pads[n + i])]
        layer = {
            "type": f"Conv{n}D",
            "weight": weight,
            "stride": strides,
            "dilation": dilations,
            "padding": padding,
        }
        if len(node.input) > 2 and node.input[2]:
            layer["bias"] = self._constant(node, node.input[2], "bias")
        self._emit(node, layer, [source], (weight.shape[0], *out))

    def _pool(self, node: Any) -> None:
        attributes = self._attributes(node)
        source, shape = self._tensor_input(node, node.input[0])
        n = len(shape) - 1
        kernel = list(attributes["kernel_shape"])
        strides = list(attributes.get("strides", [1] * n))
        special = (
            any(attributes.get("pads", [0]))
            or attributes.get("auto_pad", b"NOTSET") not in _NO_AUTO_PAD
            or attributes.get("ceil_mode", 0)
            or any(d != 1 for d in attributes.get("dilations", [1]))
            or len(node.output) > 1
        )
        if n not in (1, 2) or special:
            raise self._unsupported(
                node,
                "only 1D and 2D pooling without padding, dilation, "
                "ceil_mode or indices is supported",
            )
        out = tuple((shape[1 + i] - kernel[i]) // strides[i] + 1 for i in range(n))
        kind = "MaxPooling" if node.op_type == "MaxPool" else "AveragePooling"
        layer = {"type": f"{kind}{n}D", "kernel_size": kernel, "strides": strides}
        self._emit(node, layer, [source], (shape[0], *out))

    def _batch_norm(self, node: Any) -> None:
        attributes = self._attributes(node)
        source, shape = self._tensor_input(node, node.input[0])
        if attributes.get("training_mode", 0) or len(node.output) > 1:
            raise self._unsupported(
                node, "it runs in training mode; export the model in eval mode (model.eval())"
            )
        gamma, beta, mean, var = (
            self._constant(node, tensor, what)
            for tensor, what in zip(
                node.input[1:], ("scale", "bias", "mean", "variance"), strict=True
            )
        )
        layer = {
            "type": "BatchNorm",
            "num_features": shape[0],
            "gamma": gamma,
            "beta": beta,
            "run_mean": mean,
            "run_var": var,
            "eps": float(attributes.get("epsilon", 1e-5)),
        }
        self._emit(node, layer, [source], shape)

    def _flatten(self, node: Any) -> None:
        source, shape = self._tensor_input(node, node.input[0])
        size = math.prod(shape)
        if node.op_type == "Flatten":
            flat = self._attributes(node).get("axis", 1) == 1
        else:
            target = [int(s) for s in self.constants.get(node.input[1], np.zeros(0)).ravel()]
            flat = len(target) == 2 and (
                (target[0] in (0, -1) and target[1] == size) or (target[0] == 0 and target[1] == -1)
            )
        if not flat:
            raise self._unsupported(
                node,
                "only flattening every axis after the batch axis is "
                "supported; use torch.flatten(x, 1) or nn.Flatten()",
            )
        if len(shape) == 1:
            self._alias(node, node.input[0])
        else:
            self._emit(node, {"type": "Flatten"}, [source], (size,))

    def _concat(self, node: Any) -> None:
        sources = [self._tensor_input(node, tensor) for tensor in node.input]
        rank = len(sources[0][1])
        axis = self._attributes(node)["axis"]
        axis = axis + rank + 1 if axis < 0 else axis
        if axis < 1 or any(len(shape) != rank for _, shape in sources):
            raise self._unsupported(
                node,
                "only concatenation along an axis after the batch "
                "axis, of tensors of one rank, is supported",
            )
        shape = list(sources[0][1])
        shape[axis - 1] = sum(s[axis - 1] for _, s in sources)
        layer = {"type": "Concatenate", "axis": axis + 1}  # innsight counts from 1, batch first
        self._emit(node, layer, [s for s, _ in sources], tuple(shape))


def _vector(bias: np.ndarray, length: int) -> np.ndarray:
    """A bias as a vector of ``length`` entries (ONNX may store it as (1, n) or a scalar)."""
    flat = bias.ravel()
    if flat.size not in (1, length):
        raise ValueError(f"a bias of shape {bias.shape} does not fit {length} outputs.")
    return np.broadcast_to(flat, (length,)).copy()


register_model_format(ModelFormat("ONNX model", (".onnx",), read_onnx, bounds_sizes=True))
