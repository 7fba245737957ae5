"""The README's screenshot of the dashboard, ``docs/img/dashboard.png``.

Run from the repository root (headless Chromium and chromedriver, as the browser tests)::

    python docs/make_screenshot.py

It starts the dashboard as users do (``python -m dashboard``), opens it in a 1366 × 768
window, picks the digits demo, LRP with its default rules, presses Compute and saves the
window once the grid is drawn.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the root before tests/, whose attribution/ folder holds tests, not the engine
sys.path[1:1] = [str(ROOT), str(ROOT / "tests")]

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from support.browser import chromium_options  # noqa: E402
from support.dash_client import start_dashboard  # noqa: E402

OUT = ROOT / "docs" / "img" / "dashboard.png"


def _choose(driver, dropdown_id: str, label: str) -> None:
    dropdown = driver.find_element(By.ID, dropdown_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", dropdown)
    dropdown.click()
    for option in driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option"):
        if option.text == label:
            option.click()
            return
    raise LookupError(f"no option {label!r} in #{dropdown_id}")


def _text(driver, component_id: str) -> str:
    found = driver.find_elements(By.ID, component_id)
    return found[0].text if found else ""


def _wait(test, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not get there")
        time.sleep(0.1)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        server = start_dashboard("embedded", Path(folder) / "cache")
        driver = webdriver.Chrome(options=chromium_options("--no-sandbox", "--disable-gpu"))
        try:
            driver.set_window_size(1366, 768)
            driver.get(server.url)
            _wait(lambda: "No model loaded." in _text(driver, "model-info"))
            _choose(driver, "demo-select", "Handwritten digits, 8×8 (image CNN)")
            _wait(lambda: "LRP" in _text(driver, "model-info"))
            _choose(driver, "method-select", "LRP")
            driver.find_element(By.ID, "compute-button").click()
            _wait(lambda: _text(driver, "status").startswith("Done."))
            _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#individual-graph .heatmaplayer"))
            driver.execute_script("document.querySelector('.control-column').scrollTop = 250;")
            time.sleep(1)  # plotly's last redraw
            driver.save_screenshot(str(OUT))
        finally:
            driver.quit()
            server.stop()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
