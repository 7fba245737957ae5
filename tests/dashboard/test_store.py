"""Store: content addressing, persistence across restarts, LRU bound, the result memo."""

from __future__ import annotations

import hashlib

import pytest
import torch
from support.dashboard import SESSION

import attribution
from attribution import AttributionResult, Gradient
from dashboard.config import Config
from dashboard.store import Store, result_key


@pytest.fixture
def result(tabular_model) -> AttributionResult:
    torch.manual_seed(0)
    return Gradient(tabular_model.converter, torch.randn(6, 4), output_idx=[0, 2])


def test_same_bytes_same_hash(store):
    sha = store.put_bytes(b"a,b\n1,2\n", "first.csv", owner=SESSION)
    assert sha == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert store.put_bytes(b"a,b\n1,2\n", "second.csv", owner=SESSION) == sha
    assert store.put_bytes(b"a,b\n1,3\n", "first.csv", owner=SESSION) != sha
    upload = store.get_upload(sha, owner=SESSION)  # the session's latest name for the bytes
    assert (upload.data, upload.filename, upload.suffix) == (b"a,b\n1,2\n", "second.csv", ".csv")
    assert store.get_bytes(sha, owner=SESSION) == b"a,b\n1,2\n"
    assert store.has(sha, owner=SESSION) and not store.has("0" * 64, owner=SESSION)


def test_an_upload_is_reachable_only_from_its_session(store):
    sha = store.put_bytes(b"secret,rows\n1,2\n", "patients.csv", owner=SESSION)
    with pytest.raises(KeyError, match="Upload the file again"):
        store.get_upload(sha, owner="another-session")  # replaying the sha reads nothing
    assert not store.has(sha, owner="another-session")
    store.put_bytes(b"secret,rows\n1,2\n", "mine.csv", owner="another-session")
    assert store.get_upload(sha, owner="another-session").filename == "mine.csv"
    assert store.get_upload(sha, owner=SESSION).filename == "patients.csv"  # names stay apart


def test_missing_upload_says_to_upload_again(store):
    message = r"No upload with hash 000000000000… is stored for this page: it was "
    with pytest.raises(KeyError, match=message):
        store.get_upload("0" * 64, owner=SESSION)
    with pytest.raises(TypeError, match=r"data must be bytes; got str\."):
        store.put_bytes("text", "a.csv", owner=SESSION)


def test_a_restarted_store_sees_the_same_entries(tmp_path, result):
    config = Config(cache_dir=tmp_path / "cache")
    with Store.from_config(config) as store:
        sha = store.put_bytes(b"\x93NUMPY", "x.npy", owner=SESSION)
        store.put_result("key", result)
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    with Store.from_config(config) as restarted:
        assert restarted.get_upload(sha, owner=SESSION).filename == "x.npy"
        again = restarted.get_result("key")
    assert type(again) is AttributionResult  # plain fields, read back without pickle
    assert again.method_name == result.method_name == "Gradient"
    assert str(again) == str(result)
    for a, b in zip(again.get_result("torch"), result.get_result("torch"), strict=True):
        torch.testing.assert_close(a, b)


def test_eviction_drops_the_least_recently_used(tmp_path):
    size_limit = 500_000  # the database and 11 uploads of 40 kB fit, 12 do not
    with Store(tmp_path, size_limit=size_limit) as store:
        hashes = [
            store.put_bytes(bytes([k]) * 40_000, f"{k}.bin", owner=SESSION) for k in range(11)
        ]
        store.get_bytes(hashes[0], owner=SESSION)  # the oldest is now the most recently used
        hashes.append(store.put_bytes(b"\xff" * 40_000, "11.bin", owner=SESSION))
        assert store.volume <= size_limit
        kept = [store.has(sha, owner=SESSION) for sha in hashes]
    assert kept[0] and kept[-1]
    middle = kept[1:-1]  # evicted oldest first: what is kept of them is the newest
    assert not all(middle) and middle == sorted(middle)


def test_a_new_entry_survives_a_full_cache(tmp_path):
    with Store(tmp_path, size_limit=250_000) as store:
        hashes = [
            store.put_bytes(bytes([k]) * 100_000, f"{k}.bin", owner=SESSION) for k in range(3)
        ]
        assert store.volume <= 250_000
        assert store.has(hashes[2], owner=SESSION) and not store.has(hashes[0], owner=SESSION)


def test_result_memo(store, result):
    assert store.get_result("nothing") is None
    store.put_result("k", result)
    assert store.get_result("k").get_result().shape == (6, 4, 2)
    with pytest.raises(TypeError, match=r"result must be an attribution\.AttributionResult"):
        store.put_result("k", {"not": "a result"})


def test_result_keys_are_canonical(monkeypatch):
    params = {"rule_name": {"Dense_Layer": "epsilon"}, "rule_param": 0.01, "output_idx": [0, 2]}
    key = result_key("m" * 64, "d" * 64, "LRP", params)
    assert key == result_key("m" * 64, "d" * 64, "LRP", dict(reversed(params.items())))
    assert len(key) == 64
    assert key != result_key("m" * 64, "d" * 64, "LRP", {**params, "rule_param": 0.1})
    assert key != result_key("m" * 64, "d" * 64, "DeepLift", params)
    assert key != result_key("m" * 64, "e" * 64, "LRP", params)
    monkeypatch.setattr(attribution, "__version__", "99.0")
    assert key != result_key("m" * 64, "d" * 64, "LRP", params)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (torch.tensor(1.0), r"A parameter has type Tensor .* convert it first\."),
        (float("nan"), r"params of LRP must be finite JSON values"),
    ],
)
def test_result_keys_need_json_parameters(value, message):
    with pytest.raises(TypeError, match=message):
        result_key("m", "d", "LRP", {"rule_param": value})
