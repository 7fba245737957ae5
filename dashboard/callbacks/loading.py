"""Choosing a demo, receiving uploads (model, data, a reference file), and showing what was
understood of them."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
import plotly.graph_objects as go
from dash import dcc, html
from plotly.subplots import make_subplots

import demo_data
from attribution.converter.files import model_format
from attribution.converter.loading import LoadedModel
from dashboard.config import Config
from dashboard.layout.parameters import output_options
from dashboard.memo import LastUsed
from dashboard.methods import rule_layer_types
from dashboard.sources import data_from_ref, model_from_ref, ref_key, reference_from_sha
from dashboard.store import Store
from dashboard.uploads import (
    LoadedData,
    check_data_fits,
    data_preview,
    decode_upload,
    model_summary,
)

SHOWN = {"display": "block"}  # the reference upload area's styles
HIDDEN = {"display": "none"}
UPLOAD_CHOICES = ["reference", "background"]  # the parameters that may be "upload"


def demo_refs(name: str) -> tuple[dict, dict]:
    """The model and data references of a demo."""
    if name not in demo_data.DEMOS:
        raise ValueError(f"Unknown demo {name!r}; the demos are {', '.join(demo_data.DEMOS)}.")
    return {"kind": "demo", "name": name}, {"kind": "demo", "name": name}


def receive_model(
    store: Store,
    config: Config,
    contents: str,
    filename: str,
    input_dim_text: str | None,
    session: str,
    output_names_text: str | None = None,
    input_names_text: str | None = None,
) -> dict:
    """Store an uploaded model of ``session`` and check that it loads; its reference.

    The input shape applies to TorchScript only (other formats know their input); the
    names, comma-separated (``;`` between layers), replace the file's.
    """
    data = decode_upload(contents, filename, config.max_upload_bytes)
    runs_code = model_format(filename).runs_code
    sha = store.put_bytes(data, filename, owner=session)
    ref = {
        "kind": "upload",
        "sha": sha,
        "input_dim": parse_input_dim(input_dim_text) if runs_code else None,
    }
    for key, text in (("output_names", output_names_text), ("input_names", input_names_text)):
        names = parse_names(text)
        if names is not None:
            ref[key] = names
    model_from_ref(store, ref, session)
    return ref


def parse_names(text: str | None) -> list | None:
    """``"cat, dog"`` → ``["cat", "dog"]``; ``"a, b; c"`` → ``[["a", "b"], ["c"]]`` (one
    list per layer); empty → None."""
    if not text or not text.strip():
        return None
    layers = [
        [name.strip() for name in layer.split(",") if name.strip()] for layer in text.split(";")
    ]
    return layers[0] if len(layers) == 1 else layers


def parse_input_dim(text: str | None) -> list[list[int]] | None:
    """``"1,8,8"`` → ``[[1, 8, 8]]``; ``"1,8,8; 3"`` → two input layers; empty → None."""
    if not text or not text.strip():
        return None
    try:
        dims = [[int(part) for part in layer.split(",")] for layer in text.split(";")]
    except ValueError:
        raise ValueError(
            f"The input shape {text!r} is not a list of whole numbers: write it like 1,8,8 "
            "(channels first, no batch axis; separate input layers with ;)."
        ) from None
    if any(size < 1 for dim in dims for size in dim):
        raise ValueError(f"The input shape {text!r} has a size below 1.")
    return dims


def receive_data(
    store: Store,
    config: Config,
    contents: str,
    filename: str,
    model_ref: dict | None,
    channels_last: bool,
    session: str,
) -> dict:
    """Store uploaded data and read it in the loaded model's shape; its reference.

    Data that does not fit the model yet is kept (its card says what to change, e.g. which
    columns to leave out); Compute refuses it until it fits.
    """
    data = decode_upload(contents, filename, config.max_upload_bytes)
    sha = store.put_bytes(data, filename, owner=session)
    ref = {"kind": "upload", "sha": sha, "input_columns": None, "channels_last": channels_last}
    return readable_data_ref(store, model_ref, ref, session)


def readable_data_ref(store: Store, model_ref: dict | None, data_ref: dict, session: str) -> dict:
    """``data_ref`` if its data can be read for the loaded model (a ValueError says why not)."""
    if model_ref is None:
        raise ValueError("Load a model before the data: the data is read in its shape.")
    data_from_ref(store, data_ref, model_from_ref(store, model_ref, session), session)
    return data_ref


def fit_problem(model: LoadedModel, data: LoadedData) -> str | None:
    """Why the data does not fit the model, or None when it does."""
    try:
        check_data_fits(model, data)
    except ValueError as error:
        return str(error)
    return None


def with_options(
    data_ref: dict,
    columns: list[str] | None,
    channels_last: bool,
    image_mean: str | None = None,
    image_std: str | None = None,
) -> dict:
    """The upload reference with the chosen input columns, channel order and image scaling
    (``"0.5"`` or ``"0.485, 0.456, 0.406"``; both empty: pixels scaled to 0 to 1)."""
    mean, std = parse_numbers(image_mean, "image mean"), parse_numbers(image_std, "image std")
    if (mean is None) != (std is None):
        raise ValueError(
            "Give both the image mean and the std (one value, or one per channel), or neither "
            "to scale pixels to 0 to 1."
        )
    return {
        **data_ref,
        "input_columns": columns or None,
        "channels_last": bool(channels_last),
        "image_mean": mean,
        "image_std": std,
    }


def parse_numbers(text: str | None, what: str) -> list[float] | None:
    """``"0.485, 0.456"`` → ``[0.485, 0.456]``; empty → None."""
    if not text or not text.strip():
        return None
    try:
        return [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"The {what} {text!r} is not a list of numbers: write one value, or one per "
            "channel separated by commas, e.g. 0.485, 0.456, 0.406."
        ) from None


def receive_reference(
    store: Store,
    config: Config,
    contents: str,
    filename: str,
    model_ref: dict | None,
    data_ref: dict | None,
    session: str,
) -> tuple[dict, list]:
    """Store an uploaded reference file and check that it reads in the model's shape (with
    the data's channel order); its reference for the page and what its info box shows.

    The page keeps ``{"sha", "filename"}`` in ``ids.REFERENCE_REF``; Compute puts the sha
    into the method's parameters as ``reference_sha``, and the job reads the file again.
    """
    if model_ref is None:
        raise ValueError("Load a model before the reference file: it is read in its shape.")
    data = decode_upload(contents, filename, config.max_upload_bytes)
    sha = store.put_bytes(data, filename, owner=session)
    channels_last = bool(data_ref and data_ref.get("channels_last"))
    model = model_from_ref(store, model_ref, session)
    reference = reference_from_sha(
        store, sha, model, session, one_row=False, channels_last=channels_last
    )
    shapes = ", ".join(f"(batch, {', '.join(map(str, shape))})" for shape in reference.shapes)
    rows = "1 row" if reference.n_rows == 1 else f"{reference.n_rows} rows"
    info = [html.B(filename), f": {rows}, {shapes}"]
    return {"sha": sha, "filename": filename}, info


def reference_sha(reference_ref: dict | None) -> str | None:
    """The sha256 of the uploaded reference file, or None when there is none."""
    return reference_ref["sha"] if reference_ref else None


DESCRIBED: LastUsed[dict[str, Any]] = LastUsed(16)
"""What the model and data cards show, by what the references read: a class picking the
same demo builds its cards once (a data preview draws thumbnails: tens of ms)."""


def describe(
    store: Store, model_ref: dict | None, data_ref: dict | None, session: str
) -> dict[str, Any]:
    """Everything the page shows about the loaded model and data (see the keys)."""
    if model_ref is None:
        return _describe(store, model_ref, data_ref, session)
    key = (ref_key(model_ref, session), ref_key(data_ref, session), repr(store.upload_limits))
    return DESCRIBED.get(key, lambda: _describe(store, model_ref, data_ref, session))


def _describe(
    store: Store, model_ref: dict | None, data_ref: dict | None, session: str
) -> dict[str, Any]:
    empty = {
        "model_info": html.Span("No model loaded.", className="text-muted"),
        "data_info": html.Span("No data loaded.", className="text-muted"),
        "methods": [], "method": None, "outputs": [], "selected_outputs": [],
        "columns": [], "summary": "", "rule_types": [], "n_rows": None,
    }  # fmt: skip
    if model_ref is None:
        return empty
    model = model_from_ref(store, model_ref, session)
    summary = model_summary(model)
    options, selected = output_options(model.output_names)
    found = {
        **empty,
        "model_info": _model_card(summary),
        "methods": [{"label": m, "value": m} for m in model.methods],
        "method": model.methods[0],
        "outputs": options,
        "selected_outputs": selected,
        "summary": repr(model.converter) if model.converter else _unconverted(summary),
        "rule_types": rule_layer_types(model),
    }
    if data_ref is not None:
        data = data_from_ref(store, data_ref, model, session)
        preview = data_preview(data)
        found |= {
            "data_info": _data_card(preview, fit_problem(model, data)),
            "columns": [{"label": c, "value": c} for c in preview["columns"]],
            "n_rows": data.n_rows,
        }
    return found


def _model_card(summary: dict) -> list:
    inputs = ", ".join(f"{i['layer']} {tuple(i['shape'])}" for i in summary["inputs"])
    outputs = ", ".join(
        f"{o['layer']} ({', '.join(o['names'][:5])}{', …' if len(o['names']) > 5 else ''})"
        for o in summary["outputs"]
    )
    lines = [
        html.Div([html.B(summary["name"]), f" ({summary['format']})"]),
        html.Div(f"Inputs: {inputs}"),
        html.Div(f"Outputs: {outputs}"),
        html.Div(f"Layers: {len(summary['layers'])}" if summary["converted"] else "Not converted"),
        html.Div(f"Methods: {', '.join(summary['methods'])}"),
    ]
    if summary["conversion_error"]:
        lines.append(dbc.Alert(summary["conversion_error"], color="warning", className="p-1 mt-1"))
    return lines


def _unconverted(summary: dict) -> str:
    return (
        f"{summary['name']} ({summary['format']}) is not converted:\n"
        f"{summary['conversion_error']}\n{', '.join(summary['methods'])} explain it directly."
    )


def _data_card(preview: dict, problem: str | None) -> list:
    shapes = ", ".join(f"{i['layer']} {tuple(i['shape'])} ({i['kind']})" for i in preview["inputs"])
    lines = [html.Div([html.B(preview["filename"]), f": {preview['n_rows']} rows"]),
             html.Div(shapes)]  # fmt: skip
    if preview["ignored"]:
        lines.append(html.Div(f"Not inputs: {', '.join(preview['ignored'])}"))
    first = preview["inputs"][0]
    if "records" in first:
        names = list(first["records"][0])
        head = html.Thead(html.Tr([html.Th(n) for n in names]))
        body = html.Tbody([html.Tr([html.Td(r[n]) for n in names]) for r in first["records"][:3]])
        lines.append(dbc.Table([head, body], size="sm", className="mt-1"))
    for view in preview["inputs"]:
        if "first" in view and view["kind"] in ("signal", "image"):
            lines.append(_thumbnails(view))
    if problem:
        lines.append(dbc.Alert(problem, color="warning", className="p-1 mt-1"))
    return lines


def _thumbnails(view: dict, count: int = 4) -> dcc.Graph:
    """The first images (channel mean, first row on top) or signals of an input layer."""
    first = np.asarray(view["first"][:count], dtype=float)
    figure = make_subplots(rows=1, cols=len(first), horizontal_spacing=0.02)
    for column, instance in enumerate(first, start=1):
        if view["kind"] == "image":
            trace = go.Heatmap(z=instance.mean(axis=0), colorscale="Greys", showscale=False)
            figure.add_trace(trace, row=1, col=column)
            figure.update_yaxes(autorange="reversed", row=1, col=column)
        else:
            for channel in instance:
                figure.add_trace(go.Scatter(y=channel, mode="lines"), row=1, col=column)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(height=90, margin={"l": 0, "r": 0, "t": 4, "b": 4}, showlegend=False)
    # as plotly JSON: the card is memoised, and a dict is serialised for each page fast
    return dcc.Graph(figure=figure.to_plotly_json(), config={"staticPlot": True}, className="mt-1")
