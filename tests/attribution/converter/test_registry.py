"""The registry of layer converters: lookup by class, function and spec type."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attribution.converter.registry import (
    SKIP,
    Call,
    function_builder,
    module_builder,
    spec_builder,
    supported_functions,
    supported_modules,
    supported_spec_types,
)
from attribution.layers.conv import Conv1DLayer
from attribution.layers.dense import DenseLayer


class MyLinear(nn.Linear):
    pass


class MyDropout(nn.Dropout):
    pass


def test_modules_are_found_by_isinstance():
    assert module_builder(MyLinear(2, 3)) is module_builder(nn.Linear(2, 3))
    assert module_builder(nn.Linear(2, 3)) is not None
    assert module_builder(nn.LSTM(2, 3)) is None
    assert module_builder(MyDropout())(Call(in_shapes=[(3,)])) is SKIP


def test_the_nearest_registered_class_wins():
    layer = module_builder(MyLinear(2, 3))(Call(in_shapes=[(2,)], module=MyLinear(2, 3)))
    assert isinstance(layer, DenseLayer)
    conv = nn.Conv1d(2, 3, 2)
    assert isinstance(module_builder(conv)(Call(in_shapes=[(2, 5)], module=conv)), Conv1DLayer)


def test_functions_and_tensor_methods():
    assert function_builder(F.relu) is function_builder("method:relu")
    assert function_builder(torch.cat) is not None
    assert function_builder(torch.matmul) is None
    assert function_builder("method:abs") is None
    assert function_builder([1, 2]) is None  # unhashable targets have no builder


def test_spec_types():
    assert spec_builder("Dense") is not None
    assert spec_builder("Dense2") is None
    assert supported_spec_types() == sorted(supported_spec_types())
    assert {"Dense", "Conv1D", "Conv2D", "Skipping", "Concatenate", "Add"} <= set(
        supported_spec_types()
    )


def test_supported_lists_are_sorted_readable_names():
    modules = supported_modules()
    assert modules == sorted(modules)
    assert {"Linear", "Conv1d", "Conv2d", "BatchNorm2d", "MaxPool2d", "Dropout"} <= set(modules)
    functions = supported_functions()
    assert functions == sorted(functions)
    assert {"Tensor.view", "torch.cat", "torch.nn.functional.relu", "_operator.add"} <= set(
        functions
    )
