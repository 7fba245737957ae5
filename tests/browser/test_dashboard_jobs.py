"""The job in the browser: Cancel stops its worker; a repeated request is not rerun."""

import psutil
import pytest
from dash.testing.wait import until

import demo_data
from dashboard import ids
from dashboard.callbacks import compute

cached = compute.cached

pytestmark = pytest.mark.browser

_WATCH_PROGRESS = """
const bar = document.getElementById(arguments[0]);
window.progressShown = false;
const look = () => {
    if (getComputedStyle(bar).visibility === 'visible') { window.progressShown = true; }
};
new MutationObserver(look).observe(bar, {attributes: true, subtree: true});
"""


def test_cancel_stops_a_long_run(page):
    page.choose(ids.DEMO_SELECT, demo_data.metadata("digits")["title"])
    page.wait_text(ids.MODEL_INFO, "IntegratedGradient")
    page.choose(ids.METHOD_SELECT, "IntegratedGradient")
    # 50 rows × 10 classes × 1000 path steps (the most the default limits allow): long.
    page.set_number(ids.parameter("n"), 1000)
    page.click(ids.COMPUTE_BUTTON)

    compute = page.wait_for(ids.COMPUTE_BUTTON)
    until(lambda: not compute.is_enabled(), timeout=10, msg="Compute never got disabled")
    running = until(page.running_jobs, timeout=20, msg="no worker started the job")
    page.wait_text(ids.STATUS, "Running", timeout=20)
    until(lambda: page.wait_for(ids.CANCEL_BUTTON).is_enabled(), timeout=10)
    worker = psutil.Process(running[0][1]["worker"]["pid"])

    page.click(ids.CANCEL_BUTTON)
    until(compute.is_enabled, timeout=5, msg="Compute stayed disabled after Cancel")
    _, alive = psutil.wait_procs([worker], timeout=10)
    assert not alive, f"the worker {worker.pid} still runs the job after Cancel"
    assert page.running_jobs() == []

    page.settle()
    assert page.status() == "Cancelled."
    assert page.store_data(ids.RESULT_REF) is None
    drawn = page.figure(ids.INDIVIDUAL_GRAPH)
    assert drawn is None or drawn["types"] == []
    assert not page.wait_for(ids.CANCEL_BUTTON).is_enabled()
    assert page.duo.get_logs() == []


def test_the_same_request_again_is_shown_from_the_cache_without_a_job(page, monkeypatch):
    page.choose(ids.DEMO_SELECT, demo_data.metadata("iris")["title"])
    page.wait_text(ids.MODEL_INFO, "Gradient")
    page.wait_for(ids.parameter("times_input"))
    page.driver.execute_script(_WATCH_PROGRESS, ids.PROGRESS)

    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Done.", timeout=60)
    page.wait_figure(ids.INDIVIDUAL_GRAPH, "bar")
    page.settle()
    first_result = page.store_data(ids.RESULT_REF)
    assert page.store_data(ids.JOB_REQUEST) is None  # the job ended
    assert page.driver.execute_script("return window.progressShown") is True  # the watch works
    submitted = page.app.runner.board.backend.get("jobs/job/" + first_result["key"])

    page.driver.execute_script(_WATCH_PROGRESS, ids.PROGRESS)
    found = []
    monkeypatch.setattr(compute, "cached", lambda *a: found.append(cached(*a)) or found[-1])
    page.click(ids.COMPUTE_BUTTON)
    until(lambda: found, timeout=10, msg="the second Compute never reached the server")
    assert found[0] == first_result
    page.settle()
    assert page.status() == "Done."
    assert page.store_data(ids.JOB_REQUEST) is None  # no job was queued
    assert page.app.runner.board.backend.get("jobs/job/" + first_result["key"]) == submitted
    assert page.driver.execute_script("return window.progressShown") is False
    assert page.store_data(ids.RESULT_REF) == first_result  # the page stays as it was
    page.wait_figure(ids.INDIVIDUAL_GRAPH, "bar")
    assert page.duo.get_logs() == []
