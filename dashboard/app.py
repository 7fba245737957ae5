"""The Dash app: ``create_app(config)`` builds it; ``server`` serves it under gunicorn
with the default settings (``gunicorn dashboard.app:server``), ``make_server(*options)``
with the command line's options
(``gunicorn -w 4 "dashboard.app:make_server('--redis-url', 'redis://localhost:6379/0')"``)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from functools import cached_property, lru_cache
from pathlib import Path

from dash import Dash
from dash._utils import to_json
from flask_compress import Compress

from dashboard.callbacks.register import register_callbacks
from dashboard.config import Config, parse_args
from dashboard.errors import USER_ERRORS
from dashboard.jobqueue import make_runner
from dashboard.layout import build_layout
from dashboard.sessions import new_token
from dashboard.sources import data_from_ref, model_from_ref
from dashboard.store import PUBLIC, Store
from dashboard.uploads import check_data_fits

ASSETS = Path(__file__).resolve().parent.parent / "assets"
"""Bootstrap's CSS and the page's own, served locally: the page works offline."""
_BODY_OVERHEAD = 1_000_000
"""Bytes a callback request may carry besides an upload's base64 text."""


def create_app(config: Config | None = None) -> Dash:
    """The dashboard with its uploads and results in ``config``'s store and its jobs on
    ``config``'s runner (worker processes of this server, or Celery workers); the runner
    is ``app.runner`` (``app.runner.close()`` stops local workers)."""
    config = config or Config()
    store = Store.from_config(config)
    runner = make_runner(config)
    app = _Dashboard(
        __name__,
        title="innsight for Python",
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,
    )
    # responses in zstd, brotli or gzip, as the browser accepts; bundles compressed once
    app.server.config.update(COMPRESS_CACHE_BACKEND=BundleCache, COMPRESS_CACHE_KEY=bundle_key)
    Compress(app.server)
    # bodies are refused (HTTP 413) before they are read, not after parsing them
    app.server.config["MAX_CONTENT_LENGTH"] = config.max_upload_bytes * 4 // 3 + _BODY_OVERHEAD
    model_ref, data_ref = preloaded_refs(store, config)
    secret = store.secret()
    app.layout = build_layout(model_ref, data_ref, _TOKEN_SLOT, config.trust_torchscript)
    app.new_session = lambda: new_token(secret)
    register_callbacks(app, store, config, runner)
    app.runner = runner
    return app


_TOKEN_SLOT = f"session-token-{secrets.token_hex(16)}"
"""The layout's session token while its JSON is made; each page load puts a new one there."""


class _Dashboard(Dash):
    """A Dash app that serialises its layout once: each page load gets that JSON with a
    fresh session token (``new_session()``) in place of :data:`_TOKEN_SLOT`. Making and
    serialising the page's components took most of a page load's server time, and under a
    classroom's load that time is what every visitor waits for, many times over."""

    new_session: Callable[[], str]

    @cached_property
    def _layout_json(self) -> str:
        return to_json(self.get_layout())

    def serve_layout(self):
        session = json.dumps(self.new_session())
        body = self._layout_json.replace(json.dumps(_TOKEN_SLOT), session, 1)
        return self.backend.make_response(body, mimetype="application/json")


class BundleCache:
    """flask-compress's store of compressed responses, for the component bundles only
    (:func:`bundle_key`; they never change while the server runs, so each is compressed
    once per encoding); every other response is compressed anew."""

    def __init__(self) -> None:
        self._compressed: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._compressed.get(key)

    def set(self, key: str, value: bytes) -> None:
        if not key.endswith(";"):  # "<encoding>;" + an empty key: not a bundle
            self._compressed[key] = value


def bundle_key(request) -> str:
    """The cache key of a component bundle's response (its path and version), else ""."""
    if request.method == "GET" and request.path.startswith("/_dash-component-suites/"):
        return request.full_path
    return ""


def preloaded_refs(store: Store, config: Config) -> tuple[dict | None, dict | None]:
    """Public references to ``config.model_file`` and ``config.data_file``, checked to
    load (a ValueError names the option, the file, the problem and the fix, before the
    server starts). Data that does not fit the model yet is kept: the page says why and
    lets the user choose its input columns, as for an upload."""
    model_ref = data_ref = None
    if config.data_file is not None and config.model_file is None:
        raise ValueError("--data needs --model: the data is read in the model's shape.")
    if config.model_file is not None:
        sha = _public_file(store, "--model", config.model_file)
        model_ref = {"kind": "upload", "sha": sha, "input_dim": None, "public": True}
        _checked("--model", config.model_file, lambda: model_from_ref(store, model_ref, PUBLIC))
    if config.data_file is not None:
        sha = _public_file(store, "--data", config.data_file)
        data_ref = {
            "kind": "upload", "sha": sha, "channels_last": False, "public": True,
            "input_columns": list(config.input_columns) if config.input_columns else None,
        }  # fmt: skip
        model = model_from_ref(store, model_ref, PUBLIC)
        data = _checked("--data", config.data_file,
                        lambda: data_from_ref(store, data_ref, model, PUBLIC))  # fmt: skip
        if config.input_columns:  # chosen on the command line: they must fit
            _checked("--input-columns", config.data_file, lambda: check_data_fits(model, data))
    return model_ref, data_ref


def _public_file(store: Store, option: str, path: Path) -> str:
    """Store a start option's file for every page; its sha256."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(
            f"{option} {path}: the file cannot be read ({error.strerror}). Check the path."
        ) from None
    return store.put_bytes(data, path.name, owner=PUBLIC)


def _checked(option: str, path: Path, read):
    """``read()``, with a refusal's message prefixed by the option and the file."""
    try:
        return read()
    except USER_ERRORS as error:
        raise ValueError(f"{option} {path}: {error}") from None


@lru_cache(maxsize=1)
def _default_app() -> Dash:
    return create_app()


def make_server(*options: str):
    """The Flask server of an app configured by ``python -m dashboard``'s options, for
    gunicorn's factory syntax (each gunicorn worker calls it once)."""
    return create_app(parse_args(list(options))).server


def __getattr__(name: str):
    """``server``: the Flask server of an app with the default settings, built on first
    use (nothing runs at import)."""
    if name == "server":
        return _default_app().server
    raise AttributeError(name)
