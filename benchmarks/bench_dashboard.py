"""Dashboard latency in a real browser: from the Compute click to the redrawn grid.

Run from the repository root (needs headless Chromium and chromedriver, as the browser
tests do)::

    python benchmarks/bench_dashboard.py              # full run (about a minute)
    python benchmarks/bench_dashboard.py --quick      # one run, no warm-up
    python benchmarks/bench_dashboard.py --markdown   # the tables as markdown

The real app (``create_app``, one local worker: ``Config(workers=1)``) serves from a
werkzeug server in a thread of this process; its job runs in the worker, a process the
app's job queue spawns (:mod:`dashboard.jobqueue.local`). Headless Chromium, driven by
selenium, picks a demo, a method and its parameters, as a user does. Cases (the issue's):

* ``iris, SmoothGrad``: n = 50 noisy copies, all 3 outputs, the app's default rows
  (the whole iris test set, it has fewer than 50); goal < 1,500 ms, and < 300 ms from
  the cache;
* ``digits, LRP``: the 8×8 digits CNN, rule ``simple``, 50 images × all 10 outputs; no
  goal is set, the iris goals are shown for reference.

The grid drawn is the app's default view of a new result (innsight's): the first two data
points × the first three output nodes; the Compute request sent by the page is checked
(method, parameters, every output node, rows) before a run counts.

What is timed, in the browser (``performance.now()``): from the click on Compute to the
moment the individual grid has been redrawn with the new figure. The click is a
JavaScript click issued in the same script that records the start time; the end is the
first ``plotly_afterplot`` (or ``plotly_react``, which Plotly emits when a react call had
nothing to redraw) of the grid's plotly div after the grid callback's answer has been
read in the page (a ``fetch`` wrapper notes it) and the div's ``data`` changed identity;
a per-frame check of the same condition is the fallback.

The first compute queues a job on the app's job board; the page polls it (``dcc.Interval``,
every ``dashboard.layout.POLL_MS`` = 500 ms) until the poll's answer sets the page's result.
Then a fresh page (session storage cleared and reloaded: a new session, as another
visitor) asks for the same result: a demo's results are public, so the Compute callback
answers with the stored result at once (status "Done."), and that is timed the same way.
The script checks that the first click queued exactly one job (the Compute request
answered with a job, and one job record on the board was created since the click) and
that the cached click queued none.

One app on a fresh cache folder serves every run; its worker is started, and ready (it
looks at the queue), before the first run. Before each run the case's stored result is
deleted and the server's in-memory result memo (``dashboard.callbacks.views.RESULTS``)
emptied, so that the first compute runs a job and the page loads its result from the
store. The worker keeps what it loaded (imports, models) between jobs, as in a
long-running server. Full run: one warm-up run per case (not counted, printed; its first
compute includes the worker's first job with that model), then the median of 3 runs
(about a minute in all); ``--quick``: one run, no warm-up. Other work on the machine
shows in the times: the load average is printed before and after.

Where the time goes. The Flask requests of the callbacks are logged by
``before_request`` / ``after_request`` hooks added to the app's server, in epoch ms
(``time.time()``; the click's epoch is the browser's ``Date.now()``, the same clock); the
job's board record gives when it was queued (``created``) and when the worker took it
(``started``), epoch seconds. The phases of the first compute:

* ``to job``: click → the worker starts the job (the Compute callback, which builds the
  request and queues the job, then the worker's next look at the queue, every 0.1 s);
* ``job + poll``: job start → the end of the poll request that returned the result (load
  model and data, the method, store the result; then the wait for the page's next poll,
  up to 500 ms, and that request);
* ``options cb`` and ``grid cb``: server time of the two chained callbacks that follow a
  new result (the view controls' options, then the grid's figure: ``result.plot()`` and
  its JSON);
* ``draw``: the grid callback's answer read in the page → grid drawn (browser clock:
  Dash's renderer, ``dcc.Graph`` and Plotly);
* ``other``: the rest (the renderer between requests, the network, and the page's other
  callbacks that run beside these: the stale notice, table and global figure).

Shown beside them, not added: ``compute cb`` (server time of the Compute request),
``queue`` (``created`` → ``started``: the job waiting for the worker), ``polls`` (poll
requests from the click to the answer) and the grid's JSON.

For the cached click: ``compute cb`` (the Compute callback: it builds the request, finds
the result in the store and answers with it), ``options cb``, ``grid cb``, ``draw`` and
``other``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dash
import plotly
import selenium
from flask import g, request
from harness import format_table, parse_arguments
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from support.browser import chromium_options  # harness put tests/ on the path
from werkzeug.serving import make_server

import demo_data
from dashboard import ids
from dashboard.app import create_app
from dashboard.callbacks import views
from dashboard.config import Config
from dashboard.layout import POLL_MS
from dashboard.store import Store

WINDOW = (1400, 1400)
"""A desktop window (the Compute bar sits at its bottom)."""
TIMEOUT = 120.0
"""Seconds to wait for any one step."""
FULL_RUNS, QUICK_RUNS = 3, 1
STATUS_DONE = "Done."
"""The status line of a shown result (computed or from the cache), maybe with notes."""
RESULT_PREFIX = "result/"
"""The store's backend keys of results (``dashboard.store``)."""
JOB_PREFIX = "jobs/job/"
"""The board's backend keys of job records (``dashboard.jobqueue.board``)."""


@dataclass(frozen=True)
class Case:
    name: str
    demo: str
    method: str
    parameters: tuple[tuple[str, float], ...]
    """Numeric method parameters to type in, (name, value); the others keep their
    defaults."""
    rows: int | None
    """Rows to explain; None keeps the app's default (min(50, rows of the data))."""
    goal_first_ms: float | None
    goal_cached_ms: float | None


CASES = (
    Case("iris, SmoothGrad n=50, all outputs", "iris", "SmoothGrad", (("n", 50),), None,
         1500.0, 300.0),
    Case("digits, LRP, 50 images × 10 outputs", "digits", "LRP", (), 50, None, None),
)  # fmt: skip
REFERENCE_GOALS = (1500.0, 300.0)


# --- server-side timing -----------------------------------------------------------------


@dataclass
class Call:
    """One ``_dash-update-component`` request."""

    start: float
    """Epoch ms."""
    end: float
    trigger: str
    """The id of the callback's first input."""
    output: str
    """Dash's output string of the callback (``..id.prop@hash...``)."""
    size: int
    """Response bytes."""
    answer: dict = field(default_factory=dict)
    """The answer's outputs, ``{id: {prop: value}}`` (Compute and poll requests only)."""
    body: dict | None = None
    """The request (the Compute callback's only)."""

    @property
    def ms(self) -> float:
        return self.end - self.start

    @property
    def job(self) -> dict | None:
        """The job the page follows after this answer (None: none, or no change)."""
        return self.answer.get(ids.JOB_REQUEST, {}).get("data")

    @property
    def result(self) -> dict | None:
        """The result reference this answer set, if it set one."""
        return self.answer.get(ids.RESULT_REF, {}).get("data")


@dataclass
class ServerLog:
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def since(self, t: float) -> list[Call]:
        with self.lock:
            return sorted((c for c in self.calls if c.start >= t), key=lambda c: c.start)


def instrument(server, log: ServerLog) -> None:
    """Log every callback request of the app's Flask server (this hook runs before
    flask-compress's, registered earlier: the body is still plain JSON)."""

    @server.before_request
    def _start():
        if request.path.endswith("_dash-update-component"):
            g.bench_start = time.time() * 1e3

    @server.after_request
    def _end(response):
        start = g.pop("bench_start", None)
        if start is None:
            return response
        body = request.get_json(silent=True) or {}
        inputs = body.get("inputs") or [{}]
        trigger = inputs[0].get("id") if isinstance(inputs[0], dict) else None
        data = response.get_data()
        answer = {}
        if trigger in (ids.COMPUTE_BUTTON, ids.JOB_POLL) and data:
            parsed = json.loads(data)
            answer = parsed.get("response", {}) if isinstance(parsed, dict) else {}
        with log.lock:
            log.calls.append(
                Call(
                    start,
                    time.time() * 1e3,
                    str(trigger),
                    str(body.get("output")),
                    len(data),
                    answer,
                    body if trigger == ids.COMPUTE_BUTTON else None,
                )
            )
        return response


@dataclass
class Server:
    url: str
    app: dash.Dash
    store: Store
    """The app's store (another connection to its cache folder)."""

    def jobs_since(self, t: float) -> list[dict]:
        """The board's job records created since epoch ms ``t``."""
        cache = self.app.runner.board.backend.cache
        records = (cache.get(key) for key in list(cache) if str(key).startswith(JOB_PREFIX))
        found = [json.loads(r) for r in records if r is not None]
        return [r for r in found if r["created"] * 1e3 >= t]

    def job(self, job_id: str) -> dict:
        """The board's record of a job."""
        return json.loads(self.app.runner.board.backend.get(JOB_PREFIX + job_id))

    def forget_results(self) -> None:
        """Delete every stored result and empty the server's result memo: the next
        request is computed anew."""
        backend = self.store.backend
        for key in [k for k in list(backend.cache) if str(k).startswith(RESULT_PREFIX)]:
            backend.delete(key)
        views.RESULTS.clear()


@contextlib.contextmanager
def serve(cache_dir: Path, log: ServerLog) -> Iterator[Server]:
    """The app on a fresh port, in a thread, its worker started and ready."""
    config = Config(cache_dir=cache_dir, workers=1)
    app = create_app(config)
    instrument(app.server, log)
    httpd = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        app.runner.start()
        # an idle worker writes the (empty) queue at each look at it
        board = app.runner.board
        wait(lambda: board.backend.get("jobs/queue") is not None, "the worker", step=0.1)
        yield Server(f"http://127.0.0.1:{httpd.server_port}", app, Store.from_config(config))
    finally:
        httpd.shutdown()
        thread.join(10)
        app.runner.close()


# --- the browser ------------------------------------------------------------------------


def browser() -> webdriver.Chrome:
    options = chromium_options("--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu")
    driver = webdriver.Chrome(options=options)
    driver.set_window_size(*WINDOW)
    return driver


def wait(condition, what: str, timeout: float = TIMEOUT, step: float = 0.01):
    """Poll ``condition()`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except WebDriverException:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


def settled(driver, what: str) -> None:
    """Wait until Dash has no callback in flight (it sets the title to "Updating..."),
    twice in a row 100 ms apart, so that chained callbacks have started."""

    def idle():
        return driver.execute_script(
            "return document.title !== 'Updating...' && !document.querySelector("
            "'[data-dash-is-loading=\"true\"]')"
        )

    def twice():
        if not idle():
            return False
        time.sleep(0.1)
        return idle()

    wait(twice, what)


def click(driver, element) -> None:
    """A user's click, scrolled into view first (at once: Bootstrap's smooth scrolling
    would still be moving the page when selenium clicks)."""
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element
    )
    element.click()


def choose(driver, dropdown_id: str, value: str) -> None:
    """Pick ``value`` in a (single) dcc.Dropdown."""
    click(driver, driver.find_element(By.ID, dropdown_id))
    option = wait(
        lambda: driver.find_element(
            By.CSS_SELECTOR, f".dash-dropdown-options input[value='{value}']"
        ),
        f"option {value!r} of #{dropdown_id}",
    )
    driver.execute_script("arguments[0].closest('.dash-dropdown-option').click()", option)
    wait(
        lambda: not driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-options"),
        f"the menu of #{dropdown_id} to close",
    )


def select_all(driver, dropdown_id: str) -> None:
    """Select every option of a multi dcc.Dropdown (the Compute request is checked later)."""
    menu = ".dash-dropdown-options"
    trigger = driver.find_element(By.ID, dropdown_id)
    click(driver, trigger)
    options = wait(
        lambda: driver.find_elements(By.CSS_SELECTOR, f"{menu} .dash-dropdown-option"),
        f"the options of #{dropdown_id}",
    )
    for option in options:
        if option.get_attribute("aria-selected") != "true":
            driver.execute_script("arguments[0].click()", option)
    driver.find_element(By.TAG_NAME, "body").send_keys("\ue00c")  # Escape
    if driver.find_elements(By.CSS_SELECTOR, menu):
        click(driver, trigger)
    wait(lambda: not driver.find_elements(By.CSS_SELECTOR, menu), f"#{dropdown_id} to close")


def type_number(driver, element_id: str, value: float) -> None:
    """Set a number input (typing, so that Dash sees it as the user's)."""
    element = driver.find_element(By.CSS_SELECTOR, f"[id='{element_id}']")
    if element.get_attribute("value") == f"{value:g}":
        return
    element.clear()
    element.send_keys(f"{value:g}")
    wait(lambda: element.get_attribute("value") == f"{value:g}", f"#{element_id} = {value:g}")


def parameter_id(name: str) -> str:
    return json.dumps(ids.parameter(name), sort_keys=True, separators=(",", ":"))


_CLICK_AND_WATCH = """
const graph = document.getElementById(arguments[0]);
const button = document.getElementById(arguments[1]);
const output = arguments[2];
const find = () => graph.querySelector('.js-plotly-plot');
const before = find();
const bench = window.__bench = {
  t0: null, response: null, event: null, frame: null, how: null,
  beforeGd: before, beforeData: before ? before.data : null,
};
if (!window.__benchFetch) {
  // Note when the answer of the grid's callback arrives: a redraw only counts after it.
  window.__benchFetch = true;
  const fetch = window.fetch;
  window.fetch = function (url, options) {
    const body = options && typeof options.body === 'string' ? options.body : '';
    const promise = fetch.apply(this, arguments);
    if (!body.includes(output)) return promise;
    const b = window.__bench;
    return promise.then((response) => response.clone().text().then(() => {
      if (b && b.response === null) b.response = performance.now();
      return response;
    }));
  };
}
const changed = (gd) => bench.response !== null && gd && gd._fullLayout && gd.data
  && gd.data.length > 0 && (gd !== bench.beforeGd || gd.data !== bench.beforeData);
const hook = (gd) => {
  if (!gd || !gd.on || gd.__benchHooked) return;
  gd.__benchHooked = true;
  for (const name of ['plotly_afterplot', 'plotly_react']) {
    gd.on(name, () => {
      const b = window.__bench;
      if (b && b.event === null && b.changed(gd)) { b.event = performance.now(); b.how = name; }
    });
  }
};
bench.changed = changed;
hook(before);
const frame = () => {
  if (window.__bench !== bench || bench.event !== null) return;
  const gd = find();
  hook(gd);
  if (bench.frame === null && changed(gd)) bench.frame = performance.now();
  requestAnimationFrame(frame);
};
bench.t0 = performance.now();
const epoch = Date.now();
button.click();
requestAnimationFrame(frame);
return epoch;
"""


@dataclass(frozen=True)
class Drawn:
    ms: float
    """Click → grid drawn, browser clock."""
    click: float
    """Epoch ms of the click (``Date.now()``, the server's clock)."""
    response_ms: float
    """Click → the grid callback's answer read in the browser."""
    how: str
    """What marked the redraw: Plotly's ``afterplot`` or ``react`` event, or ``frame``
    (the fallback)."""


def click_and_time(driver, fallback_s: float = 2.0) -> Drawn:
    """Click Compute and wait for the grid's redraw; the browser-side milliseconds."""
    click = driver.execute_script(_CLICK_AND_WATCH, ids.INDIVIDUAL_GRAPH, ids.COMPUTE_BUTTON, GRID)
    seen_frame = None

    def done():
        nonlocal seen_frame
        b = driver.execute_script(
            "const b = window.__bench;"
            "return {t0: b.t0, response: b.response, event: b.event, frame: b.frame,"
            " how: b.how};"
        )
        if b["event"] is not None:
            how = b["how"].removeprefix("plotly_")
            return Drawn(b["event"] - b["t0"], click, b["response"] - b["t0"], how)
        if b["frame"] is not None:
            seen_frame = seen_frame or time.monotonic()
            if time.monotonic() - seen_frame > fallback_s:
                return Drawn(b["frame"] - b["t0"], click, b["response"] - b["t0"], "frame")
        return None

    return wait(done, "the grid to be redrawn", step=0.005)


def status(driver) -> str:
    return driver.find_element(By.ID, ids.STATUS).text


# --- one run ----------------------------------------------------------------------------


FIRST_PHASES = ("to job", "job + poll", "options cb", "grid cb", "draw", "other")
CACHED_PHASES = ("compute cb", "options cb", "grid cb", "draw", "other")


@dataclass(frozen=True)
class Run:
    first: Drawn
    cached: Drawn
    first_phases: dict[str, float]
    """ms per phase (:data:`FIRST_PHASES`), adding up to ``first.ms``."""
    cached_phases: dict[str, float]
    """ms per phase (:data:`CACHED_PHASES`), adding up to ``cached.ms``."""
    compute_ms: float
    """Server time of the first Compute request (it queues the job)."""
    queue_ms: float
    """The job's wait in the queue (``created`` → ``started`` on the board)."""
    polls: int
    """Poll requests from the first click to the one that returned the result."""
    grid_kb: float
    """The grid callback's response."""
    traces: str
    """The drawn grid's traces, e.g. "6 bar"."""
    request: str
    """What the page asked for (checked)."""


def prepare(driver, url: str, case: Case) -> None:
    """Load the page as a new session, pick the demo, the method and its parameters."""
    if driver.current_url.startswith(url):
        driver.execute_script("window.sessionStorage.clear()")  # a new session token
    driver.get(url)
    wait(lambda: driver.find_elements(By.ID, ids.DEMO_SELECT), "the page")
    driver.execute_script("document.documentElement.style.scrollBehavior = 'auto'")
    settled(driver, "the page's first callbacks")
    choose(driver, ids.DEMO_SELECT, case.demo)
    wait(lambda: "Methods" in driver.find_element(By.ID, ids.MODEL_INFO).text, "model info")
    settled(driver, "the demo's callbacks")
    choose(driver, ids.METHOD_SELECT, case.method)
    settled(driver, "the parameter panel")
    for name, value in case.parameters:
        type_number(driver, parameter_id(name), value)
    select_all(driver, ids.OUTPUT_SELECT)
    if case.rows is not None:
        type_number(driver, ids.ROWS_INPUT, case.rows)
    settled(driver, "the settings")


def find(calls: list[Call], output: str, after: float, before: float) -> Call:
    """The first request for the callback with ``output`` (or, for a ``trigger:`` name,
    of that first input) that starts after ``after`` and ends before ``before`` (epoch
    ms)."""
    for call in calls:
        wanted = (
            call.trigger == output.removeprefix("trigger:")
            if output.startswith("trigger:")
            else output in call.output
        )
        if wanted and call.start >= after and call.end <= before:
            return call
    logged = "\n".join(
        f"  {c.start - after:8.0f} {c.end - after:8.0f}  {c.trigger[:20]:20} {c.output[:60]}"
        for c in calls
    )
    raise RuntimeError(
        f"no request for {output} in the window from 0 to {before - after:.0f} ms; "
        f"logged:\n{logged}"
    )


COMPUTE = f"trigger:{ids.COMPUTE_BUTTON}"
"""The Compute callback's requests (its first input is the button)."""
OPTIONS = f"{ids.INDIVIDUAL_ROWS}.options"
GRID = f"{ids.INDIVIDUAL_GRAPH}.figure"
SLACK_MS = 50.0
"""Clock slack between the browser's and the server's epoch milliseconds."""


def with_other(phases: dict[str, float], total: float) -> dict[str, float]:
    """``phases`` plus "other", the rest of ``total`` (the renderer between requests,
    the network)."""
    return {**phases, "other": total - sum(phases.values())}


def traces(driver) -> str:
    kinds = driver.execute_script(
        "return document.querySelector(arguments[0]).data.map(t => t.type)",
        f"#{ids.INDIVIDUAL_GRAPH} .js-plotly-plot",
    )
    return ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds)))


def shown(driver, what: str) -> None:
    """Wait for the status "Done." (maybe with notes) and a quiet page."""
    wait(lambda: status(driver).startswith(STATUS_DONE), f"status 'Done.' ({what})")
    settled(driver, f"the {what}'s view callbacks")


@dataclass(frozen=True)
class Click:
    """A timed Compute click on a new page and the requests logged since."""

    drawn: Drawn
    calls: list[Call]
    compute: Call
    """The Compute callback's request (checked against the case)."""
    sent: str
    """What it asked for."""

    @property
    def end(self) -> float:
        """Epoch ms of the redrawn grid."""
        return self.drawn.click + self.drawn.ms


def timed_click(driver, case: Case, server: Server, log: ServerLog, what: str) -> Click:
    """Prepare a new page, click Compute, wait for the result and a quiet page."""
    prepare(driver, server.url, case)
    drawn = click_and_time(driver)
    shown(driver, what)
    calls = log.since(drawn.click - SLACK_MS)
    compute = find(calls, COMPUTE, drawn.click - SLACK_MS, drawn.click + drawn.ms)
    return Click(drawn, calls, compute, check_request(compute, case))


def one_run(driver, case: Case, server: Server, log: ServerLog) -> Run:
    """Time the first compute on a new page, then the same request from another new page
    (answered from the cache)."""
    server.forget_results()
    click = timed_click(driver, case, server, log, "first compute")
    first, calls, compute, end = click.drawn, click.calls, click.compute, click.end
    if not compute.job or compute.result:
        raise RuntimeError(f"the first Compute queued no job (answer {compute.answer})")
    queued = server.jobs_since(first.click - SLACK_MS)
    if len(queued) != 1:
        raise RuntimeError(f"expected one job queued by the first click, found {len(queued)}")
    job = server.job(compute.job["id"])
    if job["state"] != "done":
        raise RuntimeError(f"the job is {job['state']!r}: {job['message']}")
    polls = [c for c in calls if c.trigger == ids.JOB_POLL and c.start >= compute.start]
    answer = next(c for c in polls if c.result)
    options = find(calls, OPTIONS, answer.end - SLACK_MS, end + SLACK_MS)
    grid = find(calls, GRID, options.end - SLACK_MS, end + SLACK_MS)
    started = job["started"] * 1e3
    first_phases = {
        "to job": started - first.click,
        "job + poll": answer.end - started,
        "options cb": options.ms,
        "grid cb": grid.ms,
        "draw": first.ms - first.response_ms,
    }
    drawn = traces(driver)

    # A repeated request on the same page changes nothing; a fresh page (another visitor,
    # a new session) asking for the same public demo result gets it from the store.
    again = timed_click(driver, case, server, log, "cached click")
    cached, calls, cached_compute, end = again.drawn, again.calls, again.compute, again.end
    if cached_compute.job or not cached_compute.result:
        raise RuntimeError(f"the cached Compute did not answer with the result "
                           f"(answer {cached_compute.answer})")  # fmt: skip
    if server.jobs_since(cached.click - SLACK_MS):
        raise RuntimeError("the click from the cache queued a job")
    options = find(calls, OPTIONS, cached_compute.end - SLACK_MS, end + SLACK_MS)
    cached_grid = find(calls, GRID, options.end - SLACK_MS, end + SLACK_MS)
    cached_phases = {
        "compute cb": cached_compute.ms,
        "options cb": options.ms,
        "grid cb": cached_grid.ms,
        "draw": cached.ms - cached.response_ms,
    }
    return Run(
        first=first,
        cached=cached,
        first_phases=with_other(first_phases, first.ms),
        cached_phases=with_other(cached_phases, cached.ms),
        compute_ms=compute.ms,
        queue_ms=(job["started"] - job["created"]) * 1e3,
        polls=sum(1 for c in polls if c.end <= answer.end),
        grid_kb=grid.size / 1e3,
        traces=drawn,
        request=click.sent,
    )


def check_request(call: Call, case: Case) -> str:
    """What the Compute callback was sent, checked against the case; a summary."""
    states = [
        item
        for state in call.body["state"]
        for item in (state if isinstance(state, list) else [state])  # ALL gives a list
    ]
    plain = {s["id"]: s.get("value") for s in states if isinstance(s["id"], str)}
    params = {
        s["id"]["name"]: s.get("value")
        for s in states
        if isinstance(s["id"], dict) and s["id"].get("type") == "parameter"
        and s["property"] == "value"
    }  # fmt: skip
    method = plain.get(ids.METHOD_SELECT)
    outputs = plain.get(ids.OUTPUT_SELECT) or []
    rows = plain.get(ids.ROWS_INPUT)
    n_outputs = len(demo_data.metadata(case.demo)["output_names"][0])
    problems = []
    if method != case.method:
        problems.append(f"method {method!r}")
    if len(outputs) != n_outputs:
        problems.append(f"{len(outputs)} of {n_outputs} outputs")
    if case.rows is not None and rows != case.rows:
        problems.append(f"rows {rows!r}")
    problems += [
        f"{name} = {params.get(name)!r}"
        for name, value in case.parameters
        if params.get(name) != value
    ]
    if problems:
        raise RuntimeError(f"{case.name}: the page sent " + ", ".join(problems))
    shown = ", ".join(f"{k}={v}" for k, v in case.parameters)
    return f"{method}({shown}), {len(outputs)} outputs, rows {rows}"


# --- the table ------------------------------------------------------------------------


def median(values) -> float:
    return statistics.median(values)


def goal_text(case: Case) -> str:
    if case.goal_first_ms is None:
        return f"none set (ref. <{REFERENCE_GOALS[0]:g} / <{REFERENCE_GOALS[1]:g})"
    return f"<{case.goal_first_ms:g} / <{case.goal_cached_ms:g}"


def met_text(case: Case, first: float, cached: float) -> str:
    goals = (case.goal_first_ms, case.goal_cached_ms) if case.goal_first_ms else REFERENCE_GOALS
    parts = [
        "yes" if value < goal else "no" for value, goal in zip((first, cached), goals, strict=True)
    ]
    text = " / ".join(parts)
    return text if case.goal_first_ms else f"({text})"


def tables(results: list[tuple[Case, list[Run]]], markdown: bool) -> str:
    """The main table and the two tables of phases."""
    main_rows, first_rows, cached_rows = [], [], []
    for case, runs in results:
        first = median(r.first.ms for r in runs)
        cached = median(r.cached.ms for r in runs)
        main_rows.append(
            (case.name, f"{first:.0f}", f"{cached:.0f}", goal_text(case),
             met_text(case, first, cached))
        )  # fmt: skip
        first_rows.append(
            (
                case.name,
                f"{first:.0f}",
                *(f"{median(r.first_phases[p] for r in runs):.0f}" for p in FIRST_PHASES),
                f"{median(r.compute_ms for r in runs):.0f}",
                f"{median(r.queue_ms for r in runs):.0f}",
                f"{median(r.polls for r in runs):.0f}",
                f"{median(r.grid_kb for r in runs):.0f}",
            )
        )
        cached_rows.append(
            (
                case.name,
                f"{cached:.0f}",
                *(f"{median(r.cached_phases[p] for r in runs):.0f}" for p in CACHED_PHASES),
            )
        )
    main = format_table(
        ("case", "first compute (ms)", "from cache (ms)", "goal (ms, first / cache)",
         "met? (first / cache)"),
        main_rows, markdown, numeric=(1, 2),
    )  # fmt: skip
    first_table = format_table(
        ("case", "total", *FIRST_PHASES, "compute cb", "queue", "polls", "grid JSON (kB)"),
        first_rows,
        markdown,
        numeric=tuple(range(1, len(FIRST_PHASES) + 6)),
    )
    cached_table = format_table(
        ("case", "total", *CACHED_PHASES),
        cached_rows,
        markdown,
        numeric=tuple(range(1, len(CACHED_PHASES) + 2)),
    )
    return (
        f"{main}\n\nFirst compute, where the time goes (median ms of each phase; they need "
        f"not add up to the median total; compute cb, queue and polls are not added "
        f"in):\n\n{first_table}\n\nFrom the cache, where the "
        f"time goes (median ms):\n\n{cached_table}"
    )


def progress_line(case: Case, label: str, run: Run) -> str:
    first = ", ".join(f"{p} {v:.0f}" for p, v in run.first_phases.items())
    cached = ", ".join(f"{p} {v:.0f}" for p, v in run.cached_phases.items())
    return (
        f"  {case.name}, {label}: first {run.first.ms:.0f} ({first}; compute cb "
        f"{run.compute_ms:.0f}, queue {run.queue_ms:.0f}, {run.polls} polls, end by "
        f"{run.first.how}), from cache {run.cached.ms:.0f} ({cached}; end by "
        f"{run.cached.how}); sent {run.request}; drawn {run.traces}"
    )


def _load() -> str:
    """The 1, 5 and 15 minute load averages (other work on the machine skews the times)."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__.split("\n\n")[0], argv, models=False)
    runs, warm_up = (QUICK_RUNS, False) if args.quick else (FULL_RUNS, True)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    log = ServerLog()
    driver = browser()
    try:
        version = driver.capabilities.get("browserVersion", "?")
        print(
            f"dash {dash.__version__}, plotly {plotly.__version__}, selenium "
            f"{selenium.__version__}, Chromium {version} headless, "
            f"{os.cpu_count()} CPU cores, jobs in 1 spawned worker process, polled every "
            f"{POLL_MS} ms, {'quick' if args.quick else 'full'} run"
        )
        print(f"load average before: {_load()}")
        print("\nRuns (ms, browser clock; warm-up runs not counted):", flush=True)
        results: list[tuple[Case, list[Run]]] = []
        with serve(work / "cache", log) as server:
            for case in CASES:
                runs_of_case: list[Run] = []
                for run in range(runs + warm_up):
                    measured = one_run(driver, case, server, log)
                    label = "warm-up" if warm_up and run == 0 else f"run {run + (not warm_up)}"
                    print(progress_line(case, label, measured), flush=True)
                    if not (warm_up and run == 0):
                        runs_of_case.append(measured)
                results.append((case, runs_of_case))
    finally:
        driver.quit()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average after: {_load()}\n")
    print(tables(results, args.markdown))
    missed = [
        case.name
        for case, rs in results
        if case.goal_first_ms is not None
        and (
            median(r.first.ms for r in rs) >= case.goal_first_ms
            or median(r.cached.ms for r in rs) >= case.goal_cached_ms
        )
    ]
    print("\nEvery goal is met." if not missed else f"\nGoal missed for: {', '.join(missed)}.")


if __name__ == "__main__":
    main()
