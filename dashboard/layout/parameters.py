"""Controls for a method's parameters, built from :data:`dashboard.methods.PARAMETERS`."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from attribution.converter.loading import LoadedModel
from attribution.rules import lrp_rules_for
from dashboard import ids
from dashboard.methods import (
    PARAMETERS,
    UPLOADED_ONLY,
    parameter_default,
    parameter_text,
    parameters_of,
    rule_choices,
    rule_layer_types,
)


def parameter_controls(method: str | None, model: LoadedModel | None) -> list:
    """One labelled control per parameter ``method`` takes for ``model``, with innsight's
    default and help in the method's own words; the rarely changed ones are folded away
    ("More options"). LRP gets a rule and a parameter per rule layer type in the model,
    DeepLift/DeepSHAP one rule for all. A number field takes any number: a refused value
    is marked with the reason under it (see :func:`parameter_problem`), never replaced."""
    if method is None or model is None:
        return [html.P("Choose a method.", className="text-muted small")]
    rule_types = rule_layer_types(model)
    main, more = [], []
    for name in parameters_of(method, model):
        parameter = PARAMETERS[name]
        if name == "rule_param" or name in UPLOADED_ONLY:
            continue  # shown beside rule_name, or set by the reference upload area
        if name == "rule_name":
            main.append(_rules(method, rule_types))
            continue
        label, help_text = parameter_text(method, name)
        block = html.Div(
            [
                dbc.Label(label, html_for=f"parameter-{name}", className="mb-0"),
                _control(name, parameter, parameter_default(method, name)),
                html.Div(id=ids.parameter_feedback(name), className="invalid-feedback d-block"),
                dbc.FormText(help_text, className="d-block lh-sm"),
            ],
            id=ids.parameter_box(name),
            className=VALID,
        )  # fmt: skip
        (more if parameter.advanced else main).append(block)
    if more:
        main.append(html.Details([html.Summary("More options", className="mb-1"), *more]))
    return main


VALID, INVALID = "mb-2", "mb-2 parameter-invalid"
"""The class of a parameter's block, and of one whose value is refused."""


def _control(name: str, parameter, default):
    control_id = ids.parameter(name)
    if parameter.kind == "bool":
        return dbc.Switch(id=control_id, value=bool(default), label="on")
    if parameter.kind in ("choice", "reference"):
        return dbc.RadioItems(
            id=control_id,
            options=[{"label": c, "value": c} for c in parameter.choices],
            value=default,
            inline=True,
        )
    # no min, max or step: the browser would turn a value outside them into "empty"
    return dbc.Input(id=control_id, type="number", value=default, step="any", size="sm")


def _rules(method: str, rule_types: list[str]):
    help_text = PARAMETERS["rule_name"].help
    if method != "LRP":
        return html.Div(
            [
                dbc.Label("Rule", className="mb-0"),
                dbc.RadioItems(
                    id=ids.parameter("rule_name"),
                    options=[{"label": r, "value": r} for r in rule_choices(method)],
                    value="rescale",
                    inline=True,
                ),
                dbc.FormText(help_text),
            ],
            className="mb-2",
        )
    rows = [
        dbc.Row(
            [
                dbc.Col(html.Small(layer_type.removesuffix("_Layer")), width=4),
                dbc.Col(
                    dbc.Select(
                        id=ids.rule("rule_name", layer_type),
                        options=[{"label": r, "value": r} for r in _lrp_rules(layer_type)],
                        value="simple",
                        size="sm",
                    ),
                    width=5,
                ),
                dbc.Col(
                    dbc.Input(
                        id=ids.rule("rule_param", layer_type), type="number", size="sm",
                        placeholder="ε / α", step="any",
                    ),
                    width=3,
                ),
            ],
            className="g-1 mb-1 align-items-center",
        )
        for layer_type in rule_types
    ]  # fmt: skip
    return html.Div(
        [dbc.Label("Rule and parameter per layer type", className="mb-0"), *rows,
         dbc.FormText(_LRP_HELP)],
        className="mb-2",
    )  # fmt: skip


_LRP_HELP = (
    "The rule of each layer type, and its ε (epsilon, default 0.01) or α (alpha_beta, "
    "default 0.5); empty: the default. pass: BatchNorm only. At a sum (Add_Layer) the "
    "rules share relevance by each input's part of the sum; equal splits it evenly, as "
    "innsight does."
)


def _lrp_rules(layer_type: str) -> list[str]:
    return list(lrp_rules_for(layer_type))


def output_options(output_names: list[list[str]]) -> tuple[list[dict], list[str]]:
    """Dropdown options for the output nodes (``"k:i"`` values) and innsight's default
    selection, the first ≤ 10 nodes of the first output layer."""
    several = len(output_names) > 1
    options = [
        {"label": f"Output_{k + 1}: {label}" if several else label, "value": f"{k}:{i}"}
        for k, names in enumerate(output_names)
        for i, label in enumerate(names)
    ]
    return options, [f"0:{i}" for i in range(min(10, len(output_names[0])))]
