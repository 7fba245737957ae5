"""The background job: compute one attribution request and memoise its result.

Module-level and Dash-free, so the background callback's worker process (which sees no
server state) and the tests call the same function.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from attribution._names import default_input_names
from attribution.converter.loading import LoadedModel
from dashboard.images import UploadLimits
from dashboard.methods import canonical_params, run_method
from dashboard.sources import data_from_ref, model_from_ref, ref_hash, reference_from_sha
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
    """A canonical request from the page's values; raises ValueError naming what is wrong.

    ``outputs`` are the output dropdown's ``"k:i"`` values (node ``i`` of output layer
    ``k``, 0-based), in any order: the request holds them sorted per output layer.
    ``rows`` (the first rows to explain) and a background ``sample_size`` are capped at the
    data's number of rows; an uploaded reference file is read and checked.
    """
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
    output_idx = parse_outputs(outputs, model.output_names)
    if isinstance(rows, float) and rows.is_integer():
        rows = int(rows)
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"Rows to explain must be a whole number ≥ 1; got {rows!r}.")
    params = canonical_params(method, raw_params, model)
    if params.get("reference_row", 0) >= data.n_rows:
        raise ValueError(
            f"Reference row {params['reference_row']} is out of range: {data.filename} has "
            f"{data.n_rows} rows (0-based, 0–{data.n_rows - 1})."
        )
    if "sample_size" in params:
        params["sample_size"] = min(params["sample_size"], data.n_rows)
    _uploaded_reference(store, params, model, data_ref)
    return {
        "model": model_ref,
        "data": data_ref,
        "method": method,
        "params": params,
        "output_idx": output_idx,
        "rows": min(rows, data.n_rows),
    }


def _uploaded_reference(store: Store, params: dict, model: LoadedModel, data_ref: dict) -> Any:
    """The arrays of the uploaded reference file the parameters name, or None; read with the
    data's channel order."""
    if params.get("reference_sha") is None:
        return None
    reference = reference_from_sha(
        store, params["reference_sha"], model, one_row=params.get("reference") == "upload",
        channels_last=bool(data_ref.get("channels_last")),
    )  # fmt: skip
    return reference.arrays


def parse_outputs(outputs: list[str], output_names: list[list[str]]) -> list[list[int] | None]:
    """``["0:2", "1:0", "0:1"]`` → ``[[1, 2], [0]]``: sorted node indices per output layer
    (None for a layer with none selected), checked against the model's outputs."""
    per_layer: list[set[int]] = [set() for _ in output_names]
    for value in outputs:
        try:
            layer, node = (int(part) for part in str(value).split(":"))
        except ValueError:
            raise ValueError(
                f"Output {value!r} is not 'layer:node' (two 0-based whole numbers, e.g. '0:2')."
            ) from None
        if not (0 <= layer < len(output_names) and 0 <= node < len(output_names[layer])):
            sizes = ", ".join(f"Output_{k + 1}: {len(n)}" for k, n in enumerate(output_names))
            raise ValueError(
                f"Output {value!r} is not a node of the model; it has {len(output_names)} "
                f"output layer(s) with {sizes} nodes (0-based). Choose the outputs again."
            )
        per_layer[layer].add(node)
    return [sorted(nodes) if nodes else None for nodes in per_layer]


def run_attribution(
    cache_dir: str | Path,
    size_limit: int,
    request: dict,
    set_progress: ProgressSetter,
    upload_limits: UploadLimits | None = None,
) -> dict[str, Any]:
    """Compute ``request``, memoise the result, and return the page's result reference.

    The job runs in another process: it opens the store in ``cache_dir`` itself.
    """
    with Store(cache_dir, size_limit, upload_limits) as store:
        model = model_from_ref(store, request["model"])
        data = data_from_ref(store, request["data"], model)
        inputs = [array[: request["rows"]] for array in data.arrays]
        uploaded = _uploaded_reference(store, request["params"], model, request["data"])

        def progress(done: int, total: int) -> None:
            set_progress((done, total))

        result = run_method(
            model, inputs, request["method"], request["params"], request["output_idx"], progress,
            reference_data=data.arrays,
            uploaded_reference=uploaded,
        )  # fmt: skip
        if _has_default_names(model) and data.input_names:
            result.input_names = [[list(data.input_names)]]  # the CSV header names features
        key = request_key(request)
        store.put_result(key, result)
    return {"key": key, "request": request, "cached": False}


def _has_default_names(model: LoadedModel) -> bool:
    """One tabular input layer named ``X1``... (innsight's default, not the user's)."""
    dims = model.input_dim
    return (
        len(dims) == 1 and len(dims[0]) == 1 and model.input_names == [default_input_names(dims[0])]
    )
