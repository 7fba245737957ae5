"""Drawing a memoised result: the grid, the global summary, the table and the downloads.

Changing a view option redraws from the stored result; nothing is recomputed.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from attribution.plots import plot_global_result
from attribution.result import AttributionResult
from dashboard import script, table
from dashboard.errors import NotStored
from dashboard.jobs import session_key
from dashboard.layout.views import note_figure
from dashboard.memo import LastUsed
from dashboard.store import Store

RESULTS: LastUsed[AttributionResult] = LastUsed(8)
"""Results read in this process, by key."""
FIGURES: LastUsed[go.Figure] = LastUsed(16)
"""Grid figures drawn in this process, by result key and view choices (read only: Dash
serialises them)."""


def load_result(store: Store, result_ref: dict, session: str) -> AttributionResult:
    """The result behind a page's reference (the last few are kept in memory).

    The key is computed again from the reference's request and ``session``: a key that
    names another session's result, however the page learnt it, reads nothing.
    """
    request = result_ref.get("request") if isinstance(result_ref, dict) else None
    try:
        key = session_key(request, session)
    except (KeyError, TypeError, AttributeError):
        key = None
    if key is None or key != result_ref.get("key"):
        raise NotStored("This result does not belong to this page: press Compute again.")
    return RESULTS.get(key, lambda: _read_result(store, key))


def _read_result(store: Store, key: str) -> AttributionResult:
    result = store.get_result(key)
    if result is None:
        raise NotStored(
            "This result is no longer in the cache (evicted to keep it within its size "
            "limit): press Compute again."
        )
    return result


def view_options(store: Store, result_ref: dict, session: str) -> dict[str, Any]:
    """Choices of the view controls for a result, and their defaults (innsight's)."""
    result = load_result(store, result_ref, session)
    n_rows = result.n_data if result.has_data else 1
    rows = [{"label": f"data_{i + 1}", "value": i} for i in range(n_rows)]
    several = len(result.output_names) > 1
    nodes = [
        {
            "label": f"Output_{k + 1}: {result.output_names[k][i]}"
            if several else result.output_names[k][i],
            "value": f"{k}:{i}",
        }
        for k, idx in enumerate(result.output_idx)
        for i in idx or []
    ]  # fmt: skip
    return {
        "rows": rows,
        "selected_rows": [row["value"] for row in rows[:2]],
        "nodes": nodes,
        "selected_nodes": [node["value"] for node in nodes[:3]],
        "global_nodes": [nodes[0]["value"]],
    }


def _output_idx(result: AttributionResult, selected: list[str] | None) -> list | None:
    if not selected:
        return None
    idx: list[list[int] | None] = [None] * len(result.output_names)
    for value in selected:
        layer, node = (int(part) for part in value.split(":"))
        idx[layer] = [*(idx[layer] or []), node]
    return idx


def individual_figure(
    store: Store,
    result_ref: dict,
    session: str,
    rows: list[int] | None,
    nodes: list[str] | None,
    aggr_channels: str,
    options: list[str] | None,
) -> go.Figure:
    """``result.plot(...)`` with the page's choices (the last few figures are kept: a
    class following the teacher asks for the same one)."""
    result = load_result(store, result_ref, session)
    options = options or []
    choices = (tuple(rows or ()), tuple(nodes or ()), aggr_channels, tuple(sorted(options)))
    return FIGURES.get(
        (result_ref["key"], *choices),
        lambda: result.plot(
            data_idx=rows or [0] if result.has_data else 0,
            output_idx=_output_idx(result, nodes),
            aggr_channels=aggr_channels or "sum",
            same_scale="same_scale" in options,
            show_preds="show_preds" in options,
        ),
    )


def global_figure(
    store: Store,
    result_ref: dict,
    session: str,
    nodes: list[str] | None,
    preprocess: str,
    reference_row: int | None,
    aggr_channels: str = "sum",
) -> go.Figure:
    """``result.plot_global(...)`` with the page's choices (a note for global Connection
    Weights, which has no data to summarise).

    The page's reference-row dropdown is the one choice of the red row: the figure has no
    "Data point" menu of its own (``point_menu=False``). A row the result does not have (a
    choice left from another result) and a row for images (which have no red row) are
    dropped."""
    result = load_result(store, result_ref, session)
    if not result.has_data:
        return note_figure(
            "Global Connection Weights explains no data points: see the Individual tab, or "
            "switch × input on to summarise the local variant."
        )
    images_only = all(len(dim) == 3 for dim in result.input_dim)
    if images_only or not (isinstance(reference_row, int) and 0 <= reference_row < result.n_data):
        reference_row = None
    return plot_global_result(
        result,
        output_idx=_output_idx(result, nodes),
        preprocess=preprocess or "abs",
        ref_data_idx=reference_row,
        aggr_channels=aggr_channels or "sum",
        point_menu=False,
    )


FRAMES: LastUsed[pd.DataFrame] = LastUsed(4)
"""innsight's data frames of the last few results the table showed, by result key."""
ORDERS: LastUsed[np.ndarray] = LastUsed(8)
"""The rows a sort and filter keep, by result key and sort and filter model (the pages of
one sorted or filtered view are cut from one order)."""


def _frame(store: Store, result_ref: dict, session: str) -> pd.DataFrame:
    result = load_result(store, result_ref, session)
    return FRAMES.get(result_ref["key"], lambda: result.get_result("data.frame"))


def table_columns(store: Store, result_ref: dict, session: str) -> list[dict]:
    """The table's columns for a result (:func:`dashboard.table.column_defs`)."""
    return table.column_defs(_frame(store, result_ref, session))


def table_rows(store: Store, result_ref: dict, session: str, request: dict) -> dict:
    """The answer to the grid's rows request (``startRow``, ``endRow``, ``sortModel``,
    ``filterModel``): ``{"rowData", "rowCount"}``, sorted and filtered over all rows."""
    frame = _frame(store, result_ref, session)
    key = (result_ref["key"], table.model_key(request))
    order = ORDERS.get(key, lambda: table.row_order(frame, request))
    return table.records(frame, order, request)


def download(store: Store, result_ref: dict, session: str, what: str) -> dict:
    """The file for a download button: ``"csv"``, ``"npz"``, ``"params"`` (the engine's
    keyword arguments and the page's choices, JSON) or ``"python"`` (a script that computes
    the result again, :func:`dashboard.script.python_script`)."""
    result = load_result(store, result_ref, session)
    request = result_ref["request"]
    name = f"{request['method']}_{result_ref['key'][:8]}"
    if what == "csv":
        text = _frame(store, result_ref, session).to_csv(index=False)
        return {"content": text, "filename": f"{name}.csv"}
    if what == "npz":
        arrays = _arrays(result)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return _bytes_download(buffer.getvalue(), f"{name}.npz")
    where = script.sources(store, request, session)
    if what == "python":
        return {"content": script.python_script(request, where, name), "filename": f"{name}.py"}
    text = json.dumps(script.parameters(request, where), indent=2)
    return {"content": text, "filename": f"{name}_parameters.json"}


def _arrays(result: AttributionResult) -> dict[str, np.ndarray]:
    arrays = result.get_result("array")
    if isinstance(arrays, np.ndarray):
        return {"Output_1__Input_1": arrays}
    return {
        f"{output}__{input_}": array
        for output, per_input in arrays.items()
        for input_, array in per_input.items()
        if array is not None
    }


def _bytes_download(data: bytes, filename: str) -> dict:
    return {"content": base64.b64encode(data).decode(), "filename": filename, "base64": True}
