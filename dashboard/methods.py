"""Which methods apply to a model, their parameters (innsight's defaults), and running one.

Dash-free: the page builds its controls from :data:`PARAMETERS` and
:data:`METHOD_PARAMETERS`, and the background job calls :func:`run_method` with the canonical
parameters of :func:`canonical_params`, which are also part of the result's cache key.
The methods, the parameters each takes and their defaults come from the engine's catalogue
(:mod:`attribution.methods.catalogue`); this module adds the page's labels, help, bounds
and the parameters that only the page has (where a reference comes from).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from attribution._validation import check_bool, check_int, check_number
from attribution.converter.loading import LoadedModel
from attribution.methods import catalogue
from attribution.methods.samplers import MAX_SEED
from attribution.methods.torch_direct import TORCH_FUNCTIONS
from attribution.result import AttributionResult
from attribution.rules import DEEPLIFT_RULES, LRP_RULES, RULE_LAYER_TYPES, lrp_rules_for


@dataclass(frozen=True)
class Parameter:
    """One method argument as the page offers it."""

    name: str
    label: str
    default: Any  # the page's own parameters only; the engine's come from its signature
    help: str
    kind: str  # "bool", "int", "float", "choice", "reference", "rules", "sha"
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    advanced: bool = False  # folded away on the page ("More options")

    @property
    def numeric(self) -> bool:
        """Whether the page shows a number field (which may be left empty)."""
        return self.kind in ("int", "float")


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
        Parameter("seed", "Random seed", 0, "Seed of the method's random draws (noise, "
                  "reference rows, path points): the same seed gives the same numbers on any "
                  "server.", "int", minimum=0, maximum=MAX_SEED, advanced=True),
        Parameter("reference", "Reference input", "zeros", "What the input is compared "
                  "with: zeros, the data's mean, one row of the data, or an uploaded one-row "
                  "file (below).", "reference", choices=("zeros", "mean", "row", "upload")),
        Parameter("reference_row", "Reference row", 0, "The row (0-based) used as the "
                  "reference input.", "int", minimum=0),
        Parameter("background", "Background set", "data", "The reference set: all the "
                  "data, a random sample of its rows, or an uploaded file (below).",
                  "reference", choices=("data", "sample", "upload")),
        Parameter("sample_size", "Sample size", 100, "Rows drawn (without replacement) for "
                  "the background sample; at most the data's rows.", "int", minimum=1),
        Parameter("sample_seed", "Sample seed", 0, "Seed of the background sample: the same "
                  "seed draws the same rows.", "int", minimum=0, advanced=True),
        Parameter("reference_sha", "Reference file", None, "The sha256 of the uploaded "
                  "reference file.", "sha"),
        Parameter("limit_ref", "Reference rows (limit_ref)", 100, "At most this many rows "
                  "of the background set serve as DeepSHAP's references.", "int", minimum=1,
                  advanced=True),
        Parameter("n_permutations", "Perturbed samples", None, "Perturbed copies of the "
                  "data that LIME's local linear model is fitted on: more give steadier "
                  "weights and take longer.", "int", minimum=2, maximum=20000),
        Parameter("n_bins", "Bins per feature", None, "Quantile bins each feature of the "
                  "reference data is cut into; a perturbed value is drawn inside a bin.",
                  "int", minimum=1, maximum=20, advanced=True),
        Parameter("ridge_lambda", "Ridge penalty (λ)", None, "The penalty of LIME's ridge "
                  "regression on standardised features.", "float", minimum=0.0,
                  advanced=True),
        Parameter("nsim", "Simulations (nsim)", None, "Monte-Carlo simulations per feature "
                  "and row: more give steadier Shapley values.", "int", minimum=1,
                  maximum=100),
        Parameter("adjust", "Sum to the goal", None, "Shift the values so they sum exactly "
                  "to f(x) − mean f(background), by each value's variance (needs nsim ≥ 2).",
                  "bool"),
        Parameter("rule_name", "Rule per layer type", "simple", "LRP: simple, epsilon, "
                  "alpha_beta (pass: BatchNorm only). DeepLift/DeepSHAP: rescale or "
                  "reveal_cancel.", "rules"),
        Parameter("rule_param", "Rule parameter", None, "ε of the epsilon rule (default "
                  "0.01) or α of alpha_beta (default 0.5); empty for the default.", "rules"),
        Parameter("winner_takes_all", "Winner takes all", True, "Max pooling passes all "
                  "relevance to the maximum (else: treated like average pooling).", "bool",
                  advanced=True),
        Parameter("ignore_last_act", "Ignore last activation", True, "Explain the output "
                  "before its last activation (e.g. logits instead of softmax).", "bool",
                  advanced=True),
        Parameter("dtype", "Precision", "float", "float (32 bit) or double (64 bit).",
                  "choice", choices=("float", "double"), advanced=True),
    )
}  # fmt: skip
"""Every parameter the page can show, with innsight's default and a one-line help."""

_FROM_DATA = {
    "x_ref": ("reference", "reference_row", "reference_sha"),
    "data_ref": ("background", "sample_size", "sample_seed", "reference_sha"),
}
"""The page's controls for the engine's reference arguments (see :func:`engine_kwargs`)."""
UPLOADED_ONLY = ("reference_sha",)
"""Parameters the page sets from the reference upload, not from a control of the panel."""


def _page_parameters(method: str) -> tuple[str, ...]:
    """The method's engine parameters that the page shows, in signature order, with the
    reference arguments as the page's controls for them."""
    names: list[str] = []
    for name in catalogue.parameters(method):
        names += _FROM_DATA.get(name, (name,) if name in PARAMETERS else ())
    return tuple(names)


METHOD_PARAMETERS: dict[str, tuple[str, ...]] = {m: _page_parameters(m) for m in catalogue.METHODS}
"""The parameters each method takes (read from the engine's signatures)."""

METHOD_TEXTS: dict[tuple[str, str], tuple[str, str]] = {
    ("SmoothGrad", "n"): ("Noisy copies (n)", "How many noisy copies of each input are "
                          "averaged: more give smoother maps and take longer."),
    ("IntegratedGradient", "n"): ("Path steps (n)", "Points on the straight path from the "
                                  "reference to the input: more give a closer integral."),
    ("ExpectedGradient", "n"): ("Reference draws (n)", "Random (reference, path point) "
                                "pairs per input: more give steadier attributions."),
    ("IntegratedGradient", "times_input"): ("× (input − reference)", "Multiply the "
                                             "averaged gradients by input − reference "
                                             "(the attributions then sum to about f(x) − "
                                             "f(reference))."),
    ("ConnectionWeights", "times_input"): ("× input (local)", "Multiply the connection "
                                           "weights by the input: one map per data point "
                                           "instead of one for the model."),
}  # fmt: skip
"""Labels and help of a parameter that mean something else for one method."""


def parameter_text(method: str, name: str) -> tuple[str, str]:
    """The label and help the page shows for ``method``'s parameter ``name``."""
    parameter = PARAMETERS[name]
    return METHOD_TEXTS.get((method, name), (parameter.label, parameter.help))


def parameter_default(method: str, name: str) -> Any:
    """The default of ``method``'s parameter ``name``: the engine's (innsight's), but 0 for
    ``seed`` (the engine's None draws from torch's global generator; the page's requests
    are reproducible), and the page's own for the parameters only it has."""
    engine = catalogue.parameters(method)
    return PARAMETERS[name].default if name == "seed" or name not in engine else engine[name]


def parameter_problem(method: str, name: str, value: Any) -> str | None:
    """Why a value typed into ``method``'s field ``name`` is refused (the message
    :func:`canonical_params` raises), or None when it is allowed."""
    try:
        _checked(PARAMETERS[name], _typed(method, name, value), parameter_default(method, name))
    except ValueError as error:
        return str(error)
    return None


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
    functions explain the module's output as it is. ``reference_row`` stays only for the
    "row" reference, ``sample_size`` and ``sample_seed`` only for the "sample" background,
    and ``reference_sha`` (the uploaded reference file's sha256, never its bytes) only when
    the reference or background is "upload", where it is required.
    ``seed`` defaults to 0 (not the engine's None, torch's global generator), so every
    request of a stochastic method is reproducible.

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
    params = {
        name: _typed(method, name, raw[name]) if name in raw else parameter_default(method, name)
        for name in parameters_of(method, model)
    }
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
    if params.get("background") != "sample":
        params.pop("sample_size", None)
        params.pop("sample_seed", None)
    if "upload" not in (params.get("reference"), params.get("background")):
        params.pop("reference_sha", None)
    elif params.get("reference_sha") is None:
        raise ValueError(
            f"{method} is set to an uploaded reference, but no reference file is uploaded: "
            "upload one in the reference area, or choose another reference."
        )
    for name, value in params.items():  # checked once the unused ones are dropped
        if name not in ("rule_name", "rule_param"):
            params[name] = _checked(PARAMETERS[name], value, parameter_default(method, name))
    return params


_EMPTY = object()
"""A number field left empty (refused: nothing is filled in behind the user's back)."""


def _typed(method: str, name: str, value: Any) -> Any:
    """A page value: an empty number field is :data:`_EMPTY`, another empty value (a
    choice nobody made, an empty rule parameter) the default."""
    if value is not None and value != "":
        return value
    return _EMPTY if PARAMETERS[name].numeric else parameter_default(method, name)


def sample_rows(n_rows: int, size: int, seed: int) -> np.ndarray:
    """The sorted indices of ``min(size, n_rows)`` rows drawn without replacement with
    numpy's ``default_rng(seed)``: the same arguments give the same rows."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=min(size, n_rows), replace=False))


def parameters_of(method: str, model: LoadedModel) -> tuple[str, ...]:
    """The parameters ``method`` takes for ``model``: ``ignore_last_act`` only for converted
    models (the ``torch_*`` functions explain the module's output as it is)."""
    names = METHOD_PARAMETERS[method]
    return names if model.converter else tuple(n for n in names if n != "ignore_last_act")


_NO_PARAMETER = ("simple", "pass", "equal")  # LRP rules that take no rule_param


def _checked(parameter: Parameter, value: Any, default: Any) -> Any:
    """``value`` in the canonical form of its kind, or a ValueError naming what is allowed
    (the engine's TypeError for a value of the wrong type is a ValueError here: it is the
    page's input)."""
    if value is _EMPTY:
        raise ValueError(
            f"{parameter.name} is empty: type a value (innsight's default is {default})."
        )
    try:
        return _checked_value(parameter, value)
    except TypeError as error:
        raise ValueError(str(error)) from None


def _checked_value(parameter: Parameter, value: Any) -> Any:
    name = parameter.name
    if parameter.kind == "bool":
        return check_bool(value, name)
    if parameter.kind == "int":
        return _checked_int(parameter, value)
    if parameter.kind == "float":
        return check_number(value, name, parameter.minimum or 0.0)
    if parameter.kind == "sha":
        if value is None or (isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value)):
            return value
        raise ValueError(
            f"{name} {value!r} is not a sha256 (64 hex digits): upload the file again."
        )
    if value not in parameter.choices:
        raise ValueError(
            f"{name} {value!r} is not allowed; choose one of {', '.join(parameter.choices)}."
        )
    return value


def _checked_int(parameter: Parameter, value: Any) -> int:
    """A whole number (``50.0`` → ``50``) within the parameter's bounds."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    minimum = int(parameter.minimum or 0)
    value = check_int(value, parameter.name, minimum)
    if parameter.maximum is not None and value > parameter.maximum:
        raise ValueError(
            f"{parameter.name} must be an integer from {minimum} to {parameter.maximum}; "
            f"got {value!r}."
        )
    return value


def _lrp_rule(name: Any, layer_type: str) -> str:
    allowed = lrp_rules_for(layer_type)
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


@dataclass(frozen=True)
class FromData:
    """An array argument of the engine (``x_ref`` or ``data_ref``) taken from the data.

    ``kind`` is ``"mean"`` (the mean row), ``"row"`` (row ``row``, 0-based), ``"all"``
    (every row), ``"sample"`` (the rows :func:`sample_rows` draws with ``size`` and
    ``seed``) or ``"upload"`` (the uploaded reference file, whole).
    """

    kind: Literal["mean", "row", "all", "sample", "upload"]
    row: int = 0
    size: int = 0
    seed: int = 0

    def take(self, method: str, data: list[np.ndarray], uploaded: list[np.ndarray] | None) -> Any:
        """The arrays (one per input layer, or one array for one input layer) from ``data``
        or, for ``"upload"``, from ``uploaded``."""
        if self.kind == "upload":
            if uploaded is None:
                raise ValueError(f"{method} takes an uploaded reference, but none was passed.")
            return _one_or_list(uploaded)
        if self.kind == "mean":
            return _one_or_list([x.mean(axis=0, keepdims=True) for x in data])
        if self.kind == "row":
            n_rows = len(data[0])
            if not 0 <= self.row < n_rows:
                raise ValueError(
                    f"Reference row {self.row} is out of range: the data has {n_rows} rows "
                    f"(0–{n_rows - 1})."
                )
            return _one_or_list([x[self.row : self.row + 1] for x in data])
        if self.kind == "sample":
            chosen = sample_rows(len(data[0]), self.size, self.seed)
            return _one_or_list([x[chosen] for x in data])
        return _one_or_list(data)


def engine_kwargs(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The engine's keyword arguments for a method's canonical ``params``.

    The page's ``reference`` (with ``reference_row``) becomes ``x_ref`` and its
    ``background`` (with ``sample_size`` and ``sample_seed``) ``data_ref``, each a
    :class:`FromData` (None for the zeros reference) that :func:`run_method` fills from the
    data; ``reference_sha`` is dropped, and so are LRP's ``rule_param`` entries of rules
    that take none. The rest passes as it is. This is the one place where the page's
    parameters meet the engine's: the job (:func:`run_method`) and the downloaded
    parameters and script (:mod:`dashboard.script`) read it.
    """
    kwargs = dict(params)
    reference = kwargs.pop("reference", None)
    row = kwargs.pop("reference_row", 0)
    background = kwargs.pop("background", None)
    size, seed = kwargs.pop("sample_size", None), kwargs.pop("sample_seed", None)
    kwargs.pop("reference_sha", None)
    if reference == "zeros":
        kwargs["x_ref"] = None
    elif reference is not None:
        kwargs["x_ref"] = FromData(reference, row=int(row))
    if background is not None:
        kind = "all" if background == "data" else background
        kwargs["data_ref"] = FromData(kind, size=size or 0, seed=seed or 0)
    if method == "LRP":
        kwargs["rule_param"] = {k: v for k, v in kwargs["rule_param"].items() if v is not None}
    return kwargs


def explains_data(method: str, params: dict[str, Any]) -> bool:
    """Whether the method is given the data: global Connection Weights (without × input)
    explains the model alone."""
    return method != "ConnectionWeights" or bool(params["times_input"])


def torch_function(method: str) -> str:
    """The name of the ``torch_*`` function that runs ``method`` on an unconverted module."""
    return TORCH_FUNCTIONS[method].__name__


def run_method(
    model: LoadedModel,
    inputs: list[np.ndarray],
    method: str,
    params: dict[str, Any],
    output_idx: list[list[int] | None],
    progress_callback: Callable[[int, int], None] | None = None,
    reference_data: list[np.ndarray] | None = None,
    uploaded_reference: list[np.ndarray] | None = None,
) -> AttributionResult:
    """Explain ``inputs`` (channels first, one array per input layer) with ``method``.

    The method classes run on the converted model, else on the module as it is (the
    gradient family) or on any model's predictions (LIME and SHAP). The keyword arguments are
    :func:`engine_kwargs`'s; ``reference_data`` (default: ``inputs``) is the data the
    reference comes from: its mean or one of its rows (``x_ref``), or the background set of
    ExpectedGradient and DeepSHAP (``data_ref``): all of it, or the rows
    :func:`sample_rows` draws. ``uploaded_reference`` (one array per input layer) is the
    file behind ``reference_sha``: the one-row ``x_ref`` or the background set.
    """
    references = inputs if reference_data is None else reference_data
    if params.get("reference_sha") is not None and uploaded_reference is None:
        raise ValueError(f"{method} takes an uploaded reference, but none was passed.")
    kwargs = {
        name: value.take(method, references, uploaded_reference)
        if isinstance(value, FromData) else value
        for name, value in engine_kwargs(method, params).items()
    }  # fmt: skip
    data = _one_or_list(inputs)
    method_class = catalogue.method(method)
    explained = model.converter or model.module or model.predictor
    if method_class.needs == "predictions":
        return method_class(
            explained, data, output_idx=output_idx, input_names=model.input_names,
            output_names=model.output_names, progress_callback=progress_callback, **kwargs,
        )  # fmt: skip
    result = method_class(
        explained, data if explains_data(method, params) else None,
        output_idx=output_idx, progress_callback=progress_callback, **kwargs,
    )  # fmt: skip
    # a module's view knows no names; the loaded model does (user-given or innsight's)
    result.input_names, result.output_names = model.input_names, model.output_names
    return result


def _one_or_list(arrays: list[np.ndarray]) -> Any:
    """One array for a model with one input layer, the list otherwise (as the engine takes)."""
    return arrays if len(arrays) > 1 else arrays[0]
