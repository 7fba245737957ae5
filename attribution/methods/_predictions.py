"""Any model as a prediction function: the view LIME and SHAP take of what they explain.

:func:`predictor` turns what the user passed (a ``Converter``, a torch module, a loaded
TorchScript or ``torch.export`` program, a Keras model, a fitted scikit-learn estimator or
pipeline, or a ``pred_fun``) into one function from channels-first tensors to a
``(batch, n_outputs)`` matrix of predictions, with innsight's ``output_type``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from attribution.converter.converter import Converter
from attribution.methods.base import model_view

OutputType = Literal["classification", "regression"]
OUTPUT_TYPES = ("classification", "regression")
_CLASSIFYING_ACTIVATIONS = {"softmax", "sigmoid", "tanh", "logistic"}  # innsight's set


@dataclass
class Predictor:
    """Predictions of a model on channels-first float64 inputs (one tensor per input
    layer), as a ``(batch, n_outputs)`` float64 tensor."""

    predict: Callable[[list[Tensor]], Tensor]
    output_type: OutputType
    output_names: list[str] | None = None  # known labels (a classifier's classes)


def predictor(
    model: Any,
    pred_fun: Callable | None,
    output_type: str | None,
    *,
    channels_first: bool,
    columns: Sequence[str] | None,
    example: list[Tensor] | None = None,
) -> Predictor:
    """The prediction function of ``model`` (or ``pred_fun``, which wins when given).

    ``pred_fun(newdata)`` and models that are not torch get the data as the user passed
    it: channels in the data's layout, a ``DataFrame`` with ``columns`` for tabular data
    (so pipelines with column transformers work), else an array ``(batch, *input_dim)``.
    ``output_type`` None is inferred as innsight does: classification when the model ends
    in softmax or sigmoid (a Converter: softmax, sigmoid, tanh or logistic), or is a
    scikit-learn classifier. Converters and torch modules run through the view every
    method uses (:func:`attribution.methods.base.model_view`), whose input shapes come
    from ``example`` (channels-first rows, for modules).

    Raises
    ------
    TypeError
        The model is none of the kinds above and no ``pred_fun`` is given.
    """
    if output_type is not None and output_type not in OUTPUT_TYPES:
        raise ValueError(
            f"output_type must be 'classification' or 'regression'; got {output_type!r}."
        )
    user_data = _UserData(channels_first, columns)
    if pred_fun is not None:
        if not callable(pred_fun):
            raise TypeError(f"pred_fun must be callable; got {type(pred_fun).__name__}.")
        return Predictor(
            lambda xs: _matrix(pred_fun(user_data(xs)), "pred_fun"), output_type or "regression"
        )
    # before torch modules: a Keras model on the torch backend is one, but takes its data
    # in Keras's layout
    if type(model).__module__.split(".")[0] == "keras":
        return _keras_predictor(model, output_type, user_data)
    if isinstance(model, Converter | nn.Module | torch.export.ExportedProgram):
        return _torch_predictor(model, output_type, example)
    if hasattr(model, "predict"):
        return _sklearn_predictor(model, output_type, user_data)
    raise TypeError(
        f"model must be a Converter, a torch module or program, a Keras model or a fitted "
        f"scikit-learn estimator; got {type(model).__name__}. Pass pred_fun(newdata) to "
        "explain anything else (model may then be None)."
    )


@dataclass
class _UserData:
    """Channels-first tensors back in the layout the user's data had."""

    channels_first: bool
    columns: Sequence[str] | None

    def __call__(self, inputs: list[Tensor]) -> Any:
        arrays = [
            x.numpy() if self.channels_first or x.ndim <= 2 else x.movedim(1, -1).numpy()
            for x in inputs
        ]
        if len(arrays) == 1 and arrays[0].ndim == 2 and self.columns is not None:
            return pd.DataFrame(arrays[0], columns=list(self.columns))
        return arrays[0] if len(arrays) == 1 else arrays


def _matrix(predictions: Any, source: str) -> Tensor:
    """Predictions as a float64 ``(batch, n_outputs)`` tensor."""
    if isinstance(predictions, pd.DataFrame | pd.Series):
        predictions = predictions.to_numpy()
    if isinstance(predictions, Tensor):
        predictions = predictions.detach().cpu()
    values = torch.as_tensor(np.asarray(predictions, dtype=np.float64))
    if values.ndim == 0:
        raise ValueError(f"{source} returned a single number; it must return one row per row.")
    return values.reshape(len(values), -1)


def _torch_predictor(model: Any, output_type: str | None, example: list[Tensor]) -> Predictor:
    """A Converter's or torch module's outputs (after the last activation), in the
    model's own precision."""
    if isinstance(model, Converter) and len(model.output_dim) != 1:
        raise ValueError(
            f"LIME and SHAP explain one output layer; this model has "
            f"{len(model.output_dim)}. Pass pred_fun returning the layer to explain."
        )
    view, _ = model_view(
        model, example, dtype=_own_precision(model), ignore_last_act=False,
        channels_first=True, modules=True,
    )  # fmt: skip

    def predict(inputs: list[Tensor]) -> Tensor:
        with torch.no_grad():
            out = view.run([x.to(device=view.device, dtype=view.dtype) for x in inputs])[1][0]
        return out.reshape(len(out), -1).double().cpu()

    return Predictor(predict, output_type or _inferred_output_type(model))


def _own_precision(model: Any) -> str:
    """ "double" for a Converter or module of float64 weights, else "float"."""
    if isinstance(model, Converter):
        return "double" if model.dtype in ("double", torch.float64) else "float"
    if isinstance(model, torch.export.ExportedProgram):
        model = model.module()
    parameter = next(model.parameters(), None)
    return "double" if parameter is not None and parameter.dtype == torch.float64 else "float"


def _inferred_output_type(model: Any) -> OutputType:
    """innsight's rule: a Converter's output activation, or a module's last child."""
    if isinstance(model, Converter):
        graph = model.model
        [node] = [graph.nodes[i] for i in graph.output_nodes]
        classifies = getattr(node.layer.activation, "name", None) in _CLASSIFYING_ACTIVATIONS
    else:
        module = model.module() if isinstance(model, torch.export.ExportedProgram) else model
        children = list(module.children())
        classifies = isinstance(children[-1] if children else module, nn.Softmax | nn.Sigmoid)
    return "classification" if classifies else "regression"


def _keras_predictor(model: Any, output_type: str | None, user_data: _UserData) -> Predictor:
    layers = getattr(model, "layers", None) or [None]
    activation = getattr(getattr(layers[-1], "activation", None), "__name__", None)
    inferred = "classification" if activation in ("softmax", "sigmoid") else "regression"
    as_arrays = _UserData(user_data.channels_first, None)
    return Predictor(
        lambda xs: _matrix(model.predict(as_arrays(xs), verbose=0), "the Keras model"),
        output_type or inferred,
    )


def _sklearn_predictor(model: Any, output_type: str | None, user_data: _UserData) -> Predictor:
    from sklearn.base import is_classifier

    # the columns it was fitted with (a data frame's), else plain arrays
    fitted_names = getattr(model, "feature_names_in_", None)
    user_data = _UserData(
        user_data.channels_first, None if fitted_names is None else list(fitted_names)
    )
    classifies = is_classifier(model) and hasattr(model, "predict_proba")
    kind = output_type or ("classification" if classifies else "regression")
    method = model.predict_proba if kind == "classification" and classifies else model.predict
    name = type(model).__name__

    def predict(inputs: list[Tensor]) -> Tensor:
        data = user_data([x.flatten(1) if x.ndim > 2 else x for x in inputs])
        return _matrix(method(data), name)

    classes = getattr(model, "classes_", None) if kind == "classification" and classifies else None
    labels = None if classes is None else [str(c) for c in classes]
    return Predictor(predict, kind, labels)
