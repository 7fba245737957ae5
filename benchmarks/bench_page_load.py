"""The first page load of the dashboard in a real browser: bytes and time, cold and warm.

Run from the repository root (needs headless Chromium and chromedriver, as the browser
tests do)::

    python benchmarks/bench_page_load.py              # 5 loads of each kind
    python benchmarks/bench_page_load.py --markdown

The server is started as users start it (``python -m dashboard --port P --cache-dir D``).
Headless Chromium opens the page; a load ends when the page is ready to use (the model
card says "No model loaded.", i.e. the layout, the dependencies and the first callbacks
came back). Bytes are the browser's own counts (``performance`` resource timing, the
document included): *transferred* (on the wire, headers excluded) and *decoded*.

* ``uncompressed``: the browser asks for ``Accept-Encoding: identity`` (the page as it was
  served before responses were compressed), with a cold cache;
* ``cold``: a new browser profile (nothing cached), as a first visit;
* ``warm``: the same page loaded again in the same browser (a later visit): the
  fingerprinted bundles come from the browser's cache, the rest is asked again.

Each kind: the median of ``--repeats`` loads (a new browser for every cold load).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness import format_table  # puts the root and tests/ on the path
from selenium import webdriver
from support.browser import chromium_options
from support.dash_client import start_dashboard

_BYTES = """
const entries = [...performance.getEntriesByType('navigation'),
                 ...performance.getEntriesByType('resource')];
return [entries.reduce((s, e) => s + e.transferSize, 0),
        entries.reduce((s, e) => s + e.decodedBodySize, 0)];
"""


def _browser() -> webdriver.Chrome:
    options = chromium_options("--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu")
    driver = webdriver.Chrome(options=options)
    driver.set_window_size(1366, 768)
    return driver


def _load(driver: webdriver.Chrome, url: str) -> tuple[float, int, int]:
    """Seconds until the page is ready, bytes transferred and decoded."""
    start = time.perf_counter()
    driver.get(url)
    deadline = start + 60
    while "No model loaded." not in driver.execute_script(
        "const e = document.getElementById('model-info'); return e ? e.textContent : '';"
    ):
        if time.perf_counter() > deadline:
            raise TimeoutError("the page did not become ready within 60 s")
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    transferred, decoded = driver.execute_script(_BYTES)
    return seconds, transferred, decoded


def measure(url: str, repeats: int) -> dict[str, list[tuple[float, int, int]]]:
    loads: dict[str, list] = {"uncompressed": [], "cold": [], "warm": []}
    for _ in range(repeats):
        driver = _browser()
        try:
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd(
                "Network.setExtraHTTPHeaders", {"headers": {"Accept-Encoding": "identity"}}
            )
            loads["uncompressed"].append(_load(driver, url))
        finally:
            driver.quit()
        driver = _browser()
        try:
            loads["cold"].append(_load(driver, url))
            loads["warm"].append(_load(driver, url))
        finally:
            driver.quit()
    return loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = start_dashboard("embedded", Path(folder) / "cache")
        try:
            loads = measure(server.url, args.repeats)
        finally:
            server.stop()
    rows = []
    for kind, found in loads.items():
        seconds, transferred, decoded = (statistics.median(x) for x in zip(*found, strict=True))
        rows.append([kind, f"{transferred / 1e6:.2f}", f"{decoded / 1e6:.2f}",
                     f"{seconds * 1000:.0f}"])  # fmt: skip
    print(f"First page load, median of {args.repeats} (headless Chromium, loopback)")
    header = ["load", "transferred MB", "decoded MB", "ready ms"]
    print(format_table(header, rows, markdown=args.markdown, numeric=(1, 2, 3)))


if __name__ == "__main__":
    main()
