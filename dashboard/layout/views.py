"""The result tabs: individual grid, global summary, table with downloads, model summary."""

from __future__ import annotations

from functools import lru_cache

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from dashboard import ids, table

_GRAPH_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


HINT = "No result yet: pick a demo (or upload a model and data), choose a method, press Compute."
"""What the result graphs show before there is a result."""


@lru_cache(maxsize=16)
def note_figure(text: str = HINT) -> dict:
    """A figure of one line of text and no axes (before a result, or where a view has
    nothing to draw), as plotly JSON; made once per text: every page load draws one."""
    figure = go.Figure()
    figure.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(height=160, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                         plot_bgcolor="white")  # fmt: skip
    return figure.to_plotly_json()


def _labelled(label: str, control) -> dbc.Col:
    return dbc.Col([dbc.Label(label, className="small mb-0"), control], md=3)


def _aggregation(component_id: str) -> dcc.Dropdown:
    """How signal and image channels are combined (innsight's aggr_channels)."""
    options = [{"label": f"aggregate: {a}", "value": a} for a in ("sum", "mean", "norm")]
    return dcc.Dropdown(id=component_id, value="sum", clearable=False, options=options)


def _scrolling_graph(graph_id: str) -> dcc.Loading:
    """A result graph, first showing :data:`HINT`. The figure is as wide as its panels
    need (:mod:`attribution.plots._sizes`): the graph keeps the figure's size and its
    container scrolls sideways."""
    graph = dcc.Graph(
        id=graph_id, figure=note_figure(), config=_GRAPH_CONFIG, responsive=False,
        style={"width": "max-content"},
    )  # fmt: skip
    return dcc.Loading(html.Div(graph, style={"overflowX": "auto"}))


def individual_tab() -> dbc.Tab:
    controls = dbc.Row(
        [
            _labelled("Data points", dcc.Dropdown(id=ids.INDIVIDUAL_ROWS, multi=True)),
            _labelled("Output nodes", dcc.Dropdown(id=ids.INDIVIDUAL_OUTPUTS, multi=True)),
            _labelled("Channels", _aggregation(ids.AGGR_CHANNELS)),
            _labelled("Options", dbc.Checklist(
                id=ids.PLOT_OPTIONS, value=["show_preds"], switch=True, inline=True,
                options=[{"label": "info box", "value": "show_preds"},
                         {"label": "same scale", "value": "same_scale"}],
            )),
        ],
        className="g-2 my-2",
    )  # fmt: skip
    return dbc.Tab(
        [controls, _scrolling_graph(ids.INDIVIDUAL_GRAPH)],
        label="Individual",
        tab_id="individual",
    )


def global_tab() -> dbc.Tab:
    controls = dbc.Row(
        [
            _labelled("Output nodes", dcc.Dropdown(id=ids.GLOBAL_OUTPUTS, multi=True)),
            _labelled("Preprocess", dcc.Dropdown(
                id=ids.PREPROCESS, value="abs", clearable=False,
                options=[{"label": p, "value": p} for p in ("abs", "identity", "square")],
            )),
            _labelled("Reference row (red)", dcc.Dropdown(id=ids.REFERENCE_ROW)),
            _labelled("Channels", _aggregation(ids.GLOBAL_AGGR_CHANNELS)),
        ],
        className="g-2 my-2",
    )  # fmt: skip
    return dbc.Tab(
        [controls, _scrolling_graph(ids.GLOBAL_GRAPH)],
        label="Global",
        tab_id="global",
    )


def table_tab() -> dbc.Tab:
    """innsight's data frame, paged, sorted and filtered in the server over all its rows
    (AG Grid's infinite row model: :func:`dashboard.callbacks.views.table_rows`), and the
    downloads."""
    buttons = html.Div(
        [
            dbc.Button(f"⤓ Download {label}", id=button_id, color="primary", size="sm")
            for label, button_id in (
                ("CSV", ids.DOWNLOAD_CSV),
                ("NPZ (arrays)", ids.DOWNLOAD_NPZ),
                ("parameters (JSON)", ids.DOWNLOAD_PARAMS),
                ("Python script", ids.DOWNLOAD_PYTHON),
            )
        ],
        className="d-flex flex-wrap gap-2 my-2",
    )
    grid = dag.AgGrid(
        id=ids.TABLE,
        columnDefs=[],
        rowModelType="infinite",
        defaultColDef={
            "resizable": True,
            "sortable": True,
            "filter": True,
            "floatingFilter": True,
            "minWidth": 100,
            "wrapHeaderText": True,  # the whole column name, on two lines if need be
            "autoHeaderHeight": True,
            "filterParams": {"buttons": ["reset"], "maxNumConditions": 2},
        },
        dashGridOptions={
            "pagination": True,
            "paginationPageSize": table.PAGE_SIZE,
            "paginationPageSizeSelector": False,
            "cacheBlockSize": table.PAGE_SIZE,
            "maxBlocksInCache": 10,  # the browser keeps at most 10 pages
            "suppressCellFocus": True,
            "suppressColumnVirtualisation": True,  # a dozen columns: all of them drawn
            "tooltipShowDelay": 300,
        },
        columnSize="responsiveSizeToFit",
        style={"height": "560px"},
    )
    return dbc.Tab([buttons, grid, dcc.Download(id=ids.DOWNLOAD)], label="Table", tab_id="table")


def model_tab() -> dbc.Tab:
    return dbc.Tab(
        html.Pre(id=ids.MODEL_SUMMARY, className="small mt-2"), label="Model", tab_id="model"
    )


def result_tabs() -> dbc.Tabs:
    return dbc.Tabs(
        [individual_tab(), global_tab(), table_tab(), model_tab()],
        id=ids.TABS,
        active_tab="individual",
    )
