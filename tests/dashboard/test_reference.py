"""Reference data: an uploaded reference input (IntegratedGradient, DeepLift) and the
background set of ExpectedGradient and DeepSHAP (the data, a seeded sample, or an upload)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from support.dashboard import SESSION

import attribution
from attribution import DeepLift, DeepSHAP, ExpectedGradient, IntegratedGradient
from dashboard.callbacks import loading
from dashboard.config import Config
from dashboard.jobs import build_request, request_owner, run_attribution, session_key
from dashboard.layout.parameters import parameter_controls
from dashboard.methods import canonical_params, run_method, sample_rows

IRIS = {"kind": "demo", "name": "iris"}
LIMIT = 50 * 1024**2


def _csv(rows: np.ndarray, header: str = "a,b,c,d") -> bytes:
    lines = [header, *(",".join(repr(float(v)) for v in row) for row in rows)]
    return ("\n".join(lines) + "\n").encode()


def _array(result) -> np.ndarray:
    return result.get_result("array")


def _request(store, method, raw, rows=3):
    return build_request(store, IRIS, IRIS, method, raw, ["0:0", "0:2"], rows, SESSION)


# --- canonical parameters ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["IntegratedGradient", "DeepLift"])
def test_an_uploaded_reference_input_is_named_by_its_sha(iris, method):
    sha = "ab" * 32
    params = canonical_params(method, {"reference": "upload", "reference_sha": sha}, iris)
    assert params["reference"] == "upload" and params["reference_sha"] == sha
    assert "reference_row" not in params
    other = canonical_params(method, {"reference": "mean", "reference_sha": sha}, iris)
    assert "reference_sha" not in other  # a stale upload does not change the key
    with pytest.raises(ValueError, match=rf"^{method} is set to an uploaded reference, but no "
                       r"reference file is uploaded: upload one"):  # fmt: skip
        canonical_params(method, {"reference": "upload"}, iris)
    with pytest.raises(ValueError, match=r"reference_sha 'abc' is not a sha256"):
        canonical_params(method, {"reference": "upload", "reference_sha": "abc"}, iris)


@pytest.mark.parametrize("method", ["ExpectedGradient", "DeepSHAP"])
def test_background_choices(iris, method):
    data = canonical_params(method, {"sample_size": 5, "reference_sha": "0" * 64}, iris)
    assert data["background"] == "data"
    assert not {"sample_size", "sample_seed", "reference_sha"} & set(data)
    sample = canonical_params(method, {"background": "sample"}, iris)
    assert (sample["sample_size"], sample["sample_seed"]) == (100, 0)
    sample = canonical_params(method, {"background": "sample", "sample_size": 7.0,
                                       "sample_seed": 3}, iris)  # fmt: skip
    assert (sample["sample_size"], sample["sample_seed"]) == (7, 3)
    assert type(sample["sample_size"]) is int
    upload = canonical_params(method, {"background": "upload", "reference_sha": "f" * 64}, iris)
    assert upload["reference_sha"] == "f" * 64 and "sample_size" not in upload


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"background": "sample", "sample_size": 0}, r"sample_size must be an integer >= 1"),
        ({"background": "sample", "sample_size": 2.5}, r"sample_size must be an integer >= 1"),
        ({"background": "sample", "sample_seed": -1}, r"sample_seed must be an integer >= 0"),
        ({"background": "mean"}, r"background 'mean' is not allowed; choose one of data, "
                                 r"sample, upload\."),
    ],
)  # fmt: skip
def test_bad_background_values_are_named(iris, raw, message):
    with pytest.raises(ValueError, match=message):
        canonical_params("DeepSHAP", raw, iris)


def test_the_cache_key_follows_the_reference_choice(store, iris_x):
    one, other = (
        store.put_bytes(_csv(iris_x[i : i + 1]), f"r{i}.csv", owner=SESSION) for i in (3, 4)
    )

    def key(request):
        return session_key(request, SESSION)

    def uploaded(sha):
        return key(
            _request(store, "IntegratedGradient", {"reference": "upload", "reference_sha": sha})
        )

    upload = uploaded(one)
    assert upload == uploaded(one)
    assert upload != uploaded(other)
    zeros = key(_request(store, "IntegratedGradient", {}))
    assert zeros == key(_request(store, "IntegratedGradient", {"reference_sha": one}))
    assert zeros != upload

    def sample(size, seed):
        raw = {"background": "sample", "sample_size": size, "sample_seed": seed}
        return key(_request(store, "ExpectedGradient", raw))

    assert sample(10, 1) == sample(10, 1)
    assert len({sample(10, 1), sample(11, 1), sample(10, 2)}) == 3
    assert sample(50, 1) == sample(1000, 1)  # capped at the data's 50 rows
    assert sample(10, 1) != key(_request(store, "ExpectedGradient", {}))
    data = key(_request(store, "ExpectedGradient", {}))
    assert data == key(_request(store, "ExpectedGradient", {"sample_size": 10, "sample_seed": 1}))


def test_sample_size_is_capped_in_the_request(store):
    raw = {"background": "sample", "sample_size": 1000}
    assert _request(store, "DeepSHAP", raw)["params"]["sample_size"] == 50


# --- the sampler ---------------------------------------------------------------------------


def test_sample_rows_is_a_reproducible_subset(iris_x):
    chosen = sample_rows(len(iris_x), 12, seed=5)
    assert len(chosen) == len(set(chosen.tolist())) == 12
    assert set(chosen.tolist()) <= set(range(len(iris_x)))
    np.testing.assert_array_equal(chosen, sample_rows(len(iris_x), 12, seed=5))
    assert set(sample_rows(len(iris_x), 12, seed=6).tolist()) != set(chosen.tolist())
    assert sorted(sample_rows(len(iris_x), 500, seed=5).tolist()) == list(range(len(iris_x)))
    rows = {tuple(row) for row in iris_x.tolist()}
    assert {tuple(row) for row in iris_x[chosen].tolist()} <= rows


# --- running with reference data -----------------------------------------------------------


@pytest.mark.parametrize(("method", "engine"), [("IntegratedGradient", IntegratedGradient),
                                                ("DeepLift", DeepLift)])  # fmt: skip
def test_uploaded_reference_input_equals_the_engine(iris, iris_x, method, engine):
    x, row = iris_x[:4], np.array([[5.0, 3.0, 1.5, 0.2]], dtype=np.float32)
    params = canonical_params(method, {"reference": "upload", "reference_sha": "1" * 64}, iris)
    got = run_method(iris, [x], method, params, [[0, 2]], reference_data=[iris_x],
                     uploaded_reference=[row])  # fmt: skip
    want = engine(iris.converter, x, x_ref=row, output_idx=[0, 2])
    np.testing.assert_array_equal(_array(got), _array(want))
    zeros = engine(iris.converter, x, output_idx=[0, 2])
    assert not np.allclose(_array(got), _array(zeros))
    with pytest.raises(ValueError, match=rf"{method} takes an uploaded reference, but none"):
        run_method(iris, [x], method, params, [[0]], reference_data=[iris_x])


@pytest.mark.parametrize(("method", "engine"), [("ExpectedGradient", ExpectedGradient),
                                                ("DeepSHAP", DeepSHAP)])  # fmt: skip
def test_sampled_background_equals_the_engine(iris, iris_x, method, engine):
    x = iris_x[:4]
    raw = {"background": "sample", "sample_size": 9, "sample_seed": 4, "n": 6}
    params = canonical_params(method, raw, iris)
    torch.manual_seed(2)
    got = run_method(iris, [x], method, params, [[0, 1]], reference_data=[iris_x])
    chosen = sample_rows(len(iris_x), 9, 4)
    kwargs = {"n": 6, "seed": 0} if method == "ExpectedGradient" else {"seed": 0}
    want = engine(iris.converter, x, data_ref=iris_x[chosen], output_idx=[0, 1], **kwargs)
    np.testing.assert_array_equal(_array(got), _array(want))
    everything = engine(iris.converter, x, data_ref=iris_x, output_idx=[0, 1], **kwargs)
    assert not np.allclose(_array(got), _array(everything))


@pytest.mark.parametrize(("method", "engine"), [("ExpectedGradient", ExpectedGradient),
                                                ("DeepSHAP", DeepSHAP)])  # fmt: skip
def test_uploaded_background_equals_the_engine(iris, iris_x, method, engine):
    x, background = iris_x[:3], iris_x[10:17] + 0.5
    params = canonical_params(method, {"background": "upload", "reference_sha": "2" * 64}, iris)
    torch.manual_seed(5)
    got = run_method(iris, [x], method, params, [[2]], reference_data=[iris_x],
                     uploaded_reference=[background])  # fmt: skip
    want = engine(iris.converter, x, data_ref=background, output_idx=[2], seed=0)
    np.testing.assert_array_equal(_array(got), _array(want))


def test_unconverted_models_take_the_sampled_background(scripted_model):
    torch.manual_seed(0)
    data = torch.rand(20, 1, 8, 8).numpy()
    raw = {"background": "sample", "sample_size": 6, "sample_seed": 1, "n": 4}
    params = canonical_params("ExpectedGradient", raw, scripted_model)
    torch.manual_seed(3)
    got = run_method(scripted_model, [data[:2]], "ExpectedGradient", params, [[0]],
                     reference_data=[data])  # fmt: skip
    want = attribution.torch_expgrad(scripted_model.module, data[:2], n=4, output_idx=[0],
                                     data_ref=data[sample_rows(20, 6, 1)], seed=0)  # fmt: skip
    np.testing.assert_array_equal(_array(got), want.numpy())


# --- the job with an uploaded file ---------------------------------------------------------


def test_the_job_reads_the_uploaded_reference_row(store, iris, iris_x):
    row = iris_x[7:8] * 0.9
    text = ",".join(repr(float(v)) for v in row[0])
    sha = store.put_bytes(
        f"sl,sw,pl,pw,label\n{text},setosa\n".encode(), "ref.csv", owner=SESSION
    )  # text: no input
    request = _request(store, "IntegratedGradient", {"reference": "upload", "reference_sha": sha})
    assert request["params"]["reference_sha"] == sha
    ref = run_attribution(store, request, request_owner(request, SESSION), lambda _: None)
    want = IntegratedGradient(iris.converter, iris_x[:3], x_ref=row, output_idx=[0, 2])
    got = _array(store.get_result(ref["key"]))
    np.testing.assert_allclose(got, _array(want), rtol=1e-6, atol=1e-7)


def test_the_job_reads_an_uploaded_background_npy(store, iris, iris_x, npy_bytes):
    background = iris_x[20:32]
    sha = store.put_bytes(npy_bytes(background), "background.npy", owner=SESSION)
    request = _request(store, "DeepSHAP", {"background": "upload", "reference_sha": sha})
    ref = run_attribution(store, request, request_owner(request, SESSION), lambda _: None)
    want = DeepSHAP(iris.converter, iris_x[:3], data_ref=background, output_idx=[0, 2])
    np.testing.assert_array_equal(_array(store.get_result(ref["key"])), _array(want))


@pytest.mark.parametrize(
    ("rows", "name", "message"),
    [
        (2, "two.csv", r"^The reference file two\.csv has 2 rows but the reference input is "
                       r"exactly one row: upload a file with one row"),
        (1, "narrow.csv", r"^The reference file does not fit the model: IrisMLP expects "
                          r"\(batch, 4\) but narrow\.csv has \(batch, 3\)"),
    ],
)  # fmt: skip
def test_bad_reference_files_say_what_is_wrong(store, iris_x, rows, name, message):
    values = iris_x[:rows] if name != "narrow.csv" else iris_x[:rows, :3]
    header = "a,b,c,d" if name != "narrow.csv" else "a,b,c"
    sha = store.put_bytes(_csv(values, header), name, owner=SESSION)
    with pytest.raises(ValueError, match=message):
        _request(store, "IntegratedGradient", {"reference": "upload", "reference_sha": sha})


def test_a_background_file_may_have_many_rows_but_must_fit(store, iris_x):
    sha = store.put_bytes(_csv(iris_x[:5]), "five.csv", owner=SESSION)
    request = _request(store, "ExpectedGradient", {"background": "upload", "reference_sha": sha})
    assert request["params"]["reference_sha"] == sha
    narrow = store.put_bytes(_csv(iris_x[:5, :2], "a,b"), "narrow.csv", owner=SESSION)
    with pytest.raises(ValueError, match=r"does not fit the model: IrisMLP expects \(batch, 4\)"):
        _request(store, "ExpectedGradient", {"background": "upload", "reference_sha": narrow})


# --- the page's side -----------------------------------------------------------------------


def test_receiving_a_reference_keeps_only_its_sha(store, tmp_path, iris_x, as_upload):
    config = Config(cache_dir=tmp_path / "cache")
    content = _csv(iris_x[:1])
    ref, info = loading.receive_reference(store, config, as_upload(content), "one.csv", IRIS,
                                            IRIS, SESSION)  # fmt: skip
    assert ref == {"sha": hashlib.sha256(content).hexdigest(), "filename": "one.csv"}
    assert store.get_bytes(ref["sha"], owner=SESSION) == content
    assert "1 row, (batch, 4)" in "".join(str(part) for part in info[1:])
    assert loading.reference_sha(ref) == ref["sha"] and loading.reference_sha(None) is None
    with pytest.raises(ValueError, match=r"Load a model before the reference file"):
        loading.receive_reference(store, config, as_upload(content), "one.csv", None, None, SESSION)
    with pytest.raises(ValueError, match=r"IrisMLP expects \(batch, 4\) but bad\.csv has"):
        loading.receive_reference(store, config, as_upload(_csv(iris_x[:1, :2], "a,b")),
                                    "bad.csv", IRIS, IRIS, SESSION)  # fmt: skip


def test_background_controls_and_no_sha_control(iris):
    names = [
        c.id["name"]
        for component in parameter_controls("DeepSHAP", iris)
        for c in [component, *component._traverse()]
        if isinstance(getattr(c, "id", None), dict) and c.id.get("type") == "parameter"
    ]
    assert {"background", "sample_size", "sample_seed"} <= set(names)
    assert "reference_sha" not in names
