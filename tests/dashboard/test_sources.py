"""Page references (a demo or an upload) turned into models, data and cache-key parts."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from support.dashboard import SESSION

import demo_data
from dashboard import sources
from dashboard.images import UploadLimits
from dashboard.sources import data_from_ref, model_from_ref, ref_hash
from dashboard.store import Store

CATALOGUE = json.loads((demo_data.FILES / "demos.json").read_text(encoding="utf-8"))["demos"]


@pytest.mark.parametrize("entry", CATALOGUE, ids=[e["name"] for e in CATALOGUE])
def test_every_demo_of_demos_json_loads(store, demo_ref, entry):
    ref = demo_ref(entry["name"])
    model = model_from_ref(store, ref, SESSION)
    assert model.converter is not None
    assert model.input_dim == [tuple(dim) for dim in entry["input_dim"]]
    assert model.output_names == entry["output_names"]
    assert model.input_names == entry["input_names"]
    data = data_from_ref(store, ref, model, SESSION)
    with np.load(demo_data.FILES / entry["files"]["data"], allow_pickle=False) as stored:
        expected = [stored[f"input_{k}"] for k in range(1, len(entry["input_dim"]) + 1)]
    assert len(data.arrays) == len(expected)
    for got, want in zip(data.arrays, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert data.n_rows == entry["sizes"]["test"]
    assert data.filename == f"{entry['name']} (demo test set)"


def test_a_demo_model_is_kept_in_memory(store, demo_ref):
    first = model_from_ref(store, demo_ref("iris"), SESSION)
    assert (
        model_from_ref(store, {"name": "iris", "kind": "demo"}, SESSION) is first
    )  # key order aside
    assert model_from_ref(store, demo_ref("diabetes"), SESSION) is not first


def test_an_unknown_demo_is_named(store, demo_ref):
    with pytest.raises(ValueError, match=r"No demo named 'mnist'; the demos are: 'iris', "):
        model_from_ref(store, demo_ref("mnist"), SESSION)


def _scripted_bytes() -> tuple[torch.nn.Module, bytes]:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 2)).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # torch deprecates TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), buffer)
    return module, buffer.getvalue()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_upload_refs_load_the_stored_bytes(trusting_store):
    store = trusting_store
    module, data = _scripted_bytes()
    sha = store.put_bytes(data, "linear.pt", owner=SESSION)
    model = model_from_ref(store, {"kind": "upload", "sha": sha, "input_dim": None}, SESSION)
    assert (model.name, model.format, model.input_dim) == ("linear.pt", "TorchScript", [(3,)])
    x = torch.randn(4, 3)
    torch.testing.assert_close(model.module(x), module(x))

    table = pd.DataFrame({"a": [1.0, 2.0], "label": ["x", "y"], "b": [3.0, 4.0], "c": [5, 6]})
    csv_sha = store.put_bytes(table.to_csv(index=False).encode(), "table.csv", owner=SESSION)
    ref = {"kind": "upload", "sha": csv_sha, "input_columns": ["c", "a", "b"],
           "channels_last": False}  # fmt: skip
    loaded = data_from_ref(store, ref, model, SESSION)
    np.testing.assert_array_equal(loaded.arrays[0], [[5, 1, 3], [6, 2, 4]])
    assert loaded.input_names == ["c", "a", "b"] and loaded.ignored == ["label"]


def test_upload_data_is_read_in_the_models_shape_and_channel_order(store, image_model, npy_bytes):
    images = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8, 1)  # channels last
    sha = store.put_bytes(npy_bytes(images), "images.npy", owner=SESSION)
    ref = {"kind": "upload", "sha": sha, "input_columns": None, "channels_last": True}
    loaded = data_from_ref(store, ref, image_model, SESSION)
    np.testing.assert_array_equal(loaded.arrays[0], np.moveaxis(images, -1, 1))
    flat = store.put_bytes(npy_bytes(images.reshape(2, 64)), "flat.npy", owner=SESSION)
    ref = {"kind": "upload", "sha": flat, "input_columns": None, "channels_last": False}
    assert data_from_ref(store, ref, image_model, SESSION).shapes == [(1, 8, 8)]


def test_an_evicted_upload_says_to_upload_again(store):
    ref = {"kind": "upload", "sha": "ab" * 32, "input_dim": None}
    with pytest.raises(KeyError, match=r"No upload with hash abababababab… is stored.*Upload the"):
        model_from_ref(store, ref, SESSION)


def test_ref_hash_of_uploads_follows_the_reading_options():
    base = {"kind": "upload", "sha": "0" * 64, "input_columns": None, "channels_last": False}
    reordered = {"channels_last": False, "input_columns": None, "sha": "0" * 64, "kind": "upload"}
    assert ref_hash(base) == ref_hash(reordered) == ref_hash(dict(base))
    assert len(ref_hash(base)) == 64
    variants = [
        {**base, "channels_last": True},
        {**base, "input_columns": ["a", "b"]},
        {**base, "input_columns": ["b", "a"]},
        {**base, "sha": "1" * 64},
    ]
    hashes = {ref_hash(base), *(ref_hash(v) for v in variants)}
    assert len(hashes) == 1 + len(variants)
    model = {"kind": "upload", "sha": "0" * 64, "input_dim": None}
    assert ref_hash(model) != ref_hash({**model, "input_dim": [[1, 8, 8]]})


def test_demo_ref_hash_holds_the_files_hash(demo_ref):
    digest = hashlib.sha256()
    for suffix in (".pt", ".npz"):
        digest.update((demo_data.FILES / f"iris{suffix}").read_bytes())
    assert ref_hash(demo_ref("iris")) == f"demo:iris:{digest.hexdigest()[:16]}"
    assert ref_hash(demo_ref("iris")) != ref_hash(demo_ref("diabetes"))


def test_a_rebuilt_demo_gets_another_hash(tmp_path, monkeypatch, demo_ref):
    before = ref_hash(demo_ref("iris"))
    files = tmp_path / "files"
    shutil.copytree(demo_data.FILES, files)
    with np.load(files / "iris.npz") as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays["input_1"] = arrays["input_1"] + 1.0
    np.savez(files / "iris.npz", **arrays)
    monkeypatch.setattr(demo_data, "FILES", files)
    sources._demo_files_hash.cache_clear()
    try:
        assert ref_hash(demo_ref("iris")) != before
    finally:
        monkeypatch.undo()
        sources._demo_files_hash.cache_clear()
    assert ref_hash(demo_ref("iris")) == before


@pytest.mark.parametrize(("name", "tabular"), [("iris", True), ("digits", False)])
def test_demo_data_carries_the_feature_names_of_tabular_demos(store, demo_ref, name, tabular):
    model = model_from_ref(store, demo_ref(name), SESSION)
    data = data_from_ref(store, demo_ref(name), model, SESSION)
    expected = model.input_names[0][0] if tabular else None
    assert data.input_names == expected


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploaded_images_follow_the_scaling_and_the_stores_limits(tmp_path, image_model):
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    with Store(tmp_path / "a") as store:
        ref = {"kind": "upload", "sha": store.put_bytes(_png(pixels), "x.png", owner=SESSION),
               "image_mean": [0.5], "image_std": [0.25]}  # fmt: skip
        data = data_from_ref(store, ref, image_model, SESSION)
        np.testing.assert_allclose(data.arrays[0][0, 0], (pixels / 255 - 0.5) / 0.25, atol=1e-5)
    with Store(tmp_path / "b", upload_limits=UploadLimits(max_image_pixels=32)) as small:
        ref = {"kind": "upload", "sha": small.put_bytes(_png(pixels), "x.png", owner=SESSION)}
        with pytest.raises(ValueError, match="pixels"):
            data_from_ref(small, ref, image_model, SESSION)


def test_data_is_read_once_per_reference(store, demo_ref, monkeypatch):
    model = model_from_ref(store, demo_ref("iris"), SESSION)
    ref = {
        "kind": "upload",
        "sha": store.put_bytes(b"a,b,c,d\n1,2,3,4\n", "once.csv", owner=SESSION),
    }
    reads = []
    monkeypatch.setattr(sources, "read_data", lambda *a, **k: reads.append(a) or "read")
    sources.DATA.clear()
    assert (
        data_from_ref(store, ref, model, SESSION)
        == data_from_ref(store, ref, model, SESSION)
        == "read"
    )
    assert len(reads) == 1
    data_from_ref(
        store, {**ref, "channels_last": True}, model, SESSION
    )  # other options: read again
    assert len(reads) == 2
    sources.DATA.clear()
