"""The embedded job runner: worker processes this server spawns, on the cache folder's board.

Workers are *spawned* (a fresh interpreter), never forked from the threaded server: a
forked child inherits locks held by other threads (SQLite, OpenMP) and can hang forever.
Each worker first takes one of ``config.workers`` slot locks in the cache folder, so that
however many server processes share the folder (gunicorn's workers), at most that many
jobs run at once on this machine; the rest wait in the board's queue. A monitor thread
respawns a worker that died (its job is reported failed) and stops one whose job ran past
the time limit.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import multiprocessing
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import IO

from dashboard.backends import DiskBackend
from dashboard.config import Config
from dashboard.jobqueue.board import JobBoard

JOB_NICENESS = 10
"""How much lower than the server's a job's CPU priority is (``nice``): page loads and
callbacks are answered first, jobs take the rest of the cores."""
_BOARD_SIZE = 256 * 1024**2
_IDLE_POLL = 0.1  # seconds between an idle worker's looks at the queue
_MONITOR_EVERY = 0.5


def jobs_folder(config: Config) -> Path:
    """The board's folder, inside the cache folder."""
    return config.cache_dir / "jobs"


def open_board(config: Config) -> JobBoard:
    """The board in the cache folder, as every process on it opens it."""
    return JobBoard(DiskBackend(jobs_folder(config), _BOARD_SIZE), config.job_time_limit)


class LocalRunner:
    """Starts, watches and stops this server's worker processes.

    Parameters
    ----------
    config : Config
        ``workers`` processes are spawned on the first job (or :meth:`start`).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.board = open_board(config)
        self._processes: list[multiprocessing.Process | None] = [None] * config.workers
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._monitor: threading.Thread | None = None

    def start(self) -> None:
        """Spawn the workers and the monitor, once."""
        with self._lock:
            if self._monitor is not None or self._closed.is_set():
                return
            for slot in range(len(self._processes)):
                self._spawn(slot)
            self._monitor = threading.Thread(target=self._watch, daemon=True)
            self._monitor.start()
            atexit.register(self.close)

    def submitted(self, job_id: str, record: dict) -> None:
        """A new job is queued: make sure workers run."""
        self.start()

    def stop_worker(self, worker: dict | None) -> None:
        """Kill the worker running a cancelled job (the monitor spawns a new one)."""
        if worker and worker.get("host") == socket.gethostname():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(worker["pid"]), signal.SIGKILL)

    def close(self) -> None:
        """Stop the monitor and every worker of this server."""
        self._closed.set()
        with self._lock:
            for process in self._processes:
                if process is not None and process.is_alive():
                    process.kill()
            for process in self._processes:
                if process is not None:
                    process.join(timeout=5)

    def _spawn(self, slot: int) -> None:
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=serve, args=(self.config, os.getpid()), name=f"innsight-worker-{slot}",
            daemon=True,
        )  # fmt: skip
        process.start()
        self._processes[slot] = process

    def _watch(self) -> None:
        while not self._closed.wait(_MONITOR_EVERY):
            with self._lock:
                if self._closed.is_set():
                    return
                for slot, process in enumerate(self._processes):
                    if process is not None and not process.is_alive():
                        process.join()
                        self._spawn(slot)
            self._reap()

    def _reap(self) -> None:
        """Fail the jobs whose worker on this machine died; stop those past the limit."""
        host = socket.gethostname()
        for job_id, record in self.board.running():
            worker = record.get("worker") or {}
            if worker.get("host") != host:
                continue
            if not _alive(int(worker["pid"])):
                self.board.fail(
                    job_id,
                    "the worker process running it ended (killed, or out of memory). Press "
                    "Compute to try again.",
                )
            elif self.board.overdue(record):
                self.board.fail(job_id, self.board.overdue_message())
                self.stop_worker(worker)


def serve(config: Config, parent: int) -> None:
    """A worker process: take a slot, then run queued jobs while the server lives."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.nice(JOB_NICENESS)  # pages stay quick while jobs use the cores
    slot = _take_slot(jobs_folder(config), config.workers, parent)
    if slot is None:
        return
    import torch  # after the slot: a waiting worker stays small

    from dashboard.jobqueue.execute import execute
    from dashboard.store import Store

    torch.set_num_threads(config.torch_threads)
    store, board = Store.from_config(config), open_board(config)
    worker = {"host": socket.gethostname(), "pid": os.getpid()}
    while os.getppid() == parent:
        claimed = board.claim_next(worker)
        if claimed is None:
            time.sleep(_IDLE_POLL)
        else:
            execute(store, board, *claimed)


def _take_slot(folder: Path, slots: int, parent: int) -> IO | None:
    """An open, exclusively locked slot file (held until the process ends), or None when
    the server ended before a slot was free."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    while os.getppid() == parent:
        for slot in range(slots):
            file = open(folder / f"slot-{slot}.lock", "a")  # noqa: SIM115 - held for life
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                file.close()
                continue
            return file
        time.sleep(1.0)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
