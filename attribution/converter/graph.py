"""The converted model: a graph of known layers, run in topological order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from attribution.layers import ActivationLayer, Layer


@dataclass(frozen=True)
class Ref:
    """Where a tensor comes from: model input ``index`` or the output of layer ``index``."""

    kind: Literal["input", "layer"]
    index: int

    def __str__(self) -> str:
        return f"{self.kind} {self.index + 1}"


@dataclass
class Node:
    """One layer of the graph, its inputs, and where it came from.

    ``origin`` describes the source (module path and type, function, or spec entry) for
    messages; ``key`` identifies the source value (the ``torch.fx`` node name, or the spec
    layer number) whose output this layer reproduces.
    """

    layer: Layer
    inputs: tuple[Ref, ...]
    origin: str
    key: str
    in_dims: list[tuple[int, ...]] = field(default_factory=list)
    out_dim: tuple[int, ...] = ()

    def describe(self) -> str:
        """``Dense_Layer (module 'fc1' (Linear))``."""
        return f"{self.layer.type_name} ({self.origin})"


@dataclass
class ForwardPass:
    """What one forward pass through a :class:`ConvertedModel` produced.

    ``outputs`` and ``preactivations`` have one tensor per output layer. With
    ``keep=True``, ``layer_inputs``, ``layer_preactivations`` and ``layer_outputs`` hold
    every layer's tensors (in node order), as the rule-based methods need them.
    """

    outputs: list[Tensor]
    preactivations: list[Tensor]
    layer_inputs: list[list[Tensor]] | None = None
    layer_preactivations: list[Tensor] | None = None
    layer_outputs: list[Tensor] | None = None


class ConvertedModel(nn.Module):
    """A model as a graph of :class:`~attribution.layers.base.Layer` objects.

    Parameters
    ----------
    nodes : list of Node
        In topological order: a node only reads model inputs and earlier nodes.
    n_inputs : int
        Number of model inputs (input layers).
    output_nodes : list of int
        The node index of each output layer.
    """

    def __init__(self, nodes: list[Node], n_inputs: int, output_nodes: list[int]) -> None:
        super().__init__()
        for position, node in enumerate(nodes):
            for ref in node.inputs:
                limit = n_inputs if ref.kind == "input" else position
                if not 0 <= ref.index < limit:
                    raise ValueError(
                        f"layer {position + 1} ({node.origin}) reads {ref}, which does not "
                        "come before it: the graph has a cycle or a dangling reference."
                    )
        self.nodes = nodes
        self.layers = nn.ModuleList(node.layer for node in nodes)
        self.n_inputs = n_inputs
        self.output_nodes = list(output_nodes)
        self._last_use = _last_uses(nodes, self.output_nodes)
        # follows ``.to(...)`` like the weights, also in graphs without any weights
        self.register_buffer("_precision", torch.empty(0, dtype=torch.float64), persistent=False)

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return self._precision.device

    @property
    def dtype(self) -> torch.dtype:
        """The floating point type of the weights (float64 until cast with ``.to``)."""
        return self._precision.dtype

    def record_shapes(self, input_dims: Sequence[tuple[int, ...]]) -> None:
        """Run one random instance and store every node's input and output shapes.

        Raises ValueError naming the first layer that cannot take its input.
        """
        example = [torch.randn(1, *dim, dtype=self.dtype) for dim in input_dims]
        try:
            with torch.no_grad():
                pass_ = self.run(example, keep=True)
        except RuntimeError as error:
            raise ValueError(str(error)) from error
        for node, args, out in zip(
            self.nodes, pass_.layer_inputs, pass_.layer_outputs, strict=True
        ):
            node.in_dims = [tuple(arg.shape[1:]) for arg in args]
            node.out_dim = tuple(out.shape[1:])

    def inputs_reaching(self, position: int) -> set[int]:
        """The model inputs that the layer at ``position`` depends on."""
        reached: set[int] = set()
        stack = [position]
        seen: set[int] = set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            for ref in self.nodes[current].inputs:
                if ref.kind == "input":
                    reached.add(ref.index)
                else:
                    stack.append(ref.index)
        return reached

    def forward(self, *inputs: Tensor) -> list[Tensor]:
        """The activated outputs, one tensor per output layer."""
        return self.run(inputs).outputs

    def run(self, inputs: Sequence[Tensor], keep: bool = False) -> ForwardPass:
        """Run the graph on channels-first ``inputs`` (one tensor per input layer)."""
        values: dict[Ref, Tensor] = {Ref("input", i): x for i, x in enumerate(inputs)}
        preactivations: dict[int, Tensor] = {}
        kept: tuple[list, list, list] = ([], [], [])
        for position, node in enumerate(self.nodes):
            args = [values[ref] for ref in node.inputs]
            try:
                pre, out = node.layer(*args)
            except RuntimeError as error:
                shapes = ", ".join(str(tuple(arg.shape)) for arg in args)
                raise RuntimeError(
                    f"layer {position + 1}, {node.describe()}, failed on inputs of shape "
                    f"{shapes}: {error}"
                ) from error
            values[Ref("layer", position)] = out
            if position in self.output_nodes:
                preactivations[position] = pre
            if keep:
                for store, value in zip(kept, (args, pre, out), strict=True):
                    store.append(value)
            for ref in set(node.inputs):
                if self._last_use.get(ref) == position:
                    del values[ref]
        outputs = [values[Ref("layer", i)] for i in self.output_nodes]
        pass_ = ForwardPass(outputs, [preactivations[i] for i in self.output_nodes])
        if keep:
            pass_.layer_inputs, pass_.layer_preactivations, pass_.layer_outputs = kept
        return pass_


def _last_uses(nodes: list[Node], output_nodes: list[int]) -> dict[Ref, int]:
    """For each tensor, the position of the last node that reads it (outputs are kept)."""
    last: dict[Ref, int] = {}
    for position, node in enumerate(nodes):
        for ref in node.inputs:
            last[ref] = position
    for index in output_nodes:
        last.pop(Ref("layer", index), None)
    return last


def fuse_activations(nodes: list[Node], output_nodes: list[int]) -> tuple[list[Node], list[int]]:
    """Fuse each standalone activation into the dense/conv layer it directly follows.

    Only where that layer feeds nothing else and is no model output, as innsight's torch
    and Keras converters do; other activations (after pooling, flatten, batch norm, an
    addition...) stay standalone layers.
    """
    readers: dict[int, int] = {}
    for node in nodes:
        for ref in node.inputs:
            if ref.kind == "layer":
                readers[ref.index] = readers.get(ref.index, 0) + 1
    alias: dict[int, int] = {}
    for position, node in enumerate(nodes):
        if not isinstance(node.layer, ActivationLayer) or node.layer.activation is None:
            continue
        (source,) = node.inputs
        target = nodes[source.index] if source.kind == "layer" else None
        if (
            target is not None
            and target.layer.fuses_activation
            and target.layer.activation is None
            and readers[source.index] == 1
            and source.index not in output_nodes
        ):
            target.layer.activation = node.layer.activation
            target.origin = f"{target.origin} + {node.origin}"
            target.key = node.key
            alias[position] = source.index
    return _drop_aliased(nodes, output_nodes, alias)


def _drop_aliased(
    nodes: list[Node], output_nodes: list[int], alias: dict[int, int]
) -> tuple[list[Node], list[int]]:
    """Remove the nodes in ``alias`` (position -> replacement) and renumber references."""
    new_index: dict[int, int] = {}
    kept: list[Node] = []
    for position, node in enumerate(nodes):
        if position in alias:
            new_index[position] = new_index[alias[position]]
            continue
        new_index[position] = len(kept)
        node.inputs = tuple(
            ref if ref.kind == "input" else Ref("layer", new_index[ref.index])
            for ref in node.inputs
        )
        kept.append(node)
    return kept, [new_index[i] for i in output_nodes]
