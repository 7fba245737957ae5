"""The dashboard in headless Chromium, driven as a user would (``dash_duo`` underneath).

``page`` starts ``create_app`` on its own cache folder and hands out a :class:`Page`: the
few gestures the tests need (choose from a dropdown, upload, click) and the readings
(a graph's traces and strips, a ``dcc.Store``'s data, the status line), all by the ids of
:mod:`dashboard.ids`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from tqdm import std as tqdm_std

from dashboard import ids
from dashboard.app import create_app
from dashboard.config import Config

_DISABLE_SMOOTH_SCROLL = "document.documentElement.style.scrollBehavior = 'auto';"
"""Bootstrap sets ``:root { scroll-behavior: smooth }``: the scroll that chromedriver makes
before a click is then animated, chromedriver clicks where the element will be once the
animation ends, and the click lands outside the window ("element click intercepted").
People are not affected (they scroll first, then click); the tests scroll instantly."""

_REVEAL = """
for (let d = arguments[0].closest('details'); d; d = d.parentElement.closest('details')) {
    d.open = true;
}
arguments[0].scrollIntoView({block: 'center'});
"""

_STORE_DATA = """
const state = window.store.getState();
const path = state.paths.strs[arguments[0]];
let node = state.layout;
for (const key of path) { node = node[key]; }
return node.props.data === undefined ? null : node.props.data;
"""

_FIGURE = """
const plot = document.querySelector(arguments[0] + ' .js-plotly-plot');
if (!plot || !plot.data) { return null; }
return {
    types: plot.data.map(t => t.type),
    data: plot.data.map(t => ({type: t.type, x: t.x === undefined ? null : t.x})),
    annotations: (plot.layout.annotations || []).map(a => a.text),
};
"""


class Page:
    """The running dashboard in the browser."""

    def __init__(self, duo, app) -> None:
        self.duo = duo
        self.driver = duo.driver
        self.app = app

    # --- gestures ---------------------------------------------------------------------------

    @staticmethod
    def selector(component_id: str | dict) -> str:
        """The CSS selector of a component id; Dash writes a pattern-matching (dict) id as
        JSON with sorted keys and no spaces."""
        if isinstance(component_id, str):
            return f"#{component_id}"
        text = json.dumps(dict(sorted(component_id.items())), separators=(",", ":"))
        return f"[id='{text}']"

    def element(self, component_id: str | dict, inner: str = ""):
        return self.duo.find_element(f"{self.selector(component_id)} {inner}".strip())

    def reveal(self, element):
        """Unfold the "More options" (``<details>``) ``element`` is in and scroll it to the
        middle of its scrolling column, as a user does before clicking it (chromedriver
        would scroll it just into view, under the Compute bar at the window's bottom)."""
        self.driver.execute_script(_REVEAL, element)
        return element

    def wait_for(self, component_id: str | dict, timeout: float = 10):
        return self.duo.wait_for_element(self.selector(component_id), timeout=timeout)

    def click(self, component_id: str) -> None:
        """A real click, once the element is enabled (it fails if something covers it)."""
        element = self.reveal(self.wait_for(component_id))
        until(element.is_enabled, timeout=15, msg=f"{component_id} stayed disabled")
        element.click()

    def choose(self, dropdown_id: str, label: str) -> None:
        """Open a single-choice ``dcc.Dropdown`` and click the option shown as ``label``."""
        self.reveal(self.element(dropdown_id)).click()
        self._option(label).click()
        self._wait_closed(dropdown_id)

    def choose_many(self, dropdown_id: str, labels: list[str]) -> None:
        """Open a multi-choice ``dcc.Dropdown``, deselect all, click ``labels``, close it."""
        self.reveal(self.element(dropdown_id)).click()
        menu = self.duo.wait_for_element(".dash-dropdown-content")
        [deselect] = [
            button
            for button in menu.find_elements(By.CSS_SELECTOR, ".dash-dropdown-action-button")
            if button.text == "Deselect All"
        ]
        deselect.click()
        for label in labels:
            self._option(label).click()
        self.element(dropdown_id).send_keys(Keys.ESCAPE)
        self._wait_closed(dropdown_id)

    def _option(self, label: str):
        def find():
            options = self.driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
            matches = [option for option in options if option.text == label]
            return matches[0] if matches else None

        return until(find, timeout=10, msg=f"no dropdown option {label!r}")

    def _wait_closed(self, dropdown_id: str) -> None:
        selector = f"#{dropdown_id}[aria-expanded='false']"
        if not self.driver.find_elements(By.CSS_SELECTOR, selector):
            self.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
        self.duo.wait_for_element(selector, timeout=5)

    def upload(self, upload_id: str, path: Path) -> None:
        self.element(upload_id, "input[type=file]").send_keys(str(path))

    def set_number(self, input_id: str | dict, value: int) -> None:
        """Type ``value`` over the content of a number input."""
        field = self.reveal(self.wait_for(input_id))
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(str(value))
        until(lambda: field.get_attribute("value") == str(value), timeout=5)

    def open_tab(self, label: str) -> None:
        """Click the result tab shown as ``label``."""
        tabs = self.driver.find_elements(By.CSS_SELECTOR, f"#{ids.TABS} .nav-link")
        [tab] = [t for t in tabs if t.text == label]
        tab.click()
        until(lambda: "active" in tab.get_attribute("class"), timeout=5)

    # --- readings ---------------------------------------------------------------------------

    def text(self, component_id: str) -> str:
        return self.element(component_id).text

    def selected(self, dropdown_id: str) -> list[str]:
        """The labels a multi-choice ``dcc.Dropdown`` shows as selected."""
        items = self.element(dropdown_id).find_elements(
            By.CSS_SELECTOR, ".dash-dropdown-value-item"
        )
        return [item.text for item in items]

    def status(self) -> str:
        return self.text(ids.STATUS)

    def alert_open(self) -> bool:
        """Whether the error alert shows (``dbc.Alert`` leaves the page when closed)."""
        found = self.driver.find_elements(By.CSS_SELECTOR, f"#{ids.ERROR_ALERT}")
        return bool(found) and found[0].is_displayed()

    def wait_text(self, component_id: str, text: str, timeout: float = 30) -> None:
        self.duo.wait_for_contains_text(f"#{component_id}", text, timeout=timeout)

    def store_data(self, store_id: str) -> Any:
        """The ``data`` of a ``dcc.Store`` as the page holds it."""
        return self.driver.execute_script(_STORE_DATA, store_id)

    def figure(self, graph_id: str) -> dict | None:
        """Trace types, bar categories and annotation texts of a drawn graph, or None."""
        return self.driver.execute_script(_FIGURE, f"#{graph_id}")

    def wait_figure(self, graph_id: str, trace_type: str, timeout: float = 30) -> dict:
        """The graph once it has a trace of ``trace_type`` (plotly has drawn it)."""

        def drawn():
            found = self.figure(graph_id)
            return found if found and trace_type in found["types"] else None

        until(drawn, timeout=timeout, msg=f"#{graph_id} shows no {trace_type} trace")
        self.duo.wait_for_element(f"#{graph_id} .main-svg")
        return drawn()

    def running_jobs(self) -> list[tuple[str, dict]]:
        """The jobs the app's workers run now, with their board records."""
        return self.app.runner.board.running()

    def settle(self, timeout: float = 30) -> None:
        """Wait until the page has no callback in flight (a test ends on a quiet page)."""
        until(self.duo._wait_for_callbacks, timeout=timeout, poll=0.2)


class _Errors(logging.Handler):
    """Keeps the dashboard's error records: an internal error (a bug) fails the test."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def open_page(dash_duo, monkeypatch):
    """Start the dashboard with a config and open it in a desktop-sized window.

    The test fails when the browser's console has a SEVERE entry (a callback's HTTP error,
    a JavaScript error) or the server logged an internal error.
    """
    # dash_duo stops its server by raising SystemExit in every thread started since the
    # server; a tqdm bar, even a disabled one, starts tqdm's monitor thread: not here.
    monkeypatch.setattr(tqdm_std.tqdm, "monitor_interval", 0)
    errors = _Errors()
    logging.getLogger("dashboard").addHandler(errors)
    opened: list[Page] = []

    def start(config: Config) -> Page:
        app = create_app(config)
        dash_duo.start_server(app)
        dash_duo.driver.set_window_size(1280, 1000)
        dash_duo.driver.execute_script(_DISABLE_SMOOTH_SCROLL)
        opened.append(Page(dash_duo, app))
        return opened[-1]

    yield start
    # That SystemExit, raised in a request thread that is inside an import, leaves the
    # import lock held, and the interpreter's exit hangs: end every test on a quiet page.
    for page in opened:
        with contextlib.suppress(Exception):  # a failed test reports its own failure
            page.settle()
        page.app.runner.close()
    logging.getLogger("dashboard").removeHandler(errors)
    console = [entry for entry in dash_duo.get_logs() or [] if entry["level"] == "SEVERE"]
    assert not console, f"the browser's console has errors: {console}"
    assert not errors.records, "internal errors: " + "; ".join(
        f"{r.getMessage()}: {r.exc_info[1]!r}" for r in errors.records if r.exc_info
    )


@pytest.fixture
def page(open_page, tmp_path):
    """The dashboard on its own cache folder, with one local worker."""
    return open_page(Config(cache_dir=tmp_path / "cache", workers=1))
