"""The innsight dashboard: upload a model and data, compute attributions, explore the plots.

The app is built by ``create_app(config)`` (``dashboard/app.py``); nothing runs at import.
Uploads and results live in a content-addressed :class:`~dashboard.store.Store`, read by the
Dash-free functions of :mod:`dashboard.uploads`.
"""
