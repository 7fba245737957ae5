"""A classroom on one dashboard: many users at once, over HTTP, against a real server.

Run from the repository root::

    python benchmarks/bench_load.py                 # embedded job queue, 30 users
    python benchmarks/bench_load.py --celery 2      # Redis + Celery workers (2 processes)
    python benchmarks/bench_load.py --users 10 --markdown
    python benchmarks/bench_load.py --distinct      # each user a request of its own

The server is started as users start it: ``python -m dashboard --port P --cache-dir D``
(its own worker processes, one per core), or with ``--celery N`` a private
``redis-server --port P2 --save ''``, ``python -m dashboard ... --redis-url
redis://127.0.0.1:P2/0`` and one Celery worker with ``--concurrency N`` (N prefork pool
processes, each on ``cores // N`` torch threads), as the README runs them. Before the
class, one warm-up job (iris, Gradient; not counted) makes sure workers are up.

Each simulated user is a thread with its own :class:`~support.dash_client.DashTab`: it
loads the page, picks the digits demo, LRP with the default rules, presses Compute and
waits for the result (polling as the page does), downloads the NPZ; then the
iris demo with SmoothGrad (default n and seed), the same way. All users start at once.
Every user then asks for the same two public requests, which run once each and are shared
(as in a class following the teacher); with ``--distinct`` each user asks for its own
number of rows (LRP) and its own seed (SmoothGrad), so that 60 jobs queue and run.
A result is correct when it equals the engine's, computed once in this process (both
requests are public: every user asks the same one, so they must also agree). A user whose
job fails or shows an alert is "failed"; one without a result within ``--timeout`` is
"hung". Meanwhile another process loads the page (``/``, ``/_dash-layout``,
``/_dash-dependencies``) every 0.5 s (a process of its own, as a visitor's browser is:
its times are the server's, not those of this process's busy threads), and a thread
samples the memory (RSS) of the server and all its child processes (with Redis and the
Celery worker in Celery mode). ``--server gunicorn`` serves the page with gunicorn (two
processes) instead of ``python -m dashboard``.

Times: click → result is from the Compute request to the poll answer that set the result;
click → grid adds the chained callbacks the page then runs (view options, the grid figure).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from harness import format_table  # puts the root and tests/ on the path
from support.dash_client import (
    SERVER_KINDS,
    ComputeFailed,
    DashTab,
    ServerProcess,
    free_port,
    start_dashboard,
    start_process,
)

import attribution
import demo_data
from attribution.converter.loading import load_model

ROWS = 50  # the page's default rows (min(50, rows of the data))
CASES = {
    # label: (demo, method, parameters set on the page)
    "digits, LRP": ("digits", "LRP", {}),
    "iris, SmoothGrad": ("iris", "SmoothGrad", {}),
}
KEY = "Output_1__Input_1"  # the NPZ download's array of a one-input, one-output model


def user_request(user: int | None) -> tuple[int, int]:
    """The rows and the SmoothGrad seed a user asks for: the page's defaults (50 rows,
    seed 0) for everyone, or with ``--distinct`` (``user`` given) requests of its own
    (fewer rows for LRP, another seed), so that every user's jobs really run."""
    return (ROWS, 0) if user is None else (ROWS - user % 25, user + 1)


@functools.lru_cache
def engine_result(demo_name: str, method: str, user: int | None = None) -> np.ndarray:
    """The engine's attribution for a user's request (:func:`user_request`): the first
    rows, the first ≤ 10 outputs, innsight's default parameters (LRP: rule "simple";
    SmoothGrad: n 50)."""
    rows, seed = user_request(user)
    demo = demo_data.load_demo(demo_name)
    model = load_model(demo.model, input_dim=demo.input_dim, input_names=demo.input_names,
                       output_names=demo.output_names)  # fmt: skip
    outputs = [list(range(min(10, len(model.output_names[0]))))]
    if method == "LRP":
        x = demo.inputs[0][:rows]
        found = attribution.LRP(model.converter, x, rule_name="simple", output_idx=outputs)
    else:
        x = demo.inputs[0][:ROWS]
        found = attribution.SmoothGrad(model.converter, x, n=50, seed=seed, output_idx=outputs)
    return found.get_result("array")


# --- the servers --------------------------------------------------------------------------


@dataclass
class Servers:
    """The dashboard and, in Celery mode, Redis and the Celery worker."""

    dashboard: ServerProcess
    others: list[ServerProcess] = field(default_factory=list)

    def rss(self) -> int:
        return sum(p.rss() for p in [self.dashboard, *self.others])

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU seconds (user + system) used so far by the web server's processes and by
        the job workers (spawned by the server, or the Celery worker and Redis)."""
        import psutil

        web = jobs = 0.0
        roots = [(self.dashboard, False)] + [(other, True) for other in self.others]
        for server, all_jobs in roots:
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(server.process.pid)
                for process in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        spent = sum(process.cpu_times()[:2])
                        if all_jobs or "multiprocessing" in " ".join(process.cmdline()):
                            jobs += spent
                        else:
                            web += spent
        return web, jobs

    def stop(self) -> None:
        for process in [self.dashboard, *reversed(self.others)]:
            process.stop()


def start_servers(work: Path, celery: int, kind: str = "embedded") -> Servers:
    if not celery:
        return Servers(start_dashboard(kind, work / "cache"))
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    redis = start_process(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        work / "redis.log",
    )
    others = [redis]
    try:
        _wait_for_port(port, redis)
        threads = str(max(1, (os.cpu_count() or 1) // celery))
        worker = start_process(
            [str(Path(sys.executable).parent / "celery"), "-A", "dashboard.celery_worker",
             "worker", "--concurrency", str(celery), "--pool", "prefork", "-l", "warning",
             "-n", f"bench-{port}@%h"],
            work / "celery.log",
            env={"INNSIGHT_REDIS_URL": redis_url, "INNSIGHT_TORCH_THREADS": threads},
        )  # fmt: skip
        others.append(worker)
        dashboard = start_dashboard(kind, work / "cache", "--redis-url", redis_url)
    except BaseException:
        for process in reversed(others):
            process.stop()
        raise
    return Servers(dashboard, others)


def _wait_for_port(port: int, process: ServerProcess, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if process.process.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{process.process.args[0]} did not start:\n{process.log_tail()}")


# --- the users ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """One user's try of one case."""

    state: str  # "ok", "failed" or "hung"
    to_result: float = float("nan")
    to_grid: float = float("nan")
    arrays: np.ndarray | None = None
    detail: str = ""


@dataclass
class UserLog:
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    bad_statuses: list[tuple[str, int]] = field(default_factory=list)
    page_load: float = float("nan")


def run_case(
    tab: DashTab, demo: str, method: str, params: dict, timeout: float, index: int | None
) -> Outcome:
    tab.choose_demo(demo)
    tab.choose_method(method)
    for name, value in params.items():
        tab.set_parameter(name, value)
    if index is not None:  # --distinct: this user's own request
        rows, seed = user_request(index)
        if method == "LRP":
            tab.set("rows-input", "value", rows)
        else:
            tab.set_parameter("seed", seed)
    start = time.perf_counter()
    try:
        tab.compute(timeout=timeout)
    except ComputeFailed as error:
        hung = str(error).startswith("no result within")
        return Outcome("hung" if hung else "failed", detail=str(error))
    grid = time.perf_counter()
    arrays = tab.download_npz()[KEY]
    return Outcome("ok", tab.result_at - start, grid - start, arrays)


def user(
    url: str, start: threading.Barrier, timeout: float, log: UserLog, index: int | None
) -> None:
    tab = DashTab(url, timeout=timeout)
    try:
        start.wait()
        log.page_load = tab.open()
        for label, (demo, method, params) in CASES.items():
            try:
                log.outcomes[label] = run_case(tab, demo, method, params, timeout, index)
            except Exception as error:  # an HTTP error or timeout: the case is lost
                log.outcomes[label] = Outcome("failed", detail=f"{type(error).__name__}: {error}")
    except Exception:
        traceback.print_exc()
    finally:
        log.bad_statuses = [(c.callback, c.status) for c in tab.calls
                            if c.status == 204 or c.status >= 400]  # fmt: skip


def measure_page_loads(url: str, stop, ready, loads) -> None:
    """Load the page every 0.1 s until ``stop``, putting the seconds each took into the
    ``loads`` queue; ``ready`` once the first (not counted) load is done. Run in a process
    of its own, as a visitor's browser is: the 30 users' threads of this process would
    make it wait for the interpreter lock, and the time would be the load generator's."""
    DashTab(url).open(initial_callbacks=False)
    ready.set()
    while not stop.is_set():
        try:
            loads.put(DashTab(url).open(initial_callbacks=False))
        except Exception as error:  # a failed page load counts as one
            print(f"page load failed: {error}", file=sys.stderr)
            loads.put(float("inf"))
        stop.wait(0.1)


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _drained(queue) -> list[float]:
    found = []
    while not queue.empty():
        found.append(queue.get())
    return found


def sample_memory(servers: Servers, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], servers.rss())
        stop.wait(0.25)


def warm_up(url: str, timeout: float) -> None:
    tab = DashTab(url, timeout=timeout)
    tab.open()
    tab.choose_demo("iris")
    tab.choose_method("Gradient")
    tab.compute(timeout=timeout)


# --- the report ---------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    finite = sorted(v for v in values if np.isfinite(v))
    if not finite:
        return float("nan")
    return float(np.quantile(finite, q))


def report(
    args: argparse.Namespace,
    logs: list[UserLog],
    expected: dict[str, np.ndarray],
    loads: list[float],
    peak: int,
    wall: float,
    cpu: tuple[float, float, float],
) -> str:
    rows = []
    for label in CASES:
        outcomes = [log.outcomes.get(label, Outcome("hung", detail="never ran")) for log in logs]
        ok = [o for o in outcomes if o.state == "ok"]
        first = ok[0].arrays if ok else None
        correct = sum(
            o.state == "ok"
            and o.arrays.shape == expected[label, k].shape
            and np.allclose(o.arrays, expected[label, k], rtol=1e-5, atol=1e-6)
            and (args.distinct or np.array_equal(o.arrays, first))
            for k, o in enumerate(outcomes)
        )
        failed = sum(o.state == "failed" for o in outcomes)
        hung = sum(o.state == "hung" for o in outcomes)
        to_result = [o.to_result for o in ok]
        to_grid = [o.to_grid for o in ok]
        rows.append((
            label, f"{correct}/{len(logs)}", str(failed), str(hung),
            f"{quantile(to_result, 0.5):.2f}", f"{quantile(to_result, 0.95):.2f}",
            f"{quantile(to_grid, 0.5):.2f}", f"{quantile(to_grid, 0.95):.2f}",
        ))  # fmt: skip
        for o in outcomes:
            if o.state != "ok":
                print(f"  {label}: {o.state}: {o.detail[:300]}", file=sys.stderr)
    header = ("case", "correct", "failed", "hung/lost", "result p50 s", "result p95 s",
              "grid p50 s", "grid p95 s")  # fmt: skip
    table = format_table(header, rows, args.markdown, numeric=range(1, len(header)))
    bad = sum(len(log.bad_statuses) for log in logs)
    mode = f"Celery, {args.celery} worker process(es)" if args.celery else "embedded queue"
    mode += f", {'gunicorn (2 processes)' if args.server == 'gunicorn' else 'python -m dashboard'}"
    mode += ", distinct requests" if args.distinct else ", the same request for all"
    mode += f", users at nice {args.client_niceness}" if args.client_niceness else ""
    user_loads = [1e3 * log.page_load for log in logs]
    lines = [
        f"{args.users} users, {mode}, {os.cpu_count()} cores, {wall:.0f} s in all",
        table,
        f"page load during the load (/, layout, dependencies; {len(loads)} loads): "
        f"p50 {quantile([1e3 * x for x in loads], 0.5):.0f} ms, "
        f"p95 {quantile([1e3 * x for x in loads], 0.95):.0f} ms, "
        f"failed {sum(not np.isfinite(x) for x in loads)}; the users' own page loads at the "
        f"start: p50 {quantile(user_loads, 0.5):.0f} ms, p95 {quantile(user_loads, 0.95):.0f} ms",
        f"peak memory (RSS, server and children{', Redis, Celery' if args.celery else ''}): "
        f"{peak / 2**20:.0f} MiB",
        f"callback answers 204 or HTTP errors: {bad}",
        f"CPU seconds during the class: web server {cpu[0]:.1f}, job workers {cpu[1]:.1f}, "
        f"simulated users {cpu[2]:.1f}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=30, help="simulated users (%(default)s)")
    parser.add_argument(
        "--celery", type=int, default=0, metavar="N",
        help="run jobs on N Celery worker processes with Redis (0: the embedded queue)",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds a user waits for a result"
    )
    parser.add_argument(
        "--distinct", action="store_true",
        help="every user asks for its own rows (LRP) and seed (SmoothGrad): all jobs run",
    )  # fmt: skip
    parser.add_argument(
        "--server", choices=SERVER_KINDS, default="embedded",
        help="python -m dashboard (embedded) or gunicorn with 2 worker processes",
    )  # fmt: skip
    parser.add_argument(
        "--client-niceness", type=int, default=0, metavar="N",
        help="run the simulated users at this nice value (a classroom's browsers run on "
        "other machines; 10: they take no more CPU from the server than its jobs do)",
    )  # fmt: skip
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = parser.parse_args(argv)
    if args.celery and shutil.which("redis-server") is None:
        raise SystemExit("--celery needs redis-server on the PATH.")

    expected = {
        (label, k): engine_result(demo, method, k if args.distinct else None)
        for label, (demo, method, _) in CASES.items()
        for k in range(args.users)
    }
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    servers = start_servers(work, args.celery, args.server)
    troubled = True
    try:
        url = servers.dashboard.url
        warm_up(url, args.timeout)
        stop, peak = threading.Event(), [servers.rss()]
        spawn = multiprocessing.get_context("spawn")
        probe_stop, probe_ready, probe_loads = spawn.Event(), spawn.Event(), spawn.Queue()
        prober = spawn.Process(
            target=measure_page_loads, args=(url, probe_stop, probe_ready, probe_loads)
        )
        prober.start()
        if not probe_ready.wait(120):
            raise RuntimeError("the page-load prober did not start")
        os.nice(args.client_niceness)  # the users' threads; servers and prober keep theirs
        watchers = [threading.Thread(target=sample_memory, args=(servers, stop, peak), daemon=True)]
        for watcher in watchers:
            watcher.start()
        logs = [UserLog() for _ in range(args.users)]
        barrier = threading.Barrier(args.users)
        users = [
            threading.Thread(
                target=user,
                args=(url, barrier, args.timeout, log, k if args.distinct else None),
                daemon=True,
            )
            for k, log in enumerate(logs)
        ]
        cpu_before = (*servers.cpu_seconds(), _own_cpu_seconds())
        start = time.perf_counter()
        for thread in users:
            thread.start()
        for thread in users:
            thread.join(timeout=max(1.0, 3 * args.timeout - (time.perf_counter() - start)))
        wall = time.perf_counter() - start
        cpu_after = (*servers.cpu_seconds(), _own_cpu_seconds())
        cpu = tuple(b - a for a, b in zip(cpu_before, cpu_after, strict=True))
        stop.set()
        probe_stop.set()
        for watcher in watchers:
            watcher.join(timeout=10)
        loads = _drained(probe_loads)
        prober.join(timeout=10)
        print(report(args, logs, expected, loads, peak[0], wall, cpu))
        troubled = any(
            log.bad_statuses or any(o.state != "ok" for o in log.outcomes.values()) for log in logs
        )
    finally:
        servers.stop()
    if troubled:  # keep the servers' logs
        print(f"server logs (with tracebacks) kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
