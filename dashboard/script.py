"""The downloads that reproduce a result: its parameters (JSON) and a Python script.

Both are written from :func:`dashboard.methods.engine_kwargs`, the keyword arguments the job
called the engine with, plus what the page chose: the model, the data, the rows and the
output nodes. The script runs with the public API (``attribution``, ``demo_data``; for
uploads the same readers the server uses) and saves the same arrays as the NPZ download.
Dash-free, like :mod:`dashboard.jobs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import attribution
from attribution.converter.loading import LoadedModel
from attribution.methods import catalogue
from dashboard.methods import FromData, engine_kwargs, explains_data, torch_function
from dashboard.sources import model_from_ref, owner_of_ref
from dashboard.store import Store


@dataclass(frozen=True)
class Sources:
    """Where a request's model, data and uploaded reference come from, as a user names them."""

    model: dict[str, Any]
    data: dict[str, Any]
    reference_file: str | None
    converted: bool
    n_inputs: int
    trust_code: bool


def sources(store: Store, request: dict[str, Any], session: str) -> Sources:
    """The request's demo or upload file names (and reading options) for ``session``."""
    model_ref, data_ref = request["model"], request["data"]
    loaded: LoadedModel = model_from_ref(store, model_ref, session)
    sha = request["params"].get("reference_sha")
    return Sources(
        model=_source(store, model_ref, session, ("input_dim",)),
        data=_source(
            store, data_ref, session, ("input_columns", "channels_last", "image_mean", "image_std")
        ),
        reference_file=None if sha is None else store.get_upload(sha, owner=session).filename,
        converted=loaded.converter is not None,
        n_inputs=len(loaded.input_dim),
        trust_code=store.upload_limits.trust_torchscript,
    )


def _source(store: Store, ref: dict, session: str, options: tuple[str, ...]) -> dict[str, Any]:
    if ref["kind"] == "demo":
        return {"demo": ref["name"]}
    upload = store.get_upload(ref["sha"], owner=owner_of_ref(ref, session))
    return {"file": upload.filename, **{name: ref.get(name) for name in options}}


def parameters(request: dict[str, Any], where: Sources) -> dict[str, Any]:
    """The parameters download: the engine's keyword arguments (``kwargs``, as the method
    takes them; ``x_ref`` and ``data_ref`` taken from the data are described in
    ``from_data``), the model, data, rows and output nodes, and the engine's version."""
    kwargs, from_data = {}, {}
    for name, value in engine_kwargs(request["method"], request["params"]).items():
        if isinstance(value, FromData):
            from_data[name] = _describe(value, where)
        else:
            kwargs[name] = value
    return {
        "method": request["method"],
        "model": where.model,
        "data": where.data,
        "rows": request["rows"],
        "output_idx": request["output_idx"],
        "kwargs": kwargs,
        "from_data": from_data,
        "engine": attribution.__version__,
    }


def _describe(value: FromData, where: Sources) -> dict[str, Any]:
    if value.kind == "row":
        return {"kind": "row", "row": value.row}
    if value.kind == "sample":
        return {"kind": "sample", "size": value.size, "seed": value.seed}
    if value.kind == "upload":
        return {"kind": "upload", "file": where.reference_file}
    return {"kind": value.kind}


def python_script(request: dict[str, Any], where: Sources, name: str) -> str:
    """A script that computes the request again with the public API and saves its arrays
    (as the NPZ download names them) to ``<name>.npz`` or the path given as its argument."""
    method, params = request["method"], request["params"]
    one = where.n_inputs == 1
    lines = [
        f'"""Compute the dashboard\'s result {name} again ({method}).',
        "",
        f"Written by the dashboard with attribution {attribution.__version__}.",
        "",
        f"Run it as ``python {name}.py [OUTPUT.npz]`` (default: {name}.npz)"
        + ("." if _all_demo(where) else ",\nin the folder of the uploaded files named below."),
        "The NPZ holds the arrays of the dashboard's NPZ download, one per output and input layer.",
        '"""',
        "",
        "import sys",
        "from pathlib import Path",
        "",
        "import numpy as np",
        "",
        "import attribution",
        *_imports(where),
        "",
        *_model_lines(where),
        *_data_lines(where),
        "",
        f"x = {_rows('data', request['rows'], one)}  # the first {request['rows']} rows",
    ]
    arguments = [f"output_idx={request['output_idx']!r}"]
    for key, value in engine_kwargs(method, params).items():
        if isinstance(value, FromData):
            lines += _from_data_lines(key, value, one, where)
            arguments.append(f"{key}={key}")
        else:
            arguments.append(f"{key}={value!r}")
    if where.converted or catalogue.method(method).needs == "predictions":
        call = f"attribution.{method}"
        explained = "x" if explains_data(method, params) else "None"
    else:
        call, explained = f"attribution.{torch_function(method)}", "x"
        arguments.append("return_object=True")
    lines += [
        "",
        f"result = {call}(",
        f"    model, {explained},",
        *(f"    {argument}," for argument in arguments),
        ")",
        "print(result)",
        "",
        'arrays = result.get_result("array")',
        "if isinstance(arrays, np.ndarray):",
        '    arrays = {"Output_1__Input_1": arrays}',
        "else:",
        "    arrays = {",
        '        f"{output}__{layer}": array',
        "        for output, per_input in arrays.items()",
        "        for layer, array in per_input.items()",
        "        if array is not None",
        "    }",
        f'path = sys.argv[1] if len(sys.argv) > 1 else "{name}.npz"',
        "np.savez_compressed(path, **arrays)",
        "print(f\"Saved {', '.join(arrays)} to {path}\")",
        "",
    ]
    return "\n".join(lines)


def _all_demo(where: Sources) -> bool:
    return "demo" in where.model and "demo" in where.data and where.reference_file is None


def _imports(where: Sources) -> list[str]:
    lines = []
    if "demo" in where.model or "demo" in where.data:
        lines.append("from demo_data import load_demo")
    if "file" in where.model:
        lines.append("from attribution.converter.loading import load_model")
    if "file" in where.data or where.reference_file is not None:
        lines.append("from dashboard.uploads import read_data  # the dashboard's reader")
    return lines


def _model_lines(where: Sources) -> list[str]:
    """``model``: a Converter, or the torch module the ``torch_*`` functions explain (and
    ``model_dims``, its input shapes, where an uploaded file is read in them)."""
    source = where.model
    reads = "file" in where.data or where.reference_file is not None
    if "demo" in source:
        lines = [f"demo = load_demo({source['demo']!r})"]
        lines.append(
            "model = demo.converter()  # the Converter, with the demo's names"
            if where.converted else "model = demo.model"
        )  # fmt: skip
        return lines + (["model_dims = demo.input_dim"] if reads else [])
    allow = ", allow_code=True" if where.trust_code else ""
    return [
        f"MODEL_FILE = {source['file']!r}",
        f"loaded = load_model(Path(MODEL_FILE).read_bytes(), MODEL_FILE, "
        f"input_dim={source.get('input_dim')!r}{allow})",
        "model = loaded.converter" if where.converted
        else "model = loaded.module  # not converted: explained by the torch_* functions",
        *(["model_dims = loaded.input_dim"] if reads else []),
    ]  # fmt: skip


def _data_lines(where: Sources) -> list[str]:
    """``data``: every row of the data set, one array per input layer, channels first."""
    source = where.data
    if "demo" in source:
        demo = [] if "demo" in where.model else [f"demo = load_demo({source['demo']!r})"]
        return [*demo, "data = demo.inputs  # the test set, one array per input layer"]
    options = ", ".join(
        f"{key}={source[key]!r}"
        for key in ("input_columns", "channels_last", "image_mean", "image_std")
        if source.get(key) not in (None, False)
    )
    return [
        f"DATA_FILE = {source['file']!r}",
        f"data = read_data(Path(DATA_FILE).read_bytes(), DATA_FILE, "
        f"input_dim=model_dims{', ' + options if options else ''}).arrays",
    ]


def _rows(arrays: str, rows: int, one: bool) -> str:
    return f"{arrays}[0][:{rows}]" if one else f"[array[:{rows}] for array in {arrays}]"


def _from_data_lines(key: str, value: FromData, one: bool, where: Sources) -> list[str]:
    """The lines that set ``key`` (``x_ref`` or ``data_ref``) as the job took it."""
    pick = {
        "mean": ("the data's mean", "{a}.mean(axis=0, keepdims=True)"),
        "row": (f"row {value.row} of the data", f"{{a}}[{value.row}:{value.row + 1}]"),
        "all": ("every row of the data", "{a}"),
        "sample": (f"{value.size} rows drawn with seed {value.seed}", "{a}[chosen]"),
        "upload": ("the uploaded reference file", "{a}"),
    }
    what, expression = pick[value.kind]
    lines = []
    arrays = "data"
    if value.kind == "sample":
        lines.append(
            f"chosen = np.sort(np.random.default_rng({value.seed}).choice("
            f"len(data[0]), size=min({value.size}, len(data[0])), replace=False))"
        )
    if value.kind == "upload":
        arrays = "reference"
        channels_last = bool(where.data.get("channels_last"))
        lines += [
            f"REFERENCE_FILE = {where.reference_file!r}",
            "reference = read_data(Path(REFERENCE_FILE).read_bytes(), REFERENCE_FILE, "
            f"input_dim=model_dims, channels_last={channels_last!r}).arrays",
        ]
    if one:
        lines.append(f"{key} = {expression.format(a=arrays + '[0]')}  # {what}")
    else:
        lines.append(f"{key} = [{expression.format(a='array')} for array in {arrays}]  # {what}")
    return lines
