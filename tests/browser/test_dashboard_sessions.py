"""One browser tab never sees what another uploaded: references live in the tab's
session storage."""

import json

import pytest
from support.specs import DENSE_SPEC

from dashboard import ids

pytestmark = pytest.mark.browser

_SET_DATA = "window.dash_clientside.set_props(arguments[0], {data: arguments[1]});"


def test_a_second_tab_starts_without_the_first_tabs_upload(page, tmp_path):
    model = tmp_path / "private.json"
    model.write_text(json.dumps(DENSE_SPEC))
    page.upload(ids.MODEL_UPLOAD, model)
    page.wait_text(ids.MODEL_INFO, "private.json", timeout=15)
    first_tab = page.driver.current_window_handle
    stolen = page.store_data(ids.MODEL_REF)
    assert stolen["kind"] == "upload"

    page.driver.switch_to.new_window("tab")
    page.driver.get(page.duo.server_url)
    page.wait_text(ids.MODEL_INFO, "No model loaded", timeout=15)
    assert page.store_data(ids.MODEL_REF) is None
    assert "private.json" not in page.text(ids.MODEL_INFO)
    page.settle()
    assert page.duo.get_logs() == []

    # The second tab replays the first tab's reference (its sha): the server refuses it.
    page.driver.execute_script(_SET_DATA, ids.MODEL_REF, stolen)
    page.wait_text(ids.ERROR_ALERT, "Upload the file again", timeout=15)
    assert "private.json" not in page.text(ids.MODEL_INFO)
    assert "private.json" not in page.text(ids.ERROR_ALERT)
    page.settle()

    page.driver.switch_to.window(first_tab)  # the first tab keeps its model
    page.driver.refresh()
    page.wait_text(ids.MODEL_INFO, "private.json", timeout=15)
    page.settle()
    assert page.duo.get_logs() == []
