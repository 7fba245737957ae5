"""Uploads and results on disk: content-addressed by sha256, size-bounded, shared by processes.

Callbacks pass only hashes and result keys around; the bytes and results live here, in a
``diskcache.Cache`` that evicts the least recently used entries beyond its size limit and
that every process on the same folder (the server, background jobs, a restarted server)
sees alike.

Uploads are stored as raw bytes (diskcache keeps ``bytes`` values as they are), with the
file name as the entry's tag: they are never unpickled. Results are the engine's own
:class:`~attribution.AttributionResult` objects, which diskcache pickles; the folder must
therefore be writable by the dashboard alone (it is created with mode 0o700).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache

import attribution
from attribution import AttributionResult
from dashboard.config import Config
from dashboard.images import UploadLimits

_UPLOAD = "upload/"
_RESULT = "result/"


@dataclass(frozen=True)
class Upload:
    """A stored file: its bytes and the name it was first uploaded under."""

    data: bytes
    filename: str

    @property
    def suffix(self) -> str:
        """The lower-case suffix with the dot, e.g. ``".csv"`` (empty if none)."""
        return os.path.splitext(self.filename)[1].lower()


class Store:
    """A content-addressed upload store and result memo on one cache folder.

    Parameters
    ----------
    directory : path
        The cache folder; created (private to the user) if missing.
    size_limit : int, default=2 GiB
        Bytes the cache may hold; least recently used entries are evicted beyond it.
    upload_limits : UploadLimits, default=UploadLimits()
        What stored images and zips may hold when they are read.

    Examples
    --------
    >>> import tempfile
    >>> with Store(tempfile.mkdtemp()) as store:
    ...     sha = store.put_bytes(b"x,y\\n1,2\\n", "table.csv")
    ...     store.get_upload(sha).filename
    'table.csv'
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        size_limit: int = 2 * 1024**3,
        upload_limits: UploadLimits | None = None,
    ) -> None:
        if isinstance(size_limit, bool) or not isinstance(size_limit, int) or size_limit <= 0:
            raise ValueError(f"size_limit must be a positive number of bytes; got {size_limit!r}.")
        self.directory = Path(directory)
        self.upload_limits = upload_limits or UploadLimits()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._cache = diskcache.Cache(
            str(self.directory), size_limit=size_limit, eviction_policy="least-recently-used"
        )

    @classmethod
    def from_config(cls, config: Config) -> Store:
        """The store in ``config.cache_dir`` with ``config.cache_size_limit`` and the
        configured upload limits."""
        return cls(config.cache_dir, config.cache_size_limit, config.upload_limits)

    # --- uploads ----------------------------------------------------------------------------

    def put_bytes(self, data: bytes, filename: str) -> str:
        """Store an upload; returns its sha256 (hex), the same for the same bytes.

        Bytes stored before keep the name they were first stored under.
        """
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"data must be bytes; got {type(data).__name__}.")
        sha = hashlib.sha256(data).hexdigest()
        if not self.has(sha):
            self._write(_UPLOAD + sha, bytes(data), tag=os.path.basename(filename))
        return sha

    def has(self, sha: str) -> bool:
        """Whether an upload with this hash is stored (not evicted)."""
        return _UPLOAD + sha in self._cache

    def get_upload(self, sha: str) -> Upload:
        """The stored upload: bytes and file name.

        Raises
        ------
        KeyError
            Nothing is stored under ``sha`` (never uploaded, or evicted); the message says
            to upload the file again.
        """
        data, filename = self._cache.get(_UPLOAD + sha, default=None, tag=True)
        if data is None:
            raise KeyError(
                f"No upload with hash {sha[:12]}… is stored: it was evicted from the cache "
                f"(size limit {self._cache.size_limit} bytes) or never uploaded. Upload the "
                "file again."
            )
        return Upload(data, filename)

    def get_bytes(self, sha: str) -> bytes:
        """The stored bytes (see :meth:`get_upload`)."""
        return self.get_upload(sha).data

    # --- results ----------------------------------------------------------------------------

    def put_result(self, key: str, result: AttributionResult) -> None:
        """Memoise a result under a key from :func:`result_key`."""
        if not isinstance(result, AttributionResult):
            raise TypeError(
                f"result must be an attribution.AttributionResult; got {type(result).__name__}."
            )
        self._write(_RESULT + key, result)

    def get_result(self, key: str) -> AttributionResult | None:
        """The memoised result, or None if there is none (not computed, or evicted)."""
        return self._cache.get(_RESULT + key)

    def _write(self, key: str, value: Any, tag: str | None = None) -> None:
        """Store an entry that stays readable if it fits in the cache.

        When the cache is full, diskcache evicts up to ten least recently used entries at
        once: with few entries, the new one among them. It is then written once more, into
        the emptied cache.
        """
        for _ in range(2):
            self._cache.set(key, value, tag=tag)
            if key in self._cache:
                return

    # --- housekeeping -----------------------------------------------------------------------

    @property
    def volume(self) -> int:
        """Bytes the cache uses on disk (its database and files)."""
        return self._cache.volume()

    def close(self) -> None:
        """Close the cache's database connection (it reopens on next use)."""
        self._cache.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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
