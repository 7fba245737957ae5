"""The page never shows a picture that is not for what it is set to: a result for other
data is dropped, one for other settings is marked, and a refused value is marked where
it was typed and never replaced by a default."""

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.by import By

import demo_data
from dashboard import ids
from dashboard.layout.views import HINT

pytestmark = pytest.mark.browser

IRIS, DIABETES = demo_data.metadata("iris"), demo_data.metadata("diabetes")


def _pick(page, demo: dict, method: str) -> None:
    page.choose(ids.DEMO_SELECT, demo["title"])
    page.wait_text(ids.MODEL_INFO, method)
    page.choose(ids.METHOD_SELECT, method)


def _compute(page, status: str = "Done.") -> dict:
    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, status, timeout=60)
    return page.store_data(ids.RESULT_REF)


def _notice(page) -> str | None:
    found = page.driver.find_elements(By.CSS_SELECTOR, f"#{ids.STALE_NOTICE}")
    return found[0].text if found and found[0].is_displayed() else None


def test_a_result_for_other_settings_is_marked_and_one_for_other_data_dropped(page):
    _pick(page, IRIS, "Gradient")
    first = _compute(page)
    page.wait_figure(ids.INDIVIDUAL_GRAPH, "bar")
    assert _notice(page) is None

    page.reveal(page.element(ids.parameter("times_input"))).click()  # a parameter changes
    until(lambda: _notice(page), timeout=10, msg="no notice for the changed parameter")
    assert "for other settings (its parameters changed since)" in _notice(page)
    assert page.store_data(ids.RESULT_REF) == first  # still shown, marked

    second = _compute(page)
    assert second["key"] != first["key"]
    until(lambda: _notice(page) is None, timeout=10, msg="the notice stayed after Compute")

    page.choose(ids.DEMO_SELECT, DIABETES["title"])  # other model and data: dropped
    page.wait_text(ids.MODEL_INFO, "DiabetesMLP")
    until(lambda: page.store_data(ids.RESULT_REF) is None, timeout=10)
    until(lambda: page.figure(ids.INDIVIDUAL_GRAPH)["types"] == [], timeout=10)
    assert page.figure(ids.INDIVIDUAL_GRAPH)["annotations"] == [HINT]
    assert page.selected(ids.INDIVIDUAL_OUTPUTS) == []
    assert page.status() == ""
    assert _notice(page) is None
    page.settle()


def _feedback(page, name: str) -> str:
    return page.element(ids.parameter_feedback(name)).text


def test_a_refused_value_is_marked_with_the_reason_and_nothing_runs(page):
    _pick(page, IRIS, "SmoothGrad")
    page.set_number(ids.parameter("noise_level"), -0.3)
    message = "noise_level must be a number >= 0.0; got -0.3."
    until(lambda: _feedback(page, "noise_level") == message, timeout=10)
    box = page.element(ids.parameter_box("noise_level"))
    assert "parameter-invalid" in box.get_attribute("class")

    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.ERROR_ALERT, message, timeout=10)
    page.settle()
    assert page.store_data(ids.RESULT_REF) is None and page.running_jobs() == []

    for typed in (0, 2.5):
        page.set_number(ids.parameter("n"), typed)
        until(lambda t=typed: _feedback(page, "n") == f"n must be an integer >= 1; got {t}.",
              timeout=10)  # fmt: skip
    page.set_number(ids.parameter("n"), 10)
    page.set_number(ids.parameter("noise_level"), 0.2)
    until(lambda: _feedback(page, "n") == _feedback(page, "noise_level") == "", timeout=10)
    assert "parameter-invalid" not in box.get_attribute("class")

    for typed in (0, -3, 3.5):
        page.set_number(ids.ROWS_INPUT, typed)
        page.wait_text(ids.ROWS_FEEDBACK, f"whole number ≥ 1; got {typed}.", timeout=10)
    n_rows = len(demo_data.load_demo("iris").inputs[0])
    page.set_number(ids.ROWS_INPUT, 500)
    page.wait_text(ids.ROWS_FEEDBACK, f"The data has {n_rows} rows: all {n_rows}", timeout=10)
    result = _compute(page, f"Rows: 500 asked, the data has {n_rows}: all {n_rows} explained.")
    assert result["request"]["rows"] == n_rows
    assert result["request"]["params"]["n"] == 10
    assert result["request"]["params"]["noise_level"] == 0.2
    page.settle()


def _in_view(page, component_id: str) -> bool:
    top, bottom, height = page.driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); "
        "return [r.top, r.bottom, window.innerHeight];",
        page.element(component_id),
    )
    return top >= 0 and bottom <= height


def test_on_a_laptop_screen_compute_and_the_picture_are_in_view(page):
    page.driver.set_window_size(1366, 768)
    hint = until(lambda: page.figure(ids.INDIVIDUAL_GRAPH), timeout=10)
    assert hint["types"] == [] and hint["annotations"] == [HINT]  # no empty axes: a hint
    _pick(page, demo_data.metadata("digits"), "LRP")
    page.wait_for(ids.rule("rule_name", "Conv2D_Layer"))
    # the rarely changed parameters are folded away; the method's own are shown
    more = page.element(ids.parameter_box("winner_takes_all"))
    assert not more.is_displayed() and page.element(ids.rule("rule_name", "Dense_Layer"))
    page.driver.execute_script("document.querySelector('.control-column').scrollTop = 0")
    assert _in_view(page, ids.COMPUTE_BUTTON)  # the Compute bar stays at the bottom
    page.element(ids.COMPUTE_BUTTON).click()
    page.wait_text(ids.STATUS, "Done.", timeout=60)
    page.wait_figure(ids.INDIVIDUAL_GRAPH, "heatmap")
    assert _in_view(page, ids.COMPUTE_BUTTON)
    top = page.driver.execute_script(
        "return document.querySelector(arguments[0]).getBoundingClientRect().top;",
        f"#{ids.INDIVIDUAL_GRAPH} .main-svg",
    )
    assert top < 300  # the picture starts in the upper half of the window
    page.settle()


_BUNDLES = """
return performance.getEntriesByType('resource')
    .filter(e => e.name.includes('/_dash-component-suites/'))
    .map(e => [e.name, e.transferSize, e.decodedBodySize]);
"""


def test_the_browser_gets_the_page_compressed(page):
    until(lambda: "No model loaded." in page.text(ids.MODEL_INFO), timeout=20)
    bundles = until(lambda: page.driver.execute_script(_BUNDLES), timeout=10)
    on_wire, decoded = sum(b[1] for b in bundles), sum(b[2] for b in bundles)
    assert decoded > 3e6  # plotly, React, the components: megabytes of script
    assert on_wire < decoded / 2, bundles  # zstd, brotli or gzip on the way
    page.settle()
