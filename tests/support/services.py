"""Real services for the tests: a Redis server and Celery workers, as operators start them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """``redis-server`` on a free port, its files in ``folder``; the process and its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: apt-get install -y redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(folder), "--maxmemory", "512mb", "--maxmemory-policy",
         "allkeys-lru"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            return process, url
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not answer within 5 s")


def start_celery_worker(url: str, concurrency: int = 1, log: Path | None = None):
    """``celery -A dashboard.celery_worker worker`` on ``url``, in a session of its own (so
    that :func:`kill_group` ends its pool too); returns once it is ready for tasks."""
    env = {**os.environ, "INNSIGHT_REDIS_URL": url, "OMP_WAIT_POLICY": "PASSIVE"}
    command = [
        sys.executable, "-m", "celery", "-A", "dashboard.celery_worker", "worker",
        "--concurrency", str(concurrency), "--pool", "prefork", "-l", "info",
        "--without-gossip", "--without-mingle", "--hostname", f"innsight-{free_port()}@%h",
    ]  # fmt: skip
    output = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - the worker's log
    process = subprocess.Popen(
        command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )
    _wait_ready(process, log)
    return process


def _wait_ready(process: subprocess.Popen, log: Path | None, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"the Celery worker exited with {process.returncode}")
        if log is None or "ready." in log.read_text():
            return
        time.sleep(0.2)
    raise RuntimeError(f"the Celery worker was not ready within {timeout} s")


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process started in its own session and everything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
