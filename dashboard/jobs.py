"""The background job: compute one attribution request and memoise its result.

Module-level and Dash-free, so the background callback's worker process (which sees no
server state) and the tests call the same function.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dashboard.methods import canonical_params, run_method
from dashboard.sources import data_from_ref, model_from_ref, ref_hash
from dashboard.store import Store, result_key
from dashboard.uploads import check_data_fits

ProgressSetter = Callable[[tuple[int, int]], None]


def request_key(request: dict[str, Any]) -> str:
    """The memo key of a request: model, data, method, canonical parameters, outputs and
    rows, and the engine version."""
    settings = {
        "params": request["params"],
        "output_idx": request["output_idx"],
        "rows": request["rows"],
    }
    return result_key(
        ref_hash(request["model"]), ref_hash(request["data"]), request["method"], settings
    )


def build_request(
    store: Store,
    model_ref: dict,
    data_ref: dict,
    method: str,
    raw_params: dict[str, Any],
    outputs: list[str],
    rows: Any,
) -> dict[str, Any]:
    """A canonical request from the page's values; raises ValueError naming what is wrong."""
    if not model_ref:
        raise ValueError("No model is loaded: pick a demo or upload a model first.")
    if not data_ref:
        raise ValueError("No data is loaded: upload a data file (a demo brings its own).")
    if not method:
        raise ValueError("Choose a method first.")
    model = model_from_ref(store, model_ref)
    data = data_from_ref(store, data_ref, model)
    check_data_fits(model, data)
    if not outputs:
        raise ValueError("Select at least one output node.")
    output_idx: list[list[int] | None] = [None] * len(model.output_names)
    for value in outputs:
        layer, node = (int(part) for part in value.split(":"))
        output_idx[layer] = [*(output_idx[layer] or []), node]
    if rows is None or isinstance(rows, bool) or int(rows) < 1:
        raise ValueError(f"Rows to explain must be a whole number ≥ 1; got {rows!r}.")
    return {
        "model": model_ref,
        "data": data_ref,
        "method": method,
        "params": canonical_params(method, raw_params, model),
        "output_idx": output_idx,
        "rows": min(int(rows), data.n_rows),
    }


def run_attribution(
    cache_dir: str | Path, size_limit: int, request: dict, set_progress: ProgressSetter
) -> dict[str, Any]:
    """Compute ``request``, memoise the result, and return the page's result reference."""
    with Store(cache_dir, size_limit) as store:
        model = model_from_ref(store, request["model"])
        data = data_from_ref(store, request["data"], model)
        inputs = [array[: request["rows"]] for array in data.arrays]

        def progress(done: int, total: int) -> None:
            set_progress((done, total))

        result = run_method(
            model, inputs, request["method"], request["params"], request["output_idx"], progress
        )
        key = request_key(request)
        store.put_result(key, result)
    return {"key": key, "request": request, "cached": False}
