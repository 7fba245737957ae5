"""Headless, offline Chromium for the browser tests and the dashboard benchmark."""

import shutil

from selenium.webdriver.chrome.options import Options

CHROMIUM_FLAGS = (
    "--headless=new",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
)
"""No display here nor in CI; no outbound connections (there is no internet)."""


def chromium_options(*extra: str) -> Options:
    """Chrome options with :data:`CHROMIUM_FLAGS` (and ``extra``), on Debian's Chromium."""
    options = Options()
    for flag in (*CHROMIUM_FLAGS, *extra):
        options.add_argument(flag)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        options.binary_location = chromium
    return options
