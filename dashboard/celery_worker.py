"""The Celery app of the workers: ``INNSIGHT_REDIS_URL=redis://host:6379/0 celery -A
dashboard.celery_worker worker --concurrency 2`` (see the README)."""

from __future__ import annotations

import os

from dashboard.jobqueue.celery_runner import make_celery

if "INNSIGHT_REDIS_URL" not in os.environ:
    raise SystemExit(
        "Set INNSIGHT_REDIS_URL to the Redis the dashboard runs with (--redis-url), e.g. "
        "INNSIGHT_REDIS_URL=redis://localhost:6379/0 celery -A dashboard.celery_worker worker"
    )
app = make_celery(os.environ["INNSIGHT_REDIS_URL"])
