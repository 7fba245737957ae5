"""The public ``Converter``: a model as a graph of known layers, with names and shapes."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

from torch import nn

from attribution._names import (
    AXIS_TITLES,
    check_rank,
    resolve_input_names,
    resolve_output_names,
)
from attribution._validation import DType, check_dtype, check_input_dim
from attribution.converter.files import (
    PredictionModel,
    model_format,
    model_object_kind,
    read_model_file,
)
from attribution.converter.graph import ConvertedModel
from attribution.converter.spec import convert_spec
from attribution.converter.torch_fx import convert_torch, infer_input_dim
from attribution.errors import UnsupportedLayerError


class Converter:
    """Convert a model into a graph of layers that every method can explain.

    Parameters
    ----------
    model : torch.nn.Module, dict or path
        A torch module that ``torch.fx`` can trace (any architecture built from the
        supported modules and functions, several inputs and outputs included), a model in
        innsight's named-list format as a dict, or the path of a model file that
        :func:`~attribution.converter.files.read_model_file` reads (``.json`` holds the
        named-list format; ``.pt2`` and TorchScript files raise UnsupportedLayerError,
        see that module).
    input_dim : tuple of int or list of tuples, default=None
        The shape of one instance without the batch axis, channels first, e.g. ``(5,)`` or
        ``(3, 32, 32)``; a list of shapes for several input layers. Required for torch
        models unless every input goes straight into an ``nn.Linear``; optional (a check)
        for specs.
    input_names : list, default=None
        Names per input layer and axis; a flat list for a single tabular input. None gives
        innsight's ``X1``... (tabular), ``C1``/``L1``... (signals), ``C1``/``H1``/``W1``...
        (images).
    output_names : list, default=None
        Labels of the output nodes (a list per output layer); None gives ``Y1``...
    dtype : {"float", "double"}, default="float"
        Precision of the converted weights. Methods may ask for the other one.

    Attributes
    ----------
    model : ConvertedModel
        The graph; ``model(*inputs)`` returns the activated outputs.
    input_dim, output_dim : list of tuple
        Shapes per input / output layer (channels first, no batch axis).
    input_names : list of list of list of str
        Per input layer, per axis.
    output_names : list of list of str
        Per output layer.

    Raises
    ------
    UnsupportedLayerError
        A module or function has no converter (the message lists the supported ones).
    ValueError
        Shapes or names do not fit, or the conversion does not reproduce the model.

    Notes
    -----
    A torch model is run on a random input in float64 after conversion and compared with
    the converted graph layer by layer; a mismatch names the first diverging layer. An
    activation directly after a dense or convolutional layer is fused into it (its
    pre-activation is what ``ignore_last_act`` uses); any other activation stays a layer of
    its own, also after pooling or flattening (where innsight drops it).

    Examples
    --------
    >>> import torch
    >>> from attribution import Converter
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
    ...                             torch.nn.Linear(4, 2))
    >>> conv = Converter(model, input_names=["age", "bmi", "bp"])
    >>> conv.output_dim
    [(2,)]
    >>> conv.output_names
    [['Y1', 'Y2']]
    """

    def __init__(
        self,
        model: nn.Module | Mapping | str | os.PathLike,
        input_dim: Any = None,
        input_names: Any = None,
        output_names: Any = None,
        dtype: DType = "float",
    ) -> None:
        torch_dtype = check_dtype(dtype)
        dims = check_input_dim(input_dim)
        if isinstance(model, (str, os.PathLike)):
            model = _read_file(model)
        kind = model_object_kind(model)
        if kind is not None:
            model = kind.adapt(model)
        if isinstance(model, PredictionModel):
            raise ValueError(model.reason)
        if isinstance(model, Mapping):
            spec = convert_spec(model)
            if dims is not None and dims != spec.input_dims:
                raise ValueError(
                    f"input_dim {dims} does not match the spec's input_dim {spec.input_dims}."
                )
            converted, dims = spec.model, spec.input_dims
            input_names = spec.input_names if input_names is None else input_names
            output_names = spec.output_names if output_names is None else output_names
        elif isinstance(model, nn.Module):
            dims = dims or infer_input_dim(model)
            if dims is None:
                raise ValueError(
                    f"input_dim is required for {type(model).__name__}: give the shape of one "
                    "instance without the batch axis, channels first, e.g. input_dim=(3, 32, "
                    "32) (a list of shapes for several inputs)."
                )
            for number, dim in enumerate(dims, start=1):
                check_rank(dim, f"input layer {number}")
            converted = convert_torch(model, dims)
        else:
            raise TypeError(
                "model must be a torch.nn.Module, a dict in innsight's named-list format, or "
                f"the path of a model file; got {type(model).__name__}."
            )
        self.model: ConvertedModel = converted.to(torch_dtype)
        self.dtype = dtype
        self.input_dim = dims
        self.output_dim = [converted.nodes[i].out_dim for i in converted.output_nodes]
        self.input_names = resolve_input_names(input_names, dims)
        self.output_names = resolve_output_names(output_names, [d[0] for d in self.output_dim])
        self._models = {torch_dtype: self.model}

    def model_as(self, dtype: DType) -> ConvertedModel:
        """The converted model with weights of ``dtype`` (a cached copy; the model itself
        keeps its precision)."""
        torch_dtype = check_dtype(dtype)
        if torch_dtype not in self._models:
            self._models[torch_dtype] = copy.deepcopy(self.model).to(torch_dtype)
        return self._models[torch_dtype]

    def __repr__(self) -> str:
        return "\n".join(_summary(self))


def _read_file(path: str | os.PathLike) -> nn.Module | dict:
    """The spec or module in a model file, if the converter can map its kind."""
    file_format = model_format(path)
    model = read_model_file(path)
    if file_format.conversion_note is not None:
        raise UnsupportedLayerError(
            f"Cannot convert {os.fspath(path)}: {file_format.conversion_note}",
            path=os.fspath(path),
            type_name=file_format.name,
        )
    return model


def _shape(dim: tuple[int, ...]) -> str:
    return "(*, " + ", ".join(map(str, dim)) + ")"


def _name_list(names: list[str], width: int = 72) -> str:
    text = ", ".join(names)
    return text if len(text) <= width else text[: width - 1].rsplit(", ", 1)[0] + ", …"


def _summary(converter: Converter) -> list[str]:
    lines = ["── Converter " + "─" * 50, "Fields:"]
    lines.append("  • input_dim: " + ", ".join(map(_shape, converter.input_dim)))
    lines.append("  • output_dim: " + ", ".join(map(_shape, converter.output_dim)))
    lines.append("  • input_names:")
    several = len(converter.input_dim) > 1
    for layer, (names, dim) in enumerate(
        zip(converter.input_names, converter.input_dim, strict=True), start=1
    ):
        indent = "      "
        if several:
            lines.append(f"    Input layer {layer}:")
            indent += "  "
        for title, axis_names in zip(AXIS_TITLES[len(dim)], names, strict=True):
            lines.append(f"{indent}─ {title} ({len(axis_names)}): {_name_list(axis_names)}")
    lines.append("  • output_names:")
    for layer, names in enumerate(converter.output_names, start=1):
        prefix = f"Output layer {layer}: " if len(converter.output_names) > 1 else ""
        lines.append(f"      ─ {prefix}Output node/Class ({len(names)}): {_name_list(names)}")
    lines.append("  • model (class ConvertedModel):")
    for position, node in enumerate(converter.model.nodes, start=1):
        activation = node.layer.activation
        kind = node.layer.type_name + (f" ({activation})" if activation is not None else "")
        lines.append(
            f"      {position}. {kind}: input_dim: {', '.join(map(_shape, node.in_dims))}, "
            f"output_dim: {_shape(node.out_dim)}"
        )
    lines.append("─" * 63)
    return lines
