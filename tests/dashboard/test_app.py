"""Building the app, preloading files (``--model``/``--data``), and the command line."""

import gzip
import io
import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from dash import Dash
from support.specs import DENSE_SPEC

import dashboard.app as app_module
from dashboard import ids
from dashboard.__main__ import main
from dashboard.app import create_app, preloaded_refs
from dashboard.config import Config, parse_args
from dashboard.sessions import session_of
from dashboard.store import Store


@pytest.fixture
def files(tmp_path):
    model = tmp_path / "model.json"
    model.write_text(json.dumps(DENSE_SPEC))
    data = tmp_path / "rows.csv"
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(6, 3)), columns=["age", "bmi", "bp"])
    frame.to_csv(data, index=False)
    return model, data


def _components(node):
    """Every component in a served layout's JSON."""
    if isinstance(node, dict) and "props" in node:
        yield node
        node = node["props"].get("children")
    for child in node if isinstance(node, list) else [node]:
        if isinstance(child, dict):
            yield from _components(child)


def _store_data(app: Dash, component_id: str):
    """The initial ``data`` of a ``dcc.Store`` in the layout a page load gets."""
    layout = app.server.test_client().get("/_dash-layout").get_json()
    found = [c["props"] for c in _components(layout) if c["props"].get("id") == component_id]
    assert len(found) == 1
    return found[0].get("data")


def test_app_starts_empty_without_files(tmp_path):
    app = create_app(Config(cache_dir=tmp_path / "cache"))
    assert _store_data(app, ids.MODEL_REF) is None
    assert _store_data(app, ids.DATA_REF) is None
    assert len(app.callback_map) > 10


def test_every_page_load_gets_its_own_signed_session(tmp_path):
    app = create_app(Config(cache_dir=tmp_path / "cache"))
    tokens = [_store_data(app, ids.SESSION) for _ in range(3)]
    secret = Store.from_config(Config(cache_dir=tmp_path / "cache")).secret()
    sessions = {session_of(secret, token) for token in tokens}
    assert len(sessions) == 3
    # the page is otherwise the same for every load (served from one serialisation)
    client = app.server.test_client()
    pages = [client.get("/_dash-layout").get_data(as_text=True) for _ in range(2)]
    tokens = [re.search(r'"data":\s*"([\w-]+\.[\w-]+)"', page).group(1) for page in pages]
    assert tokens[0] != tokens[1]
    assert pages[0].replace(tokens[0], "") == pages[1].replace(tokens[1], "")
    session, signature = tokens[0].split(".")
    for forged in (f"{session}.{'0' * len(signature)}", f"other.{signature}", session, None):
        with pytest.raises(ValueError, match="reload the page"):
            session_of(secret, forged)
    with pytest.raises(ValueError, match="reload the page"):
        session_of(b"another server's secret", tokens[0])


def test_preloaded_model_and_data_are_in_the_layout(tmp_path, files):
    model, data = files
    config = Config(cache_dir=tmp_path / "cache", model_file=model, data_file=data)
    app = create_app(config)
    model_ref, data_ref = _store_data(app, ids.MODEL_REF), _store_data(app, ids.DATA_REF)
    assert model_ref["kind"] == "upload" and data_ref["kind"] == "upload"
    assert (model_ref, data_ref) == preloaded_refs(Store.from_config(config), config)


def test_preloaded_data_with_a_label_column_starts_and_its_inputs_can_be_chosen(tmp_path, files):
    model, _ = files
    weather = tmp_path / "weather.csv"
    frame = pd.DataFrame(np.ones((2, 4)), columns=["age", "bmi", "bp", "label"])
    frame.to_csv(weather, index=False)
    config = Config(cache_dir=tmp_path / "cache", model_file=model, data_file=weather)
    app = create_app(config)  # the page says what does not fit and lets the user choose
    assert _store_data(app, ids.DATA_REF)["input_columns"] is None
    chosen = parse_args(["--cache-dir", str(tmp_path / "cache"), "--model", str(model),
                         "--data", str(weather), "--input-columns", "age, bmi,bp"])  # fmt: skip
    assert chosen.input_columns == ("age", "bmi", "bp")
    assert _store_data(create_app(chosen), ids.DATA_REF)["input_columns"] == ["age", "bmi", "bp"]
    wrong = parse_args(["--cache-dir", str(tmp_path / "cache"), "--model", str(model),
                        "--data", str(weather), "--input-columns", "age,bmi"])  # fmt: skip
    with pytest.raises(ValueError, match=r"^--input-columns .*weather\.csv: .*expects"):
        create_app(wrong)


@pytest.mark.parametrize(
    ("option", "problem"),
    [("--model", "the file cannot be read"), ("--data", "the file cannot be read")],
)
def test_a_start_option_error_names_the_option_and_the_file(tmp_path, files, option, problem):
    missing = tmp_path / "missing.csv"
    given = {"--model": files[0], "--data": files[1], option: missing}
    arguments = [part for pair in given.items() for part in map(str, pair)]
    with pytest.raises(SystemExit, match=f"{option} {missing}: {problem}.*Check the path"):
        main(["--cache-dir", str(tmp_path / "cache"), *arguments])


def test_responses_are_compressed_and_bundles_cached(tmp_path):
    client = create_app(Config(cache_dir=tmp_path / "cache")).server.test_client()
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(page.data).decode()
    bundle = re.search(r'src="(/_dash-component-suites/plotly/[^"]+)"', html) or re.search(
        r'src="(/_dash-component-suites/dash/dash-renderer/[^"]+)"', html
    )
    script = client.get(bundle.group(1), headers={"Accept-Encoding": "gzip, br"})
    assert script.headers["Content-Encoding"] in ("br", "gzip")
    plain = client.get(bundle.group(1))
    assert "Content-Encoding" not in plain.headers
    assert len(script.data) < len(plain.data) / 2
    assert "max-age" in script.headers.get("Cache-Control", "")  # fingerprinted: cached
    layout = client.get("/_dash-layout", headers={"Accept-Encoding": "gzip"})
    assert layout.headers["Content-Encoding"] == "gzip"


def test_command_line_reports_a_bad_model_file_and_exits(tmp_path):
    bad = tmp_path / "model.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit, match="Cannot start the dashboard"):
        main(["--cache-dir", str(tmp_path / "cache"), "--model", str(bad)])


def test_command_line_options_reach_the_config(tmp_path, files):
    model, data = files
    config = parse_args(["--port", "8123", "--model", str(model), "--data", str(data)])
    assert (config.port, config.model_file, config.data_file) == (8123, model, data)


def test_module_help_runs():
    done = subprocess.run(
        [sys.executable, "-m", "dashboard", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "--cache-dir" in done.stdout and "--model" in done.stdout


def test_server_for_gunicorn_is_built_once(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    app_module._default_app.cache_clear()
    server = app_module.server
    assert server is app_module.server
    assert server.name == "dashboard.app"
    assert (tmp_path / "innsight-dashboard").is_dir()


def test_a_body_over_the_upload_limit_is_refused_before_it_is_read(tmp_path):
    app = create_app(Config(cache_dir=tmp_path / "cache", max_upload_bytes=10_000))
    limit = app.server.config["MAX_CONTENT_LENGTH"]
    body = b'{"output": "x"' + b" " * limit + b"}"
    read = []

    class Body(io.BytesIO):  # a request stream that records what the server read of it
        def read(self, size=-1):
            read.append(size)
            return super().read(size)

    client = app.server.test_client()
    response = client.post(
        "/_dash-update-component",
        input_stream=Body(body),
        headers={"Content-Type": "application/json", "Content-Length": str(len(body))},
    )
    assert response.status_code == 413
    assert read == []  # refused from the Content-Length, nothing parsed
    small = client.post("/_dash-update-component", data=b"{}", content_type="application/json")
    assert small.status_code != 413
