"""Jobs on Celery workers, with Redis as broker, result backend, board and store.

The server queues a job on the board (in Redis) and sends the task ``innsight.run_job``
with the job's id; any worker on any machine that reaches the same Redis claims it,
computes it, and writes the result into the Redis store, where every server process
reads it. Start workers with ``celery -A dashboard.celery_worker worker`` (see the README).
"""

from __future__ import annotations

import os
import socket
import uuid

from dashboard.backends import RedisBackend
from dashboard.config import Config
from dashboard.jobqueue.board import JobBoard

TASK = "innsight.run_job"
_GRACE = 10  # seconds between the soft and the hard time limit


def make_celery(redis_url: str):
    """The Celery app on ``redis_url`` with the job task registered."""
    try:
        from celery import Celery
        from celery.signals import worker_process_init
    except ImportError:  # pragma: no cover - the celery extra brings it
        raise ImportError(
            "--redis-url needs Celery: pip install 'innsight-python[celery]'."
        ) from None
    app = Celery("innsight", broker=redis_url, backend=redis_url)
    app.conf.update(
        task_acks_late=False,  # a job whose worker died is reported failed, not rerun
        worker_prefetch_multiplier=1,  # a busy worker leaves queued jobs to idle ones
        task_ignore_result=True,  # results go to the store, states to the board
        broker_connection_retry_on_startup=True,
    )

    @worker_process_init.connect
    def _one_thread(**_):  # each pool process computes one job on its share of the cores
        import torch

        from dashboard.jobqueue.local import JOB_NICENESS

        os.nice(JOB_NICENESS)  # a dashboard server on the same machine stays quick
        torch.set_num_threads(int(os.environ.get("INNSIGHT_TORCH_THREADS", "1")))

    @app.task(name=TASK, bind=True)
    def run_job(task, job_id: str, time_limit: float) -> None:
        from celery.exceptions import SoftTimeLimitExceeded

        from dashboard.images import UploadLimits
        from dashboard.jobqueue.execute import execute
        from dashboard.store import Store

        backend = RedisBackend(redis_url)
        board = JobBoard(backend, time_limit)
        worker = {"host": socket.gethostname(), "pid": os.getpid(), "task": task.request.id}
        record = board.claim(job_id, worker)
        if record is not None:  # else cancelled before it started
            store = Store(backend, upload_limits=UploadLimits(**record["upload_limits"]))
            execute(store, board, job_id, record, (SoftTimeLimitExceeded,))

    return app


class CeleryRunner:
    """Sends jobs to Celery workers and stops them on cancel.

    Parameters
    ----------
    config : Config
        With ``redis_url``; ``job_time_limit`` becomes each task's time limit.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.celery = make_celery(config.redis_url)
        self.board = JobBoard(RedisBackend(config.redis_url), config.job_time_limit)

    def start(self) -> None:
        """Nothing to start here: workers run elsewhere."""

    def submitted(self, job_id: str, record: dict) -> None:
        """Send the task for a new job, within the time limit."""
        limit = self.config.job_time_limit
        self.celery.send_task(
            TASK, args=[job_id, limit], task_id=str(uuid.uuid4()),
            soft_time_limit=limit, time_limit=limit + _GRACE,
        )  # fmt: skip

    def stop_worker(self, worker: dict | None) -> None:
        """Terminate the task of a cancelled running job (its pool process is replaced)."""
        if worker and worker.get("task"):
            self.celery.control.revoke(worker["task"], terminate=True, signal="SIGKILL")

    def close(self) -> None:
        """Nothing to stop here."""
