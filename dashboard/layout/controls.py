"""The control column: model, data, method and the Compute button."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

import demo_data
from attribution.converter.files import model_suffixes
from dashboard import ids

_UPLOAD_STYLE = {
    "borderWidth": "1px", "borderStyle": "dashed", "borderRadius": "6px",
    "textAlign": "center", "padding": "10px", "cursor": "pointer",
}  # fmt: skip


def _upload(component_id: str, what: str) -> dcc.Upload:
    """A drop zone that takes any file: the server answers every one, and names the
    accepted suffixes when it cannot read it (a browser ``accept`` filter would drop a
    file silently)."""
    return dcc.Upload(
        id=component_id,
        children=html.Div([f"Drop a {what} here or ", html.A("choose a file")]),
        multiple=False,
        style=_UPLOAD_STYLE,
        className="small mb-2",
    )


def model_card(trust_torchscript: bool = False) -> dbc.Card:
    """The model card: a demo picker, the upload of a model file and the names of an
    uploaded model's outputs and inputs.

    Parameters
    ----------
    trust_torchscript : bool, default=False
        Whether the upload offers TorchScript (``.pt``, ``.ts``), which runs code from
        the file (``--trust-torchscript``), and its input-shape field; the server refuses
        TorchScript otherwise.
    """
    demos = [{"label": demo_data.metadata(n)["title"], "value": n} for n in demo_data.DEMOS]
    suffixes = model_suffixes(allow_code=trust_torchscript)
    shape = dbc.Input(id=ids.MODEL_INPUT_DIM, placeholder="TorchScript input shape, e.g. "
                      "1,8,8", size="sm", className="mb-2", debounce=True,
                      style=None if trust_torchscript else {"display": "none"})  # fmt: skip
    names = html.Details(
        [
            html.Summary("Names of an uploaded model", className="small"),
            dbc.Input(id=ids.MODEL_OUTPUT_NAMES, placeholder="output names, e.g. cat, dog",
                      size="sm", debounce=True, className="mt-1"),
            dbc.Input(id=ids.MODEL_INPUT_NAMES, placeholder="input names, e.g. age, height",
                      size="sm", debounce=True, className="mt-1"),
            dbc.FormText("Comma-separated, one per output node / input feature; empty: "
                         "the file's names, or innsight's (Y1…, X1…)."),
        ],
        className="mb-2",
    )  # fmt: skip
    return dbc.Card(
        dbc.CardBody(
            [
                html.H6("1. Model", className="card-title"),
                dcc.Dropdown(id=ids.DEMO_SELECT, options=demos, placeholder="Pick a demo model",
                             clearable=False, className="mb-2"),
                _upload(ids.MODEL_UPLOAD, f"model ({', '.join(suffixes)})"),
                shape,
                names,
                html.Div(id=ids.MODEL_INFO, className="small"),
            ]
        ),
        className="mb-2",
    )  # fmt: skip


def data_card() -> dbc.Card:
    options = html.Details(
        [
            html.Summary("Data options", className="small"),
            dbc.Switch(id=ids.DATA_CHANNELS_LAST, label="channels last (NPY/NPZ)",
                       value=False, className="small mt-1"),
            dbc.InputGroup(
                [
                    dbc.Input(id=ids.DATA_IMAGE_MEAN, placeholder="image mean", debounce=True),
                    dbc.Input(id=ids.DATA_IMAGE_STD, placeholder="std", debounce=True),
                ],
                size="sm", className="mb-1",
            ),
            dbc.FormText("Images: pixel/255 (0 to 1), or (pixel/255 − mean)/std with one "
                         "value or one per channel, e.g. 0.485, 0.456, 0.406.",
                         className="d-block mb-1"),
            # Empty means every numeric column (CSV) or the input_* arrays (NPZ).
            dcc.Dropdown(id=ids.DATA_COLUMNS, multi=True,
                         placeholder="input columns: chosen automatically (pick to change)",
                         className="mb-1 small"),
        ],
        className="mb-2",
    )  # fmt: skip
    return dbc.Card(
        dbc.CardBody(
            [
                html.H6("2. Data", className="card-title"),
                _upload(ids.DATA_UPLOAD, "data file (.csv, .npy, .npz, .png, .jpg, .zip)"),
                options,
                html.Div(id=ids.DATA_INFO, className="small"),
            ]
        ),
        className="mb-2",
    )  # fmt: skip


def reference_area() -> html.Div:
    """The upload of a reference input or background set, shown when a method's reference
    is "upload"; the page keeps only the file's sha256 (in ``REFERENCE_REF``)."""
    return html.Div(
        [
            dcc.Store(id=ids.REFERENCE_REF),
            _upload(ids.REFERENCE_UPLOAD, "reference file (.csv, .npy, .npz)"),
            html.Div(id=ids.REFERENCE_INFO, className="small mb-2"),
        ],
        id=ids.REFERENCE_AREA,
        style={"display": "none"},
    )


def method_card() -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                html.H6("3. Method", className="card-title"),
                dcc.Dropdown(id=ids.METHOD_SELECT, placeholder="Load a model first",
                             clearable=False, className="mb-2"),
                html.Div(id=ids.PARAMETER_PANEL, className="small"),
                reference_area(),
                dbc.Label("Output nodes", html_for=ids.OUTPUT_SELECT, className="small mb-0"),
                dcc.Dropdown(id=ids.OUTPUT_SELECT, multi=True, className="mb-2 small"),
                dbc.Label("Rows to explain (first n)", html_for=ids.ROWS_INPUT,
                          className="small mb-0"),
                dbc.Input(id=ids.ROWS_INPUT, type="number", step="any", value=50, size="sm"),
                html.Div(id=ids.ROWS_FEEDBACK, className="small"),
                dcc.Store(id=ids.DATA_ROWS),
            ]
        ),
        className="mb-2",
    )  # fmt: skip


def compute_bar() -> html.Div:
    """Compute, Cancel, the progress and the status: at the bottom of the window while
    the control column scrolls (the column's last block, sticky)."""
    return html.Div(
        [
            dbc.ButtonGroup(
                [
                    dbc.Button("Compute", id=ids.COMPUTE_BUTTON, color="primary"),
                    dbc.Button("Cancel", id=ids.CANCEL_BUTTON, color="secondary",
                               disabled=True),
                ],
                className="mb-1",
            ),
            dbc.Progress(id=ids.PROGRESS, value=0, max=1, className="mb-1",
                         style={"visibility": "hidden"}),
            html.Div(id=ids.STATUS, className="small text-muted"),
        ],
        className="compute-bar",
    )  # fmt: skip
