"""The Dash app: ``create_app(config)`` builds it; ``server`` serves it under gunicorn
with the default settings (``gunicorn dashboard.app:server``), ``make_server(*options)``
with the command line's options
(``gunicorn -w 4 "dashboard.app:make_server('--redis-url', 'redis://localhost:6379/0')"``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from dash import Dash

from dashboard.callbacks.register import register_callbacks
from dashboard.config import Config, parse_args
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
    app = Dash(
        __name__,
        title="innsight for Python",
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,
    )
    # bodies are refused (HTTP 413) before they are read, not after parsing them
    app.server.config["MAX_CONTENT_LENGTH"] = config.max_upload_bytes * 4 // 3 + _BODY_OVERHEAD
    model_ref, data_ref = preloaded_refs(store, config)
    secret = store.secret()
    app.layout = lambda: build_layout(
        model_ref, data_ref, new_token(secret), config.trust_torchscript
    )
    register_callbacks(app, store, config, runner)
    app.runner = runner
    return app


def preloaded_refs(store: Store, config: Config) -> tuple[dict | None, dict | None]:
    """Public references to ``config.model_file`` and ``config.data_file``, checked to load
    and fit (a ValueError says what is wrong, before the server starts)."""
    model_ref = data_ref = None
    if config.model_file is not None:
        path = Path(config.model_file)
        sha = store.put_bytes(path.read_bytes(), path.name, owner=PUBLIC)
        model_ref = {"kind": "upload", "sha": sha, "input_dim": None, "public": True}
        model_from_ref(store, model_ref, PUBLIC)
    if config.data_file is not None:
        path = Path(config.data_file)
        sha = store.put_bytes(path.read_bytes(), path.name, owner=PUBLIC)
        data_ref = {
            "kind": "upload", "sha": sha, "input_columns": None, "channels_last": False,
            "public": True,
        }  # fmt: skip
        if model_ref is None:
            raise ValueError("--data needs --model: the data is read in the model's shape.")
        model = model_from_ref(store, model_ref, PUBLIC)
        check_data_fits(model, data_from_ref(store, data_ref, model, PUBLIC))
    return model_ref, data_ref


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
