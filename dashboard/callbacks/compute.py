"""Compute, follow and cancel a page's job: the request is built and checked here, the
job queued on the board, and the page shows its state until it ends."""

from __future__ import annotations

from typing import Any

from dash import no_update

from dashboard import jobs
from dashboard.config import Config
from dashboard.jobqueue.board import JobStatus
from dashboard.jobqueue.execute import job_record
from dashboard.store import Store

_VISIBLE, _HIDDEN = {"visibility": "visible"}, {"visibility": "hidden"}


def build(
    store: Store,
    config: Config,
    model_ref: dict | None,
    data_ref: dict | None,
    method: str | None,
    raw: dict[str, Any],
    outputs: list[str],
    rows: Any,
    session: str,
) -> dict:
    """The canonical request of the page's values, within the server's work limits."""
    return jobs.build_request(
        store, model_ref, data_ref, method, raw, outputs, rows, session, config.work_limits
    )


def cached(store: Store, request: dict, session: str) -> dict | None:
    """The page's result reference when the result is stored already, else None."""
    key = jobs.session_key(request, session)
    return {"key": key, "request": request} if store.get_result(key) is not None else None


def submit(runner, store: Store, config: Config, request: dict, session: str) -> str:
    """Queue the request for ``session`` (or wait for the same job queued or running
    already); the job's id."""
    owner = jobs.request_owner(request, session)
    job_id = jobs.request_key(request, owner)
    record = job_record(request, owner, config)
    stored = lambda: store.get_result(job_id) is not None  # noqa: E731
    if runner.board.submit(job_id, record, session, stored):
        runner.submitted(job_id, record)
    return job_id


def leave(runner, job: dict | None, session: str) -> None:
    """The page stops waiting for its job; a job nobody waits for is cancelled."""
    if job:
        runner.stop_worker(runner.board.cancel(job["id"], session))


def result_ref(job: dict) -> dict:
    """The page's reference to the result of a finished job."""
    return {"key": job["id"], "request": job["request"]}


def follow(runner, job: dict, session: str) -> tuple:
    """The result reference (once the job is done), the :func:`job_view` and the alert
    (open with the reason when the job failed) for the job ``session`` waits for; the
    same whether the job has just been submitted (it may have ended already: a shared
    job) or is polled."""
    status = runner.board.status(job["id"], session)
    result = result_ref(job) if status.state == "done" else no_update
    failed = status.state in ("failed", "unknown")
    alert = (status.text(), True) if failed else (no_update, no_update)
    return (result, *job_view(job, runner, session, status), *alert)


def job_view(
    job: dict | None,
    runner=None,
    session: str | None = None,
    status: JobStatus | None = None,
    status_text: str | None = None,
) -> tuple:
    """The job store, poll, buttons, progress bar and status line for ``job``'s state
    (``status``, read from the board when not given); no job: idle, with
    ``status_text`` (default "Done.")."""
    if job is not None:
        status = status or runner.board.status(job["id"], session)
        if not status.finished:
            running = status.state == "running" and status.total > 0
            value, maximum = (status.done, status.total) if running else (0, 1)
            return (job, False, True, False, _VISIBLE, value, maximum, status.text())
        status_text = status.text()
    return (None, True, False, True, _HIDDEN, 0, 1, status_text or "Done.")
