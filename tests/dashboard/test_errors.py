"""Only documented bad input becomes a message on the page; a bug stays a bug."""

from __future__ import annotations

import logging

import pytest
from dash import no_update

from attribution.errors import MissingDependencyError, UnsupportedLayerError
from dashboard.callbacks.register import guarded
from dashboard.errors import INTERNAL_ERROR, NotStored


@pytest.mark.parametrize(
    "error",
    [
        ValueError("n must be an integer >= 1; got 0."),
        NotStored("No upload with hash 1234… is stored for this page. Upload the file again."),
        UnsupportedLayerError("features.1 (SqueezeExcitation) is not supported.", "f.1", "SE"),
        MissingDependencyError("Reading .onnx files needs the package onnx: pip install onnx."),
    ],
)
def test_a_documented_bad_input_error_shows_its_own_message(error, caplog):
    def refuse():
        raise error

    with caplog.at_level(logging.ERROR, logger="dashboard"):
        assert guarded(refuse, 2) == (no_update, no_update, error.args[0], True)
    assert caplog.records == []


@pytest.mark.parametrize(
    "error",
    [
        TypeError("unsupported operand"),
        KeyError("shape"),
        AttributeError("'NoneType' object has no attribute 'x'"),
    ],
)
def test_a_bug_is_logged_with_its_traceback_and_shown_as_an_internal_error(error, caplog):
    def broken():
        raise error

    with caplog.at_level(logging.ERROR, logger="dashboard"):
        assert guarded(broken, 1) == (no_update, INTERNAL_ERROR, True)
    [record] = caplog.records
    assert record.exc_info[1] is error
