"""The downloads that reproduce a result: the Python script runs with the public API and
saves the arrays of the NPZ download; the parameters are the engine's keyword arguments."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support.dashboard import SESSION
from torch import nn

import attribution
from dashboard.callbacks.views import download
from dashboard.jobs import build_request, request_owner, run_attribution

ROOT = Path(__file__).resolve().parents[2]

CASES = {
    "Gradient": ("iris", {"times_input": True}, ["0:0", "0:2"], 5),
    "SmoothGrad": ("iris", {"n": 7, "noise_level": 0.3, "seed": 11}, ["0:1"], 4),
    "IntegratedGradient": ("iris", {"reference": "mean", "n": 9}, ["0:0", "0:1", "0:2"], 3),
    "ExpectedGradient": (
        "digits_table",
        {"background": "sample", "sample_size": 6, "sample_seed": 5, "n": 4, "seed": 2},
        ["0:3", "1:0"],
        2,
    ),
    "LRP": (
        "digits",
        {
            "rule_name": {"Conv2D_Layer": "epsilon", "Dense_Layer": "alpha_beta"},
            "rule_param": {"Conv2D_Layer": 0.05, "Dense_Layer": 1.5},
        },
        ["0:2", "0:7"],
        2,
    ),
    "DeepLift": (
        "iris",
        {"rule_name": "reveal_cancel", "reference": "row", "reference_row": 7},
        ["0:2"],
        4,
    ),
}


def _npz(store, ref) -> dict[str, np.ndarray]:
    file = download(store, ref, SESSION, "npz")
    with np.load(io.BytesIO(base64.b64decode(file["content"])), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def _run_script(store, ref, folder: Path, cwd: Path) -> dict[str, np.ndarray]:
    """Download the script, run it in the venv's Python, read what it saved."""
    file = download(store, ref, SESSION, "python")
    assert file["filename"] == f"{ref['request']['method']}_{ref['key'][:8]}.py"
    script, out = folder / file["filename"], folder / "again.npz"
    script.write_text(file["content"], encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script), str(out)], cwd=cwd, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"to {out}" in run.stdout
    with np.load(out, allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def _assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for name, array in want.items():
        np.testing.assert_array_equal(got[name], array, err_msg=name)


@pytest.mark.parametrize("method", CASES)
def test_the_python_script_computes_the_dashboards_arrays(store, demo_ref, tmp_path, method):
    demo, raw, outputs, rows = CASES[method]
    ref = demo_ref(demo)
    request = build_request(store, ref, ref, method, raw, outputs, rows, SESSION)
    result = run_attribution(store, request, request_owner(request, SESSION), lambda _: None)
    _assert_same(_run_script(store, result, tmp_path, ROOT), _npz(store, result))


class _Tanh(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.dense = nn.Linear(4, 3)

    def forward(self, x):
        return torch.tanh(self.dense(x))


def test_the_script_of_uploads_reads_the_uploaded_files(store, tmp_path, iris_x):
    """An exported program (explained by the torch_* functions), CSV data and an uploaded
    one-row reference: the script names the files and reads them as the server does."""
    batch = torch.export.Dim("batch")
    program = torch.export.export(
        _Tanh().eval(), (torch.zeros(2, 4),), dynamic_shapes=({0: batch},)
    )
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    files = {
        "tanh.pt2": buffer.getvalue(),
        "flowers.csv": _csv(iris_x[:12]),
        "one row.csv": _csv(iris_x[20:21] + 0.5),
    }
    sha = {name: store.put_bytes(data, name, owner=SESSION) for name, data in files.items()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    model_ref = {"kind": "upload", "sha": sha["tanh.pt2"], "input_dim": None}
    data_ref = {"kind": "upload", "sha": sha["flowers.csv"], "input_columns": None,
                "channels_last": False}  # fmt: skip
    raw = {"reference": "upload", "reference_sha": sha["one row.csv"], "n": 8}
    request = build_request(
        store, model_ref, data_ref, "IntegratedGradient", raw, ["0:0", "0:2"], 6, SESSION
    )
    result = run_attribution(store, request, request_owner(request, SESSION), lambda _: None)
    script = download(store, result, SESSION, "python")["content"]
    assert "'tanh.pt2'" in script and "'flowers.csv'" in script and "'one row.csv'" in script
    assert "attribution.torch_intgrad(" in script
    _assert_same(_run_script(store, result, tmp_path, tmp_path), _npz(store, result))


def _csv(rows: np.ndarray) -> bytes:
    lines = ["a,b,c,d", *(",".join(repr(float(v)) for v in row) for row in rows)]
    return ("\n".join(lines) + "\n").encode()


def test_the_parameters_are_the_engines_keyword_arguments(store, compute, demo_model):
    raw = {"background": "sample", "sample_size": 9, "sample_seed": 4, "n": 6}
    ref = compute("iris", "ExpectedGradient", raw, ["0:1"], 3)
    saved = json.loads(download(store, ref, SESSION, "params")["content"])
    assert saved == {
        "method": "ExpectedGradient",
        "model": {"demo": "iris"},
        "data": {"demo": "iris"},
        "rows": 3,
        "output_idx": [[1]],
        "kwargs": {"n": 6, "seed": 0, "ignore_last_act": True, "dtype": "float"},
        "from_data": {"data_ref": {"kind": "sample", "size": 9, "seed": 4}},
        "engine": attribution.__version__,
    }
    # the keyword arguments are the method's own: the engine takes them as they are
    data = demo_model("iris")
    x = np.zeros((1, 4), dtype=np.float32)
    attribution.ExpectedGradient(data.converter, x, data_ref=x, output_idx=[1], **saved["kwargs"])
