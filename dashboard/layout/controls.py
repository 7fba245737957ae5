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


def _upload(component_id: str, what: str, accept: str) -> dcc.Upload:
    return dcc.Upload(
        id=component_id,
        children=html.Div([f"Drop a {what} here or ", html.A("choose a file")]),
        accept=accept,
        multiple=False,
        style=_UPLOAD_STYLE,
        className="small mb-2",
    )


def model_card(trust_torchscript: bool = False) -> dbc.Card:
    """The model card: a demo picker and the upload of a model file.

    Parameters
    ----------
    trust_torchscript : bool, default=False
        Whether the upload offers TorchScript (``.pt``, ``.ts``), which runs code from
        the file (``--trust-torchscript``); the server refuses it otherwise.
    """
    demos = [{"label": demo_data.metadata(n)["title"], "value": n} for n in demo_data.DEMOS]
    suffixes = model_suffixes(allow_code=trust_torchscript)
    return dbc.Card(
        dbc.CardBody(
            [
                html.H6("1. Model", className="card-title"),
                dbc.Label("Demo model", html_for=ids.DEMO_SELECT, className="small mb-0"),
                dcc.Dropdown(id=ids.DEMO_SELECT, options=demos, placeholder="Pick a demo",
                             clearable=False, className="mb-2"),
                _upload(ids.MODEL_UPLOAD, f"model ({', '.join(suffixes)})", ",".join(suffixes)),
                dbc.Input(id=ids.MODEL_INPUT_DIM, placeholder="input shape, e.g. 1,8,8 "
                          "(TorchScript only)", size="sm", className="mb-2"),
                html.Div(id=ids.MODEL_INFO, className="small"),
            ]
        ),
        className="mb-3",
    )  # fmt: skip


def data_card() -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                html.H6("2. Data", className="card-title"),
                _upload(ids.DATA_UPLOAD, "data file (.csv, .npy, .npz, .png, .jpg, .zip)",
                        ".csv,.npy,.npz,.png,.jpg,.jpeg,.zip"),
                dbc.Switch(id=ids.DATA_CHANNELS_LAST, label="channels last (NPY/NPZ)",
                           value=False, className="small"),
                dbc.InputGroup(
                    [
                        dbc.Input(id=ids.DATA_IMAGE_MEAN, placeholder="image mean", debounce=True),
                        dbc.Input(id=ids.DATA_IMAGE_STD, placeholder="std", debounce=True),
                    ],
                    size="sm", className="mb-1",
                ),
                dbc.FormText("Images: pixel/255 (0 to 1), or (pixel/255 − mean)/std with one "
                             "value or one per channel, e.g. 0.485, 0.456, 0.406.",
                             className="d-block mb-2"),
                # Empty means every numeric column (CSV) or the input_* arrays (NPZ).
                dcc.Dropdown(id=ids.DATA_COLUMNS, multi=True,
                             placeholder="inputs: chosen automatically (pick to change)",
                             className="mb-2 small"),
                html.Div(id=ids.DATA_INFO, className="small"),
            ]
        ),
        className="mb-3",
    )  # fmt: skip


def reference_area() -> html.Div:
    """The upload of a reference input or background set, shown when a method's reference
    is "upload"; the page keeps only the file's sha256 (in ``REFERENCE_REF``)."""
    return html.Div(
        [
            dcc.Store(id=ids.REFERENCE_REF),
            _upload(ids.REFERENCE_UPLOAD, "reference file (.csv, .npy, .npz)", ".csv,.npy,.npz"),
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
                dbc.Input(id=ids.ROWS_INPUT, type="number", min=1, step=1, value=50,
                          size="sm", className="mb-2"),
                dbc.ButtonGroup(
                    [
                        dbc.Button("Compute", id=ids.COMPUTE_BUTTON, color="primary"),
                        dbc.Button("Cancel", id=ids.CANCEL_BUTTON, color="secondary",
                                   disabled=True),
                    ],
                    className="mb-2",
                ),
                dbc.Progress(id=ids.PROGRESS, value=0, max=1, className="mb-2",
                             style={"visibility": "hidden"}),
                html.Div(id=ids.STATUS, className="small text-muted"),
            ]
        )
    )  # fmt: skip
