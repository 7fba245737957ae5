"""Real dashboard servers, started as users start them, one per kind for the module."""

import pytest
from support.dash_client import SERVER_KINDS, start_dashboard


@pytest.fixture(scope="module", params=SERVER_KINDS)
def server(request, tmp_path_factory):
    """A running server (``python -m dashboard`` or gunicorn with two workers) on a free
    port and a fresh cache folder; stopped with its worker processes afterwards."""
    folder = tmp_path_factory.mktemp(request.param)
    started = start_dashboard(request.param, folder / "cache")
    yield started
    started.stop()
