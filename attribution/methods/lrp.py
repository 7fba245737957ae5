"""Layer-wise Relevance Propagation (innsight's ``LRP``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from attribution._validation import DType, check_bool
from attribution.converter.converter import Converter
from attribution.layers.base import sum_present
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
    select_outputs,
)
from attribution.rules import LRP_DEFAULT_PARAMS, LRPRule, resolve_lrp_rules, stabilizer

_CENTRED = ("sigmoid", "softmax")


class LRP(InterpretingMethod):
    """Layer-wise Relevance Propagation (Bach et al., 2015) with innsight's rules.

    The relevance of each selected output node, starting from its value, is passed back
    layer by layer; each layer splits what it receives among its inputs by their share of
    its pre-activation (activations are skipped).

    Parameters
    ----------
    {common}
    rule_name : str or dict, default="simple"
        ``"simple"``, ``"epsilon"``, ``"alpha_beta"``, ``"pass"`` (batch normalisation
        only: the layer is skipped) or ``"equal"`` (sums and global average pooling
        only: innsight's even split); or a dict keyed by innsight's layer types
        (``Dense_Layer``, ``Conv1D_Layer``, ``Conv2D_Layer``, ``BatchNorm_Layer``,
        ``AvgPool1D_Layer``, ``AvgPool2D_Layer``, ``MaxPool1D_Layer``,
        ``MaxPool2D_Layer``, ``Add_Layer``, ``GlobalAvgPool_Layer``); types missing from
        the dict use ``"simple"``. At a sum (``Add_Layer``, residual ``+``) the rules
        share relevance by each input's part of the sum, as for a linear layer with
        weights 1 (Zennit's residual canonizer does the same); innsight splits it
        equally, which inflates relevance block by block where a branch's output is near
        zero: use ``rule_name={"Add_Layer": "equal"}`` for innsight's numbers. Global
        average pooling takes the rule of average pooling likewise (innsight: ``"equal"``).
    rule_param : float or dict, default=None
        ε for ``epsilon`` (default 0.01, as innsight documents it; innsight's code falls
        back to 0.001) and α for ``alpha_beta`` (default 0.5); a dict keyed like
        ``rule_name``, missing types get the rule's default.
    winner_takes_all : bool, default=True
        Max pooling gives all relevance to the maximum of each window; False treats it
        as average pooling with the layer's rule (global max pooling as global average
        pooling).

    Notes
    -----
    With ``ignore_last_act`` the start is the pre-activation of the output node;
    otherwise its activated output, minus 0.5 after a sigmoid or softmax so that 0 means
    no relevance. ``decomp_goal`` is that start value: ``simple`` conserves it exactly
    where biases are zero.

    - ``simple``: ``R_in = x ⊙ Wᵀ(R / z̃)``, ``z̃ = z + ε_s·sign(z)`` (ε_s = 1e-6 in float,
      1e-15 in double; the bias is part of ``z``).
    - ``epsilon``: the same with ``ε`` for ``ε_s``.
    - ``alpha_beta``: ``α R⁺ + (1 − α) R⁻`` with the bias split by sign into the positive
      and negative parts (innsight's variant; β = α − 1 in the usual notation).
    - Addition layers give each input an equal share; global average pooling spreads
      evenly; standalone activations, flattening and padding pass relevance through.

    References
    ----------
    S. Bach et al. (2015), On pixel-wise explanations for non-linear classifier decisions
    by layer-wise relevance propagation, PLoS ONE 10(7).

    Examples
    --------
    >>> import torch
    >>> from attribution import LRP, Converter
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.ReLU(),
    ...                             torch.nn.Linear(4, 2, bias=False))
    >>> res = LRP(Converter(model), torch.randn(5, 3), rule_name="epsilon")
    >>> res.get_result().shape
    (5, 3, 2)
    """

    method_name = "LRP"
    goal = "f(x)"

    def __init__(
        self,
        converter: Converter,
        data: Any,
        *,
        channels_first: bool = True,
        output_idx: Any = None,
        output_label: Any = None,
        ignore_last_act: bool = True,
        rule_name: str | dict = "simple",
        rule_param: float | dict | None = None,
        winner_takes_all: bool = True,
        verbose: bool = False,
        dtype: DType = "float",
        progress_callback: ProgressCallback | None = None,
        memory_budget: int | None = None,
    ) -> None:
        rules = resolve_lrp_rules(rule_name, rule_param)
        winner_takes_all = check_bool(winner_takes_all, "winner_takes_all")
        self._attribute(
            converter,
            data,
            lambda request: _relevances(request, rules, winner_takes_all),
            common=common_arguments(locals()),
            value_name="Relevance",
            fields={
                "rule_name": _describe_rules(rule_name, "simple"),
                "rule_param": _describe_params(rule_name, rule_param),
                "winner_takes_all": str(winner_takes_all),
            },
        )


def _relevances(request: Request, rules: dict[str, LRPRule], winner_takes_all: bool) -> dict:
    model = request.view.model
    stab = stabilizer(model.dtype)
    n_outputs = sum(len(idx) for idx in request.output_idx if idx)
    chunks = list(row_chunks(model, len(request.inputs[0]), n_outputs, request.memory_budget))
    request.progress.start(len(chunks) * len(model.nodes))
    signals, preds, goals = [], [], []
    for rows in chunks:
        with torch.no_grad():
            pass_ = model.run([x[rows] for x in request.inputs], keep=True)
        start = [
            _start_value(model, k, pass_, request.ignore_last_act)
            for k in range(len(model.output_nodes))
        ]

        def step(
            position: int, from_consumers: Tensor | None, own: Tensor | None, pass_=pass_
        ) -> list[Tensor]:
            layer = model.nodes[position].layer
            rule = rules.get(layer.type_name, LRPRule("simple"))
            return layer.lrp(
                layer_values(pass_, position),
                sum_present(from_consumers, own),
                rule,
                winner_takes_all,
                stab,
            )

        with torch.no_grad():
            signals.append(
                propagate(
                    model, start_signals(model, request.output_idx, start), step, request.progress
                )
            )
        preds.append(pass_.outputs)
        goals.append(start)
    return {
        "result": split_by_output(model, request.output_idx, concatenate(signals, 1)),
        "preds": select_outputs(concatenate(preds, 0), request.output_idx),
        "decomp_goal": select_outputs(concatenate(goals, 0), request.output_idx),
    }


def _start_value(model, k: int, pass_, ignore_last_act: bool) -> Tensor:
    """innsight's start: the pre-activation, or the output (minus 0.5 after sigmoid/softmax)."""
    if ignore_last_act:
        return pass_.preactivations[k]
    activation = model.nodes[model.output_nodes[k]].layer.activation
    centred = activation is not None and activation.name in _CENTRED
    return pass_.outputs[k] - 0.5 if centred else pass_.outputs[k]


def _describe_rules(value: Any, default: str) -> str:
    if not isinstance(value, dict):
        return repr(value)
    named = ", ".join(f"{key}: {rule!r}" for key, rule in value.items())
    return f"{named}; other layers: {default!r}"


def _describe_params(rule_name: Any, rule_param: Any) -> str:
    if isinstance(rule_param, dict):
        named = ", ".join(f"{key}: {value!r}" for key, value in rule_param.items())
        return f"{named}; other layers: the rule's default"
    if rule_param is not None:
        return repr(rule_param)
    if isinstance(rule_name, str):
        return repr(LRP_DEFAULT_PARAMS.get(rule_name))
    return "the rules' defaults"


LRP.__doc__ = LRP.__doc__.replace("{common}", COMMON_DOC.strip("\n").lstrip())
