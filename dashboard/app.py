"""The Dash app: ``create_app(config)`` builds it; ``server`` serves it under gunicorn
(``gunicorn dashboard.app:server``)."""

from __future__ import annotations

from pathlib import Path

import diskcache
from dash import Dash, DiskcacheManager

from dashboard.callbacks.register import register_callbacks
from dashboard.config import Config
from dashboard.layout import build_layout
from dashboard.store import Store

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
    app.layout = build_layout()
    register_callbacks(app, store, config)
    return app


def __getattr__(name: str):
    """``server``: the Flask server of an app with the default settings, built on first
    use (nothing runs at import)."""
    if name == "server":
        return create_app().server
    raise AttributeError(name)
