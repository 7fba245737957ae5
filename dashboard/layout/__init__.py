"""The page: a control column (model, data, method) and the result tabs."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids
from dashboard.layout.controls import compute_bar, data_card, method_card, model_card
from dashboard.layout.views import result_tabs

POLL_MS = 500
"""How often a page asks for its job's state while one runs."""


def build_layout(
    model_ref: dict | None = None,
    data_ref: dict | None = None,
    session: str | None = None,
    trust_torchscript: bool = False,
) -> dbc.Container:
    """The whole page (no callbacks here), starting with the given model and data.

    The references and the session token (:mod:`dashboard.sessions`) live in the browser
    tab's session storage: a reload keeps them, and another tab or visitor never sees them.
    """
    stores = [
        dcc.Store(id=component, storage_type="session", data=data)
        for component, data in (
            (ids.SESSION, session),
            (ids.MODEL_REF, model_ref),
            (ids.DATA_REF, data_ref),
            (ids.RESULT_REF, None),
        )
    ]
    return dbc.Container(
        [
            *stores,
            dcc.Store(id=ids.JOB_REQUEST),
            dcc.Interval(id=ids.JOB_POLL, interval=POLL_MS, disabled=True),
            dbc.Alert(id=ids.ERROR_ALERT, color="danger", is_open=False, dismissable=True),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            html.H5("innsight for Python", className="my-2"),
                            model_card(trust_torchscript), data_card(), method_card(),
                            compute_bar(),
                        ],
                        md=4, lg=3, className="control-column",
                    ),
                    dbc.Col(
                        [
                            dbc.Alert(id=ids.STALE_NOTICE, color="warning", is_open=False,
                                      className="py-1 my-2 small"),
                            result_tabs(),
                        ],
                        md=8, lg=9,
                    ),
                ]
            ),
        ],
        fluid=True,
    )  # fmt: skip
