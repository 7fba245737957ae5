"""Hostile uploads through the dashboard's own path: no code runs, no size goes unbounded.

Each file is stored as an upload of a session (``Store.put_bytes``) and read as the page
reads it (``model_from_ref`` / ``data_from_ref``), with the server's default limits unless
a test says otherwise:

- TorchScript that reads a file (``torch.from_file``) or writes one (``torch.save``) in
  ``forward``, or writes one in ``__setstate__`` when loaded, is refused before torch
  sees it, also under another suffix; the canary files show that nothing ran. With
  ``--trust-torchscript`` a benign model still loads.
- Memory bombs (an ``.npz`` that unpacks to 0.9 GiB, JSON specs and model inputs that
  declare billions of values, a ``torch.export`` program that makes a huge tensor, a zip
  of images) raise a ValueError quickly, before the memory is allocated: the process's
  peak memory (``ru_maxrss``, a high-water mark a blown-up allocation would raise) grows
  by less than :data:`support.memory.MAX_GROWTH`.
- A CSV of 100,000 columns is read in well under two seconds.
"""

from __future__ import annotations

import io
import json
import time
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from support.dashboard import SESSION
from support.memory import refused_cheaply as _refused_cheaply
from torch import nn

import attribution  # noqa: F401  (registers every model format)
from attribution.converter.loading import LoadedModel, load_model
from dashboard import sources
from dashboard.images import MB, UploadLimits
from dashboard.sources import data_from_ref, model_from_ref
from dashboard.store import Store

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.*` is deprecated:DeprecationWarning",
    "ignore:'torch.load' received a zip file:UserWarning",
)

REFUSED = r"is TorchScript, which runs code from the file when it is loaded; this server does "
"""The start of the refusal of a TorchScript upload (after the file name)."""


@pytest.fixture(autouse=True)
def _fresh_memos() -> Iterator[None]:
    """Loaded models are memoised per process by reference: start and end without any."""
    sources.MODELS.clear()
    sources.DATA.clear()
    yield
    sources.MODELS.clear()
    sources.DATA.clear()


def _store(tmp_path, **limits: Any) -> Store:
    return Store(tmp_path / "cache", size_limit=200 * MB, upload_limits=UploadLimits(**limits))


def _upload_model(store: Store, data: bytes, filename: str, input_dim=None) -> LoadedModel:
    sha = store.put_bytes(data, filename, owner=SESSION)
    return model_from_ref(store, {"kind": "upload", "sha": sha, "input_dim": input_dim}, SESSION)


def _upload_data(store: Store, data: bytes, filename: str, model: LoadedModel):
    sha = store.put_bytes(data, filename, owner=SESSION)
    ref = {"kind": "upload", "sha": sha, "input_columns": None, "channels_last": False}
    return data_from_ref(store, ref, model, SESSION)


def _script(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), buffer)
    return buffer.getvalue()


# --- TorchScript that reads and writes files ---------------------------------------------------


class FileReader(nn.Module):
    """Adds the bytes of a server file to its output: it leaks the file."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        secret = torch.from_file(self.path, shared=False, size=8, dtype=torch.uint8)
        return x + secret.sum().float()


class FileWriter(nn.Module):
    """Writes its input to a server file on every call."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, self.path)
        return x * 2.0


class LoadWriter(nn.Module):
    """Writes a server file when it is loaded (``__setstate__``), before any call."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.path = state[0]
        self.training = state[1]
        torch.save(torch.ones(1), self.path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2.0


SECRET = b"SECRET!!"


@pytest.fixture
def hostile(tmp_path) -> dict[str, tuple[bytes, Any]]:
    """Per attack: the TorchScript bytes and the canary path it reads or writes."""
    secret, written, on_load = tmp_path / "secret", tmp_path / "written", tmp_path / "loaded"
    secret.write_bytes(SECRET)
    return {
        "reads in forward": (_script(FileReader(str(secret))), secret),
        "writes in forward": (_script(FileWriter(str(written))), written),
        "writes when loaded": (_script(LoadWriter(str(on_load))), on_load),
    }


@pytest.fixture
def jit_load_calls(monkeypatch) -> list:
    """Every call of ``torch.jit.load`` in the test (it runs the archive's code)."""
    calls: list = []
    real = torch.jit.load

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.jit, "load", spy)
    return calls


def test_the_hostile_modules_do_what_they_say(tmp_path, hostile):
    # the premise of the tests below: trusted, each reads or writes its canary
    for attack, (data, canary) in hostile.items():
        module = load_model(data, "m.pt", input_dim=(3,), allow_code=True).module
        output = module(torch.zeros(1, 3))
        if attack == "reads in forward":
            assert output[0, 0].item() == sum(SECRET)  # the file's bytes leak out
        else:
            assert canary.exists(), attack
            canary.unlink()


@pytest.mark.parametrize("attack", ["reads in forward", "writes in forward", "writes when loaded"])
@pytest.mark.parametrize("filename", ["model.pt", "model.ts", "model.pt2", "model.json", "m.onnx"])
def test_torchscript_uploads_are_refused_before_loading(
    tmp_path, hostile, jit_load_calls, attack, filename
):
    data, canary = hostile[attack]
    store = _store(tmp_path)
    with pytest.raises(ValueError, match=rf"^{filename.replace('.', '[.]')} {REFUSED}") as error:
        _upload_model(store, data, filename, input_dim=[[3]])
    message = str(error.value)
    assert "torch.export" in message and "--trust-torchscript" in message
    assert jit_load_calls == []
    if attack == "reads in forward":
        assert canary.read_bytes() == SECRET and SECRET.decode() not in message
    else:
        assert not canary.exists()


def test_trusted_torchscript_still_loads(tmp_path):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    store = _store(tmp_path, trust_torchscript=True)
    loaded = _upload_model(store, _script(module), "mlp.pt")
    assert (loaded.format, loaded.input_dim, loaded.output_dim) == ("TorchScript", [(3,)], [(2,)])
    x = torch.randn(5, 3)
    torch.testing.assert_close(loaded.module(x), module(x))


# --- memory bombs --------------------------------------------------------------------------------


def _npz_bomb(shape: tuple[int, ...], dtype=np.float32) -> bytes:
    """An ``.npz`` of one array of zeros, deflated while written: a few MB of memory for
    any declared size."""
    buffer = io.BytesIO()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    )
    n_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    chunk = bytes(16 * MB)
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("input_1.npy", "w", force_zip64=True) as member,
    ):
        member.write(header.getvalue())
        for start in range(0, n_bytes, len(chunk)):
            member.write(chunk[: min(len(chunk), n_bytes - start)])
    return buffer.getvalue()


@pytest.fixture(scope="module")
def npz_bomb() -> bytes:
    """About 1 MB that unpacks to 0.9 GiB (15,000 × 16,000 float32 zeros)."""
    return _npz_bomb((15_000, 16_000))


@pytest.fixture
def tabular() -> LoadedModel:
    return load_model(nn.Sequential(nn.Linear(4, 2)).eval())


def test_npz_bomb_is_refused_before_unpacking(tmp_path, npz_bomb, tabular):
    with zipfile.ZipFile(io.BytesIO(npz_bomb)) as archive:  # the premise: a real bomb
        assert archive.infolist()[0].file_size > 900 * MB and len(npz_bomb) < 2 * MB
    store = _store(tmp_path)
    _refused_cheaply(
        lambda: _upload_data(store, npz_bomb, "bomb.npz", tabular),
        r"bomb\.npz unpacks to 960\.0 MB; data files may unpack to at most 200\.0 MB\. Upload "
        r"fewer rows, or start the dashboard with a higher limit \(--max-uncompressed-mb\)\.",
    )


def test_npz_bomb_over_a_small_limit(tmp_path, tabular):
    store = _store(tmp_path, max_uncompressed_bytes=10 * MB)
    _refused_cheaply(
        lambda: _upload_data(store, _npz_bomb((25_000, 1_000)), "bomb.npz", tabular),
        r"bomb\.npz unpacks to 100\.0 MB; data files may unpack to at most 10\.0 MB",
    )


def test_npz_header_may_not_declare_more_than_its_member_holds(tmp_path, tabular):
    """A member of 100 bytes whose ``.npy`` header declares 40 GB of values."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)}
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("input_1.npy", header.getvalue() + bytes(100))
    _refused_cheaply(
        lambda: _upload_data(_store(tmp_path), buffer.getvalue(), "lie.npz", tabular),
        r"lie\.npz \(array 'input_1'\) declares 40000\.0 MB of values but unpacks to 228 "
        r"bytes: it is truncated or forged",
    )


def test_npy_header_is_checked_against_the_file(tmp_path, tabular):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)}
    )
    _refused_cheaply(
        lambda: _upload_data(_store(tmp_path), header.getvalue() + bytes(64), "lie.npy", tabular),
        r"lie\.npy declares 40000\.0 MB of values but has 192 bytes: it is truncated",
    )


def test_npz_with_too_many_members_is_refused(tmp_path, tabular):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for k in range(30):
            archive.writestr(f"a{k}.npy", b"")
    store = _store(tmp_path, max_zip_members=20)
    _refused_cheaply(
        lambda: _upload_data(store, buffer.getvalue(), "many.npz", tabular),
        r"many\.npz holds 30 arrays; an \.npz may hold at most 20\. .*--max-zip-members",
    )


def _spec(input_dim: list[int], padding: int = 0) -> bytes:
    layers = [
        {"type": "Conv2D", "weight": [[[[1.0]]]], "padding": padding, "input_layers": 0,
         "output_layers": 2},
        {"type": "Flatten", "input_layers": 1, "output_layers": -1},
    ]  # fmt: skip
    spec = {"input_dim": input_dim, "input_nodes": [1], "output_nodes": [2], "layers": layers}
    return json.dumps(spec).encode()


@pytest.mark.parametrize(
    ("input_dim", "padding", "message"),
    [
        ([1, 20_000, 20_000], 0, r"The spec's input_dim is \(1, 20000, 20000\): 400000000 values"),
        ([1, 20_000, 100_000], 0, r"input_dim is \(1, 20000, 100000\): 2000000000 values per"),
        ([1, 8, 8], 30_000, r"layer 1 \(Conv2D\) of the spec computes \(1, 60008, 60008\)"),
    ],
    ids=["20000x20000", "20000x100000", "padding"],
)
def test_json_spec_bombs_are_refused_before_allocating(tmp_path, input_dim, padding, message):
    data = _spec(input_dim, padding)
    assert len(data) < 300
    _refused_cheaply(lambda: _upload_model(_store(tmp_path), data, "bomb.json"), message)


def test_json_spec_of_many_weightless_layers_is_bounded(tmp_path):
    layers = [{"type": "Activation", "act_name": "relu"}] * 70 + [{"type": "Flatten"}]
    spec = {"input_dim": [1, 1000, 1000], "input_nodes": [1], "output_nodes": [71]}
    data = json.dumps({**spec, "layers": layers}).encode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # wiring left to innsight's defaults
        _refused_cheaply(
            lambda: _upload_model(_store(tmp_path), data, "deep.json"),
            r"The 71 layers of the spec compute 72000000 values per instance together, more "
            r"than the 64000000 allowed \(16 × max_instance_values\); it is refused\.",
        )


def test_trusted_torchscript_probe_is_bounded(tmp_path):
    data = _script(nn.Flatten())
    store = _store(tmp_path, trust_torchscript=True)
    _refused_cheaply(
        lambda: _upload_model(store, data, "flat.pt", input_dim=[[1, 30_000, 30_000]]),
        r"The input shape of flat\.pt is \(1, 30000, 30000\): 900000000 values per instance, "
        r"more than the 4000000 allowed \(max_instance_values; the dashboard's "
        r"--max-instance-values\)",
    )


class Inflates(nn.Module):
    """A small model that makes a tensor of 1.8 billion values in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.zeros(x.shape[0], 30_000, 30_000)
        return self.linear(x) + y.sum(dim=(1, 2)).unsqueeze(1)


def _export(module: nn.Module, example: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    batch = {0: torch.export.Dim("batch")}
    torch.export.save(
        torch.export.export(module.eval(), (example,), dynamic_shapes=(batch,)), buffer
    )
    return buffer.getvalue()


def test_export_program_that_inflates_is_refused_before_running(tmp_path):
    data = _export(Inflates(), torch.randn(2, 3))
    _refused_cheaply(
        lambda: _upload_model(_store(tmp_path), data, "inflates.pt2"),
        r"inflates\.pt2 computes a tensor of shape \(2, 30000, 30000\) in 'zeros' .*: "
        r"1800000000 values, more than the 8000000 allowed",
    )


def test_export_program_declaring_a_huge_input_is_refused_before_loading(tmp_path):
    data = _export(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.randn(2, 1, 2, 2))
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name.endswith("models/model.json"):
                program = json.loads(content)
                sizes = program["graph_module"]["graph"]["tensor_values"]["input"]["sizes"]
                sizes[2:] = [{"as_int": 30_000}, {"as_int": 30_000}]
                content = json.dumps(program).encode()
            target.writestr(name, content)
    _refused_cheaply(
        lambda: _upload_model(_store(tmp_path), buffer.getvalue(), "huge.pt2"),
        r"huge\.pt2 takes inputs of shape \(batch, 1, 30000, 30000\), 900000000 values per "
        r"instance; this server explains models with at most 4000000",
    )


def test_zip_bomb_of_images_is_refused(tmp_path):
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("a.png", "w", force_zip64=True) as member,
    ):
        for _ in range(4):
            member.write(bytes(16 * MB))
    image_model = load_model(
        nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten()).eval(), input_dim=(1, 8, 8)
    )
    _refused_cheaply(
        lambda: _upload_data(_store(tmp_path), buffer.getvalue(), "bomb.zip", image_model),
        r"'a\.png' in bomb\.zip unpacks to 64\.0 MB; a zip member may have at most 50\.0 MB",
    )


# --- wide CSV ------------------------------------------------------------------------------------


def _wide_csv(n_columns: int, value: str = "1.5") -> bytes:
    header = ",".join(f"x{k}" for k in range(n_columns))
    return f"{header}\n{','.join([value] * n_columns)}\n".encode()


def test_csv_of_100000_columns_is_read_in_linear_time(tmp_path, tabular):
    data = _wide_csv(100_000)
    assert len(data) > MB
    start = time.perf_counter()
    read = _upload_data(_store(tmp_path), data, "wide.csv", tabular)
    seconds = time.perf_counter() - start
    assert seconds < 2.0, f"read in {seconds:.1f} s"
    assert read.shapes == [(100_000,)] and read.input_names[-1] == "x99999"
    assert float(read.arrays[0].sum()) == 150_000.0


def test_wide_csv_with_text_is_refused_quickly(tmp_path, tabular):
    data = _wide_csv(100_000).replace(b"\n1.5,", b"\nlabel,", 1)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"wide\.csv has 100000 columns and some are not plain"):
        _upload_data(_store(tmp_path), data, "wide.csv", tabular)
    assert time.perf_counter() - start < 2.0


def test_csv_wider_than_an_instance_is_refused_from_its_header(tmp_path, tabular):
    store = _store(tmp_path, max_instance_values=1_000)
    with pytest.raises(
        ValueError,
        match=r"wide\.csv has 5000 columns; an instance may have at most 1000 values\. Upload "
        r"fewer columns, or start the dashboard with a higher limit \(--max-instance-values\)",
    ):
        _upload_data(store, _wide_csv(5_000), "wide.csv", tabular)
