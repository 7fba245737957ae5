"""The job board: every job's state and the queue, shared by the server and the workers.

A job is named by its result key, so identical requests (same inputs, method, parameters
and owner) are one job, whichever tab or server process asked: each asking page is a
*waiter* of it and sees the same progress and the same result. The board lives on a
:mod:`~dashboard.backends` backend (the cache folder, or Redis for Celery workers); every
change is one locked read-modify-write, so processes on other machines agree.

States: ``queued`` (with a place in the queue) → ``running`` (step k of n, heartbeats)
→ ``done`` | ``failed`` (with the reason) | ``cancelled`` (no page waits for it any more).
A running job whose heartbeats stop (its worker was killed, ran out of memory or its
machine went away) is reported failed, as is one past its time limit: no page waits
forever.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dashboard.backends import Backend

STALE_AFTER = 10.0
"""Seconds without a heartbeat after which a running job counts as lost."""
HEARTBEAT = 1.0
"""Seconds between a running job's heartbeats."""
ACTIVE = ("queued", "running")

_LOST = (
    "the worker running it stopped (it was killed or ran out of memory). Press Compute to "
    "try again."
)
_QUEUE = "jobs/queue"
_RUNNING = "jobs/running"
_JOB = "jobs/job/"
_LOCK = "jobs"


@dataclass(frozen=True)
class JobStatus:
    """What a page shows of a job.

    Attributes
    ----------
    state : {"queued", "running", "done", "failed", "cancelled", "unknown"}
    position, queued : int
        The job's place in the queue (1 = next) and the queue's length, while queued.
    done, total : int
        Steps done and all steps, while running.
    elapsed : float
        Seconds since the job started (0 before).
    message : str or None
        Why it failed or was stopped.
    """

    state: str
    position: int = 0
    queued: int = 0
    done: int = 0
    total: int = 0
    elapsed: float = 0.0
    message: str | None = None

    @property
    def finished(self) -> bool:
        return self.state not in ACTIVE

    def text(self) -> str:
        """The status line, e.g. "Queued: 3rd of 5 waiting…" or "Running: step 2 of 8…"."""
        if self.state == "queued":
            return f"Queued: place {self.position} of {self.queued} waiting…"
        if self.state == "running":
            steps = f"step {self.done} of {self.total}, " if self.total else ""
            left = ""
            if self.done and self.total > self.done:
                left = f", about {self.elapsed * (self.total - self.done) / self.done:.0f} s left"
            return f"Running: {steps}{self.elapsed:.0f} s{left}…"
        if self.state == "done":
            return "Done."
        if self.state == "cancelled":
            return "Cancelled."
        return f"Failed: {self.message}"


class JobBoard:
    """Job records and the queue on a backend.

    Parameters
    ----------
    backend : Backend
    time_limit : float, default=300
        Seconds a job may run; past it :meth:`status` reports it failed (the runner stops
        the worker).
    """

    def __init__(self, backend: Backend, time_limit: float = 300.0) -> None:
        self.backend = backend
        self.time_limit = time_limit

    # --- the server's side ------------------------------------------------------------------

    def submit(
        self,
        job_id: str,
        job: dict[str, Any],
        waiter: str,
        result_stored: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Queue ``job`` under ``job_id`` for ``waiter``, or add the waiter to the same job
        queued or running already, or done with its result still stored
        (``result_stored()``: the job may have ended since the page looked for its result;
        its other waiters must still see it done). True when the job is new (its runner
        must start it)."""
        with self.backend.locked(_LOCK):
            record = self._record(job_id)
            joinable = record is not None and (
                record["state"] in ACTIVE or (record["state"] == "done" and result_stored())
            )
            if joinable:
                if waiter not in record["waiters"]:
                    record["waiters"].append(waiter)
                    self._save(job_id, record)
                return False
            self._save(job_id, {
                **job, "state": "queued", "waiters": [waiter], "created": time.time(),
                "started": None, "heartbeat": None, "done": 0, "total": 0,
                "message": None, "worker": None,
            })  # fmt: skip
            self._put_list(_QUEUE, [*self._list(_QUEUE), job_id])
            return True

    def status(self, job_id: str, waiter: str) -> JobStatus:
        """The job as ``waiter`` sees it: a job it left (or never asked for) counts as
        cancelled for it; a running job without heartbeats becomes failed, one past its
        time limit shows as failed (its runner stops it)."""
        record = self._record(job_id)
        if record is None:
            return JobStatus("unknown", message=(
                "this job is no longer known to the server (it was reset or its records "
                "were evicted); press Compute again."
            ))  # fmt: skip
        if waiter not in record["waiters"]:  # it left, or never asked: nothing to see
            return JobStatus("cancelled")
        if record["state"] == "running":
            if self.overdue(record):  # shown failed now; its runner stops it and records it
                return JobStatus("failed", message=self.overdue_message())
            if self._lost(record):
                self.fail(job_id, _LOST)
                return self.status(job_id, waiter)
        if record["state"] == "queued":
            queue = self._list(_QUEUE)
            position = queue.index(job_id) + 1 if job_id in queue else 1
            return JobStatus("queued", position=position, queued=max(len(queue), position))
        elapsed = time.time() - record["started"] if record["started"] else 0.0
        return JobStatus(
            record["state"], done=record["done"], total=record["total"], elapsed=elapsed,
            message=record["message"],
        )  # fmt: skip

    def cancel(self, job_id: str, waiter: str) -> dict | None:
        """``waiter`` no longer waits; when nobody does, the job is cancelled. Returns the
        worker to stop (``{"host", "pid"}``) when a running job was cancelled, else None."""
        with self.backend.locked(_LOCK):
            record = self._record(job_id)
            if record is None or record["state"] not in ACTIVE:
                return None
            record["waiters"] = [w for w in record["waiters"] if w != waiter]
            if record["waiters"]:
                self._save(job_id, record)
                return None
            was_running = record["state"] == "running"
            self._end(job_id, record, "cancelled", None)
            return record["worker"] if was_running else None

    # --- the workers' side ------------------------------------------------------------------

    def claim_next(self, worker: dict) -> tuple[str, dict] | None:
        """Start the job first in the queue on ``worker``: its id and record, or None."""
        with self.backend.locked(_LOCK):
            for job_id in self._list(_QUEUE):
                claimed = self._start(job_id, worker)
                if claimed is not None:
                    return job_id, claimed
            self._put_list(_QUEUE, [])
            return None

    def claim(self, job_id: str, worker: dict) -> dict | None:
        """Start the job ``job_id`` on ``worker`` (a Celery task does); None when it is no
        longer queued (cancelled before it started)."""
        with self.backend.locked(_LOCK):
            return self._start(job_id, worker)

    def progress(self, job_id: str, done: int, total: int) -> None:
        """Record steps done and a heartbeat."""
        self._touch(job_id, done=int(done), total=int(total))

    def beat(self, job_id: str) -> None:
        """A heartbeat: the worker still runs the job."""
        self._touch(job_id)

    def finish(self, job_id: str) -> None:
        """The job's result is stored."""
        self._finish(job_id, "done", None)

    def fail(self, job_id: str, message: str) -> None:
        """The job ended without a result; ``message`` says why (shown on the page)."""
        self._finish(job_id, "failed", message)

    def running(self) -> list[tuple[str, dict]]:
        """The running jobs and their records."""
        found = ((job_id, self._record(job_id)) for job_id in self._list(_RUNNING))
        return [(job_id, record) for job_id, record in found if record is not None]

    def overdue(self, record: dict) -> bool:
        """Whether a running job is past its time limit."""
        return bool(record["started"]) and time.time() - record["started"] > self.time_limit

    # --- records ----------------------------------------------------------------------------

    def overdue_message(self) -> str:
        """Why a job past the time limit was stopped."""
        return (
            f"it ran longer than the time limit of {self.time_limit:g} s and was stopped. "
            "Explain fewer rows or outputs, or use fewer samples."
        )

    @staticmethod
    def _lost(record: dict) -> bool:
        return time.time() - (record["heartbeat"] or record["started"]) > STALE_AFTER

    def _start(self, job_id: str, worker: dict) -> dict | None:
        record = self._record(job_id)
        self._put_list(_QUEUE, [j for j in self._list(_QUEUE) if j != job_id])
        if record is None or record["state"] != "queued":
            return None
        now = time.time()
        record.update(state="running", started=now, heartbeat=now, worker=worker)
        self._save(job_id, record)
        self._put_list(_RUNNING, [*self._list(_RUNNING), job_id])
        return record

    def _finish(self, job_id: str, state: str, message: str | None) -> None:
        with self.backend.locked(_LOCK):
            record = self._record(job_id)
            if record is not None and record["state"] in ACTIVE:
                self._end(job_id, record, state, message)

    def _end(self, job_id: str, record: dict, state: str, message: str | None) -> None:
        record.update(state=state, message=message)
        self._save(job_id, record)
        for name in (_QUEUE, _RUNNING):
            self._put_list(name, [j for j in self._list(name) if j != job_id])

    def _touch(self, job_id: str, **changes: Any) -> None:
        with self.backend.locked(_LOCK):
            record = self._record(job_id)
            if record is not None and record["state"] == "running":
                record.update(changes, heartbeat=time.time())
                self._save(job_id, record)

    def _record(self, job_id: str) -> dict | None:
        data = self.backend.get(_JOB + job_id)
        return None if data is None else json.loads(data)

    def _save(self, job_id: str, record: dict) -> None:
        self.backend.set(_JOB + job_id, json.dumps(record).encode())

    def _list(self, name: str) -> list[str]:
        data = self.backend.get(name)
        return [] if data is None else json.loads(data)

    def _put_list(self, name: str, ids: list[str]) -> None:
        self.backend.set(name, json.dumps(ids).encode())
