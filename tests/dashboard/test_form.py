"""The method form as the user types (the stale check runs in the browser:
tests/browser/test_dashboard_state.py)."""

from __future__ import annotations

import pytest

from dashboard.callbacks.form import parameter_problems, rows_feedback

IRIS = {"kind": "demo", "name": "iris"}
DIGITS = {"kind": "demo", "name": "digits"}
SETTINGS = {"model": IRIS, "data": IRIS, "method": "SmoothGrad",
            "raw": {"n": 50, "noise_level": 0.1}, "outputs": ["0:0"], "rows": 50}  # fmt: skip


def test_refused_numbers_are_named_with_the_requests_message():
    ids = [{"type": "parameter", "name": n} for n in ("n", "noise_level", "times_input")]
    problems = parameter_problems("SmoothGrad", [2.5, -0.3, True], ids)
    assert problems == {
        "n": "n must be an integer >= 1; got 2.5.",
        "noise_level": "noise_level must be a number >= 0.0; got -0.3.",
    }
    assert parameter_problems("SmoothGrad", [None, 0.2, True], ids) == {
        "n": "n is empty: type a value (innsight's default is 50)."
    }
    assert parameter_problems("SmoothGrad", [10, 0.0, False], ids) == {}


@pytest.mark.parametrize(
    ("rows", "text"),
    [
        (0, "got 0."),
        (-3, "got -3."),
        (3.5, "got 3.5."),
        (None, "got nothing (the field is empty)."),
    ],
)
def test_rows_say_what_was_typed(rows, text):
    message, invalid = rows_feedback(rows, 150)
    assert invalid and message == f"Rows to explain must be a whole number ≥ 1; {text}"


def test_rows_beyond_the_data_say_they_are_capped():
    assert rows_feedback(500, 150) == ("The data has 150 rows: all 150 will be explained.", False)
    assert rows_feedback(20.0, 150) == (None, False)
