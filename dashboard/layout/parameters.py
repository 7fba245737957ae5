"""Controls for a method's parameters, built from :data:`dashboard.methods.PARAMETERS`."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from attribution.converter.loading import LoadedModel
from attribution.rules import LRP_RULES
from dashboard import ids
from dashboard.methods import (
    METHOD_DEFAULTS,
    PARAMETERS,
    UPLOADED_ONLY,
    parameters_of,
    rule_choices,
    rule_layer_types,
)


def parameter_controls(method: str | None, model: LoadedModel | None) -> list:
    """One labelled control per parameter ``method`` takes for ``model``, with innsight's
    default and help; LRP gets a rule and a parameter per rule layer type in the model,
    DeepLift/DeepSHAP one rule for all."""
    if method is None or model is None:
        return [html.P("Choose a method.", className="text-muted small")]
    rule_types = rule_layer_types(model)
    controls = []
    for name in parameters_of(method, model):
        parameter = PARAMETERS[name]
        if name == "rule_param" or name in UPLOADED_ONLY:
            continue  # shown beside rule_name, or set by the reference upload area
        if name == "rule_name":
            controls.append(_rules(method, rule_types))
            continue
        default = METHOD_DEFAULTS.get(method, {}).get(name, parameter.default)
        controls.append(
            html.Div(
                [
                    dbc.Label(parameter.label, html_for=f"parameter-{name}", className="mb-0"),
                    _control(name, parameter, default),
                    dbc.FormText(parameter.help),
                ],
                className="mb-2",
            )
        )
    return controls


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
    step = 1 if parameter.kind == "int" else "any"
    return dbc.Input(
        id=control_id, type="number", value=default, min=parameter.minimum,
        max=parameter.maximum, step=step, size="sm",
    )  # fmt: skip


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
                        placeholder="default", step="any",
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
         dbc.FormText(f"{help_text} {PARAMETERS['rule_param'].help}")],
        className="mb-2",
    )  # fmt: skip


def _lrp_rules(layer_type: str) -> list[str]:
    return [r for r in LRP_RULES if r != "pass" or layer_type == "BatchNorm_Layer"]


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
