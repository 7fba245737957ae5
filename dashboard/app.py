"""The Dash app: ``create_app(config)`` builds it; ``server`` serves it under gunicorn
(``gunicorn dashboard.app:server``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import diskcache
from dash import Dash, DiskcacheManager

from dashboard.callbacks.register import register_callbacks
from dashboard.config import Config
from dashboard.layout import build_layout
from dashboard.sources import data_from_ref, model_from_ref
from dashboard.store import Store
from dashboard.uploads import check_data_fits

ASSETS = Path(__file__).resolve().parent.parent / "assets"
"""Bootstrap's CSS and the page's own, served locally: the page works offline."""


def create_app(config: Config | None = None) -> Dash:
    """The dashboard with its uploads, results and background jobs in ``config.cache_dir``."""
    config = config or Config()
    store = Store.from_config(config)
    jobs = diskcache.Cache(str(config.cache_dir / "jobs"))
    app = Dash(
        __name__,
        title="innsight for Python",
        assets_folder=str(ASSETS),
        background_callback_manager=DiskcacheManager(jobs),
        suppress_callback_exceptions=True,
    )
    app.layout = build_layout(*preloaded_refs(store, config))
    register_callbacks(app, store, config)
    return app


def preloaded_refs(store: Store, config: Config) -> tuple[dict | None, dict | None]:
    """References to ``config.model_file`` and ``config.data_file``, checked to load and
    fit (a ValueError says what is wrong, before the server starts)."""
    model_ref = data_ref = None
    if config.model_file is not None:
        path = Path(config.model_file)
        sha = store.put_bytes(path.read_bytes(), path.name)
        model_ref = {"kind": "upload", "sha": sha, "input_dim": None}
        model_from_ref(store, model_ref)
    if config.data_file is not None:
        path = Path(config.data_file)
        sha = store.put_bytes(path.read_bytes(), path.name)
        data_ref = {"kind": "upload", "sha": sha, "input_columns": None, "channels_last": False}
        if model_ref is None:
            raise ValueError("--data needs --model: the data is read in the model's shape.")
        model = model_from_ref(store, model_ref)
        check_data_fits(model, data_from_ref(store, data_ref, model))
    return model_ref, data_ref


@lru_cache(maxsize=1)
def _default_app() -> Dash:
    return create_app()


def __getattr__(name: str):
    """``server``: the Flask server of an app with the default settings, built on first
    use (nothing runs at import)."""
    if name == "server":
        return _default_app().server
    raise AttributeError(name)
