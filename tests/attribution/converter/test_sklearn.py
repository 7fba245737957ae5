"""scikit-learn MLPs as objects and ``.skops`` files, checked against scikit-learn itself."""

from __future__ import annotations

import io
import json
import os
import sys
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("sklearn")
sio = pytest.importorskip("skops.io")

from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from attribution import (  # noqa: E402
    LRP,
    SHAP,
    ConnectionWeights,
    Converter,
    DeepLift,
    DeepSHAP,
    ExpectedGradient,
    Gradient,
    IntegratedGradient,
    SmoothGrad,
)
from attribution.converter import sklearn_format  # noqa: E402
from attribution.converter.files import read_model_file  # noqa: E402
from attribution.converter.loading import load_model  # noqa: E402
from attribution.methods.catalogue import applicable  # noqa: E402

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
ATOL = 1e-6


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


@pytest.fixture(scope="module")
def iris():
    frame = load_iris(as_frame=True)
    return frame.data, frame.target


def _classifier(iris, activation="relu", solver="adam"):
    X, y = iris
    mlp = MLPClassifier(
        hidden_layer_sizes=(6, 5), activation=activation, solver=solver, max_iter=60, random_state=0
    )
    return _fit(mlp, X, y)


def _binary(iris, activation="relu"):
    X, y = iris
    labels = np.where(y == 2, "virginica", "other")
    return _fit(
        MLPClassifier(hidden_layer_sizes=(5,), activation=activation, max_iter=60, random_state=0),
        X,
        labels,
    )


def _regressor(iris, activation="relu", outputs=1):
    X, _ = iris
    targets = X.iloc[:, :outputs].to_numpy() * 0.5 + 1.0
    mlp = MLPRegressor(hidden_layer_sizes=(7,), activation=activation, max_iter=60, random_state=0)
    return _fit(mlp, X.iloc[:, 1:].to_numpy(), targets.ravel() if outputs == 1 else targets)


def _converted_output(mlp, X) -> np.ndarray:
    converter = Converter(mlp, dtype="double")
    with torch.no_grad():
        return converter.model(torch.tensor(np.asarray(X), dtype=torch.float64))[0].numpy()


def _proba(mlp, X: np.ndarray) -> np.ndarray:
    """``predict_proba`` on an array, named as the model was fitted."""
    return mlp.predict_proba(pd.DataFrame(X, columns=mlp.feature_names_in_))


def _numeric_gradient(f, X: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of ``f`` (batch, n_out) per input: (batch, n_in, n_out)."""
    grads = []
    for i in range(X.shape[1]):
        step = np.zeros_like(X)
        step[:, i] = h
        grads.append((f(X + step) - f(X - step)) / (2 * h))
    return np.stack(grads, axis=1)


# --- forward equality and names ---------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_multiclass_output_is_predict_proba(iris, activation):
    mlp = _classifier(iris, activation)
    X = iris[0]
    np.testing.assert_allclose(_converted_output(mlp, X), mlp.predict_proba(X), atol=ATOL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the spec sets every key: no defaults warned about
        converter = Converter(mlp)
    assert converter.input_names == [[list(X.columns)]]
    assert converter.output_names == [["0", "1", "2"]]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_binary_output_is_predict_proba_with_both_classes(iris, activation):
    mlp = _binary(iris, activation)
    assert mlp.coefs_[-1].shape[1] == 1  # scikit-learn fits one logistic unit
    X = iris[0]
    np.testing.assert_allclose(_converted_output(mlp, X), mlp.predict_proba(X), atol=ATOL)
    assert Converter(mlp).output_names == [["other", "virginica"]]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("outputs", [1, 2])
def test_regressor_output_is_predict(iris, activation, outputs):
    mlp = _regressor(iris, activation, outputs)
    X = iris[0].iloc[:, 1:].to_numpy()
    expected = mlp.predict(X).reshape(len(X), outputs)
    np.testing.assert_allclose(_converted_output(mlp, X), expected, atol=ATOL)
    converter = Converter(mlp)
    assert converter.output_names == [[f"Y{k}" for k in range(1, outputs + 1)]]
    assert converter.input_names == [[["X1", "X2", "X3"]]]  # fitted on an array: no names


def test_multilabel_classifier_has_one_sigmoid_per_label(iris):
    X, y = iris
    labels = np.column_stack([y == 0, y == 2]).astype(int)
    mlp = _fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=60, random_state=0), X, labels)
    np.testing.assert_allclose(_converted_output(mlp, X), mlp.predict_proba(X), atol=ATOL)
    assert Converter(mlp).output_names == [["0", "1"]]


# --- methods against scikit-learn ----------------------------------------------------------


def test_gradient_times_input_matches_finite_differences_of_predict_proba(iris):
    mlp = _classifier(iris, "tanh")
    X = iris[0].to_numpy()[::30]
    expected = _numeric_gradient(lambda data: _proba(mlp, data), X) * X[:, :, None]
    result = Gradient(
        Converter(mlp), X, times_input=True, ignore_last_act=False, output_idx=[0, 1, 2],
        dtype="double",
    ).get_result()  # fmt: skip
    np.testing.assert_allclose(result, expected, atol=1e-6)


def test_binary_classes_are_explained_with_opposite_signs(iris):
    mlp = _binary(iris, "logistic")
    X = iris[0].to_numpy()[::25]
    converter = Converter(mlp)
    grad = Gradient(converter, X, output_idx=[0, 1], dtype="double").get_result()
    np.testing.assert_allclose(grad[..., 0], -grad[..., 1], atol=1e-12)
    lrp = LRP(converter, X, output_idx=[0, 1], ignore_last_act=False, dtype="double").get_result()
    assert np.abs(lrp).sum() > 0
    np.testing.assert_allclose(lrp[..., 0], -lrp[..., 1], atol=1e-10)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_deeplift_sums_to_the_change_of_predict_proba(iris, activation):
    mlp = _classifier(iris, activation)
    X = iris[0].to_numpy()
    x, x_ref = X[::20], X.mean(axis=0, keepdims=True)
    result = DeepLift(
        Converter(mlp), x, x_ref=x_ref, ignore_last_act=False, output_idx=[0, 1, 2],
        dtype="double",
    ).get_result()  # fmt: skip
    expected = _proba(mlp, x) - _proba(mlp, x_ref)
    np.testing.assert_allclose(result.sum(axis=1), expected, atol=1e-8)


def test_lrp_runs_on_a_regressor(iris):
    mlp = _regressor(iris, "relu", outputs=2)
    X = iris[0].iloc[:, 1:].to_numpy()[::30]
    result = LRP(Converter(mlp), X, output_idx=[0, 1]).get_result()
    assert result.shape == (len(X), 3, 2) and np.isfinite(result).all()


# --- .skops files ---------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_skops_file_reads_to_the_same_model(iris, solver):
    mlp = _classifier(iris, "tanh", solver)
    data = sio.dumps(mlp)
    spec = read_model_file(data, "m.skops")
    assert spec == sklearn_format.mlp_spec(mlp)
    X = iris[0]
    np.testing.assert_allclose(_converted_output(spec, X), mlp.predict_proba(X), atol=ATOL)


def test_skops_file_loads_with_every_method(iris, tmp_path):
    mlp = _classifier(iris)
    data = sio.dumps(mlp)
    loaded = load_model(data, "m.skops")
    assert loaded.methods == applicable(converted=True, differentiable=True)
    assert loaded.format == "skops file" and loaded.output_names == [["0", "1", "2"]]
    assert loaded.input_names == [[list(iris[0].columns)]]
    X = iris[0].to_numpy()[::30]
    conv = loaded.converter
    for method in (Gradient, SmoothGrad, IntegratedGradient, LRP, DeepLift):
        assert np.isfinite(method(conv, X).get_result()).all(), method.__name__
    for method in (ExpectedGradient, DeepSHAP):
        assert np.isfinite(method(conv, X, data_ref=X).get_result()).all(), method.__name__
    assert np.isfinite(ConnectionWeights(conv).get_result()).all()
    path = tmp_path / "mlp.skops"
    path.write_bytes(data)
    assert Converter(path).output_names == [["0", "1", "2"]]


def test_spec_is_a_json_model_file(iris):
    mlp = _regressor(iris, "tanh", outputs=2)
    spec = read_model_file(json.dumps(sklearn_format.mlp_spec(mlp)).encode(), "mlp.json")
    X = iris[0].iloc[:, 1:].to_numpy()
    np.testing.assert_allclose(_converted_output(spec, X), mlp.predict(X), atol=ATOL)


def test_object_kind_is_named_in_load_model(iris):
    loaded = load_model(_regressor(iris))
    assert loaded.format == "scikit-learn estimator" and loaded.name == "MLPRegressor"


class Shift(BaseEstimator, TransformerMixin):
    """A custom transformer: a type skops does not trust."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X + 1.0


@pytest.fixture
def no_loading(monkeypatch):
    """The calls of ``skops.io.loads``, which is replaced so that nothing loads."""
    calls = []
    monkeypatch.setattr(sio, "loads", lambda *args, **kwargs: calls.append(args))
    yield calls
    assert not calls, "skops.io.loads was called"


@pytest.mark.parametrize(
    ("make", "untrusted"),
    [
        (lambda iris: make_pipeline(Shift(), _classifier(iris)), "Shift"),
        (lambda iris: {"f": os.system}, "system"),
    ],
)
def test_untrusted_types_are_refused_without_loading(iris, no_loading, make, untrusted):
    data = sio.dumps(make(iris))
    with pytest.raises(ValueError, match=f"not trusted: .*{untrusted}"):
        read_model_file(data, "m.skops")


def test_a_pipeline_loads_for_lime_and_shap_with_its_probabilities(iris):
    X, y = iris
    pipeline = _fit(
        make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(4,), max_iter=20)), X, y
    )
    loaded = load_model(sio.dumps(pipeline), "m.skops")
    assert loaded.converter is None and loaded.module is None
    assert loaded.methods == ["LIME", "SHAP"] and loaded.output_names == [["0", "1", "2"]]
    assert "Pipeline is not a scikit-learn MLP" in loaded.conversion_error
    result = SHAP(loaded.predictor, X[:3], X, seed=0, output_idx=[0, 1, 2], nsim=3, adjust=True)
    np.testing.assert_allclose(result.preds[0].numpy(), pipeline.predict_proba(X[:3]), rtol=1e-5)
    np.testing.assert_allclose(result.get_result().sum(1), result.decomp_goal[0].numpy(),
                               atol=1e-5)  # fmt: skip


def test_a_skops_file_naming_a_function_is_refused_before_loading(iris, no_loading):
    from sklearn.datasets import dump_svmlight_file
    from sklearn.preprocessing import FunctionTransformer

    pipeline = make_pipeline(FunctionTransformer(dump_svmlight_file), LogisticRegression())
    data = sio.dumps(pipeline)  # unfitted: only its types matter
    with pytest.raises(ValueError, match="dump_svmlight_file"):
        read_model_file(data, "m.skops")


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.random.default_rng(0).bytes(500), "not a .skops file"),
        ("truncated", "not a .skops file"),
        (_zip({"weights.npy": b"123"}), "without skops' schema.json"),
        (_zip({"schema.json": b"{not json"}), "not a valid .skops file"),
    ],
)
def test_damaged_files_are_explained(iris, data, message):
    if data == "truncated":
        data = sio.dumps(_classifier(iris))[:2000]
    with pytest.raises(ValueError, match=message):
        read_model_file(data, "m.skops")


def test_oversized_files_are_refused(monkeypatch, no_loading):
    monkeypatch.setattr(sklearn_format, "MAX_SKOPS_BYTES", 100)
    with pytest.raises(ValueError, match="more than the 100 read"):
        read_model_file(b"x" * 101, "m.skops")


def test_archives_expanding_beyond_the_bound_are_refused(monkeypatch, no_loading):
    monkeypatch.setattr(sklearn_format, "MAX_SKOPS_BYTES", 10_000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", b"{}")
        archive.writestr("0.npy", bytes(50_000))
    assert len(buffer.getvalue()) < 10_000
    with pytest.raises(ValueError, match="would expand from [0-9]+ to 50002 bytes"):
        read_model_file(buffer.getvalue(), "m.skops")


def test_missing_skops_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(ImportError, match=r"pip install 'innsight-python\[sklearn\]'"):
        read_model_file(b"PK", "m.skops")


# --- refused models ---------------------------------------------------------------------------


def test_unfitted_mlp_is_refused():
    with pytest.raises(ValueError, match=r"not fitted: call MLPClassifier.fit\(X, y\)"):
        Converter(MLPClassifier())
    with pytest.raises(ValueError, match="This MLPRegressor is not fitted"):
        read_model_file(sio.dumps(MLPRegressor()), "m.skops")


def test_other_estimators_are_refused_by_the_converter_and_load_for_lime_and_shap(iris):
    logistic = _fit(LogisticRegression(max_iter=200), *iris)
    with pytest.raises(ValueError, match="LogisticRegression is not a scikit-learn MLP"):
        Converter(logistic)
    for loaded in (load_model(sio.dumps(logistic), "m.skops"), load_model(logistic)):
        assert loaded.predictor is not None and loaded.methods == ["LIME", "SHAP"]
        assert loaded.input_dim == [(4,)] and loaded.output_dim == [(3,)]
    forest = _fit(RandomForestRegressor(n_estimators=3, random_state=0), *iris)
    loaded = load_model(sio.dumps(forest), "forest.skops")
    assert loaded.output_dim == [(1,)] and loaded.output_names == [["Y1"]]
    with pytest.raises(ValueError, match="not fitted"):
        load_model(LogisticRegression())


def test_poisson_output_is_refused(iris):
    X, y = iris
    mlp = _fit(MLPRegressor(hidden_layer_sizes=(3,), loss="poisson", max_iter=20), X, y + 1.0)
    with pytest.raises(ValueError, match=r"out_activation_ is 'exp' \(loss='poisson'"):
        Converter(mlp)


def test_inconsistent_attributes_are_refused(iris):
    mlp = _classifier(iris)
    mlp.coefs_[1] = mlp.coefs_[1][:-1]
    with pytest.raises(ValueError, match=r"coefs_\[1\] has shape \(5, 5\)"):
        Converter(mlp)
