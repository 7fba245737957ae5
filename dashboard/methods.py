"""Which methods apply to a model, their parameters (innsight's defaults), and running one.

Dash-free: the page builds its controls from :data:`PARAMETERS` and
:data:`METHOD_PARAMETERS`, and the background job calls :func:`run_method` with the canonical
parameters of :func:`canonical_params`, which are also part of the result's cache key.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import attribution
from attribution._validation import check_bool, check_int, check_number
from attribution.converter.loading import LoadedModel
from attribution.result import AttributionResult
from attribution.rules import DEEPLIFT_RULES, LRP_RULES, RULE_LAYER_TYPES


@dataclass(frozen=True)
class Parameter:
    """One method argument as the page offers it."""

    name: str
    label: str
    default: Any
    help: str
    kind: str  # "bool", "int", "float", "choice", "reference", "rules"
    choices: tuple = ()
    minimum: float | None = None


PARAMETERS = {
    p.name: p
    for p in (
        Parameter("times_input", "× input", False, "Multiply the gradients by the input "
                  "(Gradient × Input); the attributions then sum to about the output.", "bool"),
        Parameter("n", "Samples / steps (n)", 50, "Noisy copies (SmoothGrad), path steps "
                  "(IntegratedGradient) or reference draws (ExpectedGradient).", "int",
                  minimum=1),
        Parameter("noise_level", "Noise level", 0.1, "Noise standard deviation as a share "
                  "of the data's range (max − min).", "float", minimum=0.0),
        Parameter("reference", "Reference input", "zeros", "What the input is compared "
                  "with: zeros, the data's mean, or one row of the data.", "reference",
                  choices=("zeros", "mean", "row")),
        Parameter("reference_row", "Reference row", 0, "The row (0-based) used as the "
                  "reference input.", "int", minimum=0),
        Parameter("limit_ref", "Reference rows (limit_ref)", 100, "At most this many data "
                  "rows serve as DeepSHAP's reference set.", "int", minimum=1),
        Parameter("rule_name", "Rule per layer type", "simple", "LRP: simple, epsilon, "
                  "alpha_beta (pass: BatchNorm only). DeepLift/DeepSHAP: rescale or "
                  "reveal_cancel.", "rules"),
        Parameter("rule_param", "Rule parameter", None, "ε of the epsilon rule (default "
                  "0.01) or α of alpha_beta (default 0.5); empty for the default.", "rules"),
        Parameter("winner_takes_all", "Winner takes all", True, "Max pooling passes all "
                  "relevance to the maximum (else: treated like average pooling).", "bool"),
        Parameter("ignore_last_act", "Ignore last activation", True, "Explain the output "
                  "before its last activation (e.g. logits instead of softmax).", "bool"),
        Parameter("dtype", "Precision", "float", "float (32 bit) or double (64 bit).",
                  "choice", choices=("float", "double")),
    )
}  # fmt: skip
"""Every parameter the page can show, with innsight's default and a one-line help."""

_COMMON = ("ignore_last_act", "dtype")
METHOD_PARAMETERS: dict[str, tuple[str, ...]] = {
    "Gradient": ("times_input", *_COMMON),
    "SmoothGrad": ("times_input", "n", "noise_level", *_COMMON),
    "IntegratedGradient": ("times_input", "n", "reference", "reference_row", *_COMMON),
    "ExpectedGradient": ("n", *_COMMON),
    "LRP": ("rule_name", "rule_param", "winner_takes_all", *_COMMON),
    "DeepLift": ("rule_name", "reference", "reference_row", "winner_takes_all", *_COMMON),
    "DeepSHAP": ("rule_name", "limit_ref", "winner_takes_all", *_COMMON),
    "ConnectionWeights": ("times_input", "dtype"),
}
"""The parameters each method takes (ExpectedGradient/DeepSHAP use the data as reference
set)."""

METHOD_DEFAULTS = {
    "IntegratedGradient": {"times_input": True},
    "DeepLift": {"rule_name": "rescale"},
    "DeepSHAP": {"rule_name": "rescale"},
}
"""Defaults of a method that differ from those in :data:`PARAMETERS` (innsight's)."""


def rule_layer_types(model: LoadedModel) -> list[str]:
    """innsight's names of the layer types in the model that take an LRP/DeepLift rule."""
    if model.converter is None:
        return []
    present = {node.layer.type_name for node in model.converter.model.nodes}
    return [name for name in RULE_LAYER_TYPES if name in present]


def rule_choices(method: str) -> tuple[str, ...]:
    """The rule names a method accepts."""
    return tuple(LRP_RULES) if method == "LRP" else DEEPLIFT_RULES


def canonical_params(method: str, raw: dict[str, Any], model: LoadedModel) -> dict[str, Any]:
    """The method's parameters with defaults filled in and other keys dropped.

    The result is what the method is called with and part of the cache key, so equal
    requests give equal dicts. Values are checked and normalised (``50.0`` → ``50``);
    ``rule_name`` / ``rule_param`` become dicts over the rule layer types present, with no
    parameter for the rules that take none (DeepLift and DeepSHAP take one rule for all
    layers). ``ignore_last_act`` is dropped for unconverted models: the ``torch_*``
    functions explain the module's output as it is.

    Raises
    ------
    ValueError, TypeError
        The method is unknown or does not apply to the model, or a value is not allowed
        (the message names the parameter, the value and what is allowed).
    """
    if method not in METHOD_PARAMETERS:
        raise ValueError(
            f"Unknown method {method!r}; choose one of {', '.join(METHOD_PARAMETERS)}."
        )
    if method not in model.methods:
        raise ValueError(
            f"{method} needs a converted model; this one is not converted "
            f"({model.conversion_error}). Choose one of {', '.join(model.methods)}."
        )
    params = {}
    for name in parameters_of(method, model):
        default = METHOD_DEFAULTS.get(method, {}).get(name, PARAMETERS[name].default)
        value = raw.get(name)
        params[name] = default if value is None or value == "" else value
    for name, value in params.items():
        if name not in ("rule_name", "rule_param"):
            params[name] = _checked(PARAMETERS[name], value)
    if method == "LRP":
        types = rule_layer_types(model)
        names = params["rule_name"] if isinstance(params["rule_name"], dict) else {}
        values = params["rule_param"] if isinstance(params["rule_param"], dict) else {}
        params["rule_name"] = {t: _lrp_rule(names.get(t) or "simple", t) for t in types}
        params["rule_param"] = {
            t: None if params["rule_name"][t] in _NO_PARAMETER else _rule_param(values.get(t), t)
            for t in types
        }
    elif "rule_name" in params and params["rule_name"] not in DEEPLIFT_RULES:
        raise ValueError(
            f"{method} rule {params['rule_name']!r} is not allowed; choose one of "
            f"{', '.join(DEEPLIFT_RULES)}."
        )
    if params.get("reference") != "row":
        params.pop("reference_row", None)
    return params


def parameters_of(method: str, model: LoadedModel) -> tuple[str, ...]:
    """The parameters ``method`` takes for ``model``: ``ignore_last_act`` only for converted
    models (the ``torch_*`` functions explain the module's output as it is)."""
    names = METHOD_PARAMETERS[method]
    return names if model.converter else tuple(n for n in names if n != "ignore_last_act")


_NO_PARAMETER = ("simple", "pass")  # LRP rules that take no rule_param


def _checked(parameter: Parameter, value: Any) -> Any:
    """``value`` in the canonical form of its kind, or a ValueError naming what is allowed."""
    name = parameter.name
    if parameter.kind == "bool":
        return check_bool(value, name)
    if parameter.kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return check_int(value, name, int(parameter.minimum or 0))
    if parameter.kind == "float":
        return check_number(value, name, parameter.minimum or 0.0)
    if value not in parameter.choices:
        raise ValueError(
            f"{name} {value!r} is not allowed; choose one of {', '.join(parameter.choices)}."
        )
    return value


def _lrp_rule(name: Any, layer_type: str) -> str:
    allowed = tuple(r for r in LRP_RULES if r != "pass" or layer_type == "BatchNorm_Layer")
    if name not in allowed:
        raise ValueError(
            f"LRP rule {name!r} is not allowed for {layer_type}; choose one of "
            f"{', '.join(allowed)}."
        )
    return name


def _rule_param(value: Any, layer_type: str) -> float | None:
    if value is None or value == "":
        return None
    return check_number(value, f"rule_param of {layer_type}", minimum=-math.inf)


def run_method(
    model: LoadedModel,
    inputs: list[np.ndarray],
    method: str,
    params: dict[str, Any],
    output_idx: list[list[int] | None],
    progress_callback: Callable[[int, int], None] | None = None,
    reference_data: list[np.ndarray] | None = None,
) -> AttributionResult:
    """Explain ``inputs`` (channels first, one array per input layer) with ``method``.

    Converted models run the method classes; other modules the ``torch_*`` functions
    (their progress is reported once, as ``(1, 1)`` when done). ``reference_data`` (default:
    ``inputs``) is the data the reference comes from: its mean or one of its rows
    (``x_ref``), or the reference set of ExpectedGradient and DeepSHAP (``data_ref``).
    """
    kwargs = dict(params)
    references = inputs if reference_data is None else reference_data
    reference = kwargs.pop("reference", None)
    row = kwargs.pop("reference_row", 0)
    if reference is not None:
        kwargs["x_ref"] = _reference(references, reference, row)
    if method in ("ExpectedGradient", "DeepSHAP"):
        kwargs["data_ref"] = references if len(references) > 1 else references[0]
    data = inputs if len(inputs) > 1 else inputs[0]
    if method == "LRP":
        kwargs["rule_param"] = {k: v for k, v in kwargs["rule_param"].items() if v is not None}
    if model.converter is None:
        result = _run_torch(model, data, method, kwargs, output_idx)
        if progress_callback is not None:
            progress_callback(1, 1)
        return result
    method_class = getattr(attribution, method)
    if method == "ConnectionWeights" and not kwargs["times_input"]:
        data = None
    return method_class(
        model.converter, data, output_idx=output_idx, progress_callback=progress_callback,
        **kwargs,
    )  # fmt: skip


_TORCH_FUNCTIONS = {
    "Gradient": "torch_grad",
    "SmoothGrad": "torch_smoothgrad",
    "IntegratedGradient": "torch_intgrad",
    "ExpectedGradient": "torch_expgrad",
}


def _run_torch(
    model: LoadedModel, data: Any, method: str, kwargs: dict, output_idx: list
) -> AttributionResult:
    function = getattr(attribution, _TORCH_FUNCTIONS[method])
    result = function(model.module, data, output_idx=output_idx, return_object=True, **kwargs)
    # the torch_* functions know no names; the loaded model does (user-given or innsight's)
    result.input_names, result.output_names = model.input_names, model.output_names
    return result


def _reference(inputs: list[np.ndarray], reference: str, row: int) -> Any:
    if reference == "zeros":
        return None
    if reference == "mean":
        chosen = [x.mean(axis=0, keepdims=True) for x in inputs]
    else:
        n_rows = len(inputs[0])
        if not 0 <= int(row) < n_rows:
            raise ValueError(
                f"Reference row {row} is out of range: the data has {n_rows} rows (0–{n_rows - 1})."
            )
        chosen = [x[int(row) : int(row) + 1] for x in inputs]
    return chosen if len(chosen) > 1 else chosen[0]
