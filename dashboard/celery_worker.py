"""The Celery app of the workers: ``INNSIGHT_REDIS_URL=redis://host:6379/0 celery -A
dashboard.celery_worker worker --concurrency 2`` (see docs/deployment.md). Without
``INNSIGHT_REDIS_URL`` it uses Redis on this machine, ``redis://localhost:6379/0``; nothing
connects until the worker starts."""

from __future__ import annotations

import os

from dashboard.jobqueue.celery_runner import make_celery

REDIS_URL = os.environ.get("INNSIGHT_REDIS_URL", "redis://localhost:6379/0")
"""The Redis the dashboard runs with (its ``--redis-url``)."""
app = make_celery(REDIS_URL)
