"""The job queue: a board of job states (:mod:`.board`) and a runner that executes them,
in worker processes of this server (:mod:`.local`) or on Celery workers (:mod:`.celery_runner`).
"""

from __future__ import annotations

from dashboard.config import Config
from dashboard.jobqueue.board import JobBoard, JobStatus
from dashboard.jobqueue.local import LocalRunner

__all__ = ["JobBoard", "JobStatus", "make_runner"]


def make_runner(config: Config):
    """The Celery runner when ``config.redis_url`` is set, else the local one."""
    if config.redis_url:
        from dashboard.jobqueue.celery_runner import CeleryRunner

        return CeleryRunner(config)
    return LocalRunner(config)
