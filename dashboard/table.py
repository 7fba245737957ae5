"""innsight's data frame of a result as the table shows it: columns, and blocks of rows
sorted and filtered in the server (AG Grid's infinite row model asks for them).

Dash-free: :func:`column_defs` gives the grid's columns, :func:`row_order` the rows of the
whole frame that a sort and filter model keep (in order), and :func:`records` one block of
them as the grid takes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

PAGE_SIZE = 100
"""Rows per page of the table (and per block the grid asks for)."""
MAX_BLOCK = 1000
"""The most rows one request returns, whatever it asks for."""
FOUR_DIGITS = {"function": "params.value == null ? '' : d3.format('.4~g')(params.value)"}
"""AG Grid's value formatter for 4 significant digits, as innsight prints numbers (``d3`` is
what dash-ag-grid's function strings offer; they have no ``typeof``)."""

_NUMBER_TESTS: dict[str, Callable[[pd.Series, Any, Any], pd.Series]] = {
    "equals": lambda s, a, _: s == a,
    "notEqual": lambda s, a, _: s != a,
    "greaterThan": lambda s, a, _: s > a,
    "greaterThanOrEqual": lambda s, a, _: s >= a,
    "lessThan": lambda s, a, _: s < a,
    "lessThanOrEqual": lambda s, a, _: s <= a,
    "inRange": lambda s, a, b: (s >= a) & (s <= b),
}
_TEXT_TESTS: dict[str, Callable[[pd.Series, str], pd.Series]] = {
    "contains": lambda s, a: s.str.contains(a, regex=False),
    "notContains": lambda s, a: ~s.str.contains(a, regex=False),
    "equals": lambda s, a: s == a,
    "notEqual": lambda s, a: s != a,
    "startsWith": lambda s, a: s.str.startswith(a),
    "endsWith": lambda s, a: s.str.endswith(a),
}


def column_defs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One column per frame column, its whole name as the header: numbers filtered as
    numbers, floats shown to 4 significant digits, the rest filtered as text."""
    columns = []
    for name in frame.columns:
        column = {
            "field": name,
            "headerName": name,
            "headerTooltip": name,
            "minWidth": max(100, 9 * len(name) + 60),  # the name, the sort and menu icons
        }
        if pd.api.types.is_numeric_dtype(frame[name]):
            column["filter"] = "agNumberColumnFilter"
            if pd.api.types.is_float_dtype(frame[name]):
                column["valueFormatter"] = FOUR_DIGITS
        else:
            column["filter"] = "agTextColumnFilter"
        columns.append(column)
    return columns


def model_key(request: dict[str, Any]) -> str:
    """The sort and filter of a rows request, as a text (a memo key)."""
    return json.dumps(
        [request.get("sortModel") or [], request.get("filterModel") or {}], sort_keys=True
    )


def row_order(frame: pd.DataFrame, request: dict[str, Any]) -> np.ndarray:
    """The positions of the frame's rows that the request's ``filterModel`` keeps, in the
    order of its ``sortModel`` (stable; categories sort in their order: ``data_2`` before
    ``data_10``). Columns the frame lacks are ignored.

    Raises
    ------
    ValueError
        A filter of a type the table does not offer.
    """
    keep = np.ones(len(frame), dtype=bool)
    filters = request.get("filterModel") or {}
    for name, model in filters.items() if isinstance(filters, dict) else ():
        if name in frame.columns and isinstance(model, dict):
            keep &= _passes(frame[name], model).to_numpy(dtype=bool)
    positions = np.flatnonzero(keep)
    sorts = [
        (entry["colId"], entry.get("sort") != "desc")
        for entry in request.get("sortModel") or []
        if isinstance(entry, dict) and entry.get("colId") in frame.columns
    ]
    if not sorts:
        return positions
    part = frame.iloc[positions]
    order = part.reset_index(drop=True).sort_values(
        [name for name, _ in sorts], ascending=[up for _, up in sorts], kind="stable",
        na_position="last",
    ).index  # fmt: skip
    return positions[order.to_numpy()]


def records(frame: pd.DataFrame, order: np.ndarray, request: dict[str, Any]) -> dict[str, Any]:
    """The grid's answer to a rows request: the block ``startRow``–``endRow`` (at most
    :data:`MAX_BLOCK` rows) of the kept rows as plain records, and how many there are."""
    start = max(0, _whole(request.get("startRow"), 0))
    end = min(_whole(request.get("endRow"), start + PAGE_SIZE), start + MAX_BLOCK)
    part = frame.iloc[order[start:end]].astype(object)
    rows = part.where(part.notna(), None).to_dict("records")
    return {"rowData": rows, "rowCount": len(order)}


def _whole(value: Any, default: int) -> int:
    return (
        int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default
    )


def _passes(column: pd.Series, model: dict[str, Any]) -> pd.Series:
    """Whether each value passes a column's filter: one condition, or several joined by
    ``operator`` (AND, OR)."""
    if "conditions" in model:
        tests = [_passes(column, condition) for condition in model["conditions"] or []]
        if not tests:
            return pd.Series(True, index=column.index)
        joined = tests[0]
        for test in tests[1:]:
            joined = (joined | test) if model.get("operator") == "OR" else (joined & test)
        return joined
    kind = model.get("type")
    if kind in ("blank", "notBlank"):
        blank = column.isna() | (column.astype(str) == "")
        return blank if kind == "blank" else ~blank
    if model.get("filterType") == "number":
        if kind not in _NUMBER_TESTS:
            raise ValueError(f"The number filter {kind!r} is not offered; clear the filter.")
        value, to = model.get("filter"), model.get("filterTo")
        if value is None or (kind == "inRange" and to is None):
            return pd.Series(True, index=column.index)  # an empty field filters nothing
        values = pd.to_numeric(column, errors="coerce")
        return _NUMBER_TESTS[kind](values, float(value), None if to is None else float(to))
    if kind not in _TEXT_TESTS:
        raise ValueError(f"The text filter {kind!r} is not offered; clear the filter.")
    if model.get("filter") in (None, ""):
        return pd.Series(True, index=column.index)
    text = column.astype("string").str.lower().fillna("")
    return _TEXT_TESTS[kind](text, str(model["filter"]).lower()).fillna(False)
