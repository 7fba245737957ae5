"""Small seeded models shared by the method tests (double precision)."""

import pytest
import torch
from torch import nn


def mlp() -> nn.Module:
    """Tabular, smooth activations, softmax output: 5 features, 4 classes."""
    return nn.Sequential(
        nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 6), nn.Softplus(), nn.Linear(6, 4),
        nn.Softmax(dim=1),
    )  # fmt: skip


def cnn() -> nn.Module:
    """Images 3x8x8 with ReLU and max pooling, 12 outputs (more than innsight's 10)."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3),
        nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 12),
    )  # fmt: skip


def signal_net() -> nn.Module:
    """1D signals 2x10, 3 outputs."""
    return nn.Sequential(
        nn.Conv1d(2, 3, 3), nn.Softplus(), nn.AvgPool1d(2), nn.Flatten(), nn.Linear(12, 3)
    )


@pytest.fixture
def seeded():
    torch.manual_seed(0)


@pytest.fixture
def mlp_model(seeded):
    return mlp().double().eval()


@pytest.fixture
def cnn_model(seeded):
    return cnn().double().eval()


@pytest.fixture
def signal_model(seeded):
    return signal_net().double().eval()


@pytest.fixture
def two_model(seeded, two_in_two_out):
    return two_in_two_out().double().eval()


def _jacobian(outputs, inputs, idx):
    grads = []
    for k in idx:
        (grad,) = torch.autograd.grad(outputs[:, k].sum(), inputs, retain_graph=True)
        grads.append(grad)
    return torch.stack(grads, -1)


@pytest.fixture
def jacobian():
    """``jacobian(outputs, inputs, idx)``: d outputs[:, k] / d inputs for k in idx, stacked
    last, one autograd call per node: the reference for Gradient."""
    return _jacobian
