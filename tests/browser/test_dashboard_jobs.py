"""The background job in the browser: Cancel stops it; a repeated request is not rerun."""

import psutil
import pytest
from dash.testing.wait import until

import demo_data
from dashboard import ids

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
    # 50 rows × 10 classes × 20 000 path steps: minutes of work on this machine.
    page.set_number(ids.parameter("n"), 20_000)
    page.click(ids.COMPUTE_BUTTON)

    compute = page.wait_for(ids.COMPUTE_BUTTON)
    until(lambda: not compute.is_enabled(), timeout=10, msg="Compute never got disabled")
    running = until(page.jobs, timeout=20, msg="no job process started")
    until(lambda: page.wait_for(ids.CANCEL_BUTTON).is_enabled(), timeout=10)

    page.click(ids.CANCEL_BUTTON)
    until(compute.is_enabled, timeout=5, msg="Compute stayed disabled after Cancel")
    _, alive = psutil.wait_procs(running, timeout=10)
    assert not alive, f"job processes {[p.pid for p in alive]} still run after Cancel"

    page.settle()
    assert "Computed" not in page.status()
    assert page.store_data(ids.RESULT_REF) is None
    drawn = page.figure(ids.INDIVIDUAL_GRAPH)
    assert drawn is None or drawn["types"] == []
    assert not page.wait_for(ids.CANCEL_BUTTON).is_enabled()
    assert page.duo.get_logs() == []


def test_the_same_request_again_is_shown_from_the_cache_without_a_job(page):
    page.choose(ids.DEMO_SELECT, demo_data.metadata("iris")["title"])
    page.wait_text(ids.MODEL_INFO, "Gradient")
    page.wait_for(ids.parameter("times_input"))
    page.driver.execute_script(_WATCH_PROGRESS, ids.PROGRESS)

    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Computed.", timeout=60)
    page.wait_figure(ids.INDIVIDUAL_GRAPH, "bar")
    page.settle()
    first_request = page.store_data(ids.JOB_REQUEST)
    first_result = page.store_data(ids.RESULT_REF)
    assert first_request["click"] == 1
    assert first_result["cached"] is False
    assert page.driver.execute_script("return window.progressShown") is True  # the watch works

    page.driver.execute_script(_WATCH_PROGRESS, ids.PROGRESS)
    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Shown from the cache (computed before).", timeout=10)
    page.settle()
    assert page.store_data(ids.JOB_REQUEST) == first_request  # no job was requested
    assert page.driver.execute_script("return window.progressShown") is False
    assert page.store_data(ids.RESULT_REF) == first_result  # the page stays as it was
    page.wait_figure(ids.INDIVIDUAL_GRAPH, "bar")
    assert page.duo.get_logs() == []
