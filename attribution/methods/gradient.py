"""The gradient family on converted models: Gradient, SmoothGrad, IntegratedGradient,
ExpectedGradient (innsight's ``GradientBased`` methods)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from attribution._validation import DType, check_bool, check_int, check_number
from attribution.converter.converter import Converter
from attribution.methods._autograd import Sampler, averaged_gradients, rows_per_chunk
from attribution.methods._progress import Progress, ProgressCallback
from attribution.methods.base import (
    COMMON_DOC,
    Computation,
    InterpretingMethod,
    ModelView,
    Request,
    common_arguments,
    forward_in_chunks,
    select_outputs,
)
from attribution.methods.samplers import (
    SEED_DOC,
    InstancePoints,
    NoisyPoints,
    PathPoints,
    ReferencePathPoints,
    check_seed,
    seeded_generator,
)


def _times_input_field(times_input: bool, name: str) -> str:
    return f"{times_input} (→ {name}{'×Input' if times_input else ''} method)"


def explain_gradients(
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
    targets, outputs = forward_in_chunks(view.run, data, forward_rows)
    if reference is not None:
        reference_targets = forward_in_chunks(view.run, reference, forward_rows)[0]
        targets = [t - r.mean(0) for t, r in zip(targets, reference_targets, strict=True)]
    return {
        "result": [[None if r is None else r.cpu() for r in per_input] for per_input in result],
        "preds": select_outputs(outputs, output_idx),
        "decomp_goal": select_outputs(targets, output_idx),
    }


def noisy_points(
    data: list[Tensor], n: int, noise_level: float, times_input: bool, seed: int | None
) -> NoisyPoints:
    """SmoothGrad's points, with noise from a generator seeded with ``seed`` (None: torch's
    global one)."""
    return NoisyPoints(data, n, noise_level, times_input, seeded_generator(seed, data[0].device))


def reference_path_points(
    data: list[Tensor], data_ref: list[Tensor], n: int, seed: int | None
) -> ReferencePathPoints:
    """ExpectedGradient's points, drawn from a generator seeded with ``seed`` (None:
    torch's global one)."""
    return ReferencePathPoints(data, data_ref, n, seeded_generator(seed, data[0].device))


def _gradients_of(
    make_sampler: Callable[[list[Tensor], list[Tensor] | None], Sampler],
) -> Computation:
    """The computation of a gradient method with the given sample points."""

    def compute(request: Request) -> dict[str, Any]:
        return explain_gradients(
            request.view, request.inputs,
            lambda xs: make_sampler(xs, request.references), request.output_idx,
            request.progress, reference=request.references,
            memory_budget=request.memory_budget,
        )  # fmt: skip

    return compute


class Gradient(InterpretingMethod):
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
    needs = "gradients"

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
            _gradients_of(lambda xs, _: InstancePoints(xs, times_input)),
            common=common_arguments(locals()),
            value_name="Relevance" if times_input else "Gradient",
            fields={"times_input": _times_input_field(times_input, "Gradient")},
        )


class SmoothGrad(InterpretingMethod):
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
    {seed}

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
    needs = "gradients"

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
        seed: int | None = None,
        verbose: bool = False,
        dtype: DType = "float",
        progress_callback: ProgressCallback | None = None,
        memory_budget: int | None = None,
    ) -> None:
        times_input = check_bool(times_input, "times_input")
        n = check_int(n, "n")
        noise_level = check_number(noise_level, "noise_level")
        seed = check_seed(seed)
        self._attribute(
            converter,
            data,
            _gradients_of(lambda xs, _: noisy_points(xs, n, noise_level, times_input, seed)),
            common=common_arguments(locals()),
            value_name="Relevance" if times_input else "Gradient",
            fields={
                "n": str(n),
                "noise_level": f"{noise_level:g}",
                "times_input": _times_input_field(times_input, "SmoothGrad"),
                "seed": str(seed),
            },
        )


class IntegratedGradient(InterpretingMethod):
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
    needs = "gradients"
    goal = "f(x) − f(x_ref)"

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
            _gradients_of(lambda xs, refs: PathPoints(xs, refs, n, times_input)),
            common=common_arguments(locals()),
            value_name="Relevance" if times_input else "Gradient",
            fields={"n": str(n), "times_input": str(times_input)},
            reference=("x_ref", x_ref, True),
        )


class ExpectedGradient(InterpretingMethod):
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
    {seed}

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
    needs = "gradients"
    goal = "f(x) − mean f(data_ref)"

    def __init__(
        self,
        converter: Converter,
        data: Any,
        *,
        data_ref: Any = None,
        n: int = 50,
        seed: int | None = None,
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
        seed = check_seed(seed)
        self._attribute(
            converter,
            data,
            _gradients_of(lambda xs, refs: reference_path_points(xs, refs, n, seed)),
            common=common_arguments(locals()),
            value_name="Relevance",
            fields={"n": str(n), "seed": str(seed)},
            reference=("data_ref", data_ref, False),
        )


for _method in (Gradient, SmoothGrad, IntegratedGradient, ExpectedGradient):
    _method.__doc__ = _method.__doc__.replace("{common}", COMMON_DOC.strip("\n").lstrip())
    _method.__doc__ = _method.__doc__.replace("{seed}", SEED_DOC)
