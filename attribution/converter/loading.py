"""A model ready to explain: the module, its conversion if there is one, and its methods.

:func:`load_model` reads a model file (or takes a module or spec) and says what can be
done with it. A converted model gets every method; a module the converter cannot map
(a ``torch.export`` program, TorchScript, a module with unsupported layers) gets the
gradient family through the ``torch_*`` functions, with the reason in
``conversion_error``.

Files that may come from anyone (a dashboard upload) are read with the defaults:
TorchScript, which runs code from the file, is refused unless ``allow_code=True``, and
with ``max_instance_values`` every size is checked before the work it implies: a spec's
shapes (:func:`~attribution.converter.spec.check_spec_sizes`), the input shapes before
the model runs, and each tensor a ``torch.export`` program computes, on fake tensors
(shapes without memory) before it runs on real ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
from torch import Tensor, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._pytree import tree_leaves

from attribution._names import resolve_input_names, resolve_output_names
from attribution._validation import check_input_dim
from attribution.converter.converter import Converter
from attribution.converter.files import (
    ExportedModule,
    PredictionModel,
    ScriptedModule,
    model_format,
    model_object_kind,
    read_model_file,
    script_input_dim,
)
from attribution.converter.spec import check_instance_values, check_spec_sizes
from attribution.errors import UnsupportedLayerError
from attribution.methods._predictions import predictor
from attribution.methods.catalogue import applicable

_PROBE_BATCH = 2


@dataclass
class LoadedModel:
    """A model as read, with what the methods need to know about it.

    Attributes
    ----------
    name : str
        The file name, or the module's class name.
    format : str
        ``"innsight's JSON spec"``, ``"torch.export program"``, ``"TorchScript"`` or
        ``"torch module"``.
    module : torch.nn.Module or None
        The module the ``torch_*`` functions run (None for a JSON spec).
    converter : Converter or None
        The converted model, or None where conversion is not possible.
    conversion_error : str or None
        Why the model is not converted (None when it is).
    input_dim, output_dim : list of tuple of int
        Shapes per input / output layer, channels first, without the batch axis.
    input_names : list of list of list of str
        Names per input layer and axis.
    output_names : list of list of str
        Labels per output layer.
    predictor : object or None
        A model that only its predictions explain (a scikit-learn estimator that is no
        MLP), for LIME and SHAP; None otherwise.
    methods : list of str
        The method names that apply (:func:`attribution.methods.catalogue.applicable`):
        all when converted, else those needing gradients or predictions only.
    """

    name: str
    format: str
    module: nn.Module | None
    converter: Converter | None
    conversion_error: str | None
    input_dim: list[tuple[int, ...]]
    input_names: list[list[list[str]]]
    output_dim: list[tuple[int, ...]]
    output_names: list[list[str]]
    methods: list[str]
    predictor: Any = None


def load_model(
    source: str | os.PathLike | bytes | nn.Module | Mapping,
    suffix: str | None = None,
    input_dim: Any = None,
    input_names: Any = None,
    output_names: Any = None,
    *,
    allow_code: bool = False,
    max_instance_values: int | None = None,
) -> LoadedModel:
    """Read a model and convert it where possible.

    Parameters
    ----------
    source : path, bytes, torch.nn.Module or dict
        A model file (any suffix :func:`~attribution.converter.files.read_model_file`
        reads) or its bytes, a torch module, or innsight's spec as a dict.
    suffix : str, default=None
        The file's name or suffix; required for bytes.
    input_dim : tuple of int or list of tuples, default=None
        The shape of one instance per input layer, channels first. Read from the file for
        JSON specs and ``torch.export`` programs (then only checked); required for
        TorchScript unless the model is a ``Sequential`` starting with ``Linear``.
    input_names, output_names : list, default=None
        As for :class:`~attribution.Converter`; None gives innsight's defaults.
    allow_code : bool, default=False
        Whether to read TorchScript files, which run code from the file (see
        :func:`~attribution.converter.files.read_model_file`). Only for files you trust.
    max_instance_values : int, default=None
        The most values one instance may have at an input or at any layer, checked before
        anything of that size is allocated; a spec's layers may also hold no more weights
        than its file has bytes. None: no bound (for models of your own).

    Returns
    -------
    LoadedModel

    Raises
    ------
    ValueError
        The file cannot be read (see ``read_model_file``), a JSON spec does not convert,
        ``input_dim`` is missing or does not fit, the model does not return one tensor, or
        it is larger than ``max_instance_values``.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2)).eval()
    >>> loaded = load_model(model, input_names=["age", "bmi", "bp"])
    >>> loaded.converter is not None, "LRP" in loaded.methods, loaded.output_dim
    (True, True, [(2,)])
    """
    # other libraries first: Keras models on the torch backend are torch modules too
    if (object_kind := model_object_kind(source)) is not None:
        name, kind, note = type(source).__name__, object_kind.name, None
        model = object_kind.adapt(source)
    elif isinstance(source, nn.Module):
        name, kind, note, model = type(source).__name__, "torch module", None, source
    elif isinstance(source, Mapping):
        name, kind, note, model = "model spec", "innsight's JSON spec", None, source
    else:
        file_format = model_format(suffix if suffix is not None else source)
        model = read_model_file(
            source, suffix, allow_code=allow_code, max_instance_values=max_instance_values
        )
        name = os.path.basename(suffix if suffix is not None else os.fspath(source))
        kind, note = file_format.name, file_format.conversion_note
    if isinstance(model, PredictionModel):
        return _prediction_only(name, kind, model, check_input_dim(input_dim), input_names,
                                output_names)  # fmt: skip
    if isinstance(model, Mapping):
        if max_instance_values is not None:
            check_spec_sizes(model, max_instance_values, max_parameters=_file_size(source))
        converter = Converter(model, input_dim, input_names, output_names)
        return _converted(name, kind, None, converter)
    dims = _input_dim(model, check_input_dim(input_dim), name)
    if max_instance_values is not None and dims is not None:
        check_instance_values(dims, max_instance_values, f"The input shape of {name}")
    if note is None:
        try:
            converter = Converter(model, dims, input_names, output_names)
        except (UnsupportedLayerError, ValueError) as error:
            note = str(error)
        else:
            return _converted(name, kind, model, converter)
    if dims is None:
        raise ValueError(
            f"input_dim is required for {name}: {kind} keeps no input shapes. Give the shape "
            "of one instance without the batch axis, channels first, e.g. input_dim=(3, 32, "
            "32) (a list of shapes for several inputs)."
        )
    n_outputs = _probe(model, dims, name, max_instance_values)
    return LoadedModel(
        name=name,
        format=kind,
        module=model,
        converter=None,
        conversion_error=note,
        input_dim=dims,
        input_names=resolve_input_names(input_names, dims),
        output_dim=[(n_outputs,)],
        output_names=resolve_output_names(output_names, [n_outputs]),
        methods=applicable(converted=False, differentiable=True),
    )


def _prediction_only(
    name: str, kind: str, model: PredictionModel, given: Any, input_names: Any, output_names: Any
) -> LoadedModel:
    """A model LIME and SHAP explain from its predictions (probed on two zero rows)."""
    if given is not None and given != model.input_dim:
        raise ValueError(
            f"input_dim {given} does not match {name}, which takes {model.input_dim} (its "
            "n_features_in_)."
        )
    probe = predictor(model.model, None, None, channels_first=True, columns=None)  # sklearn
    n_outputs = probe.predict([torch.zeros(_PROBE_BATCH, *model.input_dim[0])]).shape[1]
    names = input_names if input_names is not None else model.input_names
    return LoadedModel(
        name=name,
        format=kind,
        module=None,
        converter=None,
        conversion_error=model.reason,
        input_dim=model.input_dim,
        input_names=resolve_input_names(names, model.input_dim),
        output_dim=[(n_outputs,)],
        output_names=resolve_output_names(
            output_names if output_names is not None else model.output_names, [n_outputs]
        ),
        methods=applicable(converted=False, differentiable=False),
        predictor=model.model,
    )


def _converted(name: str, kind: str, module: nn.Module | None, converter: Converter):
    return LoadedModel(
        name=name,
        format=kind,
        module=module,
        converter=converter,
        conversion_error=None,
        input_dim=converter.input_dim,
        input_names=converter.input_names,
        output_dim=converter.output_dim,
        output_names=converter.output_names,
        methods=applicable(converted=True, differentiable=True),
    )


def _input_dim(model: nn.Module, given: list[tuple[int, ...]] | None, name: str):
    """The given input shapes, checked against those a file holds, or those."""
    if isinstance(model, ExportedModule):
        if given is not None and given != model.input_dim:
            raise ValueError(
                f"input_dim {given} does not match {name}, which was exported for inputs of "
                f"shape {model.input_dim}: leave input_dim out, or export the model again."
            )
        return model.input_dim
    if given is None and isinstance(model, ScriptedModule):
        return script_input_dim(model)
    return given


def _file_size(source: Any) -> int | None:
    """The bytes of a model file, or None for a model given as an object."""
    if isinstance(source, (bytes, bytearray)):
        return len(source)
    if isinstance(source, (str, os.PathLike)):
        return os.path.getsize(source)
    return None


class _TooLarge(Exception):
    """A tensor of the dry run is larger than allowed (the message says which)."""


class _SizeCheck(torch.fx.Interpreter):
    """Runs a graph on fake tensors and stops at the first tensor over ``limit`` values."""

    def __init__(self, module: torch.fx.GraphModule, limit: int, name: str) -> None:
        super().__init__(module)
        self.limit, self.name = limit, name

    def run_node(self, node: torch.fx.Node) -> Any:
        result = super().run_node(node)
        for value in tree_leaves(result):
            if isinstance(value, Tensor) and value.numel() > self.limit:
                raise _TooLarge(
                    f"{self.name} computes a tensor of shape {tuple(value.shape)} in "
                    f"{node.name!r} ({node.target}) on a batch of {_PROBE_BATCH}: "
                    f"{value.numel()} values, more than the {self.limit} allowed "
                    "(max_instance_values per instance; the dashboard's "
                    "--max-instance-values); it is refused."
                )
        return result


def _dry_run(model: ExportedModule, dims: list[tuple[int, ...]], name: str, limit: int):
    """Run a ``torch.export`` program on fake tensors, refusing any tensor larger than
    ``limit`` values per instance (its weights excepted) before a real run allocates it."""
    graph = model.module
    batch = model.batch_size or _PROBE_BATCH
    weights = max((t.numel() for t in (*graph.parameters(), *graph.buffers())), default=0)
    checker = _SizeCheck(graph, max(limit * batch, weights), name)
    with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
        try:
            checker.run(*[torch.empty(batch, *dim) for dim in dims])
        except _TooLarge as error:
            raise ValueError(str(error)) from None
        except Exception as error:  # e.g. a size read from a tensor's values
            reason = str(error).split("\n")[0]
            raise ValueError(
                f"{name} cannot be run on fake tensors (shapes without values) to check the "
                f"sizes it computes before it runs: {reason}. It is refused; export a model "
                "whose tensor sizes do not depend on tensor values."
            ) from None


def _probe(
    model: nn.Module, dims: list[tuple[int, ...]], name: str, limit: int | None = None
) -> int:
    """Run the model on zeros; the number of outputs per instance."""
    shapes = ", ".join(f"(batch, {', '.join(map(str, dim))})" for dim in dims)
    if limit is not None and isinstance(model, ExportedModule):
        _dry_run(model, dims, name, limit)
    example = [torch.zeros(_PROBE_BATCH, *dim) for dim in dims]
    try:
        with torch.no_grad():
            output = model(*example)
    except Exception as error:
        reason = str(error).split("\n")[0]
        raise ValueError(
            f"Running {name} on inputs of shape {shapes} failed: {reason}. Check input_dim: "
            "one shape per model input, channels first, without the batch axis."
        ) from error
    if not isinstance(output, Tensor) or output.ndim == 0 or len(output) != _PROBE_BATCH:
        got = type(output).__name__ if not isinstance(output, Tensor) else "a tensor"
        shape = f" of shape {tuple(output.shape)}" if isinstance(output, Tensor) else ""
        raise ValueError(
            f"{name} returns {got}{shape}; without conversion, models are explained that "
            "return one tensor (batch, n_outputs). Return a single tensor, or use innsight's "
            "JSON spec for models with several outputs."
        )
    return output[0].numel()
