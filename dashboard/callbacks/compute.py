"""Compute, follow and cancel a page's job: the request is built and checked here, the
job queued on the board, and the page shows its state until it ends."""

from __future__ import annotations

from typing import Any

from dash import no_update

from dashboard import jobs
from dashboard.callbacks import loading
from dashboard.config import Config
from dashboard.jobqueue.board import JobStatus
from dashboard.jobqueue.execute import job_record
from dashboard.store import Store

_VISIBLE, _HIDDEN = {"visibility": "visible"}, {"visibility": "hidden"}


def settings(
    model_ref: dict | None,
    data_ref: dict | None,
    method: str | None,
    values: list,
    value_ids: list[dict],
    rule_names: list,
    rule_name_ids: list[dict],
    rule_params: list,
    rule_param_ids: list[dict],
    outputs: list[str] | None,
    rows: Any,
    reference_ref: dict | None,
) -> dict[str, Any]:
    """The page's values a result is computed from: model, data, method, the parameters
    as typed (``raw``), the outputs and the rows."""
    raw = {i["name"]: v for i, v in zip(value_ids, values, strict=True)}
    raw["reference_sha"] = loading.reference_sha(reference_ref)
    if rule_name_ids:
        raw["rule_name"] = {i["layer"]: v for i, v in zip(rule_name_ids, rule_names, strict=True)}
        raw["rule_param"] = {
            i["layer"]: v for i, v in zip(rule_param_ids, rule_params, strict=True)
        }
    return {
        "model": model_ref, "data": data_ref, "method": method, "raw": raw,
        "outputs": sorted(outputs or []), "rows": rows,
    }  # fmt: skip


def build(store: Store, config: Config, chosen: dict[str, Any], session: str) -> dict:
    """The canonical request of the page's :func:`settings`, within the server's work
    limits."""
    return jobs.build_request(
        store, chosen["model"], chosen["data"], chosen["method"], chosen["raw"],
        chosen["outputs"], chosen["rows"], session, config.work_limits,
    )  # fmt: skip


def clamped(request: dict, chosen: dict[str, Any]) -> list[str]:
    """What the status line says of values the request caps at the data's rows."""
    return jobs.clamped_notes(request, chosen["rows"], chosen["raw"])


def done_text(notes: list[str] | None) -> str:
    """The status line of a finished computation, with what was capped."""
    return " ".join(["Done.", *(notes or [])])


def cached(store: Store, request: dict, session: str, chosen: dict[str, Any]) -> dict | None:
    """The page's result reference when the result is stored already, else None."""
    key = jobs.session_key(request, session)
    if store.get_result(key) is None:
        return None
    return {"key": key, "request": request, "settings": chosen}


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
    """The page's reference to the result of a finished job, with the settings it was
    computed for."""
    return {"key": job["id"], "request": job["request"], "settings": job.get("settings")}


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
    status_text: str = "",
) -> tuple:
    """The job store, poll, buttons, progress bar and status line for ``job``'s state
    (``status``, read from the board when not given; done: with what was capped); no
    job: idle, with ``status_text``."""
    if job is not None:
        status = status or runner.board.status(job["id"], session)
        if not status.finished:
            running = status.state == "running" and status.total > 0
            value, maximum = (status.done, status.total) if running else (0, 1)
            return (job, False, True, False, _VISIBLE, value, maximum, status.text())
        done = status.state == "done"
        status_text = done_text(job.get("notes")) if done else status.text()
    return (None, True, False, True, _HIDDEN, 0, 1, status_text)
