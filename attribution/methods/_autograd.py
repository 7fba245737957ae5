"""Gradients of many output nodes at once, averaged over samples in memory-bounded chunks.

Every method of the gradient family is a mean over ``n`` sample points per instance of
``factor * grad f_k(point)``: Gradient (one point, the instance), SmoothGrad (noisy
copies), IntegratedGradient (points on the path from the reference) and ExpectedGradient
(points on paths from drawn references). A :class:`Sampler` produces the points; this
module runs them through the model in chunks whose size follows a memory budget and
takes the gradients of all selected output nodes in one backward pass per output layer
(``torch.autograd.grad(..., is_grads_batched=True)``), with the output nodes as the last
axis of the result, as innsight lays it out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import torch
from torch import Tensor

from attribution.methods._progress import Progress

Forward = Callable[[list[Tensor]], list[Tensor]]
"""Maps the input tensors to the differentiated tensors ``(rows, n_out)``, one per output
layer."""

DEFAULT_MEMORY_BUDGET = {"cpu": 32 * 2**20, "cuda": 2**30}
"""Bytes of saved activations per chunk. Small chunks are faster on CPUs (caches); GPUs
want large ones."""


class Sampler(Protocol):
    """The sample points of one method."""

    n: int
    """Points per instance."""

    def points(self, samples: range, rows: slice) -> tuple[list[Tensor], list[Tensor] | None]:
        """The points for ``samples`` of the instances ``rows``, sample-major: one tensor
        ``(len(samples) * n_rows, *input_dim)`` per input layer, and the factors that
        multiply the gradients (same shapes), or None for no factor."""
        ...


def output_gradients(
    forward: Forward, inputs: Sequence[Tensor], output_idx: list[list[int] | None]
) -> list[list[Tensor | None] | None]:
    """``d f_k[:, idx] / d input_j`` for every output layer ``k`` with selected nodes.

    Returns, per output layer, a list over inputs of tensors ``(rows, *input_dim, K_k)``
    (None where the input does not reach the output), or None for unselected layers.
    """
    inputs = [x.detach().requires_grad_(True) for x in inputs]
    with torch.enable_grad():
        targets = forward(inputs)
    selected = [k for k, idx in enumerate(output_idx) if idx]
    grads: list[list[Tensor | None] | None] = [None] * len(output_idx)
    for position, k in enumerate(selected):
        idx = output_idx[k]
        seeds = torch.zeros(
            len(idx), *targets[k].shape, dtype=targets[k].dtype, device=targets[k].device
        )
        seeds[torch.arange(len(idx)), :, idx] = 1.0
        batched = len(idx) > 1
        per_input = torch.autograd.grad(
            targets[k],
            inputs,
            grad_outputs=seeds if batched else seeds[0],
            retain_graph=position < len(selected) - 1,
            allow_unused=True,
            is_grads_batched=batched,
        )
        grads[k] = [
            None if g is None else (g.movedim(0, -1) if batched else g.unsqueeze(-1))
            for g in per_input
        ]
    return grads


def averaged_gradients(
    forward: Forward,
    sampler: Sampler,
    n_rows: int,
    output_idx: list[list[int] | None],
    progress: Progress,
    rows_per_chunk: int,
) -> list[list[Tensor | None]]:
    """Mean over the sampler's points of ``factor * gradient``, per output and input layer.

    Returns ``result[k][j]`` of shape ``(n_rows, *input_dim_j, K_k)``, None for output
    layers without selected nodes and for inputs that do not reach them. ``progress``
    ticks once per chunk of at most ``rows_per_chunk`` points.
    """
    n_inputs = 0
    sums: dict[tuple[int, int], Tensor] = {}
    progress.start(count_chunks(sampler.n, n_rows, rows_per_chunk))
    for samples, rows in chunks(sampler.n, n_rows, rows_per_chunk):
        points, factors = sampler.points(samples, rows)
        n_inputs = len(points)
        for k, per_input in enumerate(output_gradients(forward, points, output_idx)):
            for j, g in enumerate(per_input or []):
                if g is None:
                    continue
                g = g.reshape(len(samples), -1, *g.shape[1:])
                if factors is not None:
                    g = g * factors[j].reshape(*g.shape[:-1], 1)
                if (k, j) not in sums:
                    sums[k, j] = g.new_zeros(n_rows, *g.shape[2:])
                sums[k, j][rows] += g.sum(0)
        progress.step()
    return [
        [sums[k, j] / sampler.n if (k, j) in sums else None for j in range(n_inputs)]
        for k in range(len(output_idx))
    ]


def chunks(n_samples: int, n_rows: int, rows_per_chunk: int) -> Iterator[tuple[range, slice]]:
    """Blocks of (samples, instances) with at most ``rows_per_chunk`` points each.

    Whole batches of instances with several samples each where they fit, else one sample
    for a slice of the instances; blocks are split evenly (32 rows in chunks of at most 25
    are 16 + 16, not 25 + 7).
    """
    if rows_per_chunk >= n_rows:
        step = _even_step(n_samples, max(1, rows_per_chunk // n_rows))
        for start in range(0, n_samples, step):
            yield range(start, min(start + step, n_samples)), slice(0, n_rows)
    else:
        step = _even_step(n_rows, rows_per_chunk)
        for start in range(0, n_rows, step):
            for sample in range(n_samples):
                yield range(sample, sample + 1), slice(start, min(start + step, n_rows))


def _even_step(total: int, most: int) -> int:
    return math.ceil(total / math.ceil(total / most))


def count_chunks(n_samples: int, n_rows: int, rows_per_chunk: int) -> int:
    """How many blocks :func:`chunks` yields."""
    return sum(1 for _ in chunks(n_samples, n_rows, rows_per_chunk))


def rows_per_chunk(
    forward: Forward,
    sampler: Sampler,
    output_idx: list[list[int] | None],
    memory_budget: int | None = None,
) -> int:
    """How many points fit the memory budget in one forward and batched backward pass.

    A point needs its inputs, the activations autograd saves for it, and during the
    backward pass, for each of the ``K`` outputs, about one layer's gradient at a time
    (the largest activation) and the input gradients. The activation sizes are measured
    on the sampler's first point. ``memory_budget`` defaults to
    :data:`DEFAULT_MEMORY_BUDGET` for the device.
    """
    points, _ = sampler.points(range(1), slice(0, 1))
    n_outputs = max(len(idx) for idx in output_idx if idx)
    device = points[0].device
    budget = memory_budget or DEFAULT_MEMORY_BUDGET.get(device.type, DEFAULT_MEMORY_BUDGET["cuda"])
    saved, largest = _activation_bytes(forward, points)
    inputs = sum(x.numel() * x.element_size() for x in points)
    per_row = saved + n_outputs * largest + (1 + n_outputs) * inputs
    return max(1, budget // per_row)


def _activation_bytes(forward: Forward, points: list[Tensor]) -> tuple[int, int]:
    """Per point: bytes of the distinct activations autograd saves, and of the largest one.

    Runs two copies of the point and keeps the saved tensors with two rows, so weights
    do not count; tensors sharing storage count once.
    """
    sizes: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        if tensor.ndim and tensor.shape[0] == 2:
            sizes[tensor.untyped_storage().data_ptr()] = tensor.numel() * tensor.element_size() // 2
        return tensor

    inputs = [torch.cat([x, x]).requires_grad_(True) for x in points]
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward(inputs)
    return sum(sizes.values()), max(sizes.values(), default=0)
