"""Converting torch modules: every supported module and function reproduces the model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribution import LRP, Converter, DeepLift, Gradient, UnsupportedLayerError


class Lambda(nn.Module):
    """``f(before(x))``: a function of the traced forward after optional modules."""

    def __init__(self, f: Callable[[Tensor], Tensor], *before: nn.Module) -> None:
        super().__init__()
        self.f = f
        self.before = nn.Sequential(*before)

    def forward(self, x: Tensor) -> Tensor:
        return self.f(self.before(x))


def seq(*modules: nn.Module) -> nn.Sequential:
    return nn.Sequential(*modules)


# (id, model factory, input_dim, expected layer kinds)
MODULES = [
    ("Linear", lambda: nn.Linear(4, 3), (4,), ["Dense_Layer"]),
    ("Linear-no-bias", lambda: nn.Linear(4, 3, bias=False), (4,), ["Dense_Layer"]),
    (
        "Conv1d-stride-padding-dilation",
        lambda: seq(nn.Conv1d(2, 3, 3, stride=2, padding=1, dilation=2), nn.Flatten()),
        (2, 9),
        ["Conv1D_Layer", "Flatten_Layer"],
    ),
    (
        "Conv1d-same-even-kernel",
        lambda: seq(nn.Conv1d(2, 3, 4, padding="same", dilation=2), nn.Flatten()),
        (2, 9),
        ["Conv1D_Layer", "Flatten_Layer"],
    ),
    (
        "Conv1d-valid",
        lambda: seq(nn.Conv1d(2, 3, 4, padding="valid"), nn.Flatten()),
        (2, 9),
        ["Conv1D_Layer", "Flatten_Layer"],
    ),
    (
        "Conv1d-groups",
        lambda: seq(nn.Conv1d(2, 4, 3, groups=2), nn.Flatten()),
        (2, 9),
        ["Conv1D_Layer", "Flatten_Layer"],
    ),
    (
        "Conv1d-reflect",
        lambda: seq(nn.Conv1d(2, 4, 3, padding=2, padding_mode="reflect"), nn.Flatten()),
        (2, 9),
        ["Conv1D_Layer", "Flatten_Layer"],
    ),
    (
        "Conv2d-stride-padding-dilation",
        lambda: seq(
            nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2)), nn.Flatten()
        ),
        (2, 7, 8),
        ["Conv2D_Layer", "Flatten_Layer"],
    ),
    (
        "Conv2d-same-even-kernel",
        lambda: seq(nn.Conv2d(2, 3, (4, 3), padding="same"), nn.Flatten()),
        (2, 7, 8),
        ["Conv2D_Layer", "Flatten_Layer"],
    ),
    (
        "Conv2d-circular",
        lambda: seq(nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), nn.Flatten()),
        (2, 7, 8),
        ["Conv2D_Layer", "Flatten_Layer"],
    ),
    (
        "Conv2d-replicate-same",
        lambda: seq(nn.Conv2d(2, 3, 4, padding="same", padding_mode="replicate"), nn.Flatten()),
        (2, 7, 8),
        ["Conv2D_Layer", "Flatten_Layer"],
    ),
    (
        "Conv2d-groups",
        lambda: seq(nn.Conv2d(4, 2, 3, groups=2), nn.Flatten()),
        (4, 5, 5),
        ["Conv2D_Layer", "Flatten_Layer"],
    ),
    (
        "AvgPool1d",
        lambda: seq(nn.AvgPool1d(3, 2, padding=1), nn.Flatten()),
        (2, 9),
        ["AvgPool1D_Layer", "Flatten_Layer"],
    ),
    (
        "AvgPool2d",
        lambda: seq(nn.AvgPool2d(2), nn.Flatten()),
        (2, 6, 6),
        ["AvgPool2D_Layer", "Flatten_Layer"],
    ),
    (
        "AvgPool2d-ceil-no-pad-count",
        lambda: seq(
            nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
            nn.Flatten(),
        ),
        (2, 6, 6),
        ["AvgPool2D_Layer", "Flatten_Layer"],
    ),
    (
        "MaxPool1d",
        lambda: seq(nn.MaxPool1d(3, 2), nn.Flatten()),
        (2, 9),
        ["MaxPool1D_Layer", "Flatten_Layer"],
    ),
    (
        "MaxPool2d-padding-dilation",
        lambda: seq(nn.MaxPool2d(3, stride=2, padding=1, dilation=2), nn.Flatten()),
        (2, 9, 9),
        ["MaxPool2D_Layer", "Flatten_Layer"],
    ),
    (
        "AdaptiveAvgPool1d",
        lambda: seq(nn.AdaptiveAvgPool1d(1), nn.Flatten()),
        (2, 9),
        ["GlobalAvgPool_Layer", "Flatten_Layer"],
    ),
    (
        "AdaptiveAvgPool2d",
        lambda: seq(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()),
        (2, 5, 6),
        ["GlobalAvgPool_Layer", "Flatten_Layer"],
    ),
    (
        "AdaptiveAvgPool2d-7x7-of-9x9",  # VGG's, with windows of varying size
        lambda: seq(nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten()),
        (2, 9, 9),
        ["AvgPool2D_Layer", "Flatten_Layer"],
    ),
    (
        "AdaptiveAvgPool2d-identity",
        lambda: seq(nn.AdaptiveAvgPool2d((7, None)), nn.Flatten()),
        (2, 7, 7),
        ["AvgPool2D_Layer", "Flatten_Layer"],
    ),
    (
        "AdaptiveAvgPool1d-3-of-8",
        lambda: seq(nn.AdaptiveAvgPool1d(3), nn.Flatten()),
        (2, 8),
        ["AvgPool1D_Layer", "Flatten_Layer"],
    ),
    (
        "AdaptiveMaxPool2d-3x2",
        lambda: seq(nn.AdaptiveMaxPool2d((3, 2)), nn.Flatten()),
        (2, 7, 5),
        ["MaxPool2D_Layer", "Flatten_Layer"],
    ),
    (
        "F.adaptive_max_pool1d-3",
        lambda: Lambda(lambda x: F.adaptive_max_pool1d(x, 3).flatten(1)),
        (2, 8),
        ["MaxPool1D_Layer", "Flatten_Layer"],
    ),
    (
        "AdaptiveMaxPool1d",
        lambda: seq(nn.AdaptiveMaxPool1d(1), nn.Flatten()),
        (2, 9),
        ["GlobalMaxPool_Layer", "Flatten_Layer"],
    ),
    (
        "AdaptiveMaxPool2d",
        lambda: seq(nn.AdaptiveMaxPool2d(1), nn.Flatten()),
        (2, 5, 6),
        ["GlobalMaxPool_Layer", "Flatten_Layer"],
    ),
    ("BatchNorm1d-tabular", lambda: nn.BatchNorm1d(4), (4,), ["BatchNorm_Layer"]),
    (
        "BatchNorm1d-signal",
        lambda: seq(nn.BatchNorm1d(2), nn.Flatten()),
        (2, 5),
        ["BatchNorm_Layer", "Flatten_Layer"],
    ),
    (
        "BatchNorm2d",
        lambda: seq(nn.BatchNorm2d(2), nn.Flatten()),
        (2, 3, 3),
        ["BatchNorm_Layer", "Flatten_Layer"],
    ),
    (
        "BatchNorm2d-not-affine",
        lambda: seq(nn.BatchNorm2d(2, affine=False), nn.Flatten()),
        (2, 3, 3),
        ["BatchNorm_Layer", "Flatten_Layer"],
    ),
    (
        "Flatten-start-dim",
        lambda: seq(nn.Flatten(2), nn.Flatten()),
        (2, 3, 3),
        ["Flatten_Layer", "Flatten_Layer"],
    ),
    *[
        (
            pad.__name__,
            factory,
            dim,
            ["Padding_Layer", "Flatten_Layer"],
        )
        for pad, factory, dim in [
            (nn.ZeroPad1d, lambda: seq(nn.ZeroPad1d((1, 2)), nn.Flatten()), (2, 4)),
            (nn.ZeroPad2d, lambda: seq(nn.ZeroPad2d((1, 2, 0, 1)), nn.Flatten()), (2, 4, 4)),
            (nn.ConstantPad1d, lambda: seq(nn.ConstantPad1d(2, 1.5), nn.Flatten()), (2, 4)),
            (nn.ConstantPad2d, lambda: seq(nn.ConstantPad2d(1, -1.0), nn.Flatten()), (2, 4, 4)),
            (nn.ReflectionPad1d, lambda: seq(nn.ReflectionPad1d(2), nn.Flatten()), (2, 4)),
            (
                nn.ReflectionPad2d,
                lambda: seq(nn.ReflectionPad2d((1, 0, 2, 1)), nn.Flatten()),
                (2, 4, 4),
            ),
            (nn.ReplicationPad1d, lambda: seq(nn.ReplicationPad1d(2), nn.Flatten()), (2, 4)),
            (nn.ReplicationPad2d, lambda: seq(nn.ReplicationPad2d(1), nn.Flatten()), (2, 4, 4)),
            (nn.CircularPad1d, lambda: seq(nn.CircularPad1d(2), nn.Flatten()), (2, 4)),
            (nn.CircularPad2d, lambda: seq(nn.CircularPad2d(1), nn.Flatten()), (2, 4, 4)),
        ]
    ],
    (
        "Dropout-Identity-AlphaDropout-skipped",
        lambda: seq(
            nn.Linear(3, 4), nn.Dropout(), nn.Identity(), nn.AlphaDropout(), nn.Linear(4, 2)
        ),
        (3,),
        ["Dense_Layer", "Dense_Layer"],
    ),
    (
        "Dropout1d-skipped",
        lambda: seq(nn.Conv1d(2, 2, 1), nn.Dropout1d(), nn.Flatten()),
        (2, 3),
        ["Conv1D_Layer", "Flatten_Layer"],
    ),
    (
        "Dropout2d-skipped",
        lambda: seq(nn.Conv2d(2, 2, 1), nn.Dropout2d(), nn.Flatten()),
        (2, 3, 3),
        ["Conv2D_Layer", "Flatten_Layer"],
    ),
    (
        "Dropout-between-Linear-and-ReLU-fuses",
        lambda: seq(nn.Linear(3, 4), nn.Dropout(), nn.ReLU()),
        (3,),
        ["Dense_Layer+relu"],
    ),
]

# activation modules and functions after a Linear (fused) as (id, activation, kind)
ACTIVATIONS = [
    ("ReLU", nn.ReLU(), "relu"),
    ("ReLU-inplace", nn.ReLU(inplace=True), "relu"),
    ("LeakyReLU", nn.LeakyReLU(0.3), "leaky_relu"),
    ("ELU", nn.ELU(0.7), "elu"),
    ("Softplus", nn.Softplus(2.0, 5.0), "softplus"),
    ("Sigmoid", nn.Sigmoid(), "sigmoid"),
    ("Tanh", nn.Tanh(), "tanh"),
    ("Softmax", nn.Softmax(dim=1), "softmax"),
    ("Softmax-last", nn.Softmax(dim=-1), "softmax"),
    ("GELU", nn.GELU(), "gelu"),
    ("GELU-tanh", nn.GELU("tanh"), "gelu"),
    ("SiLU", nn.SiLU(), "silu"),
    ("ReLU6", nn.ReLU6(), "relu6"),
    ("Hardtanh", nn.Hardtanh(-2.0, 3.0), "hardtanh"),
    ("Hardswish", nn.Hardswish(), "hardswish"),
    ("Hardsigmoid", nn.Hardsigmoid(), "hardsigmoid"),
    ("Mish", nn.Mish(), "mish"),
    ("LogSoftmax", nn.LogSoftmax(dim=1), "log_softmax"),
    ("F.relu6", Lambda(F.relu6), "relu6"),
    ("F.hardtanh", Lambda(lambda x: F.hardtanh(x, -0.5, 0.5)), "hardtanh"),
    ("F.hardswish", Lambda(F.hardswish), "hardswish"),
    ("F.log_softmax", Lambda(lambda x: F.log_softmax(x, dim=-1)), "log_softmax"),
    ("F.relu", Lambda(F.relu), "relu"),
    ("torch.relu", Lambda(torch.relu), "relu"),
    ("Tensor.relu", Lambda(lambda x: x.relu()), "relu"),
    ("F.leaky_relu", Lambda(lambda x: F.leaky_relu(x, 0.2)), "leaky_relu"),
    ("F.elu", Lambda(lambda x: F.elu(x, 0.5)), "elu"),
    ("F.softplus", Lambda(lambda x: F.softplus(x, 2.0)), "softplus"),
    ("F.sigmoid", Lambda(F.sigmoid), "sigmoid"),
    ("torch.sigmoid", Lambda(torch.sigmoid), "sigmoid"),
    ("Tensor.sigmoid", Lambda(lambda x: x.sigmoid()), "sigmoid"),
    ("F.tanh", Lambda(F.tanh), "tanh"),
    ("torch.tanh", Lambda(torch.tanh), "tanh"),
    ("Tensor.tanh", Lambda(lambda x: x.tanh()), "tanh"),
    ("F.softmax", Lambda(lambda x: F.softmax(x, 1)), "softmax"),
    ("torch.softmax", Lambda(lambda x: torch.softmax(x, -1)), "softmax"),
    ("Tensor.softmax", Lambda(lambda x: x.softmax(dim=1)), "softmax"),
    ("F.gelu", Lambda(lambda x: F.gelu(x, approximate="tanh")), "gelu"),
    ("F.silu", Lambda(F.silu), "silu"),
]

# functions, as (id, model factory, input_dim, expected kinds)
FUNCTIONS = [
    ("torch.flatten", lambda: Lambda(lambda x: torch.flatten(x, 1)), (2, 4, 4), ["Flatten_Layer"]),
    ("Tensor.flatten", lambda: Lambda(lambda x: x.flatten(1)), (2, 4, 4), ["Flatten_Layer"]),
    (
        "Tensor.view",
        lambda: Lambda(lambda x: x.view(x.size(0), -1)),
        (2, 4, 4),
        ["Flatten_Layer"],
    ),
    (
        "Tensor.reshape",
        lambda: Lambda(lambda x: x.reshape(x.shape[0], -1)),
        (2, 4, 4),
        ["Flatten_Layer"],
    ),
    (
        "torch.reshape",
        lambda: Lambda(lambda x: torch.reshape(x, (-1, 32))),
        (2, 4, 4),
        ["Flatten_Layer"],
    ),
    (
        "Tensor.view-same-shape-skipped",
        lambda: Lambda(lambda x: x.view(x.size(0), -1), nn.Linear(4, 3)),
        (4,),
        ["Dense_Layer"],
    ),
    (
        "Tensor.mean",
        lambda: Lambda(lambda x: x.mean((2, 3))),
        (2, 4, 4),
        ["GlobalAvgPool_Layer"],
    ),
    (
        "torch.mean",
        lambda: Lambda(lambda x: torch.mean(x, dim=[2, 3])),
        (2, 4, 4),
        ["GlobalAvgPool_Layer"],
    ),
    (
        "Tensor.mean-keepdim",
        lambda: Lambda(lambda x: x.mean((-2, -1), keepdim=True).flatten(1)),
        (2, 4, 4),
        ["GlobalAvgPool_Layer", "Flatten_Layer"],
    ),
    ("Tensor.mean-signal", lambda: Lambda(lambda x: x.mean(-1)), (2, 4), ["GlobalAvgPool_Layer"]),
    (
        "Tensor.amax",
        lambda: Lambda(lambda x: x.amax((2, 3))),
        (2, 4, 4),
        ["GlobalMaxPool_Layer"],
    ),
    (
        "torch.amax",
        lambda: Lambda(lambda x: torch.amax(x, dim=(-1, -2))),
        (2, 4, 4),
        ["GlobalMaxPool_Layer"],
    ),
    (
        "F.max_pool1d",
        lambda: Lambda(lambda x: F.max_pool1d(x, 2).flatten(1)),
        (2, 6),
        ["MaxPool1D_Layer", "Flatten_Layer"],
    ),
    (
        "F.max_pool2d",
        lambda: Lambda(lambda x: F.max_pool2d(x, kernel_size=3, stride=1, padding=1).flatten(1)),
        (2, 4, 4),
        ["MaxPool2D_Layer", "Flatten_Layer"],
    ),
    (
        "F.avg_pool1d",
        lambda: Lambda(lambda x: F.avg_pool1d(x, 3, 2).flatten(1)),
        (2, 7),
        ["AvgPool1D_Layer", "Flatten_Layer"],
    ),
    (
        "F.avg_pool2d",
        lambda: Lambda(lambda x: F.avg_pool2d(x, 2).flatten(1)),
        (2, 4, 4),
        ["AvgPool2D_Layer", "Flatten_Layer"],
    ),
    (
        "F.adaptive_avg_pool1d",
        lambda: Lambda(lambda x: F.adaptive_avg_pool1d(x, 1).flatten(1)),
        (2, 5),
        ["GlobalAvgPool_Layer", "Flatten_Layer"],
    ),
    (
        "F.adaptive_avg_pool2d",
        lambda: Lambda(lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1)),
        (2, 4, 4),
        ["GlobalAvgPool_Layer", "Flatten_Layer"],
    ),
    (
        "F.pad",
        lambda: Lambda(lambda x: F.pad(x, (1, 2)).flatten(1)),
        (2, 4),
        ["Padding_Layer", "Flatten_Layer"],
    ),
    (
        "F.pad-reflect",
        lambda: Lambda(lambda x: F.pad(x, (1, 2, 1, 1), mode="reflect").flatten(1)),
        (2, 4, 4),
        ["Padding_Layer", "Flatten_Layer"],
    ),
    (
        "F.pad-value",
        lambda: Lambda(lambda x: F.pad(x, (1, 2, 1, 1), "constant", 3.0).flatten(1)),
        (2, 4, 4),
        ["Padding_Layer", "Flatten_Layer"],
    ),
    (
        "F.dropout-skipped",
        lambda: Lambda(lambda x: F.dropout(x, 0.5, training=False), nn.Linear(4, 3)),
        (4,),
        ["Dense_Layer"],
    ),
    (
        "Tensor.contiguous-skipped",
        lambda: Lambda(lambda x: x.contiguous(), nn.Linear(4, 3)),
        (4,),
        ["Dense_Layer"],
    ),
    (
        "torch.cat",
        lambda: Lambda(lambda x: torch.cat((x, x.relu()), 1)),
        (4,),
        ["Activation_Layer+relu", "Concatenate_Layer"],
    ),
    (
        "torch.cat-channels",
        lambda: Lambda(lambda x: torch.cat([x, x.tanh()], dim=1).flatten(1)),
        (2, 3, 3),
        ["Activation_Layer+tanh", "Concatenate_Layer", "Flatten_Layer"],
    ),
    (
        "torch.concat",
        lambda: Lambda(lambda x: torch.concat([x.relu(), x], dim=-1)),
        (4,),
        ["Activation_Layer+relu", "Concatenate_Layer"],
    ),
    (
        "torch.concatenate",
        lambda: Lambda(lambda x: torch.concatenate([x.relu(), x], axis=1)),
        (4,),
        ["Activation_Layer+relu", "Concatenate_Layer"],
    ),
    (
        "torch.cat-same-tensor-twice",
        lambda: Lambda(lambda x: torch.cat([x, x], 1), nn.Linear(4, 3)),
        (4,),
        ["Dense_Layer", "Concatenate_Layer"],
    ),
    ("add", lambda: Lambda(lambda x: x + x.relu()), (4,), ["Activation_Layer+relu", "Add_Layer"]),
    (
        "torch.add",
        lambda: Lambda(lambda x: torch.add(x, x.relu())),
        (4,),
        ["Activation_Layer+relu", "Add_Layer"],
    ),
    (
        "torch.add-keyword",
        lambda: Lambda(lambda x: torch.add(x, other=x.relu())),
        (4,),
        ["Activation_Layer+relu", "Add_Layer"],
    ),
    (
        "Tensor.add",
        lambda: Lambda(lambda x: x.add(x.relu())),
        (4,),
        ["Activation_Layer+relu", "Add_Layer"],
    ),
    (
        "add-same-tensor-twice",
        lambda: Lambda(lambda x: x + x, nn.Linear(4, 3)),
        (4,),
        ["Dense_Layer", "Add_Layer"],
    ),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize(
    ("factory", "input_dim", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in MODULES],
)
def test_each_module_is_converted_exactly(factory, input_dim, expected, assert_same_forward, kinds):
    converter = assert_same_forward(factory(), input_dim)
    assert kinds(converter) == expected


@pytest.mark.parametrize(
    ("activation", "kind"),
    [pytest.param(*case[1:], id=case[0]) for case in ACTIVATIONS],
)
def test_each_activation_is_fused_into_the_dense_layer(
    activation, kind, assert_same_forward, kinds
):
    converter = assert_same_forward(nn.Sequential(nn.Linear(3, 4), activation), (3,))
    assert kinds(converter) == [f"Dense_Layer+{kind}"]


@pytest.mark.parametrize(
    ("factory", "input_dim", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in FUNCTIONS],
)
def test_each_function_is_converted_exactly(
    factory, input_dim, expected, assert_same_forward, kinds
):
    converter = assert_same_forward(factory(), input_dim)
    assert kinds(converter) == expected


class AugmentedResidual(nn.Module):
    """``y += x`` on a traced value is recorded as ``operator.add``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: Tensor) -> Tensor:
        y = self.fc(x)
        y += x
        return y


def test_augmented_assignment_is_an_addition(assert_same_forward, kinds):
    assert kinds(assert_same_forward(AugmentedResidual(), (3,))) == ["Dense_Layer", "Add_Layer"]


def test_activation_parameters_are_kept():
    model = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.3))
    (node,) = Converter(model).model.nodes
    assert node.layer.activation.params == {"negative_slope": 0.3}


@pytest.mark.parametrize(
    ("model", "input_dim", "expected"),
    [
        pytest.param(
            nn.Sequential(nn.Conv1d(2, 2, 3), nn.MaxPool1d(2), nn.ReLU(), nn.Flatten()),
            (2, 9),
            ["Conv1D_Layer", "MaxPool1D_Layer", "Activation_Layer+relu", "Flatten_Layer"],
            id="after-pooling",
        ),
        pytest.param(
            nn.Sequential(nn.Conv1d(2, 2, 3), nn.Flatten(), nn.Tanh()),
            (2, 9),
            ["Conv1D_Layer", "Flatten_Layer", "Activation_Layer+tanh"],
            id="after-flatten",
        ),
        pytest.param(
            nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Sigmoid()),
            (3,),
            ["Dense_Layer", "BatchNorm_Layer", "Activation_Layer+sigmoid"],
            id="after-batchnorm",
        ),
        pytest.param(
            Lambda(lambda x: F.relu(x + x.tanh()), nn.Linear(3, 4)),
            (3,),
            ["Dense_Layer", "Activation_Layer+tanh", "Add_Layer", "Activation_Layer+relu"],
            id="after-add",
        ),
        pytest.param(
            nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sigmoid()),
            (3,),
            ["Dense_Layer+relu", "Activation_Layer+sigmoid"],
            id="second-activation",
        ),
        pytest.param(
            nn.Sequential(nn.ReLU(), nn.Linear(3, 4)),
            (3,),
            ["Activation_Layer+relu", "Dense_Layer"],
            id="on-the-input",
        ),
        pytest.param(
            Lambda(lambda x: x.relu() + x, nn.Linear(3, 4)),
            (3,),
            ["Dense_Layer", "Activation_Layer+relu", "Add_Layer"],
            id="dense-output-read-twice",
        ),
    ],
)
def test_other_activations_stay_standalone(model, input_dim, expected, assert_same_forward, kinds):
    assert kinds(assert_same_forward(model, input_dim)) == expected


class TwoOutputsOfOneLayer(nn.Module):
    """The logits and the probabilities of one dense layer are both outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.fc(x)
        return logits, torch.sigmoid(logits)


def test_activation_of_a_model_output_is_not_fused(assert_same_forward, kinds):
    converter = assert_same_forward(TwoOutputsOfOneLayer(), (3,))
    assert kinds(converter) == ["Dense_Layer", "Activation_Layer+sigmoid"]
    assert converter.model.output_nodes == [0, 1]


# --- whole models ----------------------------------------------------------------------------


def test_mlp(assert_same_forward, kinds):
    model = nn.Sequential(
        nn.Linear(5, 8),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(8, 6),
        nn.Tanh(),
        nn.Linear(6, 3),
        nn.Softmax(dim=1),
    )
    converter = assert_same_forward(model, (5,))
    assert kinds(converter) == ["Dense_Layer+relu", "Dense_Layer+tanh", "Dense_Layer+softmax"]
    assert converter.output_dim == [(3,)]


def test_conv1d_net(assert_same_forward, kinds):
    model = nn.Sequential(
        nn.Conv1d(3, 4, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(4, 5, 3, stride=2, padding="valid", dilation=2),
        nn.Softplus(),
        nn.AvgPool1d(2),
        nn.Flatten(),
        nn.Linear(5, 2),
    )
    converter = assert_same_forward(model, (3, 20))
    assert kinds(converter) == [
        "Conv1D_Layer+relu",
        "MaxPool1D_Layer",
        "Conv1D_Layer+softplus",
        "AvgPool1D_Layer",
        "Flatten_Layer",
        "Dense_Layer",
    ]


class ConvNet2d(nn.Module):
    """Conv2d with BatchNorm, max and average pooling, and a flatten by view."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding="same")
        self.bn2 = nn.BatchNorm2d(6)
        self.pool2 = nn.AvgPool2d(2)
        self.fc = nn.Linear(6 * 2 * 2, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(F.relu(self.bn1(self.conv1(x))))
        x = self.pool2(torch.relu(self.bn2(self.conv2(x))))
        return torch.sigmoid(self.fc(x.view(x.size(0), -1)))


def test_conv2d_net_with_batchnorm_and_poolings(assert_same_forward, kinds):
    converter = assert_same_forward(ConvNet2d(), (3, 8, 8))
    assert kinds(converter) == [
        "Conv2D_Layer",
        "BatchNorm_Layer",
        "Activation_Layer+relu",
        "MaxPool2D_Layer",
        "Conv2D_Layer",
        "BatchNorm_Layer",
        "Activation_Layer+relu",
        "AvgPool2D_Layer",
        "Flatten_Layer",
        "Dense_Layer+sigmoid",
    ]


class TwoInTwoOut(nn.Module):
    """A tabular and a signal input, concatenated; a regression and a classification head."""

    def __init__(self) -> None:
        super().__init__()
        self.tab = nn.Linear(3, 4)
        self.sig = nn.Conv1d(2, 2, 3)
        self.head1 = nn.Linear(4 + 2 * 4, 2)
        self.head2 = nn.Linear(4 + 2 * 4, 3)

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        h = torch.cat([F.relu(self.tab(x1)), torch.flatten(torch.tanh(self.sig(x2)), 1)], dim=1)
        return self.head1(h), F.softmax(self.head2(h), dim=1)


def test_two_inputs_two_outputs_with_concatenate(assert_same_forward, kinds):
    converter = assert_same_forward(TwoInTwoOut(), [(3,), (2, 6)])
    assert kinds(converter) == [
        "Dense_Layer+relu",
        "Conv1D_Layer+tanh",
        "Flatten_Layer",
        "Concatenate_Layer",
        "Dense_Layer",
        "Dense_Layer+softmax",
    ]
    assert converter.input_dim == [(3,), (2, 6)]
    assert converter.output_dim == [(2,), (3,)]
    concatenate = converter.model.nodes[3]
    assert concatenate.in_dims == [(4,), (8,)]


class Residual(nn.Module):
    """A ResNet-style block: conv, batch norm, skip connection by ``+``, global pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(2, 3)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn(self.conv1(x)))
        out = self.conv2(out) + x
        out = torch.add(self.relu(out), x)
        return self.fc(torch.mean(out, dim=(2, 3)))


def test_residual_with_add(assert_same_forward, kinds):
    converter = assert_same_forward(Residual(), (2, 5, 5))
    assert kinds(converter) == [
        "Conv2D_Layer",
        "BatchNorm_Layer",
        "Activation_Layer+relu",
        "Conv2D_Layer",
        "Add_Layer",
        "Activation_Layer+relu",
        "Add_Layer",
        "GlobalAvgPool_Layer",
        "Dense_Layer",
    ]


def test_converted_float_model_matches_the_float_model():
    model = ConvNet2d().eval()
    converter = Converter(model, input_dim=(3, 8, 8))
    x = torch.randn(4, 3, 8, 8)
    (got,) = converter.model(x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, model(x), rtol=1e-5, atol=1e-6)


def test_keep_returns_every_layers_tensors():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    converter = Converter(model, dtype="double")
    x = torch.randn(5, 3, dtype=torch.float64)
    pass_ = converter.model.run([x], keep=True)
    hidden = model[0].double()(x)
    torch.testing.assert_close(pass_.layer_inputs[0][0], x)
    torch.testing.assert_close(pass_.layer_preactivations[0], hidden)
    torch.testing.assert_close(pass_.layer_outputs[0], hidden.relu())
    torch.testing.assert_close(pass_.layer_inputs[1][0], hidden.relu())
    torch.testing.assert_close(pass_.outputs[0], pass_.preactivations[0])


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle and ConvNeXt's channels-last round trip: reorderings
    of one instance's values (view, transpose, reshape, permute, movedim)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(4, 4, 1, bias=False)
        self.head = nn.Linear(4 * 3 * 3, 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        x = self.conv(x).view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)
        x = torch.relu(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x = torch.movedim(x, 1, -1).movedim(-1, 1)
        return self.head(torch.swapaxes(x, 2, 3).flatten(1))


def test_pure_reorderings_convert_and_explain_exactly(assert_same_forward, kinds):
    converter = assert_same_forward(ChannelShuffle(), (4, 3, 3))
    assert "Permute_Layer" in kinds(converter) and "Reshape_Layer" in kinds(converter)
    model = ChannelShuffle().double()
    converter = Converter(model, input_dim=(4, 3, 3), dtype="double")
    x = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    lrp = LRP(converter, x, dtype="double").get_result()
    with torch.no_grad():
        out = model(x)
    np.testing.assert_allclose(lrp.sum((1, 2, 3)), out.numpy(), rtol=1e-9)  # bias-free
    inputs = x.clone().requires_grad_(True)
    model(inputs)[:, 1].sum().backward()
    gradient = Gradient(converter, x, output_idx=[1], dtype="double").get_result()[..., 0]
    np.testing.assert_allclose(gradient, inputs.grad.numpy(), rtol=1e-10, atol=1e-12)
    x_ref = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    contributions = DeepLift(converter, x, x_ref=x_ref, dtype="double").get_result()
    with torch.no_grad():
        delta = (model(x) - model(x_ref)).numpy()
    np.testing.assert_allclose(contributions.sum((1, 2, 3)), delta, rtol=1e-9, atol=1e-12)


def test_a_reordering_that_moves_the_batch_axis_is_refused():
    model = Lambda(lambda x: x.transpose(0, 1).flatten(1))
    with pytest.raises(UnsupportedLayerError, match="not a float tensor with the batch on the"):
        Converter(model, input_dim=(3, 4))


class LayerScale(nn.Module):
    """ConvNeXt's layer scale (``x * gamma``, a parameter per channel), a fixed input
    scaling (``x / 255``) and a scalar factor on either side."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 3, 3, bias=False)
        self.gamma = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]).reshape(3, 1, 1))
        self.head = nn.Linear(3 * 4 * 4, 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.conv(x / 255.0)) * self.gamma
        return self.head((0.5 * torch.mul(x, 2.0)).flatten(1))


def test_products_with_constants_convert_and_conserve_relevance(assert_same_forward, kinds):
    converter = assert_same_forward(LayerScale(), (2, 6, 6))
    assert kinds(converter).count("Scale_Layer") == 4
    model = LayerScale().double()
    converter = Converter(model, input_dim=(2, 6, 6), dtype="double")
    x = 255 * torch.rand(3, 2, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        out = model(x)
    lrp = LRP(converter, x, dtype="double").get_result()
    np.testing.assert_allclose(lrp.sum((1, 2, 3)), out.numpy(), rtol=1e-9)  # bias-free
    x_ref = torch.zeros(1, 2, 6, 6, dtype=torch.float64)
    contributions = DeepLift(converter, x, x_ref=x_ref, dtype="double").get_result()
    with torch.no_grad():
        delta = (out - model(x_ref)).numpy()
    np.testing.assert_allclose(contributions.sum((1, 2, 3)), delta, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("forward", "message"),
    [
        (lambda x: x / torch.sigmoid(x), "divides by a tensor the model computes"),
        (lambda x: 1.0 / x, "divides a constant by a tensor"),
    ],
    ids=["division-by-a-tensor", "constant-divided-by-a-tensor"],
)
def test_nonlinear_products_are_refused(forward, message):
    with pytest.raises(ValueError, match=message):
        Converter(Lambda(forward, nn.Linear(3, 3)), input_dim=(3,))


def test_torchvisions_stochastic_depth_is_the_identity_in_eval(assert_same_forward, kinds):
    class StochasticDepth(nn.Module):
        """torchvision's (its class registered by name: torchvision is not needed)."""

        def __init__(self, p: float) -> None:
            super().__init__()
            self.p = p

        def forward(self, x: Tensor) -> Tensor:
            keep = torch.rand(len(x), 1) >= self.p if self.training else 1.0
            return x * keep

    StochasticDepth.__module__ = "torchvision.ops.stochastic_depth"
    StochasticDepth.__qualname__ = "StochasticDepth"
    converter = assert_same_forward(seq(nn.Linear(3, 4), StochasticDepth(0.5)), (3,))
    assert kinds(converter) == ["Dense_Layer"]


class FunctionalNorms(nn.Module):
    """``F.layer_norm`` and ``F.group_norm`` with the module's own parameters."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 4, 3)
        self.gamma, self.beta = nn.Parameter(torch.rand(4) + 0.5), nn.Parameter(torch.randn(4))
        self.scale = nn.Parameter(torch.rand(4, 4) + 0.5)

    def forward(self, x: Tensor) -> Tensor:
        x = F.group_norm(self.conv(x), 2, self.gamma, self.beta)
        return F.layer_norm(x, (4, 4), self.scale).flatten(1)


def test_functional_layer_and_group_norm_convert(assert_same_forward, kinds):
    converter = assert_same_forward(FunctionalNorms(), (2, 6, 6))
    assert kinds(converter) == [
        "Conv2D_Layer",
        "GroupNorm_Layer",
        "LayerNorm_Layer",
        "Flatten_Layer",
    ]
