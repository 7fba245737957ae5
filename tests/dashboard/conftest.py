"""Fixtures of the dashboard tests: a store in a temporary folder, small models, uploads,
demo references and computed results."""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
import pytest
import torch
from support.dashboard import SESSION
from torch import nn

import demo_data
from attribution.converter.loading import LoadedModel, load_model
from dashboard.images import UploadLimits
from dashboard.jobs import build_request, request_owner, run_attribution
from dashboard.sources import model_from_ref
from dashboard.store import Store

CACHE_LIMIT = 50 * 1024**2


@pytest.fixture
def store(tmp_path) -> Store:
    with Store(tmp_path / "cache", size_limit=CACHE_LIMIT) as opened:
        yield opened


@pytest.fixture
def trusting_store(tmp_path) -> Store:
    """A store whose server trusts TorchScript uploads (``--trust-torchscript``)."""
    limits = UploadLimits(trust_torchscript=True)
    with Store(tmp_path / "trusting", size_limit=CACHE_LIMIT, upload_limits=limits) as opened:
        yield opened


@pytest.fixture
def demo_ref():
    """The page's reference to a demo (the same for its model and its data)."""

    def ref(name: str) -> dict:
        return {"kind": "demo", "name": name}

    return ref


@pytest.fixture
def demo_model(store, demo_ref):
    """A demo's LoadedModel, as the dashboard loads it."""

    def load(name: str) -> LoadedModel:
        return model_from_ref(store, demo_ref(name), SESSION)

    return load


@pytest.fixture
def compute(store, demo_ref):
    """Run the job for a demo in ``store``'s folder; the page's result reference."""

    def run(name, method, raw=None, outputs=("0:0", "0:1"), rows=3, progress=None) -> dict:
        ref = demo_ref(name)
        request = build_request(store, ref, ref, method, raw or {}, list(outputs), rows, SESSION)
        set_progress = progress.append if progress is not None else lambda _: None
        return run_attribution(store, request, request_owner(request, SESSION), set_progress)

    return run


@pytest.fixture
def tabular_model() -> LoadedModel:
    """4 named features → 3 classes, converted."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(-1)).eval()
    return load_model(
        model,
        input_names=["sepal_len", "sepal_wid", "petal_len", "petal_wid"],
        output_names=["setosa", "versicolor", "virginica"],
    )


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 3)).eval()


@pytest.fixture
def image_model() -> LoadedModel:
    """A 1×8×8 image CNN with 3 outputs, converted."""
    return load_model(_cnn(), input_dim=(1, 8, 8))


@pytest.fixture
def rgb_model() -> LoadedModel:
    """A 3×8×8 image model, converted."""
    torch.manual_seed(0)
    return load_model(nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten()).eval(), input_dim=(3, 8, 8))


@pytest.fixture
def scripted_model() -> LoadedModel:
    """The same CNN as TorchScript bytes: not converted, gradient family only."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # torch deprecates TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(_cnn()), buffer)
        return load_model(buffer.getvalue(), "cnn.pt", input_dim=(1, 8, 8), allow_code=True)


@pytest.fixture
def as_upload():
    """``dcc.Upload``'s value for some bytes."""

    def encode(data: bytes, mime: str = "application/octet-stream") -> str:
        return f"data:{mime};base64,{base64.b64encode(data).decode()}"

    return encode


@pytest.fixture
def npy_bytes():
    """``np.save`` of an array, as bytes."""

    def save(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    return save


@pytest.fixture
def npz_bytes():
    """``np.savez`` of named arrays, as bytes."""

    def save(**arrays: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    return save


@pytest.fixture
def iris(demo_model) -> LoadedModel:
    """The iris demo model, as the dashboard loads it."""
    return demo_model("iris")


@pytest.fixture
def iris_x() -> np.ndarray:
    """The iris demo's test rows."""
    return demo_data.load_demo("iris").inputs[0]
