"""Running one claimed job, the same in a local worker process and in a Celery task."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any

from dashboard import jobs
from dashboard.config import Config, WorkLimits
from dashboard.errors import USER_ERRORS
from dashboard.jobqueue.board import HEARTBEAT, JobBoard
from dashboard.store import Store

INTERNAL_ERROR = "an internal error stopped it; the server's log has the details. Please report it."
_PROGRESS_EVERY = 0.2  # seconds between progress writes

logger = logging.getLogger(__name__)


def job_record(request: dict, owner: str, config: Config) -> dict[str, Any]:
    """What a worker needs besides the board's bookkeeping: the request, its owner, the
    work limits it is checked against again and the limits its uploads are read with."""
    return {
        "request": request,
        "owner": owner,
        "limits": dataclasses.asdict(config.work_limits),
        "upload_limits": dataclasses.asdict(config.upload_limits),
    }


def execute(
    store: Store,
    board: JobBoard,
    job_id: str,
    record: dict,
    time_limit_errors: tuple[type[BaseException], ...] = (),
) -> None:
    """Compute a claimed job: heartbeats while it runs, its progress, its result into the
    store, and its end on the board (done, or failed with the reason; a
    ``time_limit_errors`` exception means the job ran past its time limit)."""
    stop = threading.Event()
    threading.Thread(target=_beat, args=(board, job_id, stop), daemon=True).start()
    last = [0.0]

    def progress(step: tuple[int, int]) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY or step[0] == step[1]:
            last[0] = now
            board.progress(job_id, *step)

    try:
        jobs.run_attribution(
            store, record["request"], record["owner"], progress, WorkLimits(**record["limits"])
        )
    except time_limit_errors:
        board.fail(job_id, board.overdue_message())
    except USER_ERRORS as error:
        board.fail(job_id, str(error.args[0]) if error.args else repr(error))
    except Exception:
        logger.exception("Job %s failed", job_id)
        board.fail(job_id, INTERNAL_ERROR)
    else:
        board.finish(job_id)
    finally:
        stop.set()


def _beat(board: JobBoard, job_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT):
        board.beat(job_id)
