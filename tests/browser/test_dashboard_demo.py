"""A demo end to end in the browser: pick it, choose a method and outputs, compute, read
every tab."""

import pytest
from selenium.webdriver.common.by import By

import demo_data
from dashboard import ids

pytestmark = pytest.mark.browser

DIGITS = demo_data.metadata("digits")
CHOSEN = ["2", "5", "7"]  # digit classes; the page selects the first ten by default


def test_lrp_on_the_digits_demo_fills_every_tab(page):
    page.choose(ids.DEMO_SELECT, DIGITS["title"])
    page.wait_text(ids.MODEL_INFO, "LRP")
    page.choose(ids.METHOD_SELECT, "LRP")
    page.wait_for(ids.rule("rule_name", "Conv2D_Layer"))  # LRP's parameters are shown
    assert len(page.selected(ids.OUTPUT_SELECT)) == 10
    page.choose_many(ids.OUTPUT_SELECT, CHOSEN)
    assert page.selected(ids.OUTPUT_SELECT) == CHOSEN

    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Done.", timeout=60)

    # Individual: 2 data points (rows) × the 3 chosen classes (columns), a heatmap each,
    # the column strips naming the classes.
    grid = page.wait_figure(ids.INDIVIDUAL_GRAPH, "heatmap")
    assert grid["types"].count("heatmap") == 2 * len(CHOSEN)
    strips = [
        text.removeprefix("<b>").removesuffix("</b>")
        for text in grid["annotations"]
        if text.startswith("<b>")
    ]
    classes = DIGITS["output_names"][0]
    assert [text for text in strips if text in classes] == CHOSEN
    assert [text for text in strips if text.startswith("data_")] == ["data_1", "data_2"]
    assert page.selected(ids.INDIVIDUAL_OUTPUTS) == CHOSEN

    # Global: pixel-wise quantile maps.
    page.open_tab("Global")
    page.wait_figure(ids.GLOBAL_GRAPH, "heatmap")

    # Table: innsight's data frame, a page of 20 rows.
    page.open_tab("Table")
    page.duo.wait_for_element(f"#{ids.TABLE} .ag-center-cols-container .ag-row", timeout=10)
    headers = set(
        page.driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(h => h.textContent)",
            f"#{ids.TABLE} .ag-header-cell-text",
        )
    )
    assert {"data", "feature", "output_node", "value"} <= headers
    rows = page.driver.find_elements(
        By.CSS_SELECTOR, f"#{ids.TABLE} .ag-center-cols-container .ag-row"
    )
    assert len(rows) == 20

    # Model: the converter's summary with its layers.
    page.open_tab("Model")
    page.wait_text(ids.MODEL_SUMMARY, "Converter", timeout=10)
    summary = page.text(ids.MODEL_SUMMARY)
    assert "Conv2D_Layer" in summary
    assert "Dense_Layer" in summary

    page.settle()
    assert page.duo.get_logs() == []


@pytest.mark.parametrize(("method", "setting", "has_goal"), [
    ("SHAP", ("nsim", 2), True), ("LIME", ("n_permutations", 300), False),
])  # fmt: skip
def test_lime_and_shap_on_the_iris_demo(page, method, setting, has_goal):
    iris = demo_data.metadata("iris")
    page.choose(ids.DEMO_SELECT, iris["title"])
    page.wait_text(ids.MODEL_INFO, "SHAP")
    page.choose(ids.METHOD_SELECT, method)
    page.set_number(ids.parameter(setting[0]), setting[1])
    page.set_number(ids.ROWS_INPUT, 5)
    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Done.", timeout=60)
    grid = page.wait_figure(ids.INDIVIDUAL_GRAPH, "bar")
    assert grid["types"].count("bar") >= 2
    result = page.store_data(ids.RESULT_REF)
    assert result["request"]["method"] == method
    assert result["request"]["params"][setting[0]] == setting[1]
    # SHAP's values decompose f(x) − mean f(background): the info box shows that goal
    assert any("Goal: " in text for text in grid["annotations"]) == has_goal
    page.settle()
    assert page.duo.get_logs() == []
