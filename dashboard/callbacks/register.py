"""Every callback decorator of the app. Each body passes values to a plain function of
``loading``, ``views``, ``compute`` or ``dashboard.jobs`` and turns a user error into the
alert. Every callback that reads an upload or a result gets the page's session token and
reads only what that session may (:mod:`dashboard.sessions`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, no_update

from dashboard import ids
from dashboard.callbacks import compute, form, loading, views
from dashboard.config import Config
from dashboard.errors import INTERNAL_ERROR, USER_ERRORS
from dashboard.layout.parameters import INVALID, VALID, parameter_controls
from dashboard.layout.views import note_figure
from dashboard.sessions import session_of
from dashboard.sources import model_from_ref
from dashboard.store import Store

logger = logging.getLogger(__name__)
SESSION = State(ids.SESSION, "data")
ALERT = [
    Output(ids.ERROR_ALERT, "children", allow_duplicate=True),
    Output(ids.ERROR_ALERT, "is_open", allow_duplicate=True),
]


def guarded(make: Callable[[], tuple], n_outputs: int) -> tuple:
    """``make()``'s outputs with the alert closed, or no change and the alert showing why
    (the page keeps what it had): a documented bad-input error's message, or for any
    other exception (a bug, logged with its traceback) that an internal error happened."""
    try:
        return (*make(), None, False)
    except Exception as error:  # refusal tells bugs from bad input
        return (*([no_update] * n_outputs), *refusal(error))


def refusal(error: Exception) -> tuple[str, bool]:
    """The alert's text and open state for an error of a callback: the message of a
    documented bad-input error; for any other (a bug) :data:`INTERNAL_ERROR`, with the
    traceback in the server's log."""
    if isinstance(error, USER_ERRORS):
        return str(error.args[0] if error.args else repr(error)), True
    logger.error("Internal error in a callback", exc_info=error)
    return INTERNAL_ERROR, True


def register_callbacks(app: Dash, store: Store, config: Config, runner) -> None:
    """Wire the page (see :func:`dashboard.layout.build_layout`) to the functions."""
    secret = store.secret()

    def session(token) -> str:
        return session_of(secret, token)

    _loading_callbacks(app, store, config, session)
    _form_callbacks(app)
    _reference_callbacks(app, store, config, session)
    _compute_callbacks(app, store, config, runner, session)
    _view_callbacks(app, store, session)


def _loading_callbacks(app: Dash, store: Store, config: Config, session) -> None:
    @app.callback(
        Output(ids.MODEL_REF, "data"), Output(ids.DATA_REF, "data"), *ALERT,
        Input(ids.DEMO_SELECT, "value"), prevent_initial_call=True,
    )  # fmt: skip
    def choose_demo(name):
        return guarded(lambda: loading.demo_refs(name), 2)

    @app.callback(
        Output(ids.MODEL_REF, "data", allow_duplicate=True),
        Output(ids.DATA_REF, "data", allow_duplicate=True), *ALERT,
        Input(ids.MODEL_UPLOAD, "contents"), Input(ids.MODEL_INPUT_DIM, "value"),
        Input(ids.MODEL_OUTPUT_NAMES, "value"), Input(ids.MODEL_INPUT_NAMES, "value"),
        State(ids.MODEL_UPLOAD, "filename"), State(ids.MODEL_REF, "data"),
        State(ids.DATA_REF, "data"), SESSION, prevent_initial_call=True,
    )  # fmt: skip
    def upload_model(contents, input_dim, output_names, input_names, filename, model_ref,
                     data_ref, token):  # fmt: skip
        # a changed shape or names field reads the last uploaded model again (unless a
        # demo was picked since)
        field_changed = ctx.triggered_id != ids.MODEL_UPLOAD
        if contents is None or (field_changed and (model_ref or {}).get("kind") == "demo"):
            return (no_update,) * 4

        def load():
            ref = loading.receive_model(
                store, config, contents, filename, input_dim, session(token), output_names,
                input_names,
            )  # fmt: skip
            return ref, data_ref if data_ref and data_ref["kind"] == "upload" else None

        return guarded(load, 2)

    @app.callback(
        Output(ids.DATA_REF, "data", allow_duplicate=True),
        Output(ids.DATA_COLUMNS, "value"), *ALERT,
        Input(ids.DATA_UPLOAD, "contents"), State(ids.DATA_UPLOAD, "filename"),
        State(ids.MODEL_REF, "data"), State(ids.DATA_CHANNELS_LAST, "value"), SESSION,
        prevent_initial_call=True,
    )  # fmt: skip
    def upload_data(contents, filename, model_ref, channels_last, token):
        def load():
            ref = loading.receive_data(
                store, config, contents, filename, model_ref, channels_last, session(token)
            )
            return ref, None

        return guarded(load, 2)

    @app.callback(
        Output(ids.DATA_REF, "data", allow_duplicate=True), *ALERT,
        Input(ids.DATA_COLUMNS, "value"), Input(ids.DATA_CHANNELS_LAST, "value"),
        Input(ids.DATA_IMAGE_MEAN, "value"), Input(ids.DATA_IMAGE_STD, "value"),
        State(ids.DATA_REF, "data"), State(ids.MODEL_REF, "data"), SESSION,
        prevent_initial_call=True,
    )  # fmt: skip
    def choose_data_options(columns, channels_last, mean, std, data_ref, model_ref, token):
        if not data_ref or data_ref["kind"] != "upload":
            return no_update, no_update, no_update

        def choose():
            new_ref = loading.with_options(data_ref, columns, channels_last, mean, std)
            if new_ref == data_ref:
                return (no_update,)
            return (loading.readable_data_ref(store, model_ref, new_ref, session(token)),)

        return guarded(choose, 1)

    @app.callback(
        Output(ids.MODEL_INFO, "children"), Output(ids.DATA_INFO, "children"),
        Output(ids.METHOD_SELECT, "options"), Output(ids.METHOD_SELECT, "value"),
        Output(ids.OUTPUT_SELECT, "options"), Output(ids.OUTPUT_SELECT, "value"),
        Output(ids.DATA_COLUMNS, "options"), Output(ids.MODEL_SUMMARY, "children"),
        Output(ids.ROWS_INPUT, "value"), Output(ids.DATA_ROWS, "data"), *ALERT,
        Input(ids.MODEL_REF, "data"), Input(ids.DATA_REF, "data"), SESSION,
        prevent_initial_call="initial_duplicate",  # a preloaded or remembered model shows
    )  # fmt: skip
    def show_model_and_data(model_ref, data_ref, token):
        def describe():
            found = loading.describe(store, model_ref, data_ref, session(token))
            rows = min(50, found["n_rows"]) if found["n_rows"] else no_update
            return (
                found["model_info"], found["data_info"], found["methods"], found["method"],
                found["outputs"], found["selected_outputs"], found["columns"], found["summary"],
                rows, found["n_rows"],
            )  # fmt: skip

        return guarded(describe, 10)

    @app.callback(
        Output(ids.PARAMETER_PANEL, "children"),
        Input(ids.METHOD_SELECT, "value"), State(ids.MODEL_REF, "data"), SESSION,
    )  # fmt: skip
    def show_parameters(method, model_ref, token):
        try:
            model = model_from_ref(store, model_ref, session(token)) if model_ref else None
        except USER_ERRORS:  # the model card's callback shows why
            model = None
        if not method or model is None:
            return parameter_controls(None, None)
        return parameter_controls(method, model)


def _form_callbacks(app: Dash) -> None:
    @app.callback(
        Output(ids.parameter_feedback(ALL), "children"),
        Output(ids.parameter_box(ALL), "className"),
        Input(ids.parameter(ALL), "value"), State(ids.parameter(ALL), "id"),
        State(ids.parameter_feedback(ALL), "id"), State(ids.METHOD_SELECT, "value"),
        prevent_initial_call=True,  # a new panel holds the defaults: nothing to say
    )  # fmt: skip
    def check_parameters(values, value_ids, feedback_ids, method):
        problems = form.parameter_problems(method, values, value_ids)
        names = [feedback["name"] for feedback in feedback_ids]
        return (
            [problems.get(name) for name in names],
            [INVALID if name in problems else VALID for name in names],
        )

    @app.callback(
        Output(ids.ROWS_FEEDBACK, "children"), Output(ids.ROWS_INPUT, "invalid"),
        Input(ids.ROWS_INPUT, "value"), Input(ids.DATA_ROWS, "data"),
        prevent_initial_call=True,  # the page starts with no data and a valid row count
    )  # fmt: skip
    def check_rows(rows, n_rows):
        return form.rows_feedback(rows, n_rows)


def _reference_callbacks(app: Dash, store: Store, config: Config, session) -> None:
    @app.callback(
        Output(ids.REFERENCE_REF, "data"), Output(ids.REFERENCE_INFO, "children"), *ALERT,
        Input(ids.REFERENCE_UPLOAD, "contents"), State(ids.REFERENCE_UPLOAD, "filename"),
        State(ids.MODEL_REF, "data"), State(ids.DATA_REF, "data"), SESSION,
        prevent_initial_call=True,
    )  # fmt: skip
    def upload_reference(contents, filename, model_ref, data_ref, token):
        if contents is None:  # cleared with the model (see forget_reference)
            return (no_update,) * 4
        return guarded(
            lambda: loading.receive_reference(
                store, config, contents, filename, model_ref, data_ref, session(token)
            ),
            2,
        )

    # Both in the browser: neither needs the server, and each parameter panel or model a
    # user opens would otherwise be a request to a busy server.
    # Another model forgets the file: it was read in this model's shape (the same file may
    # be uploaded again).
    app.clientside_callback(
        "function (_modelRef) { return [null, null, null]; }",
        Output(ids.REFERENCE_REF, "data", allow_duplicate=True),
        Output(ids.REFERENCE_INFO, "children", allow_duplicate=True),
        Output(ids.REFERENCE_UPLOAD, "contents"),
        Input(ids.MODEL_REF, "data"), prevent_initial_call=True,
    )  # fmt: skip
    # The area shows when the method's reference or background is "upload".
    app.clientside_callback(
        f"""function (values, valueIds) {{
            const uploads = valueIds.filter(function (id, i) {{
                return {json.dumps(loading.UPLOAD_CHOICES)}.includes(id.name)
                    && values[i] === "upload";
            }});
            return uploads.length ? {json.dumps(loading.SHOWN)} : {json.dumps(loading.HIDDEN)};
        }}""",
        Output(ids.REFERENCE_AREA, "style"),
        Input(ids.parameter(ALL), "value"), State(ids.parameter(ALL), "id"),
    )  # fmt: skip


JOB_VIEW = [
    Output(ids.JOB_REQUEST, "data", allow_duplicate=True),
    Output(ids.JOB_POLL, "disabled", allow_duplicate=True),
    Output(ids.COMPUTE_BUTTON, "disabled", allow_duplicate=True),
    Output(ids.CANCEL_BUTTON, "disabled", allow_duplicate=True),
    Output(ids.PROGRESS, "style", allow_duplicate=True),
    Output(ids.PROGRESS, "value", allow_duplicate=True),
    Output(ids.PROGRESS, "max", allow_duplicate=True),
    Output(ids.STATUS, "children", allow_duplicate=True),
]
"""What :func:`dashboard.callbacks.compute.job_view` fills: the job, the poll, the
buttons, the progress bar and the status line."""


DOWNLOADS = (ids.DOWNLOAD_CSV, ids.DOWNLOAD_NPZ, ids.DOWNLOAD_PARAMS, ids.DOWNLOAD_PYTHON)


def _settings(kind=State) -> list:
    """The page's values a result is computed from (:func:`compute.settings` reads them),
    as ``State`` (Compute) or ``Input`` (the stale notice)."""
    return [
        kind(ids.MODEL_REF, "data"), kind(ids.DATA_REF, "data"), kind(ids.METHOD_SELECT, "value"),
        kind(ids.parameter(ALL), "value"), State(ids.parameter(ALL), "id"),
        kind(ids.rule("rule_name", ALL), "value"), State(ids.rule("rule_name", ALL), "id"),
        kind(ids.rule("rule_param", ALL), "value"), State(ids.rule("rule_param", ALL), "id"),
        kind(ids.OUTPUT_SELECT, "value"), kind(ids.ROWS_INPUT, "value"),
        kind(ids.REFERENCE_REF, "data"),
    ]  # fmt: skip


def _compute_callbacks(app: Dash, store: Store, config: Config, runner, session) -> None:
    @app.callback(
        Output(ids.RESULT_REF, "data", allow_duplicate=True), *JOB_VIEW, *ALERT,
        Input(ids.COMPUTE_BUTTON, "n_clicks"), *_settings(),
        State(ids.RESULT_REF, "data"), State(ids.JOB_REQUEST, "data"), SESSION,
        prevent_initial_call=True,
    )  # fmt: skip
    def start_compute(_n_clicks, *args):
        *values, shown, job, token = args
        chosen = compute.settings(*values)

        def start():
            me = session(token)
            compute.leave(runner, job, me)  # a page waits for one job at a time
            request = compute.build(store, config, chosen, me)
            notes = compute.clamped(request, chosen)
            found = compute.cached(store, request, me, chosen)
            if found is not None:
                unchanged = shown is not None and shown.get("key") == found["key"]
                return (
                    no_update if unchanged else found,
                    *compute.job_view(None, status_text=compute.done_text(notes)), None, False,
                )  # fmt: skip
            job_id = compute.submit(runner, store, config, request, me)
            job_ = {"id": job_id, "request": request, "settings": chosen, "notes": notes}
            return compute.follow(runner, job_, me)

        try:
            return start()
        except Exception as error:  # refusal tells bugs from bad input
            return (*([no_update] * (1 + len(JOB_VIEW))), *refusal(error))

    # In the browser (assets/dashboard.js, innsight.staleness): it follows every control,
    # and a server round trip for each would load a busy server for nothing.
    app.clientside_callback(
        ClientsideFunction("innsight", "staleness"),
        Output(ids.STALE_NOTICE, "children"), Output(ids.STALE_NOTICE, "is_open"),
        Output(ids.RESULT_REF, "data", allow_duplicate=True),
        *[Output(button, "disabled") for button in DOWNLOADS],
        # a clientside callback takes its Inputs first, then its States (the ids)
        *[d for d in _settings(Input) if isinstance(d, Input)], Input(ids.RESULT_REF, "data"),
        *[d for d in _settings(Input) if not isinstance(d, Input)],
        prevent_initial_call="initial_duplicate",  # no downloads before a result
    )  # fmt: skip

    @app.callback(
        *JOB_VIEW,
        Input(ids.MODEL_REF, "data"), Input(ids.DATA_REF, "data"),
        State(ids.JOB_REQUEST, "data"), SESSION, prevent_initial_call=True,
    )  # fmt: skip
    def forget_job(_model_ref, _data_ref, job, token):
        # a job for another model or data is of no use any more
        try:
            compute.leave(runner, job, session(token))
        except ValueError as error:
            return compute.job_view(None, status_text=str(error))
        return compute.job_view(None, status_text="")

    @app.callback(
        Output(ids.RESULT_REF, "data", allow_duplicate=True), *JOB_VIEW, *ALERT,
        Input(ids.JOB_POLL, "n_intervals"), State(ids.JOB_REQUEST, "data"), SESSION,
        prevent_initial_call=True,
    )  # fmt: skip
    def follow_job(_n, job, token):
        if not job:
            return (no_update,) * (3 + len(JOB_VIEW))
        try:
            me = session(token)
        except ValueError as error:  # stop polling: the page must be reloaded
            return (no_update, *compute.job_view(None, status_text=str(error)), *refusal(error))
        return compute.follow(runner, job, me)

    @app.callback(
        *JOB_VIEW,
        Input(ids.CANCEL_BUTTON, "n_clicks"), State(ids.JOB_REQUEST, "data"), SESSION,
        prevent_initial_call=True,
    )  # fmt: skip
    def cancel_job(_n, job, token):
        try:
            compute.leave(runner, job, session(token))
        except ValueError as error:
            return compute.job_view(None, status_text=str(error))
        return compute.job_view(None, status_text="Cancelled.")


def _view_callbacks(app: Dash, store: Store, session) -> None:
    @app.callback(
        Output(ids.INDIVIDUAL_ROWS, "options"), Output(ids.INDIVIDUAL_ROWS, "value"),
        Output(ids.INDIVIDUAL_OUTPUTS, "options"), Output(ids.INDIVIDUAL_OUTPUTS, "value"),
        Output(ids.GLOBAL_OUTPUTS, "options"), Output(ids.GLOBAL_OUTPUTS, "value"),
        Output(ids.REFERENCE_ROW, "options"), Output(ids.REFERENCE_ROW, "value"), *ALERT,
        Input(ids.RESULT_REF, "data"), SESSION, prevent_initial_call="initial_duplicate",
    )  # fmt: skip
    def show_result_options(result_ref, token):
        if not result_ref:  # no result, or one dropped for another model or data
            return [], [], [], [], [], [], [], None, None, False

        def options():
            found = views.view_options(store, result_ref, session(token))
            return (
                found["rows"], found["selected_rows"], found["nodes"], found["selected_nodes"],
                found["nodes"], found["global_nodes"], found["rows"], None,
            )  # fmt: skip

        return guarded(options, 8)  # a new result starts without a reference row

    @app.callback(
        Output(ids.INDIVIDUAL_GRAPH, "figure"), *ALERT,
        Input(ids.INDIVIDUAL_ROWS, "value"), Input(ids.INDIVIDUAL_OUTPUTS, "value"),
        Input(ids.AGGR_CHANNELS, "value"), Input(ids.PLOT_OPTIONS, "value"),
        State(ids.RESULT_REF, "data"), SESSION, prevent_initial_call=True,
    )  # fmt: skip
    def draw_individual(rows, nodes, aggr_channels, options, result_ref, token):
        if not result_ref:
            return note_figure(), no_update, no_update
        return guarded(
            lambda: (
                views.individual_figure(
                    store, result_ref, session(token), rows, nodes, aggr_channels, options
                ),
            ),
            1,
        )

    @app.callback(
        Output(ids.GLOBAL_GRAPH, "figure"), *ALERT,
        Input(ids.GLOBAL_OUTPUTS, "value"), Input(ids.PREPROCESS, "value"),
        Input(ids.REFERENCE_ROW, "value"), Input(ids.GLOBAL_AGGR_CHANNELS, "value"),
        Input(ids.TABS, "active_tab"), State(ids.RESULT_REF, "data"), SESSION,
        prevent_initial_call=True,
    )  # fmt: skip
    def draw_global(nodes, preprocess, reference_row, aggr_channels, tab, result_ref, token):
        if not result_ref:  # no result, or one dropped for another model or data
            return note_figure(), no_update, no_update
        if tab != "global":  # drawn when its tab is shown
            return no_update, no_update, no_update
        return guarded(
            lambda: (
                views.global_figure(
                    store, result_ref, session(token), nodes, preprocess, reference_row,
                    aggr_channels,
                ),
            ),
            1,
        )  # fmt: skip

    @app.callback(
        Output(ids.TABLE, "columnDefs"), *ALERT,
        Input(ids.RESULT_REF, "data"), Input(ids.TABS, "active_tab"), SESSION,
        prevent_initial_call=True,
    )  # fmt: skip
    def show_table(result_ref, tab, token):
        if tab != "table":  # filled when its tab is shown
            return no_update, no_update, no_update
        if not result_ref:
            return [], None, False
        return guarded(lambda: (views.table_columns(store, result_ref, session(token)),), 1)

    # New columns: the grid forgets the rows it holds and asks for the first page again.
    app.clientside_callback(
        f"""function (columns) {{
            dash_ag_grid.getApiAsync({ids.TABLE!r}).then(function (api) {{
                api.purgeInfiniteCache();
                api.paginationGoToFirstPage();
            }});
        }}""",
        Input(ids.TABLE, "columnDefs"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.TABLE, "getRowsResponse"), *ALERT,
        Input(ids.TABLE, "getRowsRequest"), State(ids.RESULT_REF, "data"), SESSION,
        prevent_initial_call=True,
    )  # fmt: skip
    def table_rows(request, result_ref, token):
        if not result_ref or not isinstance(request, dict):
            return {"rowData": [], "rowCount": 0}, no_update, no_update
        return guarded(lambda: (views.table_rows(store, result_ref, session(token), request),), 1)

    @app.callback(
        Output(ids.DOWNLOAD, "data"), *ALERT,
        Input(ids.DOWNLOAD_CSV, "n_clicks"), Input(ids.DOWNLOAD_NPZ, "n_clicks"),
        Input(ids.DOWNLOAD_PARAMS, "n_clicks"), Input(ids.DOWNLOAD_PYTHON, "n_clicks"),
        State(ids.RESULT_REF, "data"), SESSION, prevent_initial_call=True,
    )  # fmt: skip
    def download(*args: Any):
        result_ref, token = args[-2:]
        if not result_ref:
            return no_update, no_update, no_update
        what = {
            ids.DOWNLOAD_CSV: "csv", ids.DOWNLOAD_NPZ: "npz", ids.DOWNLOAD_PYTHON: "python"
        }.get(ctx.triggered_id, "params")  # fmt: skip
        return guarded(lambda: (views.download(store, result_ref, session(token), what),), 1)
