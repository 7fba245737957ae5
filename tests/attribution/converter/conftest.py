"""Shared fixtures of the converter tests: seeding and the forward comparison."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from attribution import Converter

BATCH = 5
TOLERANCE = 1e-10


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _randomize_batchnorm(model: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics (and affine parameters)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-1.0, 1.0)
                module.running_var.uniform_(0.5, 2.0)
                if module.affine:
                    module.weight.uniform_(0.5, 2.0)
                    module.bias.uniform_(-1.0, 1.0)
    return model


def _max_difference(converter: Converter, model: nn.Module, inputs: list[torch.Tensor]) -> float:
    """The largest absolute difference between the converted and the original outputs."""
    with torch.no_grad():
        expected = model.double()(*inputs)
        got = converter.model(*inputs)
    expected = list(expected) if isinstance(expected, (tuple, list)) else [expected]
    assert len(got) == len(expected)
    return max((a - b).abs().max().item() for a, b in zip(got, expected, strict=True))


@pytest.fixture
def assert_same_forward() -> Callable[..., Converter]:
    """Convert ``model`` in double and check its forward on random inputs of batch 5.

    Returns the converter, for further checks of its layers.
    """

    def check(model: nn.Module, input_dim, **kwargs) -> Converter:
        model = _randomize_batchnorm(model).eval()
        converter = Converter(model, input_dim=input_dim, dtype="double", **kwargs)
        inputs = [torch.randn(BATCH, *dim, dtype=torch.float64) for dim in converter.input_dim]
        difference = _max_difference(converter, model, inputs)
        assert difference <= TOLERANCE, f"converted forward differs by {difference:.3g}"
        return converter

    return check


def _layer_kinds(converter: Converter) -> list[str]:
    """``"Dense_Layer+relu"``... per node of the converted graph."""
    return [
        node.layer.type_name
        + ("" if node.layer.activation is None else f"+{node.layer.activation.name}")
        for node in converter.model.nodes
    ]


@pytest.fixture
def kinds() -> Callable[[Converter], list[str]]:
    """The layer kinds of a converter's graph, e.g. ``["Dense_Layer+relu", "Dense_Layer"]``."""
    return _layer_kinds


@pytest.fixture
def randomize_batchnorm() -> Callable[[nn.Module], nn.Module]:
    """Set non-trivial BatchNorm statistics and affine parameters of a model (in place)."""
    return _randomize_batchnorm


@pytest.fixture
def max_difference() -> Callable[..., float]:
    """The largest absolute difference between a converter's and a model's outputs."""
    return _max_difference
