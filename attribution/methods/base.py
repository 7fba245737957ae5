"""What every gradient-family method shares: the model view, the run, the result fields."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribution._names import check_rank, default_input_names, default_output_names
from attribution.converter.converter import Converter
from attribution.methods._autograd import Forward, Sampler, averaged_gradients, rows_per_chunk
from attribution.methods._progress import Progress

Run = Callable[[list[Tensor]], tuple[list[Tensor], list[Tensor]]]
"""Maps inputs to (differentiated outputs, activated outputs), one tensor per output layer."""


@dataclass
class ModelView:
    """A model as the gradient methods see it: inputs in, output layers out."""

    run: Run
    input_dims: list[tuple[int, ...]]
    input_names: list[list[list[str]]]
    output_names: list[list[str]]
    dtype: torch.dtype
    device: torch.device

    @property
    def forward(self) -> Forward:
        """Inputs to the differentiated outputs."""
        return lambda inputs: self.run(inputs)[0]

    @classmethod
    def of_converter(cls, converter: Converter, dtype: str, ignore_last_act: bool) -> ModelView:
        """The converted model; ``ignore_last_act`` differentiates the pre-activations."""
        if not isinstance(converter, Converter):
            raise TypeError(
                f"converter must be an attribution.Converter; got {type(converter).__name__}. "
                "Convert the model first (Converter(model, input_dim=...)), or use the "
                "torch_* functions to explain a torch module directly."
            )
        model = converter.model_as(dtype)

        def run(inputs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
            pass_ = model.run(inputs)
            return (pass_.preactivations if ignore_last_act else pass_.outputs), pass_.outputs

        device = next((b.device for b in model.buffers()), torch.device("cpu"))
        return cls(
            run,
            converter.input_dim,
            converter.input_names,
            converter.output_names,
            model.dtype,
            device,
        )

    @classmethod
    def of_module(cls, model: nn.Module, inputs: list[Tensor]) -> ModelView:
        """Any differentiable module with one output tensor, run with autograd as it is.

        ``inputs`` (prepared data) fix the input shapes and the weights' precision.
        """
        dtype = inputs[0].dtype
        # detached: autograd then saves nothing for weight gradients (the model is untouched)
        cast = {
            name: value.detach().to(dtype) if value.is_floating_point() else value
            for name, value in [*model.named_parameters(), *model.named_buffers()]
        }

        def run(inputs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
            out = torch.func.functional_call(model, cast, tuple(inputs))
            if not isinstance(out, Tensor):
                raise TypeError(
                    f"{type(model).__name__} returns {type(out).__name__}; the torch_* "
                    "functions explain models that return one tensor. Use Converter for "
                    "models with several outputs."
                )
            out = out.reshape(len(out), -1)
            return [out], [out]

        dims = [tuple(x.shape[1:]) for x in inputs]
        with torch.no_grad():
            n_outputs = run([x[:2] for x in inputs])[1][0].shape[1]
        names = [default_input_names(dim) if len(dim) <= 3 else [] for dim in dims]
        return cls(run, dims, names, [default_output_names(n_outputs)], dtype, inputs[0].device)


def explain(
    view: ModelView,
    data: list[Tensor],
    sampler_factory: Callable[[list[Tensor]], Sampler],
    output_idx: list[list[int] | None],
    progress: Progress,
    *,
    reference: list[Tensor] | None = None,
    memory_budget: int | None = None,
) -> dict[str, Any]:
    """Run one gradient method; returns the result, preds and decomp_goal (on the CPU).

    ``decomp_goal`` is the selected differentiated output of ``data``, minus its mean over
    the ``reference`` rows when given.
    """
    sampler = sampler_factory(data)
    rows = rows_per_chunk(view.forward, sampler, output_idx, memory_budget)
    result = averaged_gradients(view.forward, sampler, len(data[0]), output_idx, progress, rows)
    # Without a backward pass a row needs no gradient buffers: bigger chunks fit.
    forward_rows = rows * (1 + max(len(idx) for idx in output_idx if idx))
    targets, outputs = _forward_in_chunks(view.run, data, forward_rows)
    if reference is not None:
        reference_targets = _forward_in_chunks(view.run, reference, forward_rows)[0]
        targets = [t - r.mean(0) for t, r in zip(targets, reference_targets, strict=True)]
    return {
        "result": [[None if r is None else r.cpu() for r in per_input] for per_input in result],
        "preds": _select(outputs, output_idx),
        "decomp_goal": _select(targets, output_idx),
    }


def to_data_layout(result: list[list[Tensor | None]], channels_first: bool) -> list:
    """Move the channel axis of image and signal results last when the data had it last."""
    if channels_first:
        return result
    return [
        [None if r is None or r.ndim <= 3 else r.movedim(1, -2) for r in per_input]
        for per_input in result
    ]


def check_ranks(dims: Sequence[tuple[int, ...]]) -> None:
    """Results can be named and shown for inputs with 1 to 3 axes per instance."""
    for layer, dim in enumerate(dims, start=1):
        check_rank(dim, f"input layer {layer}")


def _forward_in_chunks(run: Run, inputs: list[Tensor], rows: int) -> tuple[list, list]:
    parts: list[tuple[list[Tensor], list[Tensor]]] = []
    with torch.no_grad():
        for start in range(0, len(inputs[0]), rows):
            parts.append(run([x[start : start + rows] for x in inputs]))
    return tuple([torch.cat(ts) for ts in zip(*(p[i] for p in parts), strict=True)] for i in (0, 1))


def _select(outputs: list[Tensor], output_idx: list[list[int] | None]) -> list[Tensor | None]:
    return [
        None if not idx else out[:, idx].cpu() for out, idx in zip(outputs, output_idx, strict=True)
    ]
