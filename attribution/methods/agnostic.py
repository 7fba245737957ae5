"""What LIME and SHAP share: any model as predictions, the data, features, the result.

The model-agnostic methods need predictions only, so they explain what no other method
here can: TorchScript and ``torch.export`` programs, unconverted modules, Keras models,
every scikit-learn estimator, and anything with a ``pred_fun``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd
import torch
from torch import Tensor

from attribution._data import infer_input_dims, prepare_inputs
from attribution._names import check_rank, resolve_input_names, resolve_output_names
from attribution._validation import check_bool, check_input_dim, check_int, resolve_output_idx
from attribution.methods._features import Features, features
from attribution.methods._predictions import Predictor, predictor
from attribution.methods._progress import Progress
from attribution.methods.base import Needs, to_data_layout
from attribution.methods.samplers import check_seed
from attribution.result import AttributionResult

DEFAULT_MEMORY_BUDGET = 32 * 2**20
"""Bytes of perturbed inputs per model call when ``memory_budget`` is None."""


@dataclass
class Perturbation:
    """What a method's estimator gets: the rows, the reference rows, the features, and
    the model's predictions for the selected outputs, in memory-bounded calls."""

    inputs: Tensor  # (n, n_values) float64, every input layer joined
    references: Tensor  # (m, n_values)
    outputs: Tensor  # (n, K): the model's selected outputs of the rows
    goal: Tensor | None  # (n, K): outputs − mean output of the references, if asked for
    features: Features
    predict: Callable[[Tensor], Tensor]  # (b, n_values) -> (b, K), chunked
    generator: torch.Generator
    progress: Progress
    rows_per_call: int


class AgnosticMethod(AttributionResult):
    """Set-up of LIME and SHAP: the arguments innsight takes, then the estimator."""

    method_name: ClassVar[str]
    value_name: ClassVar[str]
    needs: ClassVar[Needs] = "predictions"
    goal: ClassVar[str | None] = None

    def _attribute(
        self,
        estimate: Callable[[Perturbation], Tensor],
        arguments: dict[str, Any],
        *,
        fields: dict[str, str],
        with_goal: bool,
    ) -> None:
        """Check the arguments (the constructor's ``locals()``), run ``estimate``
        (``(n, n_features, K)`` attributions) and store the result; ``with_goal`` stores
        f(x) − mean f(data_ref)."""
        model, data, data_ref = arguments["model"], arguments["data"], arguments["data_ref"]
        output_type, pred_fun = arguments.get("output_type"), arguments["pred_fun"]
        output_idx, output_label = arguments["output_idx"], arguments["output_label"]
        channels_first, input_dim = arguments["channels_first"], arguments["input_dim"]
        input_names, output_names = arguments["input_names"], arguments["output_names"]
        feature_groups, patch_size = arguments["feature_groups"], arguments["patch_size"]
        seed, verbose = arguments["seed"], arguments["verbose"]
        progress_callback, memory_budget = (
            arguments["progress_callback"], arguments["memory_budget"]
        )  # fmt: skip
        channels_first = check_bool(channels_first, "channels_first")
        verbose = check_bool(verbose, "verbose")
        seed = check_seed(seed)
        data_ref = data if data_ref is None else data_ref
        dims = check_input_dim(input_dim) or _dims_of(data_ref, channels_first)
        for layer, dim in enumerate(dims, start=1):
            check_rank(dim, f"input layer {layer}")
        tabular = len(dims) == 1 and len(dims[0]) == 1
        columns = _columns(data_ref) if tabular else None
        names = resolve_input_names(
            input_names if input_names is not None or columns is None else [[columns]], dims
        )
        named = tabular and (columns is not None or input_names is not None)
        inputs, references = (
            prepare_inputs(_plain(d), dims, channels_first=channels_first,
                           dtype=torch.float64, name=name)
            for d, name in ((data, "data"), (data_ref, "data_ref"))
        )  # fmt: skip
        model_view = predictor(
            model, pred_fun, output_type, channels_first=channels_first,
            columns=names[0][0] if named else None, example=references,
        )  # fmt: skip
        predictions = model_view.predict(inputs)
        labels = resolve_output_names(
            output_names if output_names is not None else model_view.output_names,
            [predictions.shape[1]],
        )
        [selected] = resolve_output_idx(output_idx, output_label, labels)
        found = features(dims, feature_groups, patch_size, channels_first=channels_first)
        budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else check_int(
            memory_budget, "memory_budget"
        )  # fmt: skip
        rows = max(1, budget // (8 * found.index.numel()))
        predict = _chunked(model_view, found, selected, rows)
        outputs, flat_references = predictions[:, selected], found.flatten(references)
        goal = outputs - predict(flat_references).mean(0) if with_goal else None
        perturbation = Perturbation(
            inputs=found.flatten(inputs),
            references=flat_references,
            outputs=outputs,
            goal=goal,
            features=found,
            predict=predict,
            generator=torch.Generator().manual_seed(
                seed if seed is not None else int(torch.randint(2**62, ()))
            ),
            progress=Progress(f"{self.method_name}", verbose, progress_callback),
            rows_per_call=rows,
        )
        attribution = estimate(perturbation)
        super().__init__(
            method_name=self.method_name,
            value_name=self.value_name,
            result=to_data_layout([found.per_value(attribution.float())], channels_first),
            preds=[outputs.float()],
            decomp_goal=[None if goal is None else goal.float()],
            output_idx=[selected],
            input_names=names,
            output_names=labels,
            input_dim=dims,
            channels_first=channels_first,
            fields=fields,
            other_fields={
                "output_type": model_view.output_type,
                "seed": repr(seed),
                "features": f"{found.n_features} ({'grouped' if found.grouped else 'values'})",
            },
        )


def _dims_of(data: Any, channels_first: bool) -> list[tuple[int, ...]]:
    dims = infer_input_dims(_plain(data))
    return [d if channels_first or len(d) == 1 else (d[-1], *d[:-1]) for d in dims]


def _columns(data: Any) -> list[str] | None:
    """A data frame's column names (innsight's input names), else None."""
    return [str(c) for c in data.columns] if isinstance(data, pd.DataFrame) else None


def _plain(data: Any) -> Any:
    """Data frames as arrays of their values (their names are read by :func:`_columns`)."""
    if isinstance(data, pd.DataFrame):
        return data.to_numpy(dtype=float)
    if isinstance(data, list | tuple) and any(isinstance(d, pd.DataFrame) for d in data):
        return [_plain(d) for d in data]
    return data


def _chunked(
    model: Predictor, found: Features, selected: list[int], rows: int
) -> Callable[[Tensor], Tensor]:
    """The predictions for the ``selected`` outputs of joined inputs, ``rows`` of them per
    model call."""

    def predict(values: Tensor) -> Tensor:
        parts = [
            model.predict(found.unflatten(values[start : start + rows]))[:, selected]
            for start in range(0, len(values), rows)
        ]
        return torch.cat(parts)

    return predict


AGNOSTIC_DOC = """
    model : Converter, torch module or program, Keras model, scikit-learn estimator or None
        The model to explain: only its predictions are used (a classifier's
        ``predict_proba``, a regressor's ``predict``). None with ``pred_fun``.
    data : array-like, DataFrame or list of them
        The instances ``(batch, *input_dim)`` to explain; a list per input layer.
    data_ref : array-like, default=None
        The reference data (lime's training data; SHAP's background); None: ``data``.
    pred_fun : callable, default=None
        ``pred_fun(newdata)`` returning ``(batch, n_outputs)`` predictions; it gets a
        DataFrame for tabular data (with the input names as columns), else an array in
        the data's layout. Overrides the model's own predictions.
    output_idx, output_label : default=None
        The output nodes to explain (0-based indices or labels); None: the first
        ``min(10, n)``.
    channels_first : bool, default=True
        False if the channel axis of the data is last.
    input_dim : tuple or list of tuples, default=None
        The shape of one instance (channels first); None: read from ``data_ref``.
    input_names, output_names : default=None
        As for :class:`~attribution.Converter`; None: a data frame's columns, a
        classifier's classes, else innsight's defaults.
    feature_groups : array or list of arrays, default=None
        Integer labels of one instance's shape (a list per input layer, in the data's
        layout): values with one label are one feature, and their attribution is shown
        on each of them. Not in innsight, which treats every value as a feature.
    patch_size : int or tuple, default=None
        Instead of ``feature_groups``: square patches of images, windows of signals.
    seed : int, default=None
        Seed of the method's random draws: the same seed gives the same result.
    verbose : bool, default=False
        Show a progress bar.
    progress_callback : callable, default=None
        Called as ``callback(done, total)`` after each step.
    memory_budget : int, default=None
        Bytes of perturbed inputs per model call (None: 32 MiB)."""
