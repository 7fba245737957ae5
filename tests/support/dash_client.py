"""A browser tab without a browser: loads the dashboard over HTTP and calls its callbacks
as dash-renderer does, for tests and benchmarks of real servers.

The tab keeps every component's props, read from ``/_dash-layout`` and updated from the
callbacks' answers. A user action changes props; every callback with a changed prop among
its inputs is then called (``POST /_dash-update-component``), built generically from
``/_dash-dependencies``, and so on down the chain, as the page would. The job poll
(``dcc.Interval``) ticks every ``POLL_MS`` while it is enabled::

    tab = DashTab("http://127.0.0.1:8050")
    tab.open()
    tab.choose_demo("iris")
    tab.choose_method("SmoothGrad")
    tab.set_parameter("seed", 0)
    ref = tab.compute()
    arrays = tab.download_npz()

Every callback request is kept in :attr:`DashTab.calls` (callback, HTTP status, seconds).

:func:`start_dashboard` starts a real server as users do (``python -m dashboard`` or
gunicorn) in its own process group; :meth:`ServerProcess.stop` ends it with its workers.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import mimetypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests

from dashboard.layout import POLL_MS

POLL_SECONDS = POLL_MS / 1000
"""How often a page asks for its job's state (``dashboard.layout.POLL_MS``)."""
_CHAIN_LIMIT = 20  # rounds of chained callbacks after one action, at most


def prop_key(component_id: str | dict) -> str:
    """A component id as dash names it in callback answers: dict ids as sorted JSON."""
    if isinstance(component_id, dict):
        return json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    return component_id


@dataclass
class Call:
    """One callback request: the callback's first output, the HTTP status and seconds."""

    callback: str
    status: int
    seconds: float
    body: str = ""


@dataclass(frozen=True)
class _Dependency:
    id: str | dict  # a plain id or a pattern ({"type": "parameter", "name": ["ALL"]})
    property: str

    @classmethod
    def parse(cls, text: str) -> _Dependency:
        """``"id.prop"`` or ``'{"...":...}.prop'``, with any ``@hash`` suffix dropped."""
        component, _, prop = text.rpartition(".")
        parsed = json.loads(component) if component.startswith("{") else component
        return cls(parsed, prop.split("@")[0])

    @property
    def wildcard(self) -> bool:
        return isinstance(self.id, dict) and any(isinstance(v, list) for v in self.id.values())

    def matches(self, component_id: str | dict) -> bool:
        if not self.wildcard:
            return prop_key(self.id) == prop_key(component_id)
        return (
            isinstance(component_id, dict)
            and component_id.keys() == self.id.keys()
            and all(isinstance(v, list) or component_id[k] == v for k, v in self.id.items())
        )


@dataclass(frozen=True)
class _Callback:
    output: str  # the dependencies' output string, sent back as is
    outputs: tuple[_Dependency, ...]
    inputs: tuple[_Dependency, ...]
    state: tuple[_Dependency, ...]
    prevent_initial_call: bool

    @classmethod
    def parse(cls, spec: dict) -> _Callback:
        output = spec["output"]
        parts = output[2:-2].split("...") if output.startswith("..") else [output]
        return cls(
            output,
            tuple(map(_Dependency.parse, parts)),
            tuple(_Dependency.parse(f"{d['id']}.{d['property']}") for d in spec["inputs"]),
            tuple(_Dependency.parse(f"{d['id']}.{d['property']}") for d in spec["state"]),
            bool(spec.get("prevent_initial_call")),
        )

    @property
    def name(self) -> str:
        first = self.outputs[0]
        return f"{prop_key(first.id)}.{first.property}"


class CallbackError(RuntimeError):
    """A callback request answered with an HTTP error."""


class DashTab:
    """One browser tab on a dashboard at ``base_url``.

    Parameters
    ----------
    base_url : str
        ``http://host:port``.
    timeout : float, default=60
        Seconds one HTTP request may take.
    """

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        self.props: dict[str, dict[str, Any]] = {}  # prop_key(id) → props
        self.ids: dict[str, str | dict] = {}  # prop_key(id) → id, in layout order
        self.parents: dict[str, str | None] = {}
        self.callbacks: list[_Callback] = []
        self.calls: list[Call] = []
        self.result_at: float | None = None  # perf_counter() when RESULT_REF was last set

    # --- page load --------------------------------------------------------------------------

    def open(self, initial_callbacks: bool = True) -> float:
        """Load the page (``/``, ``/_dash-layout``, ``/_dash-dependencies``); the seconds
        that took. Then the callbacks a new page calls, unless ``initial_callbacks=False``."""
        start = time.perf_counter()
        self._get("/")
        layout = self._get("/_dash-layout").json()
        dependencies = self._get("/_dash-dependencies").json()
        seconds = time.perf_counter() - start
        self.props, self.ids, self.parents = {}, {}, {}
        self._add_components(layout, None)
        # the browser runs the clientside callbacks; a tab here asks the server only
        self.callbacks = [
            _Callback.parse(spec) for spec in dependencies if not spec.get("clientside_function")
        ]
        if initial_callbacks:
            changed, added = set(), set()
            for callback in self.callbacks:
                if not callback.prevent_initial_call:
                    more, new = self._apply(self.call(callback, set()) or {})
                    changed, added = changed | more, added | new
            self._run_chain(changed, added)
        return seconds

    @property
    def session_token(self) -> str:
        return self.get("session", "data")

    # --- user actions -----------------------------------------------------------------------

    def choose_demo(self, name: str) -> None:
        self.set("demo-select", "value", name)

    def upload_model(self, content: bytes, filename: str) -> None:
        self.upload("model-upload", content, filename)

    def upload_data(self, content: bytes, filename: str) -> None:
        self.upload("data-upload", content, filename)

    def upload(self, component: str, content: bytes, filename: str) -> None:
        """Drop a file on a ``dcc.Upload``: its ``contents`` as a data URL and ``filename``."""
        mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        url = f"data:{mime};base64,{base64.b64encode(content).decode()}"
        self.set_many({(component, "contents"): url, (component, "filename"): filename})

    def choose_method(self, method: str) -> None:
        self.set("method-select", "value", method)

    def set_parameter(self, name: str, value: Any) -> None:
        """Set a method parameter's control (shown after the method was chosen)."""
        key = prop_key({"type": "parameter", "name": name})
        if key not in self.props:
            raise KeyError(f"No control for parameter {name!r}; shown: {self.parameters()}.")
        self.set({"type": "parameter", "name": name}, "value", value)

    def parameters(self) -> dict[str, Any]:
        """The shown parameter controls' values, by parameter name."""
        return {
            cid["name"]: self.props[key].get("value")
            for key, cid in self.ids.items()
            if isinstance(cid, dict) and cid.get("type") == "parameter"
        }

    def click(self, button: str) -> None:
        self.set(button, "n_clicks", (self.get(button, "n_clicks") or 0) + 1)

    def compute(self, timeout: float = 120.0) -> dict:
        """Press Compute, then poll the job as the page does until the result is shown; the
        page's result reference (``{"key", "request"}``).

        Raises
        ------
        ComputeFailed
            The alert opened or the status line says the job failed or was cancelled, or
            no result came within ``timeout`` seconds.
        """
        deadline = time.perf_counter() + timeout
        self.result_at = None
        self.set("error-alert", "is_open", False, fire=False)
        self.click("compute-button")
        while self.result_at is None:
            self._check_failure()
            if self.get("job-poll", "disabled") is not False:
                break  # answered at once (from the cache), or nothing runs
            if time.perf_counter() > deadline:
                raise ComputeFailed(f"no result within {timeout:g} s: {self.status!r}")
            time.sleep(POLL_SECONDS)
            self.set("job-poll", "n_intervals", (self.get("job-poll", "n_intervals") or 0) + 1)
        self._check_failure()
        result = self.get("result-ref", "data")
        if not result:
            raise ComputeFailed(f"no result; status {self.status!r}")
        return result

    def download(self, button: str = "download-npz") -> bytes:
        """Press a download button; the file's bytes."""
        self.set("download", "data", None, fire=False)
        self.click(button)
        self._check_failure()
        found = self.get("download", "data")
        if not found:
            raise ComputeFailed("the download returned nothing")
        content = found["content"]
        return base64.b64decode(content) if found.get("base64") else content.encode()

    def download_npz(self) -> dict[str, np.ndarray]:
        """The result's arrays, from the NPZ download."""
        with np.load(io.BytesIO(self.download("download-npz"))) as npz:
            return dict(npz)

    # --- what the page shows ----------------------------------------------------------------

    @property
    def alert(self) -> str | None:
        """The error alert's text while it is open."""
        return self.get("error-alert", "children") if self.get("error-alert", "is_open") else None

    @property
    def status(self) -> str:
        return _text(self.get("status", "children"))

    def get(self, component: str | dict, prop: str) -> Any:
        return self.props.get(prop_key(component), {}).get(prop)

    def statuses(self, since: int = 0) -> list[int]:
        """The HTTP statuses of the callback requests from ``calls[since]`` on."""
        return [call.status for call in self.calls[since:]]

    # --- props and callbacks ----------------------------------------------------------------

    def set(self, component: str | dict, prop: str, value: Any, fire: bool = True) -> None:
        """Change one prop as the user would; calls the callbacks it triggers."""
        self.set_many({(prop_key(component), prop): value}, fire)

    def set_many(self, changes: dict[tuple[str, str], Any], fire: bool = True) -> None:
        for (key, prop), value in changes.items():
            self.props.setdefault(key, {})[prop] = value
        if fire:
            self._run_chain(set(changes))

    def call(self, callback: _Callback, changed: set[tuple[str, str]]) -> dict | None:
        """One callback request with the tab's current values; its answer applied (None
        for an HTTP 204, no change)."""
        payload = {
            "output": callback.output,
            "outputs": [{"id": d.id, "property": d.property} for d in callback.outputs],
            "inputs": [self._values(d) for d in callback.inputs],
            "state": [self._values(d) for d in callback.state],
            "changedPropIds": sorted(f"{key}.{prop}" for key, prop in changed),
        }
        if len(callback.outputs) == 1 and not callback.output.startswith(".."):
            payload["outputs"] = payload["outputs"][0]
        start = time.perf_counter()
        answer = self.http.post(
            f"{self.base_url}/_dash-update-component", json=payload, timeout=self.timeout
        )
        self.calls.append(
            Call(callback.name, answer.status_code, time.perf_counter() - start, answer.text[:500])
        )
        if answer.status_code == 204:
            return None
        if answer.status_code != 200:
            raise CallbackError(f"{callback.name}: HTTP {answer.status_code}: {answer.text[:500]}")
        return answer.json()["response"]

    def _values(self, dependency: _Dependency) -> dict | list[dict]:
        def entry(key: str) -> dict:
            component_id = self.ids.get(key, key)
            value = (
                component_id if dependency.property == "id" else self.get(key, dependency.property)
            )
            return {"id": component_id, "property": dependency.property, "value": value}

        if dependency.wildcard:
            return [entry(key) for key, cid in self.ids.items() if dependency.matches(cid)]
        return entry(prop_key(dependency.id))

    def _run_chain(
        self, changed: set[tuple[str, str]], added: frozenset | set = frozenset()
    ) -> None:
        """Call every callback that ``changed`` props trigger (and, unless it prevents its
        initial call, that the ``added`` props of new components trigger), then those their
        answers trigger, as the renderer does."""
        for _ in range(_CHAIN_LIMIT):
            triggered = [
                (cb, trigger)
                for cb in self.callbacks
                if (trigger := _triggering(cb, changed, self.ids)
                    or (set() if cb.prevent_initial_call else _triggering(cb, added, self.ids)))
            ]  # fmt: skip
            if not triggered:
                return
            changed, added = set(), set()
            for callback, trigger in triggered:
                more, new = self._apply(self.call(callback, trigger) or {})
                changed, added = changed | more, added | new
        raise RuntimeError(f"callbacks still chained after {_CHAIN_LIMIT} rounds")

    def _apply(self, response: dict) -> tuple[set, set]:
        """Write an answer's props; the props that changed, and those of new components."""
        changed, added = set(), set()
        for key, props in response.items():
            for prop, value in props.items():
                if prop == "children":
                    added |= self._replace_children(key, value)
                self.props.setdefault(key, {})[prop] = value
                changed.add((key, prop))
                if key == "result-ref" and prop == "data" and value:
                    self.result_at = time.perf_counter()
        return changed, added

    def _replace_children(self, parent: str, children: Any) -> set[tuple[str, str]]:
        gone = [key for key in self.ids if parent in self._ancestors(key)]
        for key in gone:
            self.ids.pop(key), self.props.pop(key, None), self.parents.pop(key, None)
        before = set(self.ids)
        self._add_components(children, parent)
        return {(key, prop) for key in set(self.ids) - before for prop in self.props[key]}

    def _ancestors(self, key: str) -> list[str]:
        found, parent = [], self.parents.get(key)
        while parent is not None:
            found.append(parent)
            parent = self.parents.get(parent)
        return found

    def _add_components(self, node: Any, parent: str | None) -> None:
        if isinstance(node, list):
            for child in node:
                self._add_components(child, parent)
            return
        if not (isinstance(node, dict) and "props" in node and "type" in node):
            return
        props = node["props"]
        here = parent
        if "id" in props:
            here = prop_key(props["id"])
            self.ids[here] = props["id"]
            self.parents[here] = parent
            self.props[here] = {k: v for k, v in props.items() if k != "children"}
            self.props[here]["children"] = props.get("children")
        for value in props.values():
            if isinstance(value, (list, dict)):
                self._add_components(value, here)

    def _check_failure(self) -> None:
        if self.alert:
            raise ComputeFailed(f"alert: {_text(self.alert)}")
        if self.status.startswith(("Failed", "Cancelled")):
            raise ComputeFailed(f"status: {self.status}")

    def _get(self, path: str) -> requests.Response:
        answer = self.http.get(f"{self.base_url}{path}", timeout=self.timeout)
        answer.raise_for_status()
        return answer


class ComputeFailed(RuntimeError):
    """Compute ended without a result (the message says what the page showed)."""


def _triggering(callback: _Callback, changed: set[tuple[str, str]], ids: dict) -> set:
    """The changed props among the callback's inputs."""
    return {
        (key, prop)
        for key, prop in changed
        if any(d.property == prop and d.matches(ids.get(key, key)) for d in callback.inputs)
    }


def _text(children: Any) -> str:
    """The text of rendered children (a string, components or a list of them)."""
    if children is None:
        return ""
    if isinstance(children, str):
        return children
    if isinstance(children, list):
        return " ".join(_text(child) for child in children)
    if isinstance(children, dict):
        return _text(children.get("props", {}).get("children"))
    return str(children)


# --- real servers -------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
"""The repository root, where servers are started."""
SERVER_KINDS = ("embedded", "gunicorn")


@dataclass
class ServerProcess:
    """A server started by :func:`start_dashboard` (or :func:`start_process`)."""

    process: subprocess.Popen
    url: str
    log: Path

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the whole process group (the server and its workers), SIGKILL to
        what is left after ``grace`` seconds."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                if self.process.poll() is not None and not _group_alive(self.process.pid):
                    return
                time.sleep(0.1)

    def rss(self) -> int:
        """Bytes of memory (RSS) of the server and all its child processes."""
        import psutil

        try:
            root = psutil.Process(self.process.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        return total

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dashboard_command(kind: str, port: int, cache_dir: Path, *options: str) -> list[str]:
    """The command a user types: ``python -m dashboard --port P --cache-dir D ...``, or
    gunicorn with two workers on ``make_server('--cache-dir', 'D', ...)``."""
    if kind == "embedded":
        return [sys.executable, "-m", "dashboard", "--port", str(port),
                "--cache-dir", str(cache_dir), *options]  # fmt: skip
    if kind == "gunicorn":
        arguments = ", ".join(repr(o) for o in ("--cache-dir", str(cache_dir), *options))
        return [str(Path(sys.executable).parent / "gunicorn"), "-w", "2",
                "-b", f"127.0.0.1:{port}", f"dashboard.app:make_server({arguments})"]  # fmt: skip
    raise ValueError(f"Unknown server kind {kind!r}; the kinds are {SERVER_KINDS}.")


def start_dashboard(
    kind: str, cache_dir: Path, *options: str, env: dict | None = None, timeout: float = 60.0
) -> ServerProcess:
    """A dashboard server of ``kind`` on a free port, answering ``GET /``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = dashboard_command(kind, port, cache_dir, *options)
    server = start_process(command, cache_dir.parent / f"{kind}-{port}.log", env)
    server.url = url
    try:
        _wait_until_up(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_up(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(server.url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet, or gunicorn's workers still import
        if server.process.poll() is not None or time.monotonic() > deadline:
            command = " ".join(server.process.args)
            raise RuntimeError(f"{command} did not start:\n{server.log_tail()}")
        time.sleep(0.2)


def start_process(command: list[str], log: Path, env: dict | None = None) -> ServerProcess:
    """``command`` in its own process group, in the repository root, output to ``log``;
    torch threads wait passively (as the benchmarks run)."""
    environment = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **(env or {})}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return ServerProcess(process, "", log)


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies waiting for a reaper do not)."""
    import psutil

    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != "zombie":
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False
