"""Many users at once on real servers, over HTTP as their browser tabs talk to them.

Each user is a :class:`~support.dash_client.DashTab` in its own thread with its own
session; the servers are those of ``conftest.py`` (``python -m dashboard`` and gunicorn
with two workers), each on a fresh cache folder.
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from support.dash_client import CallbackError, ComputeFailed, DashTab
from support.specs import DENSE_SPEC

import attribution
import demo_data
from attribution.converter.loading import load_model

pytestmark = pytest.mark.server

USERS = 20
BOUND_S = 120.0
"""Seconds in which every user must have their result."""
HEADER = "age,bmi,bp"


def user_spec(user: int) -> bytes:
    """DENSE_SPEC with weights of its own for ``user``."""
    spec = copy.deepcopy(DENSE_SPEC)
    spec["layers"][0]["weight"][0] = [1.0 + user / 10, -0.5, user / 20 - 0.3]
    spec["layers"][1]["weight"][1] = [0.5 - user / 40, 2.0]
    return json.dumps(spec).encode()


def user_rows(user: int) -> np.ndarray:
    return np.random.default_rng(user).normal(size=(4 + user % 3, 3)).round(4)


def csv_bytes(rows: np.ndarray) -> bytes:
    lines = [HEADER, *(",".join(f"{v:.4f}" for v in row) for row in rows)]
    return ("\n".join(lines) + "\n").encode()


def engine_gradient(spec: bytes, rows: np.ndarray) -> np.ndarray:
    """What the engine gives for the page's defaults: every output, ignore_last_act."""
    model = load_model(spec, "m.json")
    x = rows.astype(np.float32)
    return attribution.Gradient(model.converter, x, output_idx=[[0, 1]]).get_result("array")


def engine_iris_smoothgrad() -> np.ndarray:
    demo = demo_data.load_demo("iris")
    model = load_model(demo.model, input_dim=demo.input_dim, input_names=demo.input_names,
                       output_names=demo.output_names)  # fmt: skip
    method = attribution.SmoothGrad(
        model.converter, demo.inputs[0][:50], n=50, seed=0, output_idx=[[0, 1, 2]]
    )
    return method.get_result("array")


def upload_and_compute(url: str, user: int) -> tuple[DashTab, dict[str, np.ndarray]]:
    tab = DashTab(url)
    tab.open()
    tab.upload_model(user_spec(user), f"model_{user}.json")
    tab.upload_data(csv_bytes(user_rows(user)), f"data_{user}.csv")
    assert tab.alert is None, tab.alert
    tab.choose_method("Gradient")
    tab.compute(timeout=BOUND_S)
    return tab, tab.download_npz()


def iris_tab(url: str) -> DashTab:
    tab = DashTab(url)
    tab.open()
    tab.choose_demo("iris")
    tab.choose_method("SmoothGrad")
    tab.set_parameter("n", 50)
    tab.set_parameter("seed", 0)
    return tab


def failed_calls(tab: DashTab) -> list[tuple[str, int]]:
    """Callback requests answered 204 (no answer) or with an HTTP error."""
    return [(c.callback, c.status) for c in tab.calls if c.status == 204 or c.status >= 400]


def test_users_with_their_own_uploads_each_get_their_own_result(server):
    start = time.perf_counter()
    with ThreadPoolExecutor(USERS) as pool:
        futures = [pool.submit(upload_and_compute, server.url, user) for user in range(USERS)]
        outcomes = [future.result(timeout=BOUND_S + 60) for future in futures]
    took = time.perf_counter() - start
    assert took < BOUND_S, f"{USERS} users took {took:.0f} s"
    keys = set()
    for user, (tab, arrays) in enumerate(outcomes):
        assert failed_calls(tab) == [], f"user {user}"
        expected = engine_gradient(user_spec(user), user_rows(user))
        np.testing.assert_allclose(arrays["Output_1__Input_1"], expected, rtol=1e-5, atol=1e-6)
        keys.add(tab.get("result-ref", "data")["key"])
    assert len(keys) == USERS


def test_two_tabs_asking_the_same_public_request_at_once_get_the_same_result(server):
    tabs = [iris_tab(server.url) for _ in range(2)]
    barrier = threading.Barrier(2)

    def press(tab: DashTab) -> dict[str, np.ndarray]:
        barrier.wait()
        tab.compute(timeout=BOUND_S)
        return tab.download_npz()

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(press, tabs, timeout=BOUND_S + 30)
    assert [failed_calls(tab) for tab in tabs] == [[], []]
    assert tabs[0].session_token != tabs[1].session_token
    assert tabs[0].get("result-ref", "data")["key"] == tabs[1].get("result-ref", "data")["key"]
    np.testing.assert_array_equal(first["Output_1__Input_1"], second["Output_1__Input_1"])
    np.testing.assert_allclose(
        first["Output_1__Input_1"], engine_iris_smoothgrad(), rtol=1e-5, atol=1e-6
    )


def test_tabs_choosing_a_demo_at_once_all_get_it(server):
    """A class picks the same demo at the same moment, on a server that has not loaded
    it yet (no other test here uses digits): every tab shows the model and its method
    parameters, none gets an alert or an HTTP error."""
    tabs = [DashTab(server.url) for _ in range(20)]
    for tab in tabs:
        tab.open()
    barrier = threading.Barrier(len(tabs))

    def choose(tab: DashTab) -> None:
        barrier.wait()
        with contextlib.suppress(CallbackError):  # an HTTP 500, kept in tab.calls
            tab.choose_demo("digits")

    with ThreadPoolExecutor(len(tabs)) as pool:
        list(pool.map(choose, tabs, timeout=BOUND_S))
    assert [(tab.alert, failed_calls(tab)) for tab in tabs] == [(None, [])] * len(tabs)
    assert all(tab.get("method-select", "value") for tab in tabs)


@pytest.fixture(scope="module")
def owner(server):
    """A tab with its own uploads and result, which others try to reach."""
    tab, _ = upload_and_compute(server.url, 99)
    return tab


def intruder(url: str) -> DashTab:
    """Another tab, with a model and data of its own (the owner's fit them)."""
    tab = DashTab(url)
    tab.open()
    tab.upload_model(user_spec(7), "model_7.json")
    tab.upload_data(csv_bytes(user_rows(7)), "data_7.csv")
    assert tab.alert is None
    return tab


def assert_refused(tab: DashTab, *, hint: str) -> None:
    assert tab.alert is not None and hint in tab.alert, tab.alert
    assert failed_calls(tab) == []


@pytest.mark.parametrize("public", [False, True], ids=["own", "marked-public"])
@pytest.mark.parametrize(("kind", "name"), [("model", "model_99"), ("data", "data_99")])
def test_another_tabs_upload_is_refused(server, owner, kind, name, public):
    tab = intruder(server.url)
    replayed = {**owner.get(f"{kind}-ref", "data"), **({"public": True} if public else {})}
    tab.set(f"{kind}-ref", "data", replayed)
    assert_refused(tab, hint="No upload with hash")
    assert name not in json.dumps(tab.get(f"{kind}-info", "children"))
    with pytest.raises(ComputeFailed, match="No upload with hash"):
        tab.compute(timeout=30)
    assert tab.get("result-ref", "data") is None


def test_another_tabs_result_is_refused(server, owner):
    tab = intruder(server.url)
    # (a page drops a result for other model or data in the browser; the server must
    # refuse a replayed one on its own)
    tab.set("result-ref", "data", owner.get("result-ref", "data"))
    assert_refused(tab, hint="does not belong to this page")
    assert not tab.get("individual-rows", "options")
    tab.set("view-tabs", "active_tab", "table")
    assert not tab.get("result-table", "rowData")
    with pytest.raises(ComputeFailed, match="does not belong to this page"):
        tab.download("download-csv")
    assert tab.get("download", "data") is None


@pytest.mark.parametrize("token", ["forged", "re-signed", "none"])
def test_a_forged_session_token_is_refused(server, owner, token):
    tab = DashTab(server.url)
    tab.open()
    real = owner.session_token
    forged = {"forged": "AAAAAAAAAAAAAAAAAAAAAA.0123456789abcdef0123456789abcdef",
              "re-signed": real[:-4] + ("0000" if real[-4:] != "0000" else "1111"),
              "none": None}[token]  # fmt: skip
    tab.set("session", "data", forged, fire=False)
    tab.upload_model(user_spec(99), "model_99.json")  # the owner's bytes: known sha
    assert_refused(tab, hint="session is not valid")
    assert tab.get("model-ref", "data") is None
    tab.set("model-ref", "data", owner.get("model-ref", "data"), fire=False)
    tab.set("data-ref", "data", owner.get("data-ref", "data"), fire=False)
    tab.set("method-select", "value", "Gradient", fire=False)
    tab.set("output-select", "value", ["0:0", "0:1"], fire=False)
    with pytest.raises(ComputeFailed, match="session is not valid"):
        tab.compute(timeout=30)
    tab.set("result-ref", "data", owner.get("result-ref", "data"))
    with pytest.raises(ComputeFailed, match="session is not valid"):
        tab.download("download-npz")
    assert tab.get("download", "data") is None
    assert failed_calls(tab) == []


def test_a_forged_token_on_the_poll_stops_it_with_an_alert(server):
    tab = iris_tab(server.url)
    tab.set("session", "data", "AAAAAAAAAAAAAAAAAAAAAA.0123456789abcdef0123456789abcdef",
            fire=False)  # fmt: skip
    tab.set("job-request", "data", {"id": "0" * 64, "request": {}}, fire=False)
    tab.set("job-poll", "n_intervals", 1)
    assert_refused(tab, hint="session is not valid")
    assert tab.get("job-poll", "disabled") is True


def test_a_forged_token_shows_no_parameters_and_no_error(server):
    tab = iris_tab(server.url)
    tab.set("session", "data", "AAAAAAAAAAAAAAAAAAAAAA.0123456789abcdef0123456789abcdef",
            fire=False)  # fmt: skip
    tab.choose_method("Gradient")
    assert failed_calls(tab) == []
    assert "parameter" not in json.dumps(tab.get("parameter-panel", "children"))


def test_a_body_over_the_limit_is_refused_before_it_is_sent(server):
    """A POST declaring 1 GB gets HTTP 413 from its headers alone: the server neither
    waits for the body nor buffers it."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /_dash-update-component HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{"
        )
        status = connection.recv(4096).split(b"\r\n", 1)[0]
    assert b" 413 " in status
    assert requests.get(server.url, timeout=10).status_code == 200  # still serving
