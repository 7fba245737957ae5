"""Fuzzing the upload readers: random, truncated and altered bytes give a clear error.

Every data reader (CSV, NPY, NPZ, PNG, JPEG, zip of images) and every registered model
format is fed random bytes, truncations of a valid file and valid files with a few bytes
changed. Each may read the file or raise a ValueError, TypeError or KeyError with a
message; any other exception (or a hang, bounded by the deadline) fails.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import skops.io
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn.neural_network import MLPClassifier
from support.specs import DENSE_SPEC
from torch import nn

import attribution  # noqa: F401  (registers every model format)
from attribution.converter import keras_format
from attribution.converter.files import model_suffixes, read_model_file
from dashboard.images import UploadLimits
from dashboard.uploads import read_data

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.*` is deprecated:DeprecationWarning",
    "ignore::UserWarning",
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning",
    "ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning",
    "ignore:The feature will be removed:DeprecationWarning",
)

FUZZ = settings(
    max_examples=25,
    deadline=2000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMITS = UploadLimits(max_member_bytes=2_000_000, max_uncompressed_bytes=5_000_000)
CLEAR = (ValueError, TypeError, KeyError)


def _image(fmt: str) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.png", _image("PNG"))
        archive.writestr("b.jpg", _image("JPEG"))
    return buffer.getvalue()


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    return buffer.getvalue()


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, input_1=np.ones((2, 3)), labels=np.arange(2))
    return buffer.getvalue()


def _csv() -> bytes:
    frame = pd.DataFrame({"age": [50, 61], "bmi": [21.5, 30.1], "label": ["no", "yes"]})
    return frame.to_csv(index=False).encode()


DATA_FILES = {
    "data.csv": _csv(),
    "data.npy": _npy(),
    "data.npz": _npz(),
    "image.png": _image("PNG"),
    "image.jpg": _image("JPEG"),
    "images.zip": _zip(),
}


def _model_files() -> dict[str, bytes]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    exported, scripted = io.BytesIO(), io.BytesIO()
    torch.export.save(torch.export.export(model, (torch.randn(2, 3),)), exported)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(model), scripted)
    files = {".json": json.dumps(DENSE_SPEC).encode(), ".pt2": exported.getvalue()}
    return files | {".pt": scripted.getvalue(), ".ts": scripted.getvalue()}


def _other_library_files(folder) -> dict[str, bytes]:
    """Valid ONNX, scikit-learn (.skops) and Keras (.keras, .h5) files of small models."""
    torch.manual_seed(0)
    onnx = io.BytesIO()
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    torch.onnx.export(model, (torch.randn(1, 3),), onnx, dynamo=False)
    x = np.random.default_rng(0).normal(size=(20, 3))
    mlp = MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged: fine for a seed file
        mlp.fit(x, (x[:, 0] > 0).astype(int))
    keras = keras_format.import_keras()
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    files = {".onnx": onnx.getvalue(), ".skops": skops.io.dumps(mlp)}
    for suffix in (".keras", ".h5"):
        net.save(folder / f"model{suffix}")
        files[suffix] = (folder / f"model{suffix}").read_bytes()
    return files


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, bytes]:
    """A valid file of every registered model format, to truncate and alter.

    Built before the fuzzing (outside its per-example deadline), which also imports the
    other libraries the readers load lazily.
    """
    files = _model_files() | _other_library_files(tmp_path_factory.mktemp("models"))
    missing = set(model_suffixes(allow_code=True)) - set(files)
    assert not missing, f"no seed file for {missing}: add one here"
    return files


def _read_data(content: bytes, name: str) -> None:
    try:
        read_data(content, name, limits=LIMITS)
    except CLEAR as error:
        assert str(error), f"{type(error).__name__} without a message for {name}"


def _read_model(content: bytes, suffix: str, allow_code: bool = True) -> None:
    try:
        read_model_file(content, "model" + suffix, allow_code=allow_code)
    except CLEAR as error:
        assert str(error), f"{type(error).__name__} without a message for {suffix}"


def test_every_registered_model_format_is_fuzzed_with_a_valid_file(model_files):
    assert {".json", ".pt", ".pt2", ".ts"} <= set(model_suffixes(allow_code=True))
    for suffix, content in model_files.items():
        read_model_file(content, "model" + suffix, allow_code=True)  # the seeds are valid
    for suffix in (".pt", ".ts"):  # but an upload of TorchScript runs code: refused
        with pytest.raises(ValueError, match=r"is TorchScript, which runs code from the file"):
            read_model_file(model_files[suffix], "model" + suffix)


@pytest.mark.parametrize("name", sorted(DATA_FILES))
def test_valid_data_seeds_are_read(name):
    assert read_data(DATA_FILES[name], name, limits=LIMITS).n_rows >= 1


@pytest.mark.parametrize("name", sorted(DATA_FILES))
@FUZZ
@given(content=st.binary(max_size=2048))
def test_random_bytes_to_data_readers(name, content):
    _read_data(content, name)


@pytest.mark.parametrize("name", sorted(DATA_FILES))
@FUZZ
@given(cut=st.floats(0, 1, exclude_max=True))
def test_truncated_data_files(name, cut):
    content = DATA_FILES[name]
    _read_data(content[: int(cut * len(content))], name)


@pytest.mark.parametrize("name", sorted(DATA_FILES))
@FUZZ
@given(changes=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                        min_size=1, max_size=4))  # fmt: skip
def test_altered_data_files(name, changes):
    content = bytearray(DATA_FILES[name])
    for where, value in changes:
        content[int(where * len(content))] = value
    _read_data(bytes(content), name)


@pytest.mark.parametrize("suffix", model_suffixes(allow_code=True))
@FUZZ
@given(content=st.binary(max_size=2048))
def test_random_bytes_to_model_readers(model_files, suffix, content):
    _read_model(content, suffix)


@pytest.mark.parametrize("suffix", model_suffixes(allow_code=True))
@FUZZ
@given(cut=st.floats(0, 1, exclude_max=True), prefix=st.sampled_from([b"", b"PK\x03\x04"]))
def test_truncated_model_files(model_files, suffix, cut, prefix):
    content = prefix + model_files[suffix]
    _read_model(content[: int(cut * len(content))], suffix)


@pytest.mark.parametrize("suffix", model_suffixes(allow_code=True))
@FUZZ
@given(changes=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                        min_size=1, max_size=4))  # fmt: skip
def test_altered_model_files(model_files, suffix, changes):
    content = bytearray(model_files[suffix])
    for where, value in changes:
        content[int(where * len(content))] = value
    _read_model(bytes(content), suffix)


@pytest.mark.parametrize("seed", [".pt", ".pt2"])
@pytest.mark.parametrize("suffix", model_suffixes(allow_code=True))
@FUZZ
@given(changes=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                        min_size=1, max_size=4))  # fmt: skip
def test_altered_archives_as_uploads(model_files, seed, suffix, changes):
    """Torch archives, altered, under every suffix, read as uploads are (no code allowed)."""
    content = bytearray(model_files[seed])
    for where, value in changes:
        content[int(where * len(content))] = value
    _read_model(bytes(content), suffix, allow_code=False)
