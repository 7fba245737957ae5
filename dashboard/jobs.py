"""One attribution request: built and checked from the page's values, computed and
memoised by a worker.

Module-level and Dash-free, so the job workers (which see no server state) and the tests
call the same functions. A request names the model, data, method, canonical parameters,
output nodes and rows; :func:`request_key` adds its owner (a session, or public for
demos) and is the key of its result and of its job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attribution._names import default_input_names
from attribution.converter.loading import LoadedModel
from dashboard.config import WorkLimits
from dashboard.methods import canonical_params, run_method
from dashboard.sessions import owner_of
from dashboard.sources import data_from_ref, model_from_ref, ref_hash, reference_from_sha
from dashboard.store import Store, result_key
from dashboard.uploads import check_data_fits

ProgressSetter = Callable[[tuple[int, int]], None]


_SAMPLE_PARAMETERS = ("n", "sample_size", "limit_ref")


def request_owner(request: dict[str, Any], session: str) -> str:
    """Who the request's result belongs to: the session when it reads an upload of its
    own (model, data or reference file), else public (demos and the server's files)."""
    reference = {"kind": "upload"} if request["params"].get("reference_sha") else None
    return owner_of(session, request["model"], request["data"], reference)


def session_key(request: dict[str, Any], session: str) -> str:
    """The memo key of a request made on a page of ``session``."""
    return request_key(request, request_owner(request, session))


def request_key(request: dict[str, Any], owner: str) -> str:
    """The memo key of a request of ``owner``: model, data, method, canonical parameters,
    outputs and rows, the owner and the engine version."""
    settings = {
        "params": request["params"],
        "output_idx": request["output_idx"],
        "rows": request["rows"],
        "owner": owner,
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
    session: str,
    limits: WorkLimits | None = None,
) -> dict[str, Any]:
    """A canonical request of ``session`` from the page's values; raises ValueError naming
    what is wrong (see :func:`check_request` for the worker's side)."""
    return _build_request(
        store, model_ref, data_ref, method, raw_params, outputs, rows, session, limits
    )[0]


def _build_request(
    store: Store,
    model_ref: dict,
    data_ref: dict,
    method: str,
    raw_params: dict[str, Any],
    outputs: list[str],
    rows: Any,
    session: str,
    limits: WorkLimits | None = None,
) -> tuple[dict[str, Any], Any]:
    """A canonical request of ``session`` from the page's values, and the arrays of the
    uploaded reference file it names (or None); raises ValueError naming what is wrong.

    ``outputs`` are the output dropdown's ``"k:i"`` values (node ``i`` of output layer
    ``k``, 0-based), in any order: the request holds them sorted per output layer.
    ``rows`` (the first rows to explain) and a background ``sample_size`` are capped at the
    data's number of rows; an uploaded reference file is read and checked. The rows and
    samples asked for must be within ``limits`` (default :class:`WorkLimits`).
    """
    if not model_ref:
        raise ValueError("No model is loaded: pick a demo or upload a model first.")
    if not data_ref:
        raise ValueError("No data is loaded: upload a data file (a demo brings its own).")
    if not method:
        raise ValueError("Choose a method first.")
    model = model_from_ref(store, model_ref, session)
    data = data_from_ref(store, data_ref, model, session)
    check_data_fits(model, data)
    if not outputs:
        raise ValueError("Select at least one output node.")
    output_idx = parse_outputs(outputs, model.output_names)
    rows = checked_rows(rows)
    params = canonical_params(method, raw_params, model)
    if params.get("reference_row", 0) >= data.n_rows:
        raise ValueError(
            f"Reference row {params['reference_row']} is out of range: {data.filename} has "
            f"{data.n_rows} rows (0-based, 0–{data.n_rows - 1})."
        )
    if "sample_size" in params:
        params["sample_size"] = min(params["sample_size"], data.n_rows)
    request = {
        "model": model_ref,
        "data": data_ref,
        "method": method,
        "params": params,
        "output_idx": output_idx,
        "rows": min(rows, data.n_rows),
    }
    _check_limits(request, limits or WorkLimits())
    return request, _uploaded_reference(store, params, model, data_ref, session)


def checked_rows(rows: Any) -> int:
    """The number of rows to explain as typed (``50.0`` → ``50``), or a ValueError that
    names what was typed."""
    if isinstance(rows, float) and rows.is_integer():
        rows = int(rows)
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        typed = "nothing (the field is empty)" if rows is None or rows == "" else repr(rows)
        raise ValueError(f"Rows to explain must be a whole number ≥ 1; got {typed}.")
    return rows


def clamped_notes(request: dict[str, Any], rows: Any, raw_params: dict[str, Any]) -> list[str]:
    """What the page says of the values ``request`` capped at the data's rows (the rows to
    explain, a background sample's size): what was asked and what is done instead."""
    notes, asked_rows, n_rows = [], checked_rows(rows), request["rows"]
    if asked_rows > n_rows:
        notes.append(f"Rows: {asked_rows} asked, the data has {n_rows}: all {n_rows} explained.")
    size, asked = request["params"].get("sample_size"), raw_params.get("sample_size")
    if size is not None and isinstance(asked, (int, float)) and asked > size:
        notes.append(f"Sample size: {asked} asked, the data has {size} rows: all {size} drawn.")
    return notes


def check_request(
    store: Store, request: dict[str, Any], session: str, limits: WorkLimits | None = None
) -> Any:
    """Raise a ValueError unless ``request`` is what :func:`build_request` makes of its own
    parts (a worker checks every job again before it runs it); the arrays of the uploaded
    reference file it names, or None."""
    try:
        outputs = [f"{k}:{i}" for k, idx in enumerate(request["output_idx"]) for i in idx or []]
        rebuilt, uploaded = _build_request(
            store, request["model"], request["data"], request["method"],
            dict(request["params"]), outputs, request["rows"], session, limits,
        )  # fmt: skip
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"The job's request is malformed ({error!r}); it is refused.") from None
    if rebuilt != request:
        raise ValueError("The job's request is not a canonical request; it is refused.")
    return uploaded


def _check_limits(request: dict[str, Any], limits: WorkLimits) -> None:
    if request["rows"] > limits.max_rows:
        raise ValueError(
            f"Rows to explain: {request['rows']} is more than this server explains at once "
            f"({limits.max_rows}); choose fewer rows, or start the dashboard with a higher "
            "--max-rows."
        )
    for name in _SAMPLE_PARAMETERS:
        value = request["params"].get(name)
        if value is not None and value > limits.max_samples:
            raise ValueError(
                f"{name} = {value} is more than this server allows ({limits.max_samples}); "
                "choose a smaller value, or start the dashboard with a higher --max-samples."
            )


def _uploaded_reference(
    store: Store, params: dict, model: LoadedModel, data_ref: dict, session: str
) -> Any:
    """The arrays of the uploaded reference file the parameters name, or None; read with the
    data's channel order."""
    if params.get("reference_sha") is None:
        return None
    reference = reference_from_sha(
        store, params["reference_sha"], model, session,
        one_row=params.get("reference") == "upload",
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
    store: Store,
    request: dict,
    owner: str,
    set_progress: ProgressSetter,
    limits: WorkLimits | None = None,
) -> dict[str, Any]:
    """Check ``request`` of ``owner`` again, compute it, memoise the result, and return the
    page's result reference (``{"key", "request"}``)."""
    uploaded = check_request(store, request, owner, limits)
    model = model_from_ref(store, request["model"], owner)  # memoised by the check
    data = data_from_ref(store, request["data"], model, owner)
    inputs = [array[: request["rows"]] for array in data.arrays]

    def progress(done: int, total: int) -> None:
        set_progress((done, total))

    result = run_method(
        model, inputs, request["method"], request["params"], request["output_idx"], progress,
        reference_data=data.arrays,
        uploaded_reference=uploaded,
    )  # fmt: skip
    if _has_default_names(model) and data.input_names:
        result.input_names = [[list(data.input_names)]]  # the CSV header names features
    key = request_key(request, owner)
    store.put_result(key, result)
    return {"key": key, "request": request}


def _has_default_names(model: LoadedModel) -> bool:
    """One tabular input layer named ``X1``... (innsight's default, not the user's)."""
    dims = model.input_dim
    return (
        len(dims) == 1 and len(dims[0]) == 1 and model.input_names == [default_input_names(dims[0])]
    )
