"""Converting innsight's named-list model format (a dict, or a JSON file of it).

The format (innsight's ``Converter`` vignette, section "Model as named list"):

- ``input_dim``: the shape of one instance, channels first (a list of shapes for several
  input layers); ``input_names``/``output_names``/``output_dim`` are optional.
- ``input_nodes``/``output_nodes``: the numbers of the layers that read the model inputs
  and produce the model outputs.
- ``layers``: a list of dicts with ``type`` and type-specific keys (``weight``, ``bias``,
  ``activation_name``, ``stride``...), wired by ``input_layers`` and ``output_layers``.

Layers are numbered from 1 as in innsight, because ``0`` in ``input_layers`` means the
model input (and ``-1`` in ``output_layers`` the model output): a spec exported from R
loads unchanged. Missing wiring keys get innsight's defaults, with a warning.

Sizes
-----
A spec may come from an upload, and a few bytes of it can declare an input of billions of
values (``"input_dim": [1, 20000, 20000]``), a padding that inflates a small one, or
thousands of weightless layers. :func:`check_spec_sizes` bounds them before anything is
allocated: the declared input shapes first, then every layer's input and output shapes
and their sum, computed on fake tensors (``torch._subclasses.FakeTensorMode``: shapes
without memory), and the weights against the bytes of the file.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import attribution.layers  # noqa: F401  (registers the layer converters)
from attribution._names import check_rank
from attribution._validation import check_input_dim
from attribution.converter.graph import ConvertedModel, Node, Ref
from attribution.converter.registry import SKIP, spec_builder, supported_spec_types
from attribution.layers import Activation, ActivationLayer

_WEIGHT_LAYOUTS = (
    "Weights are laid out as in torch: 'Dense' (out_features, in_features), 'Conv1D' "
    "(out_channels, in_channels, kernel_length), 'Conv2D' (out_channels, in_channels, "
    "kernel_height, kernel_width); check this layer's 'weight', its 'input_layers' and the "
    "spec's 'input_dim' (channels first)."
)


@dataclass
class SpecModel:
    """A converted spec with its input shapes and the names it carries (if any)."""

    model: ConvertedModel
    input_dims: list[tuple[int, ...]]
    input_names: Any
    output_names: Any


TOTAL_VALUES_FACTOR = 16
"""All layers of a spec together may have this many times ``max_instance_values``."""


def convert_spec(spec: Mapping) -> SpecModel:
    """Convert a spec; raises ValueError naming the layer and key of any problem."""
    model, input_dims, layers, sources, output_nodes = _build(spec)
    try:
        model.record_shapes(input_dims)
    except ValueError as error:
        raise ValueError(f"{error}. {_WEIGHT_LAYOUTS}") from error
    _check_dims(spec, layers, sources, model, input_dims)
    for number in output_nodes:
        out_dim = model.nodes[sources[number].index].out_dim
        if len(out_dim) != 1:
            raise ValueError(
                f"Output layer {number} computes shape (batch, {', '.join(map(str, out_dim))}); "
                "outputs must have shape (batch, n) as in innsight: end it with a 'Flatten' or "
                "'GlobalPooling' layer."
            )
    return SpecModel(model, input_dims, spec.get("input_names"), spec.get("output_names"))


def check_instance_values(
    dims: Sequence[tuple[int, ...]], max_instance_values: int, what: str
) -> None:
    """Raise a ValueError when one instance of ``dims`` has more than ``max_instance_values``.

    Parameters
    ----------
    dims : list of tuple of int
        The shape of one instance per input, without the batch axis.
    max_instance_values : int
        The most values one instance may have.
    what : str
        What declares the shapes, for the message (``"model.json's input_dim"``).

    Examples
    --------
    >>> check_instance_values([(3, 32, 32)], 4_000_000, "input_dim")
    >>> check_instance_values([(1, 20000, 20000)], 4_000_000, "input_dim")
    ...  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: input_dim is (1, 20000, 20000): 400000000 values per instance, more than ...
    """
    for dim in dims:
        values = math.prod(dim)
        if values > max_instance_values:
            raise ValueError(
                f"{what} is {_shapes([dim])}: {values} values per instance, more than the "
                f"{max_instance_values} allowed (max_instance_values; the dashboard's "
                "--max-instance-values). Give the model's real input shape, or allow more "
                "where the machine has the memory."
            )


def check_spec_sizes(
    spec: Mapping, max_instance_values: int, *, max_parameters: int | None = None
) -> None:
    """Refuse a spec whose shapes or weights are larger than allowed, allocating nothing.

    Parameters
    ----------
    spec : dict
        innsight's named-list model.
    max_instance_values : int
        The most values one instance may have at an input or the output of any layer;
        all layers together may have :data:`TOTAL_VALUES_FACTOR` times as many.
    max_parameters : int, default=None
        The most weights (and other numbers) the layers may hold: for a file, its size in
        bytes (a JSON number takes at least one). None: no bound.

    Raises
    ------
    ValueError
        A bound is broken (the message names the layer, its shape and the bound), or the
        spec does not convert (as :func:`convert_spec` says).
    """
    if "input_dim" not in spec or "layers" not in spec:
        return  # convert_spec says what is missing
    check_instance_values(
        check_input_dim(spec["input_dim"]), max_instance_values, "The spec's input_dim"
    )
    with warnings.catch_warnings():  # convert_spec warns of defaulted keys afterwards
        warnings.simplefilter("ignore")
        model, input_dims, *_ = _build(spec)
    parameters = sum(t.numel() for t in (*model.parameters(), *model.buffers()))
    if max_parameters is not None and parameters > max_parameters:
        raise ValueError(
            f"The spec's layers hold {parameters} numbers, more than its {max_parameters} "
            "bytes can declare; it is refused."
        )
    with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
        example = [torch.empty(1, *dim, dtype=model.dtype) for dim in input_dims]
        try:
            pass_ = model.run(example, keep=True)
        except RuntimeError as error:
            raise ValueError(f"{error}. {_WEIGHT_LAYOUTS}") from None
        total = sum(math.prod(dim) for dim in input_dims)
        for node, out in zip(model.nodes, pass_.layer_outputs, strict=True):
            values = out.numel()
            total += values
            if values > max_instance_values:
                raise ValueError(
                    f"{node.origin} of the spec computes {_shapes([tuple(out.shape[1:])])}: "
                    f"{values} values per instance, more than the {max_instance_values} "
                    "allowed (max_instance_values; the dashboard's --max-instance-values). "
                    "Check its padding and the spec's input_dim."
                )
        if total > TOTAL_VALUES_FACTOR * max_instance_values:
            raise ValueError(
                f"The {len(model.nodes)} layers of the spec compute {total} values per "
                f"instance together, more than the {TOTAL_VALUES_FACTOR * max_instance_values}"
                f" allowed ({TOTAL_VALUES_FACTOR} × max_instance_values); it is refused."
            )


def _build(spec: Mapping):
    """The graph of a spec with its input shapes, before any tensor runs through it."""
    missing = [key for key in ("input_dim", "layers") if key not in spec]
    if missing:
        raise ValueError(
            f"The model spec has no {' and no '.join(map(repr, missing))}: a spec needs "
            "'input_dim' and 'layers' (innsight's named-list format)."
        )
    input_dims = check_input_dim(spec["input_dim"])
    for number, dim in enumerate(input_dims, start=1):
        check_rank(dim, f"input layer {number} of the model spec")
    layers = list(
        spec["layers"].values() if isinstance(spec["layers"], Mapping) else spec["layers"]
    )
    if not layers or not all(isinstance(layer, Mapping) for layer in layers):
        raise ValueError("'layers' must be a non-empty list of layer dicts.")
    input_nodes = _node_list(spec, "input_nodes", [1], len(layers))
    output_nodes = _node_list(spec, "output_nodes", [len(layers)], len(layers))
    if len(input_nodes) != len(input_dims):
        raise ValueError(
            f"'input_nodes' lists {len(input_nodes)} layers but 'input_dim' gives "
            f"{len(input_dims)} input shapes; give one input layer per input shape."
        )
    wiring = _wiring(layers)
    nodes, sources = _build_nodes(layers, wiring, input_nodes)
    passed = [k for k in output_nodes if sources[k].kind == "input"]
    if passed:
        raise ValueError(
            f"Output layer(s) {passed} only pass the model input through ('Skipping' layers): "
            "an output layer must compute something."
        )
    model = ConvertedModel(nodes, len(input_dims), [sources[k].index for k in output_nodes])
    return model, input_dims, layers, sources, output_nodes


def _node_list(spec: Mapping, key: str, default: list[int], n_layers: int) -> list[int]:
    if key not in spec:
        warnings.warn(
            f"The model spec has no '{key}'; assuming layer {default[0]} (innsight's "
            "default). Set it to silence this warning.",
            stacklevel=4,
        )
        return default
    values = _int_list(spec[key], f"'{key}'")
    for value in values:
        if not 1 <= value <= n_layers:
            raise ValueError(
                f"'{key}' names layer {value}, but layers are numbered 1 to {n_layers}."
            )
    return values


def _int_list(value: Any, what: str) -> list[int]:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{what} must be a layer number or a list of them; got {value!r}.")
    return list(values)


def _wiring(layers: list[Mapping]) -> list[tuple[list[int], list[int]]]:
    """``(input_layers, output_layers)`` per layer, with innsight's defaults and warnings."""
    n = len(layers)
    defaulted: dict[str, list[int]] = {"input_layers": [], "output_layers": []}
    wiring = []
    for number, layer in enumerate(layers, start=1):
        defaults = {
            "input_layers": [number - 1],
            "output_layers": [number + 1 if number < n else -1],
        }
        pair = []
        for key, default in defaults.items():
            if layer.get(key) is None:
                defaulted[key].append(number)
                pair.append(default)
            else:
                pair.append(_int_list(layer[key], f"'{key}' of layer {number}"))
        wiring.append((pair[0], pair[1]))
    for key, numbers in defaulted.items():
        if numbers:
            direction = "previous" if key == "input_layers" else "next"
            warnings.warn(
                f"Layer(s) {', '.join(map(str, numbers))} of the model spec have no '{key}'; "
                f"assuming each is wired to the {direction} layer (innsight's default).",
                stacklevel=4,
            )
    for number, (inputs, outputs) in enumerate(wiring, start=1):
        for source in inputs:
            if not 0 <= source <= n:
                raise ValueError(
                    f"'input_layers' of layer {number} names layer {source}, "
                    f"but layers are numbered 1 to {n} (0 = model input)."
                )
        if number in defaulted["output_layers"]:
            continue
        for target in outputs:
            explicit = target != -1 and target not in defaulted["input_layers"]
            if explicit and not (1 <= target <= n and number in wiring[target - 1][0]):
                raise ValueError(
                    f"Layer {number} lists {target} in 'output_layers', but layer {target} "
                    f"does not read layer {number} ('input_layers')."
                )
    return wiring


def _build_nodes(layers, wiring, input_nodes) -> tuple[list[Node], dict[int, Ref]]:
    """Nodes in topological order, and where the output of each layer number comes from.

    That is the layer's own node, or for a 'Skipping' layer the node (or model input) it
    passes through.
    """
    env: dict[int, Ref] = {}
    nodes: list[Node] = []
    for number in _topological_order(wiring):
        layer = layers[number - 1]
        type_name = layer.get("type")
        builder = spec_builder(type_name) if isinstance(type_name, str) else None
        if builder is None:
            raise ValueError(
                f"Layer {number} has type {type_name!r}; supported types: "
                f"{', '.join(supported_spec_types())}."
            )
        try:
            built = builder(layer)
        except KeyError as error:
            raise ValueError(f"Layer {number} ({type_name}): the key {error} is missing.") from None
        except (ValueError, TypeError) as error:
            raise ValueError(f"Layer {number} ({type_name}): {error}") from error
        refs = []
        for source in wiring[number - 1][0]:
            if source == 0:
                if number not in input_nodes:
                    raise ValueError(
                        f"Layer {number} reads the model input (input_layers 0) but is not "
                        "in 'input_nodes'."
                    )
                refs.append(Ref("input", input_nodes.index(number)))
            else:
                refs.append(env[source])
        if built is SKIP:
            env[number] = refs[0]
            continue
        built = ActivationLayer(built) if isinstance(built, Activation) else built
        nodes.append(Node(built, tuple(refs), f"layer {number} ({type_name})", str(number)))
        env[number] = Ref("layer", len(nodes) - 1)
    return nodes, env


def _topological_order(wiring: list[tuple[list[int], list[int]]]) -> list[int]:
    remaining = {
        number: {s for s in inputs if s} for number, (inputs, _) in enumerate(wiring, start=1)
    }
    order: list[int] = []
    while remaining:
        ready = sorted(number for number, sources in remaining.items() if not sources)
        if not ready:
            raise ValueError(
                f"The layers {sorted(remaining)} of the model spec form a cycle through "
                "their 'input_layers'."
            )
        for number in ready:
            del remaining[number]
            for sources in remaining.values():
                sources.discard(number)
        order += ready
    return order


def _check_dims(
    spec: Mapping,
    layers: list[Mapping],
    sources: dict[int, Ref],
    model: ConvertedModel,
    input_dims: list[tuple[int, ...]],
) -> None:
    """Compare the optional ``dim_in``/``dim_out``/``output_dim`` with the computed shapes.

    A 'Skipping' layer has its source's output shape as input and output shape.
    """
    for number, layer in enumerate(layers, start=1):
        source = sources[number]
        node = model.nodes[source.index] if source.kind == "layer" else None
        out_dim = input_dims[source.index] if node is None else node.out_dim
        in_dims = node.in_dims if node is not None and node.key == str(number) else [out_dim]
        for key, actual in (("dim_in", in_dims), ("dim_out", [out_dim])):
            if layer.get(key) is None:
                continue
            given = check_input_dim(layer[key])
            if given != actual:
                raise ValueError(
                    f"Layer {number} ({layer['type']}) has {key} {_shapes(given)}, but the "
                    f"model computes {_shapes(actual)} there: check its weights and wiring."
                )
    if spec.get("output_dim") is not None:
        given = check_input_dim(spec["output_dim"])
        actual = [model.nodes[i].out_dim for i in model.output_nodes]
        if given != actual:
            raise ValueError(
                f"'output_dim' is {_shapes(given)}, but the model computes {_shapes(actual)}."
            )


def _shapes(dims: list[tuple[int, ...]]) -> str:
    return ", ".join("(" + ", ".join(map(str, dim)) + ")" for dim in dims)
