"""The gradient family on any differentiable torch module, without conversion.

``torch_grad``, ``torch_smoothgrad``, ``torch_intgrad`` and ``torch_expgrad`` run the
module with autograd as it is (any architecture, custom layers included), with the same
maths, batching and output vectorisation as the converter-based classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from attribution._data import infer_input_dims, prepare_inputs
from attribution._validation import (
    DType,
    check_bool,
    check_dtype,
    check_int,
    check_number,
    resolve_output_idx,
)
from attribution.methods._autograd import Sampler
from attribution.methods._progress import Progress
from attribution.methods.base import ModelView, check_ranks, reference_inputs
from attribution.methods.gradient import explain_gradients, noisy_points, reference_path_points
from attribution.methods.samplers import SEED_DOC, InstancePoints, PathPoints, check_seed
from attribution.result import AttributionResult


def torch_grad(
    model: nn.Module,
    data: Any,
    output_idx: Any = None,
    times_input: bool = False,
    dtype: DType = "float",
    return_object: bool = False,
) -> Tensor | list[Tensor] | AttributionResult:
    """Gradient (×Input) of a torch module's outputs with respect to its input.

    Parameters
    ----------
    model : torch.nn.Module
        Any differentiable module returning one tensor ``(batch, n_outputs)`` (other
        output shapes are flattened per instance). It is used as it is: call ``eval()``
        first for models with dropout or batch normalisation.
    data : tensor, array or list of them
        Input ``(batch, ...)``, channels first; a list for modules with several inputs.
    output_idx : int or list of int, default=None
        Output nodes (0-based); None: all outputs.
    times_input : bool, default=False
        Multiply by the input (Gradient×Input).
    dtype : {"float", "double"}, default="float"
    return_object : bool, default=False
        Return an :class:`~attribution.result.AttributionResult` (with ``get_result()``
        and the plots) instead of a tensor.

    Returns
    -------
    Tensor of shape (batch, ..., n_outputs)
        A list of them for several inputs; or the result object.

    Examples
    --------
    >>> import torch
    >>> from attribution import torch_grad
    >>> model = torch.nn.Sequential(torch.nn.Linear(10, 3))
    >>> torch_grad(model, torch.randn(5, 10)).shape
    torch.Size([5, 10, 3])
    """
    times_input = check_bool(times_input, "times_input")
    return _attribute(
        "Gradient", model, data, output_idx, dtype, return_object,
        lambda xs, _: InstancePoints(xs, times_input),
        value_name="Relevance" if times_input else "Gradient",
    )  # fmt: skip


def torch_smoothgrad(
    model: nn.Module,
    data: Any,
    output_idx: Any = None,
    n: int = 50,
    noise_level: float = 0.1,
    times_input: bool = False,
    dtype: DType = "float",
    return_object: bool = False,
    *,
    seed: int | None = None,
) -> Tensor | list[Tensor] | AttributionResult:
    """SmoothGrad (×Input) of a torch module, without conversion.

    The mean gradient over ``n`` noisy copies of each instance, with noise
    ``N(0, σ²)``, ``σ = noise_level · (max(x) − min(x))`` over the whole data tensor (as
    :class:`~attribution.SmoothGrad`). Other arguments and the return value as
    :func:`torch_grad`.

    Parameters
    ----------
    {seed}

    Examples
    --------
    >>> import torch
    >>> from attribution import torch_smoothgrad
    >>> model = torch.nn.Sequential(torch.nn.Linear(10, 3))
    >>> torch_smoothgrad(model, torch.randn(5, 10), n=20).shape
    torch.Size([5, 10, 3])
    """
    times_input = check_bool(times_input, "times_input")
    n = check_int(n, "n")
    noise_level = check_number(noise_level, "noise_level")
    seed = check_seed(seed)
    return _attribute(
        "SmoothGrad", model, data, output_idx, dtype, return_object,
        lambda xs, _: noisy_points(xs, n, noise_level, times_input, seed),
        value_name="Relevance" if times_input else "Gradient",
    )  # fmt: skip


def torch_intgrad(
    model: nn.Module,
    data: Any,
    output_idx: Any = None,
    n: int = 50,
    x_ref: Any = None,
    times_input: bool = True,
    dtype: DType = "float",
    return_object: bool = False,
) -> Tensor | list[Tensor] | AttributionResult:
    """Integrated Gradients of a torch module, without conversion.

    ``(x − x_ref) ⊙ (1/n) Σ_{k=1..n} ∇f(x_ref + (k/n)(x − x_ref))`` with ``x_ref`` one
    instance (None: zeros), as :class:`~attribution.IntegratedGradient`. Other arguments
    and the return value as :func:`torch_grad`.
    """
    times_input = check_bool(times_input, "times_input")
    n = check_int(n, "n")
    return _attribute(
        "IntegratedGradient", model, data, output_idx, dtype, return_object,
        lambda xs, refs: PathPoints(xs, refs, n, times_input),
        value_name="Relevance" if times_input else "Gradient",
        reference=("x_ref", x_ref, True),
    )  # fmt: skip


def torch_expgrad(
    model: nn.Module,
    data: Any,
    output_idx: Any = None,
    n: int = 50,
    data_ref: Any = None,
    dtype: DType = "float",
    return_object: bool = False,
    *,
    seed: int | None = None,
) -> Tensor | list[Tensor] | AttributionResult:
    """Expected Gradients of a torch module, without conversion.

    The mean over ``n`` draws of ``(x − r) ⊙ ∇f(r + α(x − r))``, ``r`` drawn from
    ``data_ref`` (None: zeros), ``α ~ U(0, 1)``, as :class:`~attribution.ExpectedGradient`.
    Other arguments and the return value as :func:`torch_grad`.

    Parameters
    ----------
    {seed}
    """
    n = check_int(n, "n")
    seed = check_seed(seed)
    return _attribute(
        "ExpectedGradient", model, data, output_idx, dtype, return_object,
        lambda xs, refs: reference_path_points(xs, refs, n, seed),
        value_name="Relevance",
        reference=("data_ref", data_ref, False),
    )  # fmt: skip


def _attribute(
    method_name: str,
    model: nn.Module,
    data: Any,
    output_idx: Any,
    dtype: DType,
    return_object: bool,
    make_sampler: Callable[[list[Tensor], list[Tensor] | None], Sampler],
    *,
    value_name: str,
    reference: tuple[str, Any, bool] | None = None,
) -> Tensor | list[Tensor] | AttributionResult:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    return_object = check_bool(return_object, "return_object")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    dims = infer_input_dims(data)
    inputs = prepare_inputs(data, dims, dtype=check_dtype(dtype), device=device)
    view = ModelView.of_module(model, inputs)
    references = None if reference is None else reference_inputs(view, True, *reference)
    n_outputs = len(view.output_names[0])
    selection = resolve_output_idx(
        list(range(n_outputs)) if output_idx is None else output_idx, None, view.output_names
    )
    computed = explain_gradients(
        view,
        inputs,
        lambda xs: make_sampler(xs, references),
        selection,
        Progress(method_name),
        reference=references,
    )
    if not return_object:
        result = computed["result"][0]
        return result[0] if len(result) == 1 else result
    check_ranks(dims)
    return AttributionResult(
        method_name=method_name,
        value_name=value_name,
        output_idx=selection,
        input_names=view.input_names,
        output_names=view.output_names,
        input_dim=dims,
        fields={"dtype": repr(dtype)},
        **computed,
    )


for _function in (torch_smoothgrad, torch_expgrad):
    _function.__doc__ = _function.__doc__.replace("{seed}", SEED_DOC)


TORCH_FUNCTIONS = {
    "Gradient": torch_grad,
    "SmoothGrad": torch_smoothgrad,
    "IntegratedGradient": torch_intgrad,
    "ExpectedGradient": torch_expgrad,
}
"""The function that runs each gradient method on an unconverted torch module."""
