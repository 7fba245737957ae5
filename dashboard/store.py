"""Uploads and results: content-addressed by sha256, owned by a session, shared by processes.

Callbacks pass only hashes and result keys around; the bytes and results live in a
:mod:`~dashboard.backends` backend: a size-bounded ``diskcache`` folder that every process
on this machine sees alike (the server, its job workers, a restarted server), or Redis,
which Celery workers on other machines reach too.

An upload's bytes are stored once under their sha256, and the file name under the
session that uploaded them: a session reads only its own uploads (and the public files the
server was started with), however it learnt a hash. Results are the engine's
:class:`~attribution.AttributionResult`, written with ``torch.save`` and read back with
``torch.load(weights_only=True)``: tensors, numbers, strings and lists only, so reading
the store never unpickles anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

import torch

import attribution
from attribution import AttributionResult
from dashboard.backends import Backend, DiskBackend, RedisBackend
from dashboard.config import Config
from dashboard.errors import NotStored
from dashboard.images import UploadLimits

PUBLIC = "public"
"""The owner of the files the server was started with (``--model``, ``--data``)."""

_BYTES = "bytes/"
_NAME = "name/"
_RESULT = "result/"
_SECRET = "secret"
_RESULT_FIELDS = (
    "method_name", "value_name", "result", "preds", "decomp_goal", "output_idx",
    "input_names", "output_names", "input_dim", "channels_first", "has_data",
)  # fmt: skip


@dataclass(frozen=True)
class Upload:
    """A stored file: its bytes and the name its session uploaded it under."""

    data: bytes
    filename: str

    @property
    def suffix(self) -> str:
        """The lower-case suffix with the dot, e.g. ``".csv"`` (empty if none)."""
        return os.path.splitext(self.filename)[1].lower()


class Store:
    """The uploads and memoised results of the dashboard, on one backend.

    Parameters
    ----------
    backend : path or Backend
        A folder (a :class:`~dashboard.backends.DiskBackend` is made there, created
        private to the user) or a backend.
    size_limit : int, default=2 GiB
        A folder's size bound; least recently used entries are evicted beyond it.
    upload_limits : UploadLimits, default=UploadLimits()
        What stored files may hold when they are read.

    Examples
    --------
    >>> import tempfile
    >>> with Store(tempfile.mkdtemp()) as store:
    ...     sha = store.put_bytes(b"x,y\\n1,2\\n", "table.csv", owner="session-a")
    ...     store.get_upload(sha, owner="session-a").filename
    'table.csv'
    """

    def __init__(
        self,
        backend: str | os.PathLike | Backend,
        size_limit: int = 2 * 1024**3,
        upload_limits: UploadLimits | None = None,
    ) -> None:
        if isinstance(backend, (str, os.PathLike)):
            backend = DiskBackend(backend, size_limit)
        self.backend = backend
        self.upload_limits = upload_limits or UploadLimits()

    @classmethod
    def from_config(cls, config: Config) -> Store:
        """Redis at ``config.redis_url``, else ``config.cache_dir`` with its size limit;
        with the configured upload limits."""
        if config.redis_url:
            return cls(RedisBackend(config.redis_url), upload_limits=config.upload_limits)
        return cls(config.cache_dir, config.cache_size_limit, config.upload_limits)

    @property
    def directory(self):
        """The cache folder (None on Redis)."""
        return getattr(self.backend, "directory", None)

    # --- uploads ----------------------------------------------------------------------------

    def put_bytes(self, data: bytes, filename: str, *, owner: str) -> str:
        """Store an upload of session ``owner``; returns its sha256 (hex)."""
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"data must be bytes; got {type(data).__name__}.")
        sha = hashlib.sha256(data).hexdigest()
        if self.backend.get(_BYTES + sha) is None:
            self.backend.set(_BYTES + sha, bytes(data))
        self.backend.set(f"{_NAME}{owner}/{sha}", os.path.basename(filename).encode("utf-8"))
        return sha

    def has(self, sha: str, *, owner: str) -> bool:
        """Whether session ``owner`` uploaded these bytes and they are still stored."""
        name = self.backend.get(f"{_NAME}{owner}/{sha}")
        return name is not None and self.backend.get(_BYTES + sha) is not None

    def get_upload(self, sha: str, *, owner: str) -> Upload:
        """An upload of session ``owner``: bytes and file name.

        Raises
        ------
        NotStored
            The session uploaded nothing under ``sha``, or it was evicted; the message
            says to upload the file again (the same for both: it tells nothing of others).
        """
        name = self.backend.get(f"{_NAME}{owner}/{sha}") if isinstance(sha, str) else None
        data = None if name is None else self.backend.get(_BYTES + sha)
        if data is None:
            raise NotStored(
                f"No upload with hash {str(sha)[:12]}… is stored for this page: it was "
                "evicted from the cache or never uploaded here. Upload the file again."
            )
        return Upload(data, name.decode("utf-8"))

    def get_bytes(self, sha: str, *, owner: str) -> bytes:
        """The stored bytes (see :meth:`get_upload`)."""
        return self.get_upload(sha, owner=owner).data

    # --- results ----------------------------------------------------------------------------

    def put_result(self, key: str, result: AttributionResult) -> None:
        """Memoise a result under a key from :func:`result_key`."""
        if not isinstance(result, AttributionResult):
            raise TypeError(
                f"result must be an attribution.AttributionResult; got {type(result).__name__}."
            )
        self.backend.set(_RESULT + key, result_bytes(result))

    def get_result(self, key: str) -> AttributionResult | None:
        """The memoised result, or None if there is none (not computed, or evicted)."""
        data = self.backend.get(_RESULT + key)
        return None if data is None else result_from_bytes(data)

    # --- housekeeping -----------------------------------------------------------------------

    def secret(self) -> bytes:
        """The server secret that signs sessions: made once, shared by every process."""
        self.backend.add(_SECRET, secrets.token_bytes(32))
        return self.backend.get(_SECRET)

    @property
    def volume(self) -> int:
        """Bytes the cache folder uses on disk (its database and files)."""
        return self.backend.volume()

    def close(self) -> None:
        """Close the backend's connection (it reopens on next use)."""
        self.backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def result_bytes(result: AttributionResult) -> bytes:
    """A result as ``torch.save`` bytes of plain values (see :func:`result_from_bytes`)."""
    state = {name: getattr(result, name) for name in _RESULT_FIELDS}
    state["fields"], state["other_fields"] = dict(result._fields), dict(result._other_fields)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def result_from_bytes(data: bytes) -> AttributionResult:
    """The result :func:`result_bytes` wrote, read with ``weights_only=True`` (no pickle
    of any class is ever loaded)."""
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return AttributionResult(**state)


def result_key(model_hash: str, data_hash: str, method: str, params: dict[str, Any]) -> str:
    """The memo key of a result: sha256 of model, data, method, parameters and engine version.

    ``params`` are canonicalised (JSON with sorted keys), so the same parameters in another
    order give the same key; ``attribution.__version__`` is part of the key, so results of
    another engine version are never reused.

    Parameters
    ----------
    model_hash, data_hash : str
        The uploads' hashes from :meth:`Store.put_bytes`.
    method : str
        The method name, e.g. ``"LRP"``.
    params : dict
        The method's arguments as JSON values (str, int, float, bool, None, lists, dicts
        with str keys).

    Raises
    ------
    TypeError
        A parameter is not a JSON value.

    Examples
    --------
    >>> a = result_key("m", "d", "LRP", {"rule_name": "epsilon", "rule_param": 0.01})
    >>> a == result_key("m", "d", "LRP", {"rule_param": 0.01, "rule_name": "epsilon"})
    True
    """
    request = {
        "model": model_hash,
        "data": data_hash,
        "method": method,
        "params": params,
        "engine": attribution.__version__,
    }
    try:
        text = json.dumps(
            request, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_refuse
        )
    except ValueError as error:  # NaN or infinity
        raise TypeError(f"params of {method} must be finite JSON values: {error}.") from None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _refuse(value: Any) -> Any:
    raise TypeError(
        f"A parameter has type {type(value).__name__} ({value!r}); result keys need JSON "
        "values (str, int, float, bool, None, lists, dicts with str keys): convert it first."
    )
