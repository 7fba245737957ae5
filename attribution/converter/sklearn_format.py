"""scikit-learn estimators as objects and as ``.skops`` files: MLPs convert, the rest are
explained by LIME and SHAP.

A fitted multilayer perceptron of scikit-learn (the Python counterpart of R's
``neuralnet``) maps to innsight's named-list spec: one ``Dense`` layer per entry of
``coefs_`` (stored ``(in, out)``, transposed to torch's ``(out, in)``), the hidden layers
with ``activation`` and the last one with ``out_activation_``. The spec then converts like
any other (``Converter(mlp)``, ``load_model(mlp)``) and gets every method.

Outputs
-------
- Multi-class classifier: ``softmax`` over one unit per class; the converted model's
  output equals ``predict_proba``. Output names are ``classes_`` as strings.
- Binary classifier: scikit-learn fits one logistic unit ``p = σ(z)`` for
  ``classes_[1]``, while ``predict_proba`` returns ``[1 − p, p]``. The spec has two
  ``sigmoid`` outputs with pre-activations ``−z`` and ``z`` (σ(−z) = 1 − σ(z)), so the
  output equals ``predict_proba`` and both classes are named and explainable; the
  attributions of the first class are those of the second with the sign flipped (also for
  ``ignore_last_act``, whose pre-activation ``−z`` is the first class's log-odds). A
  ``softmax`` over ``[0, z]`` would give the same probabilities but a constant
  pre-activation, hence zero attributions, for the first class.
- Multi-label classifier: one ``sigmoid`` unit per label, as ``predict_proba``.
- Regressor: ``identity`` outputs named ``Y1``..., single- and multi-output; the output
  equals ``predict`` (as a column). ``loss="poisson"`` (``exp`` output) is refused.

``Converter`` and ``load_model`` take every scikit-learn object (its class is checked by
module name, without importing scikit-learn). Another fitted estimator or ``Pipeline``
loads (``load_model``) as a model only LIME and SHAP explain, from ``predict_proba`` (a
classifier, outputs named by ``classes_``) or ``predict``; ``Converter`` refuses it with
a message naming it and those methods.

Input names come from ``feature_names_in_`` (set when the model was fitted on a data
frame), otherwise innsight's ``X1``....

``.skops`` files
----------------
A ``.skops`` file (``skops.io.dump(mlp, path)``) is read without pickle: its types are
listed with ``skops.io.get_untrusted_types`` first, and a file naming any type outside
skops' defaults and the optimiser classes an MLP keeps (:data:`TRUSTED_TYPES`) is
refused without loading it. An MLP converts; any other fitted estimator or pipeline of
scikit-learn's own classes loads as a model that LIME and SHAP explain.
skops and scikit-learn are imported on first use (extra ``sklearn``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from attribution.converter.files import (
    ModelFormat,
    ModelObjectKind,
    PredictionModel,
    open_zip,
    register_model_format,
    register_model_object,
)
from attribution.errors import MissingDependencyError

MLP_CLASSES = ("MLPClassifier", "MLPRegressor")
"""The scikit-learn estimators that convert."""

TRUSTED_TYPES = (
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.tree._tree.Tree",
)
"""Types outside skops' defaults that fitted estimators hold (an MLP's optimiser for
``adam`` and ``sgd``, the trees of tree ensembles), each a data container that skops
rebuilds from arrays; a ``.skops`` file with any other such type (a function, a custom
class) is refused."""

MAX_SKOPS_BYTES = 64 * 2**20
"""The largest ``.skops`` file read, and the most its entries may expand to (×4)."""

_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_OUT_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "softmax": "softmax"}
_EXTRA_HINT = (
    "install the extra: pip install 'innsight-python[sklearn]' (scikit-learn>=1.3, skops>=0.9)"
)


def _is_sklearn_object(obj: Any) -> bool:
    """Whether ``obj`` comes from scikit-learn (checked without importing it)."""
    return type(obj).__module__.startswith("sklearn.")


def mlp_spec(mlp: Any) -> dict:
    """innsight's spec dict for a fitted ``MLPClassifier`` or ``MLPRegressor``.

    Parameters
    ----------
    mlp : sklearn.neural_network.MLPClassifier or MLPRegressor
        A fitted model (other scikit-learn estimators are refused).

    Returns
    -------
    dict
        A chain of ``Dense`` layers with ``input_names`` from ``feature_names_in_`` (if
        present) and ``output_names`` from ``classes_`` or ``Y1``... (see the module notes
        for the binary case); plain lists, so ``json.dump`` writes it as a ``.json`` model
        file.

    Raises
    ------
    ValueError
        ``mlp`` is another estimator, a pipeline, not fitted, or its attributes are
        inconsistent (a tampered file).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neural_network import MLPRegressor
    >>> mlp = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs").fit(np.eye(3), [0.0, 1.0, 2.0])
    >>> spec = mlp_spec(mlp)
    >>> [layer["dim_out"] for layer in spec["layers"]], spec["output_names"]
    ([[4], [1]], [['Y1']])
    """
    name = type(mlp).__name__
    if not _is_sklearn_object(mlp) or name not in MLP_CLASSES:
        step = (
            " (a Pipeline: pass its last step, pipeline[-1], and transform the data with "
            "pipeline[:-1] yourself)"
            if name == "Pipeline"
            else ""
        )
        raise ValueError(
            f"{name}{step} is not a scikit-learn MLP: only MLPClassifier and MLPRegressor "
            "convert (other estimators are not neural networks). Fit one of them instead."
        )
    if not hasattr(mlp, "coefs_"):
        raise ValueError(f"This {name} is not fitted: call {name}.fit(X, y) before converting.")
    weights, biases = _layers(mlp, name)
    hidden = _activation(getattr(mlp, "activation", None), _ACTIVATIONS, f"{name}.activation")
    out = _activation(
        getattr(mlp, "out_activation_", None), _OUT_ACTIVATIONS, f"{name}.out_activation_"
    )
    n_out = weights[-1].shape[0]
    if out == "sigmoid" and n_out == 1 and name == "MLPClassifier":
        weights[-1] = np.concatenate([-weights[-1], weights[-1]])
        biases[-1] = np.concatenate([-biases[-1], biases[-1]])
        n_out = 2
    layers = []
    for number, (weight, bias) in enumerate(zip(weights, biases, strict=True), start=1):
        layers.append(
            {
                "type": "Dense",
                "input_layers": [number - 1],
                "output_layers": [number + 1 if number < len(weights) else -1],
                "dim_in": [weight.shape[1]],
                "dim_out": [weight.shape[0]],
                "weight": weight.tolist(),
                "bias": bias.tolist(),
                "activation_name": out if number == len(weights) else hidden,
            }
        )
    spec = {
        "input_dim": [weights[0].shape[1]],
        "input_nodes": [1],
        "output_nodes": [len(layers)],
        "layers": layers,
        "output_names": [_output_names(mlp, name, n_out)],
    }
    features = getattr(mlp, "feature_names_in_", None)
    if features is not None:
        features = [str(feature) for feature in np.asarray(features).ravel()]
        if len(features) != weights[0].shape[1]:
            raise ValueError(
                f"{name}.feature_names_in_ names {len(features)} features but the first layer "
                f"takes {weights[0].shape[1]}; fit the model again."
            )
        spec["input_names"] = [[features]]
    return spec


def _layers(mlp: Any, name: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The weights ``(out, in)`` and biases per layer, checked to chain."""
    coefs, intercepts = getattr(mlp, "coefs_", None), getattr(mlp, "intercepts_", None)
    if not isinstance(coefs, (list, tuple)) or not isinstance(intercepts, (list, tuple)):
        raise ValueError(f"{name}.coefs_ and .intercepts_ must be lists of arrays; fit it again.")
    if not coefs or len(coefs) != len(intercepts):
        raise ValueError(
            f"{name} has {len(coefs)} weight matrices and {len(intercepts)} bias vectors; they "
            "must be as many and at least one. Fit the model again."
        )
    weights, biases, width = [], [], None
    for number, (coef, intercept) in enumerate(zip(coefs, intercepts, strict=True), start=1):
        weight = np.asarray(coef, dtype=np.float64)
        bias = np.asarray(intercept, dtype=np.float64)
        if (
            weight.ndim != 2
            or bias.shape != (weight.shape[1],)
            or weight.shape[0] != (width or weight.shape[0])
        ):
            raise ValueError(
                f"{name}.coefs_[{number - 1}] has shape {weight.shape} and intercepts_"
                f"[{number - 1}] shape {bias.shape}; they do not chain into a network (a "
                "damaged or edited model). Fit the model again."
            )
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise ValueError(
                f"{name}.coefs_[{number - 1}] or intercepts_[{number - 1}] holds NaN or inf: "
                "the fit diverged. Fit again with a smaller learning rate or scaled inputs."
            )
        weights.append(weight.T.copy())
        biases.append(bias)
        width = weight.shape[1]
    return weights, biases


def _activation(value: Any, names: dict[str, str], what: str) -> str:
    if not isinstance(value, str) or value not in names:
        extra = " (loss='poisson'; use loss='squared_error')" if value == "exp" else ""
        raise ValueError(
            f"{what} is {value!r}{extra}; innsight converts {', '.join(map(repr, names))}. "
            "Fit the model with one of them."
        )
    return names[value]


def _output_names(mlp: Any, name: str, n_out: int) -> list[str]:
    if name == "MLPRegressor":
        return [f"Y{k}" for k in range(1, n_out + 1)]
    classes = np.asarray(getattr(mlp, "classes_", None), dtype=object).ravel()
    if len(classes) != n_out:
        raise ValueError(
            f"{name}.classes_ lists {len(classes)} classes but the output layer has {n_out} "
            "units; fit the model again."
        )
    return [str(label) for label in classes]


# --- .skops files ---------------------------------------------------------------------------


def read_skops(data: bytes, name: str) -> dict | PredictionModel:
    """The fitted estimator in a ``.skops`` file, read without unpickling.

    Parameters
    ----------
    data : bytes
        The file's content (``skops.io.dumps(mlp)``).
    name : str
        The file name, for messages.

    Returns
    -------
    dict or PredictionModel
        :func:`adapt` of the stored estimator: an MLP's spec, else the estimator.

    Raises
    ------
    ValueError
        The file is too large, damaged, not a skops file, names a type outside the trusted
        ones (listed in the message), or holds no fitted estimator.
    MissingDependencyError
        skops or scikit-learn is missing (the message names the extra).
    """
    sio = _skops()
    if len(data) > MAX_SKOPS_BYTES:
        raise ValueError(
            f"{name} has {len(data)} bytes, more than the {MAX_SKOPS_BYTES} read from a "
            ".skops file; an MLP this large cannot be explained interactively."
        )
    _check_archive(data, name)
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as error:  # skops raises many kinds for malformed schemas
        raise ValueError(
            f"{name} is not a valid .skops file ({type(error).__name__}: {error}). Save the "
            "model with skops.io.dump(mlp, 'model.skops')."
        ) from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ValueError(
            f"{name} holds types that are not trusted: {', '.join(refused)}. Loading them could "
            "run code from the file, so it is refused. Save an estimator of scikit-learn's "
            "own classes (no custom transformers or functions): skops.io.dump(model, "
            "'model.skops')."
        )
    try:
        model = sio.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as error:  # a file that passes the type check may still be damaged
        raise ValueError(
            f"{name} could not be loaded ({type(error).__name__}: {error}). Save the model "
            "again with skops.io.dump(mlp, 'model.skops')."
        ) from None
    return adapt(model)


def _check_archive(data: bytes, name: str) -> None:
    """Refuse bytes that are no zip, expand beyond the size bound, or lack skops' schema."""
    kind = ".skops file (a zip archive written by skops.io.dump)"
    _, entries = open_zip(data, name, kind, max_expanded=4 * MAX_SKOPS_BYTES)
    if "schema.json" not in {entry.filename for entry in entries}:
        raise ValueError(
            f"{name} is a zip archive without skops' schema.json, not a .skops file. Save the "
            "model with skops.io.dump(mlp, 'model.skops')."
        )


def _skops() -> Any:
    try:
        import sklearn.neural_network  # noqa: F401  (skops loads the estimator classes)
        import skops.io as sio
    except ImportError as error:
        raise MissingDependencyError(
            f"Reading .skops files needs skops and scikit-learn ({error.name} is missing): "
            f"{_EXTRA_HINT}."
        ) from error
    return sio


def adapt(estimator: Any) -> dict | PredictionModel:
    """An MLP's spec (:func:`mlp_spec`); any other fitted estimator or pipeline as a
    :class:`~attribution.converter.files.PredictionModel`, which LIME and SHAP explain
    (``predict_proba`` of a classifier, ``predict`` of a regressor)."""
    name = type(estimator).__name__
    if name in MLP_CLASSES:
        return mlp_spec(estimator)
    n_features = getattr(estimator, "n_features_in_", None)
    if not isinstance(n_features, int | np.integer):
        raise ValueError(
            f"This {name} is not fitted (it has no n_features_in_): call {name}.fit(X, y) first."
        )
    reason = (
        f"{name} is not a scikit-learn MLP: only MLPClassifier and MLPRegressor convert "
        "(other estimators are not neural networks). LIME and SHAP explain it from its "
        "predictions: LIME(model, x) or SHAP(model, x)."
    )
    classes = getattr(estimator, "classes_", None)
    labels = None
    if hasattr(estimator, "predict_proba") and classes is not None:
        labels = [str(c) for c in np.asarray(classes).ravel()]
    names = getattr(estimator, "feature_names_in_", None)
    names = None if names is None else [str(n) for n in names]
    return PredictionModel(estimator, [(int(n_features),)], names, labels, reason)


SKLEARN_MLP = register_model_object(
    ModelObjectKind("scikit-learn estimator", _is_sklearn_object, adapt)
)
"""``Converter(mlp)`` and ``load_model(mlp)`` take scikit-learn objects: MLPs convert, every
other fitted estimator is explained by LIME and SHAP (``Converter`` refuses it with a
message naming it)."""

SKOPS_FORMAT = register_model_format(ModelFormat("skops file", (".skops",), read_skops))
"""``.skops`` files of fitted estimators (:func:`read_skops`)."""
