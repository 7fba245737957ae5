"""The layer-by-layer backward pass of the rule-based methods (innsight's graph backward).

Signals (relevances, multipliers) have shape ``(K, batch, *shape)``: the ``K`` selected
output nodes of all output layers are carried together through one pass in reverse
topological order. A layer that feeds several others receives the sum of their signals;
layers with several inputs (addition, concatenation) hand each input its own part.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from attribution.converter.graph import ConvertedModel, ForwardPass, Ref
from attribution.layers.base import LayerValues
from attribution.methods._progress import Progress

PROPAGATION_MEMORY_BUDGET = {"cpu": 96 * 2**20, "cuda": 2**30}
"""Default bytes per chunk of instances (measured fastest on these CPUs: 64-128 MiB)."""

Step = Callable[[int, Tensor | None, Tensor | None], list[Tensor]]
"""``step(position, from_consumers, start)`` gives the signal of each input of the layer at
``position`` from the signal of the layers it feeds and its own start signal (an output
layer's); one of the two may be None."""


def propagate(
    model: ConvertedModel, starts: dict[int, Tensor], step: Step, progress: Progress
) -> list[Tensor | None]:
    """Run ``step`` over the layers in reverse order; the signal of each model input.

    ``progress`` ticks once per layer. A model input that no signal reaches gets None.
    """
    pending: dict[Ref, Tensor] = {}
    for position in reversed(range(len(model.nodes))):
        from_consumers = pending.pop(Ref("layer", position), None)
        start = starts.get(position)
        if from_consumers is not None or start is not None:
            signals = step(position, from_consumers, start)
            for ref, signal in zip(model.nodes[position].inputs, signals, strict=True):
                pending[ref] = signal if ref not in pending else pending[ref] + signal
        progress.step()
    return [pending.get(Ref("input", j)) for j in range(model.n_inputs)]


def start_signals(
    model: ConvertedModel, output_idx: list[list[int] | None], values: list[Tensor]
) -> dict[int, Tensor]:
    """``(K, batch, n_out)`` at each output layer: ``values[k][:, i]`` at (row of node i,
    column i), zero elsewhere, so that every selected node has its own row."""
    total = sum(len(idx) for idx in output_idx if idx)
    starts: dict[int, Tensor] = {}
    offset = 0
    for k, idx in enumerate(output_idx):
        if not idx:
            continue
        value = values[k]
        signal = value.new_zeros(total, *value.shape)
        signal[torch.arange(offset, offset + len(idx)), :, idx] = value[:, idx].T
        position = model.output_nodes[k]
        starts[position] = signal if position not in starts else starts[position] + signal
        offset += len(idx)
    return starts


def split_by_output(
    model: ConvertedModel, output_idx: list[list[int] | None], signals: list[Tensor | None]
) -> list[list[Tensor | None]]:
    """``result[k][j]`` ``(batch, *input_dim_j, K_k)`` from the ``(K, batch, ...)`` signals;
    None for unselected output layers and inputs the output layer does not depend on."""
    result = []
    offset = 0
    for k, idx in enumerate(output_idx):
        if not idx:
            result.append([None] * len(signals))
            continue
        reached = model.inputs_reaching(model.output_nodes[k])
        result.append([
            signal[offset:offset + len(idx)].movedim(0, -1).cpu()
            if signal is not None and j in reached else None
            for j, signal in enumerate(signals)
        ])  # fmt: skip
        offset += len(idx)
    return result


def layer_values(pass_: ForwardPass, position: int) -> LayerValues:
    """The tensors a forward pass kept for the layer at ``position``."""
    return LayerValues(
        pass_.layer_inputs[position],
        pass_.layer_preactivations[position],
        pass_.layer_outputs[position],
    )


def row_chunks(
    model: ConvertedModel, n_rows: int, n_outputs: int, memory_budget: int | None, copies: int = 1
) -> Iterator[slice]:
    """Slices of instances whose kept layer values and signals fit the memory budget.

    Per instance a forward pass keeps every layer's inputs, pre-activation and output
    (``copies`` times: 2 where each instance has its own reference pass), and the backward
    pass holds the ``K`` signals of about two layers at a time.
    """
    element = torch.finfo(model.dtype).bits // 8
    kept = sum(
        sum(math.prod(d) for d in node.in_dims) + 2 * math.prod(node.out_dim)
        for node in model.nodes
    )
    signal = max(
        sum(math.prod(d) for d in node.in_dims) + math.prod(node.out_dim) for node in model.nodes
    )
    budget = memory_budget or PROPAGATION_MEMORY_BUDGET.get(
        model.device.type, PROPAGATION_MEMORY_BUDGET["cuda"]
    )
    rows = max(1, budget // ((copies * kept + 2 * n_outputs * signal) * element))
    step = math.ceil(n_rows / math.ceil(n_rows / rows))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def concatenate(parts: list[list[Tensor | None]], dim: int) -> list[Tensor | None]:
    """Concatenate chunk results (lists with one entry per input or output layer)."""
    return [None if part[0] is None else torch.cat(part, dim) for part in zip(*parts, strict=True)]
