"""The method form as the user types: a refused value is marked with the reason the
request would be refused with; a value that will be capped says so."""

from __future__ import annotations

from typing import Any

from dashboard.jobs import checked_rows
from dashboard.methods import PARAMETERS, parameter_problem


def parameter_problems(
    method: str | None, values: list[Any], value_ids: list[dict]
) -> dict[str, str]:
    """The refused values of the parameter panel: ``{name: why}``."""
    if method is None:
        return {}
    problems = {}
    for value_id, value in zip(value_ids, values, strict=True):
        name = value_id["name"]
        if name in PARAMETERS and PARAMETERS[name].numeric:
            problem = parameter_problem(method, name, value)
            if problem is not None:
                problems[name] = problem
    return problems


def rows_feedback(rows: Any, n_rows: int | None) -> tuple[str | None, bool]:
    """The text under "Rows to explain" and whether the field is marked refused: why the
    value is refused, or that rows beyond the data's ``n_rows`` are not explained."""
    try:
        rows = checked_rows(rows)
    except ValueError as error:
        return str(error), True
    if n_rows is not None and rows > n_rows:
        return f"The data has {n_rows} rows: all {n_rows} will be explained.", False
    return None, False
