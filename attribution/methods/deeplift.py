"""DeepLift and DeepSHAP (innsight's ``DeepLift`` and ``DeepSHAP``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from attribution._validation import DType, check_bool, check_int
from attribution.converter.converter import Converter
from attribution.converter.graph import ConvertedModel, ForwardPass
from attribution.methods._progress import ProgressCallback
from attribution.methods._propagation import (
    concatenate,
    layer_values,
    propagate,
    row_chunks,
    split_by_output,
    start_signals,
)
from attribution.methods.base import (
    COMMON_DOC,
    InterpretingMethod,
    Request,
    common_arguments,
    forward_in_chunks,
    select_outputs,
)
from attribution.methods.samplers import SEED_DOC, check_seed, seeded_generator
from attribution.rules import DEEPLIFT_RULES, stabilizer


def _check_rule(rule_name: Any) -> str:
    if rule_name not in DEEPLIFT_RULES:
        raise ValueError(
            f"rule_name must be one of {', '.join(map(repr, DEEPLIFT_RULES))}; got {rule_name!r}."
        )
    return rule_name


class DeepLift(InterpretingMethod):
    """DeepLift (Shrikumar et al., 2017) with the Rescale and RevealCancel rules.

    Multipliers of the selected output nodes are passed back layer by layer, comparing
    the forward pass of ``data`` with that of the reference ``x_ref``; the contribution
    of an input is its multiplier times ``x − x_ref``.

    Parameters
    ----------
    {common}
    rule_name : {"rescale", "reveal_cancel"}, default="rescale"
        How multipliers pass a dense or convolutional layer's activation:
        ``rescale`` uses ``Δy/Δz`` (the gradient at the midpoint where ``|Δz|`` is below
        the stabiliser); ``reveal_cancel`` splits ``Δz`` into the parts of positive and
        negative contributions, each with its own multiplier, routed to the inputs by the
        sign of their ``Δx``. Standalone activations always use rescale.
    x_ref : array-like or list, default=None
        The reference: one instance (a list of them for several input layers); None is
        zeros.
    winner_takes_all : bool, default=True
        Max pooling passes multipliers to the maximum of each window of ``x``
        (summation-to-delta may break where the maxima of ``x`` and ``x_ref`` differ);
        False rescales average pooling by ``(max(x) − max(x_ref)) / avg(x − x_ref)``,
        which keeps it (global max pooling likewise, with the global average).

    Notes
    -----
    ``decomp_goal`` is ``f(x) − f(x_ref)`` (of the pre-activation with
    ``ignore_last_act``); the contributions of each instance sum to it.

    References
    ----------
    A. Shrikumar et al. (2017), Learning important features through propagating
    activation differences, ICML.

    Examples
    --------
    >>> import torch
    >>> from attribution import Converter, DeepLift
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
    ...                             torch.nn.Linear(4, 2))
    >>> res = DeepLift(Converter(model), torch.randn(5, 3), rule_name="reveal_cancel")
    >>> res.get_result().shape
    (5, 3, 2)
    """

    method_name = "DeepLift"
    goal = "f(x) − f(x_ref)"

    def __init__(
        self,
        converter: Converter,
        data: Any,
        *,
        channels_first: bool = True,
        output_idx: Any = None,
        output_label: Any = None,
        ignore_last_act: bool = True,
        rule_name: str = "rescale",
        x_ref: Any = None,
        winner_takes_all: bool = True,
        verbose: bool = False,
        dtype: DType = "float",
        progress_callback: ProgressCallback | None = None,
        memory_budget: int | None = None,
    ) -> None:
        rule_name = _check_rule(rule_name)
        winner_takes_all = check_bool(winner_takes_all, "winner_takes_all")
        self._attribute(
            converter,
            data,
            lambda request: _contributions(request, rule_name, winner_takes_all),
            common=common_arguments(locals()),
            value_name="Contribution",
            fields={"rule_name": repr(rule_name), "winner_takes_all": str(winner_takes_all)},
            reference=("x_ref", x_ref, True),
        )


class DeepSHAP(InterpretingMethod):
    """DeepSHAP: DeepLift averaged over a reference distribution (Lundberg & Lee, 2017).

    Every instance is paired with every kept reference row; the contributions of DeepLift
    against each reference are averaged.

    Parameters
    ----------
    {common}
    rule_name : {"rescale", "reveal_cancel"}, default="rescale"
        DeepLift's rule (see :class:`DeepLift`).
    data_ref : array-like or list, default=None
        The reference distribution (rows as ``data``); None is one row of zeros (then
        this is DeepLift with a zero reference).
    limit_ref : int, default=100
        At most this many reference rows, drawn without replacement.
    winner_takes_all : bool, default=True
        See :class:`DeepLift`.
    {seed}

    Notes
    -----
    ``decomp_goal`` is ``f(x) − mean f(refs)`` over the kept references. The instance ×
    reference pairs run in chunks that fit the memory budget.

    References
    ----------
    S. M. Lundberg and S.-I. Lee (2017), A unified approach to interpreting model
    predictions, NeurIPS.
    """

    method_name = "DeepSHAP"
    goal = "f(x) − mean f(data_ref)"

    def __init__(
        self,
        converter: Converter,
        data: Any,
        *,
        channels_first: bool = True,
        output_idx: Any = None,
        output_label: Any = None,
        ignore_last_act: bool = True,
        rule_name: str = "rescale",
        data_ref: Any = None,
        limit_ref: int = 100,
        winner_takes_all: bool = True,
        seed: int | None = None,
        verbose: bool = False,
        dtype: DType = "float",
        progress_callback: ProgressCallback | None = None,
        memory_budget: int | None = None,
    ) -> None:
        rule_name = _check_rule(rule_name)
        limit_ref = check_int(limit_ref, "limit_ref")
        winner_takes_all = check_bool(winner_takes_all, "winner_takes_all")
        seed = check_seed(seed)
        self._attribute(
            converter,
            data,
            lambda request: _shapley_contributions(
                request, rule_name, winner_takes_all, limit_ref, seed
            ),
            common=common_arguments(locals()),
            value_name="Contribution",
            fields={
                "rule_name": repr(rule_name),
                "limit_ref": str(limit_ref),
                "winner_takes_all": str(winner_takes_all),
                "seed": str(seed),
            },
            reference=("data_ref", data_ref, False),
        )


def _contributions(request: Request, rule_name: str, winner_takes_all: bool) -> dict:
    model = request.view.model
    n_outputs = sum(len(idx) for idx in request.output_idx if idx)
    chunks = list(row_chunks(model, len(request.inputs[0]), n_outputs, request.memory_budget))
    request.progress.start(len(chunks) * len(model.nodes))
    with torch.no_grad():
        reference_pass = model.run(request.references, keep=True)
    parts = [
        _deeplift(model, [x[rows] for x in request.inputs], request.references, reference_pass,
                  request, rule_name, winner_takes_all)
        for rows in chunks
    ]  # fmt: skip
    targets, outputs = (concatenate([part[i] for part in parts], 0) for i in (1, 2))
    reference_targets = _targets(reference_pass, request.ignore_last_act)
    goals = [t - r for t, r in zip(targets, reference_targets, strict=True)]
    return {
        "result": split_by_output(
            model, request.output_idx, concatenate([part[0] for part in parts], 1)
        ),
        "preds": select_outputs(outputs, request.output_idx),
        "decomp_goal": select_outputs(goals, request.output_idx),
    }


def _shapley_contributions(
    request: Request, rule_name: str, winner_takes_all: bool, limit_ref: int, seed: int | None
) -> dict:
    model = request.view.model
    references = request.references
    if len(references[0]) > limit_ref:
        device = references[0].device
        keep = torch.randperm(
            len(references[0]), device=device, generator=seeded_generator(seed, device)
        )[:limit_ref]
        references = [r[keep] for r in references]
    n_refs, n_rows = len(references[0]), len(request.inputs[0])
    n_outputs = sum(len(idx) for idx in request.output_idx if idx)
    chunks = list(row_chunks(model, n_rows * n_refs, n_outputs, request.memory_budget, copies=2))
    request.progress.start(len(chunks) * len(model.nodes))
    sums: list[Tensor | None] = [None] * model.n_inputs
    for chunk in chunks:  # pair p is (instance p // n_refs, reference p % n_refs)
        pair = torch.arange(chunk.start, chunk.stop, device=references[0].device)
        rows = pair // n_refs
        xs, rs = [x[rows] for x in request.inputs], [r[pair % n_refs] for r in references]
        with torch.no_grad():
            reference_pass = model.run(rs, keep=True)
        signals = _deeplift(model, xs, rs, reference_pass, request, rule_name, winner_takes_all)[0]
        for j, signal in enumerate(signals):
            if signal is not None:
                if sums[j] is None:
                    sums[j] = signal.new_zeros(signal.shape[0], n_rows, *signal.shape[2:])
                sums[j].index_add_(1, rows, signal)
    rows_per_pass = chunks[0].stop - chunks[0].start
    targets, outputs = forward_in_chunks(request.view.run, request.inputs, rows_per_pass)
    reference_targets = forward_in_chunks(request.view.run, references, rows_per_pass)[0]
    goals = [t - r.mean(0) for t, r in zip(targets, reference_targets, strict=True)]
    return {
        "result": split_by_output(
            model, request.output_idx, [None if s is None else s / n_refs for s in sums]
        ),
        "preds": select_outputs(outputs, request.output_idx),
        "decomp_goal": select_outputs(goals, request.output_idx),
    }


def _deeplift(
    model: ConvertedModel,
    xs: list[Tensor],
    refs: list[Tensor],
    reference_pass: ForwardPass,
    request: Request,
    rule_name: str,
    winner_takes_all: bool,
) -> tuple[list[Tensor | None], list[Tensor], list[Tensor]]:
    """Contributions ``(K, rows, *input_dim)`` per input against ``refs`` (one row, or one
    per instance), with the differentiated and the activated outputs of ``xs``."""
    stab = stabilizer(model.dtype)
    with torch.no_grad():
        pass_ = model.run(xs, keep=True)
    starts = start_signals(model, request.output_idx, [torch.ones_like(o) for o in pass_.outputs])

    def step(position: int, from_consumers: Tensor | None, own: Tensor | None) -> list[Tensor]:
        m_out, m_pre = from_consumers, None
        if own is not None and request.ignore_last_act:  # the start is for the pre-activation
            m_pre = own
        elif own is not None:
            m_out = own if m_out is None else m_out + own
        return model.nodes[position].layer.deeplift(
            layer_values(pass_, position), layer_values(reference_pass, position), m_out, m_pre,
            rule_name, winner_takes_all, stab,
        )  # fmt: skip

    with torch.no_grad():
        multipliers = propagate(model, starts, step, request.progress)
    contributions = [
        None if m is None else m * (x - r) for m, x, r in zip(multipliers, xs, refs, strict=True)
    ]
    return contributions, _targets(pass_, request.ignore_last_act), pass_.outputs


def _targets(pass_: ForwardPass, ignore_last_act: bool) -> list[Tensor]:
    return pass_.preactivations if ignore_last_act else pass_.outputs


for _method in (DeepLift, DeepSHAP):
    _method.__doc__ = _method.__doc__.replace("{common}", COMMON_DOC.strip("\n").lstrip())
    _method.__doc__ = _method.__doc__.replace("{seed}", SEED_DOC)
