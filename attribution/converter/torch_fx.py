"""Converting a torch ``nn.Module`` into a :class:`ConvertedModel` with ``torch.fx``.

The model is traced symbolically (modules the registry knows are kept as leaves, so
subclasses of supported modules are converted as such), run once on a random float64
input while every intermediate value is recorded, and mapped node by node onto layers.
Finally every converted layer is run on the recorded values of its inputs and compared
with its recorded output, so a mismatch names the first layer that diverges.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, fx, nn
from torch.fx.operator_schemas import normalize_function

import attribution.layers  # noqa: F401  (registers the layer converters)
from attribution.converter.graph import ConvertedModel, Node, Ref, fuse_activations
from attribution.converter.registry import (
    SKIP,
    Call,
    accepts_constants,
    function_builder,
    module_builder,
    supported_functions,
    supported_modules,
)
from attribution.errors import UnsupportedLayerError
from attribution.layers import Activation, ActivationLayer

_MODE_DEPENDENT = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)
_EXAMPLE_BATCH = 2
_TOLERANCE = 1e-8
_TORCH_FUNCTIONS_HINT = (
    "The gradient family (Gradient, SmoothGrad, IntegratedGradient, ExpectedGradient and "
    "the torch_* functions), LIME and SHAP still explain this model without conversion."
)


class _Tracer(fx.Tracer):
    """Keeps every module the registry can convert as a leaf of the traced graph."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return module_builder(module) is not None or super().is_leaf_module(module, qualified_name)


def infer_input_dim(model: nn.Module) -> list[tuple[int, ...]] | None:
    """The input shapes if every input goes straight into an ``nn.Linear``, else None."""
    traced = _trace(model)
    dims = []
    for node in traced.graph.nodes:
        if node.op != "placeholder":
            continue
        users = list(node.users)
        first = users[0] if len(users) == 1 else None
        module = (
            traced.get_submodule(first.target)
            if first is not None and first.op == "call_module"
            else None
        )
        if not isinstance(module, nn.Linear):
            return None
        dims.append((module.in_features,))
    return dims


def convert_torch(model: nn.Module, input_dims: Sequence[tuple[int, ...]]) -> ConvertedModel:
    """Convert ``model`` for inputs of shapes ``input_dims`` (channels first, no batch axis).

    Returns the converted model in float64. Raises UnsupportedLayerError for modules and
    operations without a converter, and ValueError where the model cannot be run with
    ``input_dims`` or the conversion does not reproduce the model.
    """
    if model.training and any(isinstance(m, _MODE_DEPENDENT) for m in model.modules()):
        warnings.warn(
            f"{type(model).__name__} is in training mode; it is converted as in eval mode "
            "(Dropout off, BatchNorm with running statistics). Call model.eval() first to "
            "silence this warning.",
            stacklevel=3,
        )
    reference = _trace(copy.deepcopy(model).eval().double())
    example = [torch.randn(_EXAMPLE_BATCH, *dim, dtype=torch.float64) for dim in input_dims]
    values = _record(reference, example, input_dims)
    nodes, output_nodes = _build_nodes(reference, values)
    nodes, output_nodes = fuse_activations(nodes, output_nodes)
    converted = ConvertedModel(nodes, len(input_dims), output_nodes)
    _check_equal(converted, example, values)
    converted.record_shapes(input_dims)
    return converted


def _trace(model: nn.Module) -> fx.GraphModule:
    if module_builder(model) is not None:  # a single supported module: trace it as a leaf
        model = nn.Sequential(model)
    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as error:
        raise ValueError(
            f"torch.fx cannot trace {type(model).__name__}: {error}. Models whose forward "
            "branches on tensor values (or TorchScript modules) cannot be converted. "
            + _TORCH_FUNCTIONS_HINT
        ) from error
    return fx.GraphModule(tracer.root, graph)


class _Recorder(fx.Interpreter):
    """Runs a traced module and keeps every node's value."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.values: dict[str, Any] = {}

    def run_node(self, node: fx.Node) -> Any:
        value = super().run_node(node)
        # a copy: later in-place operations (ReLU(inplace=True)) must not change it
        self.values[node.name] = value.clone() if isinstance(value, Tensor) else value
        return value


def _record(module: fx.GraphModule, example: list[Tensor], dims) -> dict[str, Any]:
    recorder = _Recorder(module)
    shapes = ", ".join(f"(batch, {', '.join(map(str, dim))})" for dim in dims)
    try:
        with torch.no_grad():
            recorder.run(*example)
    except Exception as error:
        reason = str(error).split("\n\nWhile executing")[0]  # without torch.fx's node dump
        raise ValueError(
            f"Running the model on random input of shape {shapes} failed: {reason}. Check "
            "input_dim: one shape per model input, channels first, without the batch axis."
        ) from error
    return recorder.values


def _build_nodes(module: fx.GraphModule, values: dict[str, Any]) -> tuple[list[Node], list[int]]:
    env: dict[str, Ref | None] = {}
    nodes: list[Node] = []
    outputs: list[fx.Node] = []
    n_inputs = 0
    for fx_node in module.graph.nodes:
        value = values.get(fx_node.name)
        if fx_node.op == "placeholder":
            env[fx_node.name] = Ref("input", n_inputs)
            n_inputs += 1
        elif fx_node.op == "output":
            result = fx_node.args[0]
            outputs = list(result) if isinstance(result, (tuple, list)) else [result]
        elif fx_node.op == "get_attr" or (
            not isinstance(value, Tensor) and not _is_unsupported_call(fx_node, value)
        ):
            env[fx_node.name] = None  # sizes, shapes and constants
        else:
            env[fx_node.name] = _convert_node(module, fx_node, values, env, nodes)
    return nodes, _output_positions(outputs, env, values)


def _is_unsupported_call(fx_node: fx.Node, value: Any) -> bool:
    """Whether a call without a tensor result must still be reported as unconvertible.

    True for module calls (``nn.LSTM`` returns a tuple) and for calls returning several
    tensors (``torch.split``); sizes and shapes are fine, they hold no tensors.
    """
    if fx_node.op == "call_module":
        return True
    return isinstance(value, (tuple, list)) and any(isinstance(v, Tensor) for v in value)


def _tensor_inputs(fx_node: fx.Node, values: dict[str, Any]) -> list[fx.Node]:
    """The arguments of ``fx_node`` holding tensors, in call order, repeats included."""
    inputs: list[fx.Node] = []

    def collect(node: fx.Node) -> fx.Node:
        if isinstance(values[node.name], Tensor):
            inputs.append(node)
        return node

    fx.node.map_arg((fx_node.args, fx_node.kwargs), collect)
    return inputs


def _convert_node(module, fx_node: fx.Node, values, env, nodes: list[Node]) -> Ref:
    origin, path, type_name, builder = _describe(module, fx_node)
    value = values[fx_node.name]
    if builder is None:
        raise UnsupportedLayerError(
            f"Cannot convert {origin}: {type_name} is not supported. Supported modules: "
            f"{', '.join(supported_modules())}. Supported functions: "
            f"{', '.join(supported_functions())}. " + _TORCH_FUNCTIONS_HINT,
            path=path,
            type_name=type_name,
        )
    if not isinstance(value, Tensor):
        raise UnsupportedLayerError(
            f"Cannot convert {origin}: it returns a {type(value).__name__}, not one tensor. "
            + _TORCH_FUNCTIONS_HINT,
            path=path,
            type_name=type_name,
        )
    inputs = _tensor_inputs(fx_node, values)
    constants = [n for n in inputs if env[n.name] is None]
    if accepts_constants(builder):
        inputs = [n for n in inputs if env[n.name] is not None]
    for n in inputs:
        if env[n.name] is None:
            raise UnsupportedLayerError(
                f"Cannot convert {origin}: it uses the tensor constant '{n.target}'. Only "
                "operations between the model's inputs and its layers can be converted. "
                + _TORCH_FUNCTIONS_HINT,
                path=path,
                type_name=type_name,
            )
    if not value.is_floating_point() or value.ndim == 0 or value.shape[0] != _EXAMPLE_BATCH:
        raise UnsupportedLayerError(
            f"Cannot convert {origin}: it returns a tensor of shape {tuple(value.shape)} and "
            f"type {value.dtype}, not a float tensor with the batch on the first axis. "
            + _TORCH_FUNCTIONS_HINT,
            path=path,
            type_name=type_name,
        )
    call = Call(
        in_shapes=[tuple(values[n.name].shape[1:]) for n in inputs],
        out_shape=tuple(value.shape[1:]),
        module=module.get_submodule(fx_node.target) if fx_node.op == "call_module" else None,
        kwargs=_keyword_arguments(fx_node, values),
        name=path,
        constants=[values[n.name] for n in constants],
    )
    try:
        built = builder(call)
    except ValueError as error:
        raise UnsupportedLayerError(
            f"Cannot convert {origin}: {error}", path=path, type_name=type_name
        ) from error
    refs = tuple(env[n.name] for n in inputs)
    if built is SKIP:
        return refs[0]
    layer = ActivationLayer(built) if isinstance(built, Activation) else built
    nodes.append(Node(layer, refs, origin, fx_node.name))
    return Ref("layer", len(nodes) - 1)


def _describe(module: fx.GraphModule, fx_node: fx.Node) -> tuple[str, str, str, Any]:
    """(origin text, path, type name, builder or None) of a call node.

    The path is the module path for modules; for functions and tensor methods the path of
    the module whose forward calls them (``features.1.0.block.1``), else the traced node
    name.
    """
    if fx_node.op == "call_module":
        submodule = module.get_submodule(fx_node.target)
        type_name = type(submodule).__name__
        origin = f"module '{fx_node.target}' ({type_name})"
        return origin, fx_node.target, type_name, module_builder(submodule)
    if fx_node.op == "call_method":
        type_name = f"Tensor.{fx_node.target}"
        builder = function_builder(f"method:{fx_node.target}")
    else:
        type_name = getattr(fx_node.target, "__name__", str(fx_node.target))
        builder = function_builder(fx_node.target)
    stack = fx_node.meta.get("nn_module_stack") or {}
    if not stack:
        return f"'{fx_node.name}' ({type_name})", fx_node.name, type_name, builder
    path, owner = list(stack.values())[-1]
    owner_name = getattr(owner, "__name__", str(owner))
    return (
        f"'{fx_node.name}' ({type_name}) in module '{path}' ({owner_name})",
        path,
        type_name,
        builder,
    )


def _keyword_arguments(fx_node: fx.Node, values: dict[str, Any]) -> dict[str, Any]:
    """All arguments by parameter name where the signature is known, else the kwargs."""
    args = fx.node.map_arg(fx_node.args, lambda n: values[n.name])
    kwargs = fx.node.map_arg(fx_node.kwargs, lambda n: values[n.name])
    target = fx_node.target
    if fx_node.op == "call_method":
        target = getattr(torch, fx_node.target, None)
    if fx_node.op == "call_module" or target is None:
        return dict(kwargs)
    try:
        normalized = normalize_function(target, args, kwargs, normalize_to_only_use_kwargs=True)
    except Exception:  # ambiguous or unknown signatures: keep the call's own keywords
        normalized = None
    if normalized is not None:
        return dict(normalized.kwargs)
    # varargs (x.permute(0, 2, 1)), overloads and operators: the positional arguments
    return {**kwargs, "args": tuple(args)}


def _output_positions(outputs: list, env: dict[str, Ref | None], values) -> list[int]:
    positions = []
    for k, output in enumerate(outputs):
        ref = env.get(output.name) if isinstance(output, fx.Node) else None
        if ref is None or ref.kind != "layer":
            raise ValueError(
                f"Output {k + 1} of the model is not computed by a layer of the model (it is "
                f"{output!r}); only tensors computed from the inputs can be outputs."
            )
        shape = tuple(values[output.name].shape[1:])
        if len(shape) != 1:
            raise ValueError(
                f"Output {k + 1} has shape (batch, {', '.join(map(str, shape))}); outputs must "
                "have shape (batch, n) as in innsight: flatten them in the model."
            )
        positions.append(ref.index)
    return positions


def _check_equal(converted: ConvertedModel, example: list[Tensor], values) -> None:
    """Run every layer on the recorded values of its inputs and compare with its recorded output.

    Layer by layer, so that the first layer that differs is named (and a layer computing
    another shape cannot make a later one fail).
    """

    def recorded(ref: Ref) -> Tensor:
        return example[ref.index] if ref.kind == "input" else values[converted.nodes[ref.index].key]

    for position, node in enumerate(converted.nodes):
        with torch.no_grad():
            _, out = node.layer(*map(recorded, node.inputs))
        expected = values[node.key]
        if out.shape != expected.shape:
            difference = f"shape {tuple(out.shape)} instead of {tuple(expected.shape)}"
        else:
            error = (out - expected).abs().max().item()
            if error <= _TOLERANCE * (1.0 + expected.abs().max().item()):
                continue
            difference = f"a maximum absolute difference of {error:.3g}"
        raise ValueError(
            f"The converted model diverges from the original at layer {position + 1}, "
            f"{node.describe()}: {difference} on a random input. This module's forward "
            "differs from the standard one it was converted as. " + _TORCH_FUNCTIONS_HINT
        )
