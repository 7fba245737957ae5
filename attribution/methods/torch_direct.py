"""The gradient family on any differentiable torch module, without conversion.

``torch_grad``, ``torch_smoothgrad``, ``torch_intgrad`` and ``torch_expgrad`` run the
module with autograd as it is (any architecture, custom layers included): each is its
method class on the module (the classes take torch modules too), with every output node
selected by default and a tensor returned unless ``return_object``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from attribution._data import infer_input_dims
from attribution._validation import DType, check_bool
from attribution.methods.base import EVERY_OUTPUT, check_ranks
from attribution.methods.gradient import (
    ExpectedGradient,
    Gradient,
    IntegratedGradient,
    SmoothGrad,
)
from attribution.methods.samplers import SEED_DOC
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
    return _returned(
        model, data, return_object,
        lambda: Gradient(model, data, output_idx=_selected(output_idx), times_input=times_input,
                         dtype=dtype),
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
    return _returned(
        model, data, return_object,
        lambda: SmoothGrad(model, data, output_idx=_selected(output_idx), n=n,
                           noise_level=noise_level, times_input=times_input, dtype=dtype,
                           seed=seed),
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
    return _returned(
        model, data, return_object,
        lambda: IntegratedGradient(model, data, output_idx=_selected(output_idx), n=n,
                                   x_ref=x_ref, times_input=times_input, dtype=dtype),
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
    return _returned(
        model, data, return_object,
        lambda: ExpectedGradient(model, data, output_idx=_selected(output_idx), n=n,
                                 data_ref=data_ref, dtype=dtype, seed=seed),
    )  # fmt: skip


def _selected(output_idx: Any) -> Any:
    """The functions' default: every output node."""
    return EVERY_OUTPUT if output_idx is None else output_idx


def _returned(
    model: nn.Module, data: Any, return_object: bool, explain: Callable[[], AttributionResult]
) -> Tensor | list[Tensor] | AttributionResult:
    """The method class's result (the same boundary and computation), or its tensors."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    return_object = check_bool(return_object, "return_object")
    if return_object:
        check_ranks(infer_input_dims(data))
    result = explain()
    if return_object:
        return result
    tensors = result.result[0]
    return tensors[0] if len(tensors) == 1 else tensors


for _function in (torch_smoothgrad, torch_expgrad):
    _function.__doc__ = _function.__doc__.replace("{seed}", SEED_DOC)


TORCH_FUNCTIONS = {
    "Gradient": torch_grad,
    "SmoothGrad": torch_smoothgrad,
    "IntegratedGradient": torch_intgrad,
    "ExpectedGradient": torch_expgrad,
}
"""The function that runs each gradient method on an unconverted torch module."""
