"""The gradient family on converted models: Gradient, SmoothGrad, IntegratedGradient,
ExpectedGradient (innsight's ``GradientBased`` methods)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from attribution._data import prepare_inputs
from attribution._validation import DType, check_bool, check_int, check_number, resolve_output_idx
from attribution.converter.converter import Converter
from attribution.methods._autograd import Sampler
from attribution.methods._progress import Progress, ProgressCallback
from attribution.methods.base import ModelView, explain, to_data_layout
from attribution.methods.samplers import (
    InstancePoints,
    NoisyPoints,
    PathPoints,
    ReferencePathPoints,
)
from attribution.result import AttributionResult


class GradientMethod(AttributionResult):
    """Shared set-up of the gradient family: arguments, data, outputs, result fields.

    Subclasses compute in ``__init__`` (as innsight's ``$new()`` does) and hand
    :meth:`_attribute` their sampler; the object then holds the result.
    """

    method_name: ClassVar[str]

    def _attribute(
        self,
        converter: Converter,
        data: Any,
        make_sampler: Callable[[list[Tensor], list[Tensor] | None], Sampler],
        *,
        common: dict[str, Any],
        value_name: str,
        fields: dict[str, str],
        reference: tuple[str, Any, bool] | None = None,
    ) -> None:
        """Run the method and store the result.

        ``reference`` is ``(argument name, value, single_row)`` for methods with a
        reference input (None: zeros, one row); the goal then subtracts its mean output.
        """
        channels_first = check_bool(common["channels_first"], "channels_first")
        ignore_last_act = check_bool(common["ignore_last_act"], "ignore_last_act")
        verbose = check_bool(common["verbose"], "verbose")
        view = ModelView.of_converter(converter, common["dtype"], ignore_last_act)
        inputs = prepare_inputs(
            data,
            view.input_dims,
            channels_first=channels_first,
            dtype=view.dtype,
            device=view.device,
        )
        references = None
        if reference is not None:
            references = _reference_inputs(view, channels_first, *reference)
            fields[reference[0]] = _describe_reference(reference[1], references)
        selection = resolve_output_idx(
            common["output_idx"], common["output_label"], view.output_names
        )
        progress = Progress(
            f"Backward pass '{self.method_name}'", verbose, common["progress_callback"]
        )
        computed = explain(
            view,
            inputs,
            lambda xs: make_sampler(xs, references),
            selection,
            progress,
            reference=references,
            memory_budget=common["memory_budget"],
        )
        super().__init__(
            method_name=self.method_name,
            value_name=value_name,
            result=to_data_layout(computed["result"], channels_first),
            preds=computed["preds"],
            decomp_goal=computed["decomp_goal"],
            output_idx=selection,
            input_names=view.input_names,
            output_names=view.output_names,
            input_dim=view.input_dims,
            channels_first=channels_first,
            fields=fields,
            other_fields={"ignore_last_act": str(ignore_last_act), "dtype": repr(common["dtype"])},
        )


def _reference_inputs(
    view: ModelView, channels_first: bool, name: str, value: Any, single_row: bool
) -> list[Tensor]:
    if value is None:
        return [
            torch.zeros(1, *dim, dtype=view.dtype, device=view.device) for dim in view.input_dims
        ]
    references = prepare_inputs(
        value,
        view.input_dims,
        channels_first=channels_first,
        dtype=view.dtype,
        device=view.device,
        name=name,
    )
    if single_row and len(references[0]) != 1:
        raise ValueError(
            f"{name} must be a single instance (one row); got {len(references[0])} rows. Use "
            "ExpectedGradient for a distribution of references."
        )
    return references


def _describe_reference(value: Any, references: list[Tensor]) -> str:
    if value is None:
        return "zeros"
    values = torch.cat([r.flatten() for r in references]).double()
    q1, q3 = torch.quantile(values, torch.tensor([0.25, 0.75], dtype=values.dtype))
    return f"mean: {values.mean():.4g} (q1: {q1:.4g}, q3: {q3:.4g})"


def _times_input_field(times_input: bool, name: str) -> str:
    return f"{times_input} (→ {name}{'×Input' if times_input else ''} method)"


_COMMON_DOC = """
    converter : Converter
        The converted model.
    data : array-like or list of array-like
        Instances ``(batch, *input_dim)`` as numpy arrays, DataFrames or tensors; a list
        with one per input layer for several input layers.
    channels_first : bool, default=True
        False if the channel axis of ``data`` is last. Results keep the data's layout.
    output_idx : int, list of int or list of lists, default=None
        Output nodes to explain (0-based): a list for the first output layer, or one list
        (or None) per output layer. None: the first ``min(10, n)`` nodes of the first
        output layer.
    output_label : str or list, default=None
        The same selection by output label; must agree with ``output_idx`` if both given.
    ignore_last_act : bool, default=True
        Explain each output layer's pre-activation instead of its activated output.
    verbose : bool, default=False
        Show a progress bar (one step per chunk of sample points).
    dtype : {"float", "double"}, default="float"
        Precision of the computation.
    progress_callback : callable, default=None
        Called as ``callback(done, total)`` after each chunk (used by the dashboard).
    memory_budget : int, default=None
        Bytes of activations per chunk; None: 32 MiB on CPU, 1 GiB on GPU."""


_COMMON_ARGS = (
    "channels_first",
    "output_idx",
    "output_label",
    "ignore_last_act",
    "verbose",
    "dtype",
    "progress_callback",
    "memory_budget",
)


def _common(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments all methods share, picked from a constructor's ``locals()``."""
    return {name: arguments[name] for name in _COMMON_ARGS}


class Gradient(GradientMethod):
    """Vanilla Gradient and Gradient×Input.

    The gradient of each selected output node with respect to the input; with
    ``times_input``, multiplied by the input.

    Parameters
    ----------
    {common}
    times_input : bool, default=False
        Multiply by the input (Gradient×Input).

    Attributes
    ----------
    result, preds, decomp_goal : see :class:`~attribution.result.AttributionResult`
        ``decomp_goal`` is the differentiated output (the pre-activation with
        ``ignore_last_act``).

    Notes
    -----
    All selected nodes are differentiated in one batched backward pass per output layer.

    Examples
    --------
    >>> import torch
    >>> from attribution import Converter, Gradient
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    >>> res = Gradient(Converter(model), torch.randn(4, 3))
    >>> res.get_result().shape
    (4, 3, 2)
    """

    method_name = "Gradient"

    def __init__(
        self,
        converter: Converter,
        data: Any,
        *,
        channels_first: bool = True,
        output_idx: Any = None,
        output_label: Any = None,
        ignore_last_act: bool = True,
        times_input: bool = False,
        verbose: bool = False,
        dtype: DType = "float",
        progress_callback: ProgressCallback | None = None,
        memory_budget: int | None = None,
    ) -> None:
        times_input = check_bool(times_input, "times_input")
        self._attribute(
            converter,
            data,
            lambda xs, _: InstancePoints(xs, times_input),
            common=_common(locals()),
            value_name="Relevance" if times_input else "Gradient",
            fields={"times_input": _times_input_field(times_input, "Gradient")},
        )


class SmoothGrad(GradientMethod):
    """SmoothGrad and SmoothGrad×Input (Smilkov et al., 2017).

    The mean gradient over ``n`` noisy copies ``x + ε`` of each instance,
    ``ε ~ N(0, σ²)``, ``σ = noise_level · (max(x) − min(x))``.

    Parameters
    ----------
    {common}
    times_input : bool, default=False
        Multiply each gradient by its noisy input before averaging (SmoothGrad×Input).
    n : int, default=50
        Noisy copies per instance.
    noise_level : float, default=0.1
        The noise's standard deviation relative to the input range.

    Notes
    -----
    As in innsight, max and min run over the whole data tensor of each input layer (all
    instances and features), giving one σ per input layer; σ = noise_level if the range
    is 0. ``preds`` and ``decomp_goal`` are those of the clean data.

    References
    ----------
    D. Smilkov et al. (2017), SmoothGrad: removing noise by adding noise, arXiv:1706.03825.
    """

    method_name = "SmoothGrad"

    def __init__(
        self,
        converter: Converter,
        data: Any,
        *,
        channels_first: bool = True,
        output_idx: Any = None,
        output_label: Any = None,
        ignore_last_act: bool = True,
        times_input: bool = False,
        n: int = 50,
        noise_level: float = 0.1,
        verbose: bool = False,
        dtype: DType = "float",
        progress_callback: ProgressCallback | None = None,
        memory_budget: int | None = None,
    ) -> None:
        times_input = check_bool(times_input, "times_input")
        n = check_int(n, "n")
        noise_level = check_number(noise_level, "noise_level")
        self._attribute(
            converter,
            data,
            lambda xs, _: NoisyPoints(xs, n, noise_level, times_input),
            common=_common(locals()),
            value_name="Relevance" if times_input else "Gradient",
            fields={
                "n": str(n),
                "noise_level": f"{noise_level:g}",
                "times_input": _times_input_field(times_input, "SmoothGrad"),
            },
        )


class IntegratedGradient(GradientMethod):
    """Integrated Gradients (Sundararajan et al., 2017).

    ``(x − x_ref) ⊙ (1/n) Σ_{k=1..n} ∇f(x_ref + (k/n)(x − x_ref))``.

    Parameters
    ----------
    {common}
    x_ref : array-like or list, default=None
        The reference: one instance (a list of them for several input layers); None is
        zeros.
    n : int, default=50
        Steps of the right Riemann sum.
    times_input : bool, default=True
        Multiply by ``x − x_ref``; False gives the path-averaged gradient.

    Notes
    -----
    Like innsight, the grid is ``1/n, 2/n, ..., 1`` (no trapezoid rule, no α = 0).
    ``decomp_goal`` is ``f(x) − f(x_ref)``, which the attributions sum to as ``n`` grows.

    References
    ----------
    M. Sundararajan et al. (2017), Axiomatic attribution for deep networks, ICML.
    """

    method_name = "IntegratedGradient"

    def __init__(
        self,
        converter: Converter,
        data: Any,
        *,
        x_ref: Any = None,
        n: int = 50,
        times_input: bool = True,
        channels_first: bool = True,
        output_idx: Any = None,
        output_label: Any = None,
        ignore_last_act: bool = True,
        verbose: bool = False,
        dtype: DType = "float",
        progress_callback: ProgressCallback | None = None,
        memory_budget: int | None = None,
    ) -> None:
        times_input = check_bool(times_input, "times_input")
        n = check_int(n, "n")
        self._attribute(
            converter,
            data,
            lambda xs, refs: PathPoints(xs, refs, n, times_input),
            common=_common(locals()),
            value_name="Relevance" if times_input else "Gradient",
            fields={"n": str(n), "times_input": str(times_input)},
            reference=("x_ref", x_ref, True),
        )


class ExpectedGradient(GradientMethod):
    """Expected Gradients (Erion et al., 2021).

    The mean over ``n`` draws of ``(x − r) ⊙ ∇f(r + α(x − r))``, with reference rows ``r``
    drawn uniformly from ``data_ref`` and ``α ~ U(0, 1)``.

    Parameters
    ----------
    {common}
    data_ref : array-like or list, default=None
        The reference distribution (any number of rows); None is one row of zeros.
    n : int, default=50
        Draws per instance.

    Notes
    -----
    Each (instance, draw) gets its own reference row and α, shared by all input layers.
    ``decomp_goal`` is ``f(x) − mean f(data_ref)``, the expected sum of the attributions.

    References
    ----------
    G. Erion et al. (2021), Improving performance of deep learning models with axiomatic
    attribution priors and expected gradients, Nature Machine Intelligence 3.
    """

    method_name = "ExpectedGradient"

    def __init__(
        self,
        converter: Converter,
        data: Any,
        *,
        data_ref: Any = None,
        n: int = 50,
        channels_first: bool = True,
        output_idx: Any = None,
        output_label: Any = None,
        ignore_last_act: bool = True,
        verbose: bool = False,
        dtype: DType = "float",
        progress_callback: ProgressCallback | None = None,
        memory_budget: int | None = None,
    ) -> None:
        n = check_int(n, "n")
        self._attribute(
            converter,
            data,
            lambda xs, refs: ReferencePathPoints(xs, refs, n),
            common=_common(locals()),
            value_name="Relevance",
            fields={"n": str(n)},
            reference=("data_ref", data_ref, False),
        )


for _method in (Gradient, SmoothGrad, IntegratedGradient, ExpectedGradient):
    _method.__doc__ = _method.__doc__.replace("{common}", _COMMON_DOC.strip("\n").lstrip())
