"""Fixtures shared by the whole test suite."""

import pytest
from support.browser import chromium_options
from support.peers import import_zennit


def pytest_setup_options():
    """dash[testing]'s hook: run Chromium headless (no display here, nor in CI) and offline."""
    return chromium_options()


@pytest.fixture(scope="session")
def zennit():
    """Zennit, a test-only reference for LRP (see :func:`support.peers.import_zennit`)."""
    return import_zennit()
