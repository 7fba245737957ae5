"""The job: a canonical request from the page's values, computing it, and its memo key."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from support.dashboard import SESSION

import attribution
import demo_data
from attribution import DeepLift
from dashboard.jobs import (
    build_request,
    clamped_notes,
    parse_outputs,
    request_owner,
    run_attribution,
    session_key,
)
from dashboard.methods import canonical_params, run_method
from dashboard.store import Store

IRIS = {"kind": "demo", "name": "iris"}


def _request(store, method="Gradient", raw=None, outputs=("0:0",), rows=5, model=IRIS, data=IRIS):
    return build_request(store, model, data, method, raw or {}, list(outputs), rows, SESSION)


# --- build_request -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": None}, r"^No model is loaded: pick a demo or upload a model first\.$"),
        ({"data": None}, r"^No data is loaded: upload a data file \(a demo brings its own\)\.$"),
        ({"method": None}, r"^Choose a method first\.$"),
        ({"method": ""}, r"^Choose a method first\.$"),
        ({"outputs": ()}, r"^Select at least one output node\.$"),
        ({"rows": 0}, r"^Rows to explain must be a whole number ≥ 1; got 0\.$"),
        ({"rows": -3}, r"got -3\.$"),
        ({"rows": None}, r"got nothing \(the field is empty\)\.$"),
        ({"rows": True}, r"got True\.$"),
        ({"rows": 2.5}, r"got 2\.5\.$"),
        ({"rows": "4"}, r"got '4'\.$"),
        ({"data": {"kind": "demo", "name": "diabetes"}},
         r"^IrisMLP expects \(batch, 4\) but diabetes \(demo test set\) has \(batch, 10\): "),
        ({"model": {"kind": "demo", "name": "digits_table"}, "data": {"kind": "demo",
                                                                     "name": "digits"}},
         r"^DigitsPlusTable has 2 input layer\(s\) \(batch, 1, 8, 8\), \(batch, 3\) but digits "
         r"\(demo test set\) holds 1 input array\(s\) \(batch, 1, 8, 8\)"),
        ({"outputs": ("0:3",)}, r"^Output '0:3' is not a node of the model; it has 1 output "
                                r"layer\(s\) with Output_1: 3 nodes \(0-based\)\."),
        ({"outputs": ("1:0",)}, r"^Output '1:0' is not a node of the model"),
        ({"outputs": ("first",)}, r"^Output 'first' is not 'layer:node'"),
        ({"method": "LRP", "raw": {"rule_name": {"Dense_Layer": "rescale"}}},
         r"^LRP rule 'rescale' is not allowed for Dense_Layer"),
        ({"method": "DeepLift", "raw": {"reference": "row", "reference_row": 50}},
         r"^Reference row 50 is out of range: iris \(demo test set\) has 50 rows \(0-based, "
         r"0–49\)\.$"),
    ],
)  # fmt: skip
def test_build_request_names_what_is_wrong(store, changes, message):
    arguments = {"method": "Gradient", "raw": {}, "outputs": ("0:0",), "rows": 5,
                 "model": IRIS, "data": IRIS, **changes}  # fmt: skip
    with pytest.raises(ValueError, match=message):
        _request(store, **arguments)


def test_build_request_is_canonical(store, demo_model):
    request = _request(store, "SmoothGrad", {"n": 5.0, "x": 1}, ("0:2", "0:0", "0:2"), 7.0)
    assert request == {
        "model": IRIS,
        "data": IRIS,
        "method": "SmoothGrad",
        "params": canonical_params("SmoothGrad", {"n": 5}, demo_model("iris")),
        "output_idx": [[0, 2]],
        "rows": 7,
    }
    assert request["params"]["n"] == 5 and type(request["params"]["n"]) is int


def test_rows_are_capped_at_the_data(store):
    assert _request(store, rows=1000)["rows"] == 50
    assert _request(store, rows=50)["rows"] == 50
    assert _request(store, rows=1)["rows"] == 1


def test_capped_rows_and_samples_say_what_was_asked(store):
    raw = {"background": "sample", "sample_size": 80}
    capped = _request(store, "ExpectedGradient", raw, rows=1000.0)
    assert clamped_notes(capped, 1000.0, raw) == [
        "Rows: 1000 asked, the data has 50: all 50 explained.",
        "Sample size: 80 asked, the data has 50 rows: all 50 drawn.",
    ]
    within = {**raw, "sample_size": 20}
    assert clamped_notes(_request(store, "ExpectedGradient", within, rows=10), 10, within) == []


def test_outputs_per_output_layer(store):
    both = {"kind": "demo", "name": "digits_table"}
    request = _request(store, outputs=("1:0", "0:3", "0:1"), model=both, data=both)
    assert request["output_idx"] == [[1, 3], [0]]
    assert _request(store, outputs=("1:0",), model=both, data=both)["output_idx"] == [None, [0]]
    assert parse_outputs(["0:1", "0:0"], [["a", "b"]]) == [[0, 1]]


# --- request_key ---------------------------------------------------------------------------


def test_request_key_is_equal_for_equal_requests(store):
    a = _request(store, "IntegratedGradient", {"n": 10, "reference": "mean"}, ("0:1", "0:0"))
    b = _request(store, "IntegratedGradient", {"reference": "mean", "n": 10}, ("0:0", "0:1"))
    assert a == b
    assert (
        session_key(a, SESSION)
        == session_key(dict(reversed(b.items())), SESSION)
        == session_key(b, SESSION)
    )
    assert len(session_key(a, SESSION)) == 64


def test_request_key_differs_with_the_request(store, monkeypatch):
    base = _request(store, "IntegratedGradient", {"n": 10}, ("0:0",), 5)
    others = [
        _request(store, "IntegratedGradient", {"n": 11}, ("0:0",), 5),
        _request(store, "IntegratedGradient", {"n": 10, "times_input": False}, ("0:0",), 5),
        _request(store, "IntegratedGradient", {"n": 10, "reference": "mean"}, ("0:0",), 5),
        _request(store, "IntegratedGradient", {"n": 10}, ("0:1",), 5),
        _request(store, "IntegratedGradient", {"n": 10}, ("0:0", "0:1"), 5),
        _request(store, "IntegratedGradient", {"n": 10}, ("0:0",), 6),
        _request(store, "ExpectedGradient", {"n": 10}, ("0:0",), 5),
    ]
    keys = {session_key(base, SESSION), *(session_key(other, SESSION) for other in others)}
    assert len(keys) == 1 + len(others)
    other_data = {**base, "data": {"kind": "upload", "sha": "0" * 64, "input_columns": None,
                                   "channels_last": False}}  # fmt: skip
    assert session_key(other_data, SESSION) != session_key(base, SESSION)
    key = session_key(base, SESSION)
    monkeypatch.setattr(attribution, "__version__", "0.0.0-other")
    assert session_key(base, SESSION) != key


# --- run_attribution -----------------------------------------------------------------------


def test_run_attribution_memoises_the_result(store, demo_model):
    digits = {"kind": "demo", "name": "digits"}
    request = _request(store, "LRP", {"rule_name": {"Conv2D_Layer": "epsilon"}}, ("0:0", "0:7"),
                       3, model=digits, data=digits)  # fmt: skip
    progress: list[tuple[int, int]] = []
    ref = run_attribution(store, request, request_owner(request, SESSION), progress.append)
    assert ref == {"key": session_key(request, SESSION), "request": request}
    assert progress and all(len(step) == 2 for step in progress)
    done = [d for d, _ in progress]
    assert done == sorted(done) and progress[-1][0] == progress[-1][1]

    stored = store.get_result(ref["key"])
    assert stored is not None and stored.method_name == "LRP"
    model = demo_model("digits")
    x = demo_data.load_demo("digits").inputs[0][:3]
    direct = run_method(model, [x], "LRP", request["params"], [[0, 7]])
    np.testing.assert_array_equal(stored.get_result("array"), direct.get_result("array"))
    assert stored.get_result("array").shape == (3, 1, 8, 8, 2)

    store.close()
    with Store(store.directory, 50 * 1024**2) as restarted:  # another process, or a restart
        again = restarted.get_result(ref["key"])
    assert again is not None
    np.testing.assert_array_equal(again.get_result("array"), direct.get_result("array"))


def test_references_come_from_all_the_data(store, demo_model):
    request = _request(store, "DeepLift", {"reference": "mean"}, ("0:1",), 3)
    ref = run_attribution(store, request, request_owner(request, SESSION), lambda _: None)
    x = demo_data.load_demo("iris").inputs[0]
    want = DeepLift(demo_model("iris").converter, x[:3], x_ref=x.mean(axis=0, keepdims=True),
                    output_idx=[1])  # fmt: skip
    got = store.get_result(ref["key"])
    assert got.n_data == 3
    np.testing.assert_array_equal(got.get_result("array"), want.get_result("array"))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_an_uploaded_unconverted_model_with_csv_data(trusting_store, npy_bytes):
    store = trusting_store
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module.eval()), buffer)
    model_ref = {"kind": "upload", "sha": store.put_bytes(buffer.getvalue(), "m.pt", owner=SESSION),
                 "input_dim": None}  # fmt: skip
    csv = b"a,b,label,c\n1,2,x,3\n0.5,-1,y,2\n-2,0,x,1\n"
    sha = store.put_bytes(csv, "t.csv", owner=SESSION)
    data_ref = {"kind": "upload", "sha": sha, "input_columns": None, "channels_last": False}
    request = build_request(store, model_ref, data_ref, "Gradient", {"times_input": True},
                            ["0:1"], 10, SESSION)  # fmt: skip
    assert request["rows"] == 3 and "ignore_last_act" not in request["params"]
    progress: list = []
    ref = run_attribution(store, request, request_owner(request, SESSION), progress.append)
    assert progress == [(1, 1)]
    x = np.array([[1, 2, 3], [0.5, -1, 2], [-2, 0, 1]], dtype=np.float32)
    want = attribution.torch_grad(module, x, output_idx=[1], times_input=True)
    got = store.get_result(ref["key"]).get_result("array")
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=1e-7)
    # the CSV header names the features of a model that only has innsight's defaults
    frame = store.get_result(ref["key"]).get_result("data.frame")
    assert list(frame["feature"].cat.categories) == ["a", "b", "c"]


def test_a_models_own_feature_names_win_over_the_csv_header(store, demo_ref):
    csv = b"w,x,y,z\n5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n"
    sha = store.put_bytes(csv, "t.csv", owner=SESSION)
    data_ref = {"kind": "upload", "sha": sha, "input_columns": None, "channels_last": False}
    request = build_request(store, demo_ref("iris"), data_ref, "Gradient", {}, ["0:0"], 2, SESSION)
    ref = run_attribution(store, request, request_owner(request, SESSION), lambda _: None)
    frame = store.get_result(ref["key"]).get_result("data.frame")
    iris_names = demo_data.load_demo("iris").input_names[0][0]
    assert list(frame["feature"].cat.categories) == iris_names


@pytest.mark.parametrize("method", ["LIME", "SHAP"])
def test_an_uploaded_scikit_learn_forest_is_explained_by_lime_and_shap(store, method):
    skops = pytest.importorskip("skops.io")
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    forest = RandomForestClassifier(n_estimators=5, random_state=0)
    forest.fit(frame, np.where(frame["b"] > 0, "high", "low"))
    sha = store.put_bytes(skops.dumps(forest), "f.skops", owner=SESSION)
    model_ref = {"kind": "upload", "sha": sha, "input_dim": None}
    csv = frame.iloc[:6].to_csv(index=False).encode()
    data_ref = {"kind": "upload", "sha": store.put_bytes(csv, "t.csv", owner=SESSION),
                "input_columns": None, "channels_last": False}  # fmt: skip
    raw = {"n_permutations": 200} if method == "LIME" else {"nsim": 3}
    request = build_request(store, model_ref, data_ref, method, raw, ["0:0"], 6, SESSION)
    ref = run_attribution(store, request, request_owner(request, SESSION), lambda _: None)
    got = store.get_result(ref["key"])
    x = pd.read_csv(io.BytesIO(csv)).to_numpy(dtype=np.float32)
    engine = getattr(attribution, method)
    want = engine(forest, x, x, output_idx=[0], seed=0, **raw)
    np.testing.assert_allclose(got.get_result("array"), want.get_result("array"), rtol=1e-6)
    assert got.output_names == [["high", "low"]] and got.value_name == want.value_name
