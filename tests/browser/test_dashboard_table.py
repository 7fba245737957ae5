"""The Table tab in the browser: numbers to 4 significant digits, whole column names, and
sorting and filtering done by the server over every row of a result larger than a page;
the downloads, the Python script among them."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dash.testing.wait import until
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

import demo_data
from dashboard import ids
from dashboard.table import PAGE_SIZE

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
IRIS = demo_data.metadata("iris")
GRID = f"#{ids.TABLE}"

_CELLS = """
const [grid, column] = arguments;
const rows = [...document.querySelectorAll(grid + ' .ag-center-cols-container .ag-row')];
return rows
    .map(row => [Number(row.getAttribute('row-index')),
                 (row.querySelector("[col-id='" + column + "']") || {}).textContent])
    .sort((a, b) => a[0] - b[0]);
"""
_HEADERS = """
return [...document.querySelectorAll(arguments[0] + ' .ag-header-cell-text')].map(h => ({
    text: h.textContent, cut: h.scrollWidth > h.clientWidth + 1,
}));
"""


def _compute(page, method: str) -> None:
    page.choose(ids.DEMO_SELECT, IRIS["title"])
    page.wait_text(ids.MODEL_INFO, method)
    page.choose(ids.METHOD_SELECT, method)
    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Done.", timeout=60)
    page.open_tab("Table")


def _cells(page, column: str) -> list[tuple[int, str]]:
    """(row index, text) of the rendered rows' cells of ``column``, by row index."""
    return [tuple(pair) for pair in page.driver.execute_script(_CELLS, GRID, column)]


def _first(page, column: str) -> tuple[int, str]:
    def shown():
        cells = _cells(page, column)
        return cells[0] if cells and cells[0][1] else None

    return until(shown, timeout=10, msg=f"no {column} cells shown")


def _row_count(page) -> int | None:
    """The number of rows the paging panel reports (``1 to 100 of 600``); None while the
    grid still asks for them (``… of more``)."""
    text = page.duo.find_element(f"{GRID} .ag-paging-row-summary-panel").text
    count = text.split("of")[-1].strip()
    return int(count) if count.isdigit() else None


def _wait_first(page, column: str, want: str) -> None:
    until(lambda: _first(page, column)[1] == want, timeout=10,
          msg=f"first {column} is {_first(page, column)[1]!r}, not {want!r}")  # fmt: skip


def _downloaded(page, suffix: str, timeout: float = 20) -> Path:
    """The file with ``suffix`` the browser saved in dash_duo's download folder."""
    folder = Path(page.duo.download_path)

    def found():
        files = [f for f in folder.glob(f"*{suffix}") if not f.name.endswith(".crdownload")]
        return files[0] if files and files[0].stat().st_size > 0 else None

    return until(found, timeout=timeout, msg=f"no {suffix} file downloaded")


def _four_digits(value: float) -> str:
    """d3's ``.4~g``: 4 significant digits, trailing zeros dropped, a minus sign (−)."""
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(float(f"{value:.4g}"))))
    if -7 <= exponent < 4:  # d3 writes these without an exponent
        text = f"{abs(value):.{max(0, 3 - exponent)}f}".rstrip("0").rstrip(".")
    else:
        mantissa, power = f"{abs(value):.3e}".split("e")
        text = f"{mantissa.rstrip('0').rstrip('.')}e{int(power):+d}"
    return ("−" if value < 0 else "") + text


def test_the_table_sorts_and_filters_every_row_in_the_server(page):
    _compute(page, "Gradient")
    page.duo.wait_for_element(f"{GRID} .ag-center-cols-container .ag-row", timeout=10)
    page.click(ids.DOWNLOAD_CSV)
    frame = pd.read_csv(_downloaded(page, ".csv"))
    assert len(frame) == 50 * 4 * 3 > PAGE_SIZE  # 50 rows × 4 features × 3 classes
    until(lambda: _row_count(page) == len(frame), timeout=10)

    # Whole column names, none cut; floats at 4 significant digits.
    headers = page.driver.execute_script(_HEADERS, GRID)
    assert [h["text"] for h in headers] == list(frame.columns)
    assert not [h["text"] for h in headers if h["cut"]]
    index, text = _first(page, "value")
    assert text == _four_digits(frame["value"][index])
    assert len(text.lstrip("−").replace(".", "").lstrip("0")) <= 4

    # Sorting covers every page: the first row is the smallest (then largest) value of all
    # rows, and page 2 starts with the 101st.
    values = np.sort(frame["value"].to_numpy())
    page.duo.find_element(f"{GRID} .ag-header-cell[col-id='value'] .ag-header-cell-label").click()
    _wait_first(page, "value", _four_digits(values[0]))
    page.duo.find_element(f"{GRID} .ag-paging-button[aria-label='Next Page']").click()
    until(lambda: _first(page, "value")[0] == PAGE_SIZE, timeout=10)
    _wait_first(page, "value", _four_digits(values[PAGE_SIZE]))
    page.duo.find_element(f"{GRID} .ag-header-cell[col-id='value'] .ag-header-cell-label").click()
    _wait_first(page, "value", _four_digits(values[-1]))

    # Filtering too: one class's rows from all pages, still sorted by value (descending).
    versicolor = frame[frame["output_node"] == "versicolor"]
    box = page.duo.find_element(
        f"{GRID} .ag-floating-filter[col-id='output_node'] input.ag-input-field-input"
    )
    box.send_keys("versicolor")
    until(lambda: _row_count(page) == len(versicolor) == 50 * 4, timeout=10)
    _wait_first(page, "value", _four_digits(versicolor["value"].max()))
    assert {text for _, text in _cells(page, "output_node")} == {"versicolor"}
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    until(lambda: _row_count(page) == len(frame), timeout=10)

    # A new result on the open tab: the grid drops the rows it holds and shows the new ones.
    page.set_number(ids.ROWS_INPUT, 10)
    page.click(ids.COMPUTE_BUTTON)
    until(lambda: _row_count(page) == 10 * 4 * 3, timeout=60)
    assert {text for _, text in _cells(page, "data")} <= {f"data_{i}" for i in range(1, 11)}

    page.settle()
    assert page.duo.get_logs() == []


def test_the_python_download_computes_the_npz_download_again(page, tmp_path):
    _compute(page, "SmoothGrad")
    buttons = page.driver.find_elements(By.CSS_SELECTOR, ".btn")
    labels = {button.text for button in buttons}
    assert {"⤓ Download CSV", "⤓ Download Python script"} <= labels
    page.click(ids.DOWNLOAD_NPZ)
    npz = _downloaded(page, ".npz")
    # Chromium holds a .py file from a site not visited before today for the user to
    # confirm ("Unconfirmed ….crdownload"); a new profile has visited nothing: let it be.
    page.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior",
        {"behavior": "allow", "downloadPath": page.duo.download_path},
    )
    page.click(ids.DOWNLOAD_PYTHON)
    script = _downloaded(page, ".py")
    assert script.stem == npz.stem  # <method>_<key>

    out = tmp_path / "again.npz"
    run = subprocess.run(
        [sys.executable, str(script), str(out)], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with np.load(npz) as want, np.load(out) as got:
        assert want.files == got.files == ["Output_1__Input_1"]
        np.testing.assert_array_equal(got["Output_1__Input_1"], want["Output_1__Input_1"])

    page.settle()
    assert page.duo.get_logs() == []
