"""The job queue: the board's states and the local runner's real, spawned workers."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from support.dashboard import SESSION

import attribution
import demo_data
from dashboard.backends import DiskBackend
from dashboard.callbacks import compute
from dashboard.config import Config
from dashboard.jobqueue import board as board_module
from dashboard.jobqueue.board import JobBoard
from dashboard.jobqueue.execute import INTERNAL_ERROR, execute, job_record
from dashboard.jobqueue.local import LocalRunner
from dashboard.store import Store

IRIS = {"kind": "demo", "name": "iris"}
DIGITS = {"kind": "demo", "name": "digits"}
WORKER = {"host": "here", "pid": 1}


@pytest.fixture
def board(tmp_path) -> JobBoard:
    return JobBoard(DiskBackend(tmp_path / "jobs"), time_limit=60)


def _until(condition, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


# --- the board ------------------------------------------------------------------------------


def test_a_job_that_ended_with_its_result_stored_is_joined_not_run_again(board):
    # tab-b looked for the result just before the job finished: its submit comes after
    board.submit("job", {}, "tab-a")
    board.claim_next(WORKER)
    board.finish("job")
    assert board.submit("job", {}, "tab-b", result_stored=lambda: True) is False
    assert [board.status("job", tab).state for tab in ("tab-a", "tab-b")] == ["done", "done"]
    # a result evicted since: the job runs again, for the tab that asks
    assert board.submit("job", {}, "tab-b", result_stored=lambda: False) is True
    assert board.status("job", "tab-b").state == "queued"


def test_identical_requests_are_one_job_that_every_waiter_sees(board):
    assert board.submit("job", {"request": 1}, "tab-a") is True
    assert board.submit("job", {"request": 1}, "tab-b") is False  # the same job: no new run
    assert board.status("job", "tab-a").text() == "Queued: place 1 of 1 waiting…"
    job_id, record = board.claim_next(WORKER)
    assert (job_id, record["waiters"], board.claim_next(WORKER)) == (
        "job",
        ["tab-a", "tab-b"],
        None,
    )
    board.progress("job", 2, 8)
    running = board.status("job", "tab-b")
    assert (running.state, running.done, running.total) == ("running", 2, 8)
    assert running.text().startswith("Running: step 2 of 8, ")
    board.finish("job")
    assert board.status("job", "tab-a").text() == board.status("job", "tab-b").text() == "Done."


def test_the_queue_shows_each_jobs_place(board):
    for name in ("first", "second", "third"):
        board.submit(name, {}, "tab")
    assert board.status("second", "tab").text() == "Queued: place 2 of 3 waiting…"
    board.claim_next(WORKER)
    assert board.status("third", "tab").text() == "Queued: place 2 of 2 waiting…"
    assert board.status("first", "tab").state == "running"


def test_a_job_ends_when_its_last_waiter_leaves(board):
    board.submit("job", {}, "tab-a")
    board.submit("job", {}, "tab-b")
    board.claim_next(WORKER)
    assert board.cancel("job", "tab-a") is None  # tab-b still waits: the job runs on
    assert board.status("job", "tab-a").state == "cancelled"
    assert board.status("job", "tab-b").state == "running"
    assert board.cancel("job", "tab-b") == WORKER  # the runner stops this worker
    assert board.status("job", "tab-b").text() == "Cancelled."
    assert board.running() == []


def test_a_session_sees_nothing_of_a_job_it_did_not_ask_for(board):
    board.submit("job", {}, "tab-a")
    board.claim_next(WORKER)
    board.finish("job")
    assert board.status("job", "other-session").state == "cancelled"
    assert board.cancel("job", "other-session") is None
    assert board.status("job", "tab-a").state == "done"


def test_a_job_without_heartbeats_fails_with_the_reason(board, monkeypatch):
    board.submit("job", {}, "tab")
    board.claim_next(WORKER)
    assert board.status("job", "tab").state == "running"
    monkeypatch.setattr(board_module, "STALE_AFTER", 0.0)
    status = board.status("job", "tab")
    assert status.state == "failed"
    assert status.text() == (
        "Failed: the worker running it stopped (it was killed or ran out of memory). Press "
        "Compute to try again."
    )
    board.finish("job")  # a late result of a failed job changes nothing
    assert board.status("job", "tab").state == "failed"


def test_a_job_past_the_time_limit_fails(tmp_path):
    board = JobBoard(DiskBackend(tmp_path / "jobs"), time_limit=0.0)
    board.submit("job", {}, "tab")
    board.claim_next(WORKER)
    assert board.status("job", "tab").text() == (
        "Failed: it ran longer than the time limit of 0 s and was stopped. Explain fewer "
        "rows or outputs, or use fewer samples."
    )


def test_an_unknown_job_says_to_compute_again(board):
    assert "press Compute again" in board.status("nothing", "tab").text()


# --- executing a job ------------------------------------------------------------------------


def _record(store, config, method="Gradient", raw=None, rows=3, ref=IRIS):
    request = compute.build(store, config, _settings(ref, method, raw, ["0:0"], rows), SESSION)
    return request, job_record(request, "public", config)


def _settings(ref, method, raw, outputs, rows) -> dict:
    """What the page's :func:`compute.settings` reads: model and data ``ref``."""
    return {"model": ref, "data": ref, "method": method, "raw": raw or {}, "outputs": outputs,
            "rows": rows}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "Converter"}, "Converter"),
        ({"rows": -5}, "Rows to explain"),
        ({"params": {"memory_budget": 1}}, "not a canonical request"),
    ],
)
def test_the_worker_checks_the_request_again(tmp_path, store, change, message):
    config = Config(cache_dir=tmp_path / "cache")
    board = JobBoard(DiskBackend(tmp_path / "jobs"))
    request, record = _record(store, config)
    forged = {**record, "request": {**request, **change}}
    board.submit("job", forged, "tab")
    execute(store, board, *board.claim_next(WORKER))
    status = board.status("job", "tab")
    assert status.state == "failed" and message in status.message
    assert status.message != INTERNAL_ERROR


def test_work_beyond_the_limits_is_refused_before_it_is_queued(tmp_path, store):
    config = Config(cache_dir=tmp_path / "cache", max_samples=100, max_rows=10)
    with pytest.raises(ValueError, match=r"--max-samples"):
        _record(store, config, "SmoothGrad", {"n": 101})
    with pytest.raises(ValueError, match=r"--max-rows"):
        _record(store, config, rows=11)


def test_a_bug_in_a_job_is_logged_not_shown(tmp_path, store, monkeypatch, caplog):
    config = Config(cache_dir=tmp_path / "cache")
    board = JobBoard(DiskBackend(tmp_path / "jobs"))
    _, record = _record(store, config)
    board.submit("job", record, "tab")
    monkeypatch.setattr("dashboard.jobs.run_method", lambda *a, **k: 1 / 0)
    execute(store, board, *board.claim_next(WORKER))
    assert board.status("job", "tab").message == INTERNAL_ERROR
    assert "ZeroDivisionError" in caplog.text


# --- the local runner: real worker processes ------------------------------------------------


@pytest.fixture
def runner(tmp_path):
    def start(**settings) -> LocalRunner:
        config = Config(cache_dir=tmp_path / "cache", workers=1, **settings)
        started.append(LocalRunner(config))
        started[-1].start()
        return started[-1]

    started: list[LocalRunner] = []
    yield start
    for opened in started:
        opened.close()


def _submit(runner, method="Gradient", raw=None, rows=3, ref=IRIS, session=SESSION, outputs=1):
    config, chosen = runner.config, [f"0:{k}" for k in range(outputs)]
    with Store.from_config(config) as store:
        request = compute.build(store, config, _settings(ref, method, raw, chosen, rows), session)
        return compute.submit(runner, store, config, request, session)


def _submit_slow(runner) -> str:
    """Minutes of work: 50 digits × 10 classes × 1000 path steps."""
    return _submit(runner, "IntegratedGradient", {"n": 1000}, rows=50, ref=DIGITS, outputs=10)


def _finished(runner, job_id, session=SESSION, timeout=60):
    return _until(
        lambda: (s := runner.board.status(job_id, session)).finished and s, timeout, "no end"
    )


def test_a_spawned_worker_computes_the_engines_result(runner):
    local = runner()
    job_id = _submit(local, "SmoothGrad", {"n": 5, "seed": 3})
    assert _finished(local, job_id).state == "done"
    with Store.from_config(local.config) as store:
        got = store.get_result(job_id).get_result("array")
    demo = demo_data.load_demo("iris")
    converter = attribution.Converter(demo.model, input_dim=demo.input_dim)
    want = attribution.SmoothGrad(converter, demo.inputs[0][:3], n=5, output_idx=[0], seed=3)
    np.testing.assert_allclose(got, want.get_result("array"), rtol=1e-5, atol=1e-6)


def test_jobs_wait_their_turn_and_two_waiters_get_one_run(runner):
    local = runner()
    slow = _submit_slow(local)
    quick = _submit(local, "Gradient")
    again = _submit(local, "Gradient", session="another-tab")
    assert again == quick
    _until(lambda: local.board.status(slow, SESSION).state == "running", 30, "never ran")
    assert local.board.status(quick, "another-tab").text() == "Queued: place 1 of 1 waiting…"
    local.stop_worker(local.board.cancel(slow, SESSION))
    assert _finished(local, quick).state == "done"
    assert _finished(local, quick, "another-tab").state == "done"


def test_a_killed_worker_fails_its_job_and_is_replaced(runner):
    local = runner()
    job_id = _submit_slow(local)
    running = _until(local.board.running, 30, "the job never started")
    os.kill(running[0][1]["worker"]["pid"], signal.SIGKILL)
    status = _finished(local, job_id, timeout=15)
    assert status.state == "failed" and "worker process running it ended" in status.message
    assert _finished(local, _submit(local, "Gradient")).state == "done"  # a new worker


def test_a_job_past_the_time_limit_is_stopped(runner):
    local = runner(job_time_limit=2.0)
    job_id = _submit_slow(local)
    running = _until(local.board.running, 30, "the job never started")
    status = _finished(local, job_id, timeout=15)
    assert status.state == "failed" and "time limit of 2 s" in status.message
    worker = running[0][1]["worker"]["pid"]
    _until(lambda: not _alive(worker), 10, "the overdue worker still runs")
    assert _finished(local, _submit(local, "Gradient")).state == "done"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_job_that_ended_before_the_page_looked_still_delivers(board):
    class Runner:  # what compute.follow needs of a runner
        pass

    runner = Runner()
    runner.board = board
    board.submit("job", {}, "tab")  # joined while it ran ...
    board.claim_next(WORKER)
    board.finish("job")  # ... and done before the page's first look
    result, _job, poll_disabled, *_, status, alert, alert_open = compute.follow(
        runner, {"id": "job", "request": {"method": "Gradient"}}, "tab"
    )
    assert result == {"key": "job", "request": {"method": "Gradient"}, "settings": None}
    assert poll_disabled is True and status == "Done."
    board.submit("failing", {}, "tab")
    board.claim_next(WORKER)
    board.fail("failing", "the data is gone.")
    result, *_, status, alert, alert_open = compute.follow(
        runner, {"id": "failing", "request": {}}, "tab"
    )
    assert status == alert == "Failed: the data is gone." and alert_open is True
