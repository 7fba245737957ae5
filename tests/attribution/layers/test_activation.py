"""Activation functions by innsight name, and the standalone activation layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attribution.layers.activation import ACTIVATION_NAMES, Activation, ActivationLayer


def rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


@pytest.mark.parametrize(
    ("name", "params", "reference"),
    [
        ("linear", {}, lambda z: z),
        ("relu", {}, F.relu),
        ("leaky_relu", {}, lambda z: F.leaky_relu(z, 0.01)),
        ("leaky_relu", {"negative_slope": 0.3}, lambda z: F.leaky_relu(z, 0.3)),
        ("elu", {"alpha": 0.5}, lambda z: F.elu(z, 0.5)),
        ("softplus", {}, F.softplus),
        ("softplus", {"beta": 2.0, "threshold": 1.0}, lambda z: F.softplus(z, 2.0, 1.0)),
        ("sigmoid", {}, torch.sigmoid),
        ("logistic", {}, torch.sigmoid),
        ("tanh", {}, torch.tanh),
        ("softmax", {}, lambda z: torch.softmax(z, -1)),
        ("softmax", {"dim": 0}, lambda z: torch.softmax(z, 1)),
        ("gelu", {"approximate": "tanh"}, lambda z: F.gelu(z, approximate="tanh")),
        ("silu", {}, F.silu),
        ("relu6", {}, F.relu6),
        ("hardtanh", {"min_val": 0.0, "max_val": 6.0}, F.relu6),
        ("hardtanh", {}, F.hardtanh),
        ("hardswish", {}, F.hardswish),
        ("hardsigmoid", {}, F.hardsigmoid),
        ("mish", {}, F.mish),
        ("log_softmax", {"dim": 0}, lambda z: torch.log_softmax(z, 1)),
    ],
)
def test_functions_match_torch(name, params, reference):
    z = rand(5, 3, 4)
    torch.testing.assert_close(Activation(name, **params)(z), reference(z), rtol=0, atol=1e-12)


def test_log_softmax_derivative_is_the_jacobians_diagonal():
    z = rand(4, 3)
    activation = Activation("log_softmax", dim=0)
    jacobian = torch.autograd.functional.jacobian(lambda v: torch.log_softmax(v, -1), z[0])
    torch.testing.assert_close(activation.derivative(z)[0], torch.diagonal(jacobian))


def test_logistic_is_an_alias_of_sigmoid():
    assert Activation("logistic").name == "sigmoid"


def test_leaky_relu_has_innsights_default_slope():
    assert Activation("leaky_relu").params == {"negative_slope": 0.01}
    assert Activation("leaky_relu", negative_slope=0.2).params == {"negative_slope": 0.2}
    assert Activation("leaky_relu")(torch.tensor([-1.0])).item() == pytest.approx(-0.01)


def test_unknown_name_lists_the_supported_ones():
    with pytest.raises(
        ValueError,
        match=r"^Unknown activation 'swish'\. Supported activations: elu, gelu, hardsigmoid, "
        r"hardswish, hardtanh, leaky_relu, linear, log_softmax, logistic, mish, relu, relu6, "
        r"sigmoid, silu, softmax, softplus, tanh\.$",
    ):
        Activation("swish")


def test_names():
    assert sorted(ACTIVATION_NAMES) == ACTIVATION_NAMES
    assert {"relu", "leaky_relu", "softplus", "sigmoid", "logistic", "softmax", "tanh"} <= set(
        ACTIVATION_NAMES
    )


def test_is_linear_and_repr():
    assert Activation("linear").is_linear
    assert not Activation("relu").is_linear
    assert repr(Activation("relu")) == "relu"
    assert repr(Activation("leaky_relu")) == "leaky_relu(negative_slope=0.01)"


def test_standalone_layer_returns_its_input_as_preactivation():
    layer = ActivationLayer(Activation("tanh"))
    x = rand(5, 3)
    pre, out = layer(x)
    assert pre is x
    torch.testing.assert_close(out, torch.tanh(x))
    assert layer.type_name == "Activation_Layer"
    assert not layer.fuses_activation
    assert layer.to(torch.float32)(x.float())[1].dtype == torch.float32
