"""An uploaded reference input in the browser: IntegratedGradient on the iris demo compared
with a one-row CSV, whose decomposition goal is f(x) − f(x_ref)."""

import re

import numpy as np
import pytest
import torch
from dash.testing.wait import until
from selenium.webdriver.common.by import By

import demo_data
from dashboard import ids

pytestmark = pytest.mark.browser

IRIS = demo_data.metadata("iris")
REFERENCE = [6.5, 3.0, 5.5, 2.0]  # a virginica-like flower, far from the first (setosa) row


def _choose_radio(page, name: str, label: str) -> None:
    """Click the option ``label`` of the radio items of parameter ``name``."""
    container = page.reveal(page.wait_for(ids.parameter(name)))
    [option] = [
        item for item in container.find_elements(By.CSS_SELECTOR, "label") if item.text == label
    ]
    option.click()


def test_uploaded_reference_row_gives_the_goal_f_x_minus_f_ref(page, tmp_path):
    reference_csv = tmp_path / "reference.csv"
    reference_csv.write_text("sl,sw,pl,pw\n" + ",".join(map(str, REFERENCE)) + "\n")

    page.choose(ids.DEMO_SELECT, IRIS["title"])
    page.wait_text(ids.MODEL_INFO, "IntegratedGradient")
    page.choose(ids.METHOD_SELECT, "IntegratedGradient")
    page.wait_for(ids.parameter("reference"))
    assert not page.element(ids.REFERENCE_AREA).is_displayed()  # zeros: no upload needed
    _choose_radio(page, "reference", "upload")
    until(lambda: page.element(ids.REFERENCE_AREA).is_displayed(), timeout=5)
    _choose_radio(page, "reference", "mean")
    until(lambda: not page.element(ids.REFERENCE_AREA).is_displayed(), timeout=5)
    _choose_radio(page, "reference", "upload")
    until(lambda: page.element(ids.REFERENCE_AREA).is_displayed(), timeout=5)
    page.upload(ids.REFERENCE_UPLOAD, reference_csv)
    page.wait_text(ids.REFERENCE_INFO, "1 row, (batch, 4)", timeout=15)
    # The page keeps the file's sha256, never its bytes.
    kept = page.store_data(ids.REFERENCE_REF)
    assert set(kept) == {"sha", "filename"} and re.fullmatch(r"[0-9a-f]{64}", kept["sha"])

    # Explain the softmax output (probabilities: the info box's 4 digits reach 1e-4) of
    # the first row for "setosa".
    page.click(ids.parameter("ignore_last_act"))
    page.choose_many(ids.OUTPUT_SELECT, ["setosa"])
    page.set_number(ids.ROWS_INPUT, 1)
    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Done.", timeout=60)
    assert page.store_data(ids.RESULT_REF)["request"]["params"]["reference_sha"] == kept["sha"]

    grid = page.wait_figure(ids.INDIVIDUAL_GRAPH, "bar")
    [info] = [text for text in grid["annotations"] if "Goal: " in text]
    goal = float(re.search(r"Goal: (\S+)", info).group(1))
    demo = demo_data.load_demo("iris")
    with torch.no_grad():
        x = torch.tensor(demo.inputs[0][:1])
        x_ref = torch.tensor([REFERENCE], dtype=torch.float32)
        want = (demo.model(x) - demo.model(x_ref))[0, 0].item()
    assert abs(want) > 0.1  # the reference makes a difference (zeros would give another goal)
    np.testing.assert_allclose(goal, want, atol=1e-4)
    assert page.alert_open() is False

    # Another model forgets the file: it was read in this model's shape.
    page.choose(ids.DEMO_SELECT, demo_data.metadata("diabetes")["title"])
    until(lambda: page.store_data(ids.REFERENCE_REF) is None, timeout=10)
    assert page.text(ids.REFERENCE_INFO) == ""

    page.settle()
    assert page.duo.get_logs() == []
