"""What a page refers to (a demo or an upload) turned into models, data and cache keys.

A page keeps only small JSON references in its ``dcc.Store``:

- model: ``{"kind": "demo", "name": "iris"}`` or ``{"kind": "upload", "sha": ...,
  "input_dim": [[1, 8, 8]] or None}`` (TorchScript's input shape), with the
  ``"output_names"`` and ``"input_names"`` typed on the page if any;
- data: ``{"kind": "demo", "name": "iris"}`` or ``{"kind": "upload", "sha": ...,
  "input_columns": [...] or None, "channels_last": false}``;
- an uploaded reference input or background set: its sha256 only (in the method's
  parameters as ``reference_sha``), read by :func:`reference_from_sha`.

An upload is read for a session (:mod:`dashboard.sessions`): its own uploads, and those
marked ``"public": true``, the files the server was started with. Loaded models are
memoised per process by their reference and owner (the bytes behind an upload's sha256
never change).
"""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from typing import Any

import demo_data
from attribution.converter.loading import LoadedModel, load_model
from dashboard.memo import LastUsed
from dashboard.store import PUBLIC, Store
from dashboard.uploads import LoadedData, check_data_fits, read_data

_LOADING = threading.Lock()
"""One model load at a time per process: torch.fx's tracing patches ``nn.Module.__call__``
for the whole process, so a trace breaks any other trace or forward run beside it."""
MODELS: LastUsed[LoadedModel] = LastUsed(16)
"""Models loaded in this process, by reference, owner and upload limits."""
DATA: LastUsed[LoadedData] = LastUsed(16)
"""Data read in this process, by reference, model shape and upload limits."""


def owner_of_ref(ref: dict[str, Any], session: str) -> str:
    """Whose upload a reference reads: the server's for public files, else the session's."""
    return PUBLIC if ref.get("public") else session


def ref_key(ref: dict[str, Any] | None, session: str) -> tuple | None:
    """What a reference of ``session`` reads, as a memo key: the reference and its owner
    (everyone's for a demo)."""
    if ref is None:
        return None
    return _canonical(ref), PUBLIC if ref.get("kind") == "demo" else owner_of_ref(ref, session)


def model_from_ref(store: Store, ref: dict[str, Any], session: str) -> LoadedModel:
    """The model a reference of ``session`` points to (raises ValueError with the reason
    if it cannot be read or converted, KeyError if it is not the session's). The last few
    are kept in memory: an upload's bytes never change."""
    owner = owner_of_ref(ref, session)

    def load() -> LoadedModel:
        with _LOADING:
            return _load_model(store, ref, owner)

    return MODELS.get((*ref_key(ref, session), repr(store.upload_limits)), load)


def _load_model(store: Store, ref: dict[str, Any], owner: str) -> LoadedModel:
    if ref["kind"] == "demo":
        demo = demo_data.load_demo(ref["name"])
        return load_model(
            demo.model,
            input_dim=demo.input_dim,
            input_names=demo.input_names,
            output_names=demo.output_names,
        )
    upload = store.get_upload(ref["sha"], owner=owner)
    limits = store.upload_limits
    return load_model(
        upload.data,
        upload.filename,
        input_dim=ref.get("input_dim"),
        input_names=ref.get("input_names"),
        output_names=ref.get("output_names"),
        allow_code=limits.trust_torchscript,
        max_instance_values=limits.max_instance_values,
    )


def data_from_ref(
    store: Store, ref: dict[str, Any], model: LoadedModel, session: str
) -> LoadedData:
    """The data a reference of ``session`` points to, checked against nothing yet (see
    :func:`dashboard.uploads.check_data_fits`)."""
    owner = owner_of_ref(ref, session)
    key = (*ref_key(ref, session), repr(model.input_dim), repr(store.upload_limits))
    return DATA.get(key, lambda: _read_data(store, ref, model, owner))


def _read_data(store: Store, ref: dict[str, Any], model: LoadedModel, owner: str) -> LoadedData:
    if ref["kind"] == "demo":
        demo = demo_data.load_demo(ref["name"])
        tabular = len(demo.input_dim) == 1 and len(demo.input_dim[0]) == 1
        names = list(demo.input_names[0][0]) if tabular else None
        return LoadedData(f"{ref['name']} (demo test set)", "npz", demo.inputs, input_names=names)
    upload = store.get_upload(ref["sha"], owner=owner)
    return read_data(
        upload.data,
        upload.filename,
        input_columns=ref.get("input_columns"),
        channels_last=bool(ref.get("channels_last")),
        input_dim=model.input_dim,
        image_mean=ref.get("image_mean"),
        image_std=ref.get("image_std"),
        limits=store.upload_limits,
    )


def reference_from_sha(
    store: Store,
    sha: str,
    model: LoadedModel,
    session: str,
    *,
    one_row: bool,
    channels_last: bool = False,
) -> LoadedData:
    """The uploaded reference file behind ``sha``, read in the model's shape (all numeric
    CSV columns, or the NPZ's ``input_*`` arrays); ``one_row``: exactly one row (the
    reference input of IntegratedGradient and DeepLift), else any number (a background set).

    Raises
    ------
    ValueError
        The file cannot be read, does not fit the model, or has not one row when one is
        needed (the message names the file, what it holds and the fix).
    KeyError
        ``session`` stored nothing under ``sha`` (or it was evicted): upload it again.
    """
    upload = store.get_upload(sha, owner=session)
    reference = read_data(
        upload.data, upload.filename, channels_last=channels_last, input_dim=model.input_dim,
        limits=store.upload_limits,
    )  # fmt: skip
    try:
        check_data_fits(model, reference)
    except ValueError as error:
        raise ValueError(f"The reference file does not fit the model: {error}") from None
    if one_row and reference.n_rows != 1:
        raise ValueError(
            f"The reference file {upload.filename} has {reference.n_rows} rows but the "
            "reference input is exactly one row: upload a file with one row (as a background "
            "set, ExpectedGradient and DeepSHAP take any number)."
        )
    return reference


def ref_hash(ref: dict[str, Any]) -> str:
    """A cache-key part for a reference: the upload's sha256 with its reading options, or
    the demo's name with the hash of its files (a rebuilt demo is a new model)."""
    if ref["kind"] == "demo":
        return f"demo:{ref['name']}:{_demo_files_hash(ref['name'])}"
    return hashlib.sha256(_canonical(ref).encode()).hexdigest()


@lru_cache(maxsize=16)
def _demo_files_hash(name: str) -> str:
    digest = hashlib.sha256()
    for suffix in (".pt", ".npz"):
        digest.update((demo_data.FILES / f"{name}{suffix}").read_bytes())
    return digest.hexdigest()[:16]


def _canonical(ref: dict[str, Any]) -> str:
    return json.dumps(ref, sort_keys=True, separators=(",", ":"))
