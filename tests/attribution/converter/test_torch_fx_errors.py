"""Converting torch modules: what cannot be converted, input_dim inference, the user's model."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribution import Converter, UnsupportedLayerError


class Lambda(nn.Module):
    """``f(before(x))``."""

    def __init__(self, f, *before: nn.Module) -> None:
        super().__init__()
        self.f = f
        self.before = nn.Sequential(*before)

    def forward(self, x: Tensor) -> Tensor:
        return self.f(self.before(x))


class Pair(nn.Module):
    """``f(x1, x2)`` of two inputs."""

    def __init__(self, f) -> None:
        super().__init__()
        self.f = f

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.f(x1, x2)


# --- unsupported modules and operations ------------------------------------------------------


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


def test_unsupported_module_names_its_path_type_and_the_alternatives():
    with pytest.raises(
        UnsupportedLayerError,
        match=r"Cannot convert module 'lstm' \(LSTM\): LSTM is not supported\. Supported "
        r"modules: .*Conv2d.*Linear.*Supported functions: .*torch\.cat.*LIME and SHAP still "
        r"explain this model",
    ) as info:
        Converter(Recurrent(), input_dim=(5, 3))
    assert isinstance(info.value, TypeError)
    assert (info.value.path, info.value.type_name) == ("lstm", "LSTM")


def test_unsupported_operation_is_named_by_its_node():
    model = Lambda(lambda x: torch.sin(x), nn.Linear(3, 2))
    with pytest.raises(
        UnsupportedLayerError, match=r"Cannot convert 'sin' \(sin\): sin is not supported"
    ) as info:
        Converter(model)
    assert (info.value.path, info.value.type_name) == ("sin", "sin")


def test_unsupported_tensor_method_is_named():
    with pytest.raises(UnsupportedLayerError, match=r"'abs_1' \(Tensor\.abs\): Tensor\.abs is not"):
        Converter(Lambda(lambda x: x.abs(), nn.Linear(3, 2)))


class WithOffset(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.offset = nn.Parameter(torch.ones(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x) + self.offset


def test_operations_with_tensor_constants_are_unsupported():
    with pytest.raises(UnsupportedLayerError, match="it uses the tensor constant 'offset'"):
        Converter(WithOffset())


class PoolWithIndices(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool1d(2, return_indices=True)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.pool(x)
        return out.flatten(1)


def test_supported_module_returning_a_tuple_is_unsupported():
    with pytest.raises(
        UnsupportedLayerError,
        match=r"module 'pool' \(MaxPool1d\): it returns a tuple, not one tensor",
    ):
        Converter(PoolWithIndices(), input_dim=(2, 6))


def test_operation_mixing_the_batch_is_unsupported():
    with pytest.raises(
        UnsupportedLayerError,
        match=r"'flatten' \(flatten\): it returns a tensor of shape \(12,\) and type "
        r"torch\.float64, not a float tensor with the batch on the first axis",
    ):
        Converter(Lambda(torch.flatten), input_dim=(2, 3))


def test_activation_along_the_batch_axis_is_rejected():
    with pytest.raises(
        ValueError,
        match=r"Cannot convert module '0' \(Softmax\): operations along the batch axis",
    ):
        Converter(nn.Sequential(nn.Softmax(dim=0)), input_dim=(3,))


class ShiftedLinear(nn.Linear):
    """A Linear subclass whose forward is not the standard one."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) + 1.0


class NamedLinear(nn.Linear):
    """A Linear subclass with the standard forward."""


def test_subclass_with_another_forward_is_caught_at_its_layer():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), ShiftedLinear(4, 2))
    with pytest.raises(
        ValueError,
        match=r"The converted model diverges from the original at layer 2, Dense_Layer "
        r"\(module '2' \(ShiftedLinear\)\): a maximum absolute difference of 1 on a random "
        r"input\. This module's forward differs .* LIME and SHAP",
    ):
        Converter(model)


class TruncatedLinear(nn.Linear):
    """A Linear subclass that returns fewer features than it is declared with."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x)[:, :1]


@pytest.mark.parametrize(
    ("model", "layer"),
    [
        pytest.param(nn.Sequential(nn.Linear(3, 4), TruncatedLinear(4, 2)), 2, id="last"),
        pytest.param(
            nn.Sequential(TruncatedLinear(3, 2), nn.Tanh(), nn.Linear(1, 2)), 1, id="first"
        ),
    ],
)
def test_subclass_computing_another_shape_is_caught_at_its_layer(model, layer):
    with pytest.raises(
        ValueError,
        match=rf"diverges from the original at layer {layer}, Dense_Layer \(module '{layer - 1}' "
        r"\(TruncatedLinear\)( \+ .*)?\): shape \(2, 2\) instead of \(2, 1\) on a random input",
    ):
        Converter(model)


def test_subclass_with_the_standard_forward_is_converted(assert_same_forward, kinds):
    converter = assert_same_forward(nn.Sequential(NamedLinear(3, 4), nn.Tanh()), (3,))
    assert kinds(converter) == ["Dense_Layer+tanh"]


class Branching(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: Tensor) -> Tensor:
        if x.sum() > 0:
            return self.fc(x)
        return self.fc(-x)


def test_untraceable_model_gives_a_clear_error():
    with pytest.raises(
        ValueError,
        match=r"torch\.fx cannot trace Branching: .*Models whose forward branches on tensor "
        r"values .* cannot be converted\. The gradient family",
    ):
        Converter(Branching(), input_dim=(3,))


# --- shapes ----------------------------------------------------------------------------------


def test_input_dim_is_required_for_a_conv_model():
    model = nn.Sequential(nn.Conv1d(2, 3, 2), nn.Flatten())
    with pytest.raises(
        ValueError,
        match=r"input_dim is required for Sequential: give the shape of one instance without "
        r"the batch axis, channels first, e\.g\. input_dim=\(3, 32, 32\)",
    ):
        Converter(model)


class TwoLinearInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 2)
        self.b = nn.Linear(5, 2)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.a(x1) + self.b(x2)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param(nn.Linear(3, 2), [(3,)], id="Linear"),
        pytest.param(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), [(4,)], id="Sequential"),
        pytest.param(TwoLinearInputs(), [(3,), (5,)], id="two-inputs"),
    ],
)
def test_input_dim_is_inferred_when_inputs_go_straight_into_linear(model, expected):
    assert Converter(model).input_dim == expected


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(nn.Sequential(nn.Dropout(), nn.Linear(4, 3)), id="dropout-first"),
        pytest.param(Lambda(lambda x: x, nn.ReLU(), nn.Linear(4, 3)), id="activation-first"),
        pytest.param(Pair(lambda x1, x2: x1 + x2), id="no-linear"),
    ],
)
def test_input_dim_is_not_inferred_otherwise(model):
    with pytest.raises(ValueError, match="input_dim is required"):
        Converter(model)


def test_wrong_input_dim_says_how_the_model_failed():
    with pytest.raises(
        ValueError,
        match=r"^Running the model on random input of shape \(batch, 4\) failed: mat1 and mat2 "
        r"shapes cannot be multiplied \(2x4 and 3x2\)\. Check input_dim: one shape per model "
        r"input, channels first, without the batch axis\.$",
    ):
        Converter(nn.Linear(3, 2), input_dim=(4,))


def test_inputs_with_more_than_three_axes_are_rejected():
    with pytest.raises(
        ValueError,
        match=r"input layer 1 has shape \(batch, 1, 2, 2, 4\); only tabular \(batch, features\)",
    ):
        Converter(nn.Linear(4, 2), input_dim=(1, 2, 2, 4))


def test_outputs_must_be_flat():
    with pytest.raises(
        ValueError,
        match=r"Output 1 has shape \(batch, 3, 4\); outputs must have shape \(batch, n\) as in "
        r"innsight: flatten them in the model",
    ):
        Converter(nn.Conv1d(2, 3, 2), input_dim=(2, 5))


def test_an_output_must_be_computed_by_a_layer():
    with pytest.raises(ValueError, match="Output 1 of the model is not computed by a layer"):
        Converter(nn.Sequential(nn.Dropout()).eval(), input_dim=(3,))


# --- arguments the layers cannot take --------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "input_dim", "message"),
    [
        pytest.param(
            nn.Sequential(nn.Linear(4, 2)),
            (3, 4),
            r"module '0' \(Linear\): nn\.Linear at '0' gets input of shape \(\*, 3, 4\); only "
            r"\(batch, features\) inputs are supported: flatten the input first",
            id="Linear-on-a-signal",
        ),
        pytest.param(
            nn.Sequential(nn.Linear(3, 4), nn.Softmax()),
            (3,),
            r"nn\.Softmax at '1' has no dim: set dim explicitly",
            id="Softmax-without-dim",
        ),
        pytest.param(
            Lambda(F.softmax, nn.Linear(3, 4)),
            (3,),
            r"softmax at 'softmax' has no dim: set dim explicitly",
            id="F.softmax-without-dim",
        ),
        pytest.param(
            nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False)).eval(),
            (3,),
            r"BatchNorm1d at '0' has no running statistics \(track_running_stats=False\)",
            id="BatchNorm-without-running-stats",
        ),
        pytest.param(
            Lambda(lambda x: x.mean(0)),
            (2, 4, 4),
            r"'mean' reduces over axes \[0\] of a tensor of shape \(batch, 2, 4, 4\); only "
            r"means over any of one instance's axes",
            id="mean-over-the-batch",
        ),
        pytest.param(
            Lambda(lambda x: x.amax(-1), nn.Linear(3, 4)),
            (3,),
            r"'amax' reduces over axes \[-1\]",
            id="amax-of-a-vector",
        ),
        pytest.param(
            Lambda(lambda x: x + 1.0, nn.Linear(3, 2)),
            (3,),
            r"'add' adds a constant to a tensor",
            id="add-a-constant",
        ),
        pytest.param(
            nn.Sequential(nn.AvgPool2d(2, divisor_override=3), nn.Flatten()),
            (2, 4, 4),
            r"average pooling at '0' uses divisor_override: unsupported",
            id="divisor_override",
        ),
        pytest.param(
            nn.Sequential(nn.MaxPool2d(2), nn.Flatten()),
            (3, 8),
            r"'0' pools an input of shape \(batch, 3, 8\); 2D pooling needs \(batch, channels, "
            r"h, w\)",
            id="MaxPool2d-on-a-signal",
        ),
        pytest.param(
            nn.Sequential(nn.Linear(3, 8), nn.AvgPool1d(2)),
            (3,),
            r"'1' pools an input of shape \(batch, 8\); 1D pooling needs \(batch, channels, "
            r"length\)",
            id="AvgPool1d-on-a-vector",
        ),
        pytest.param(
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
            (3, 8),
            r"'0' pools an input of shape \(batch, 3, 8\); 2D pooling needs",
            id="AdaptiveAvgPool2d-on-a-signal",
        ),
    ],
)
@pytest.mark.filterwarnings("ignore:Implicit dimension choice for softmax")
def test_unsupported_arguments_are_explained(model, input_dim, message):
    with pytest.raises(ValueError, match=r"Cannot convert .*" + message):
        Converter(model, input_dim=input_dim)


@pytest.mark.parametrize(
    ("f", "message"),
    [
        pytest.param(
            lambda x1, x2: x1 + x2,
            r"'add' adds tensors of shapes \(3,\) and \(1,\) by broadcasting; only tensors of "
            "equal shape",
            id="broadcast",
        ),
        pytest.param(
            lambda x1, x2: torch.add(x1, x2, alpha=2),
            r"'add' uses alpha=2; only alpha=1",
            id="alpha",
        ),
    ],
)
def test_unsupported_additions_are_explained(f, message):
    with pytest.raises(ValueError, match=r"Cannot convert 'add' \(add\): " + message):
        Converter(Pair(f), input_dim=[(3,), (3,) if "alpha" in message else (1,)])


# --- the user's model is left alone ----------------------------------------------------------


def _batchnorm_mlp() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].running_mean.uniform_(-1.0, 1.0)
        model[1].running_var.uniform_(0.5, 2.0)
    return model


def test_training_mode_model_is_converted_as_in_eval_mode_and_left_unchanged():
    model = _batchnorm_mlp().train()
    state = copy.deepcopy(model.state_dict())
    with pytest.warns(
        UserWarning,
        match=r"Sequential is in training mode; it is converted as in eval mode \(Dropout off, "
        r"BatchNorm with running statistics\)\. Call model\.eval\(\) first",
    ):
        converter = Converter(model, dtype="double")
    assert model.training and model[1].training
    assert state.keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    x = torch.randn(5, 3, dtype=torch.float64)
    expected = copy.deepcopy(model).double().eval()(x)
    torch.testing.assert_close(converter.model(x)[0], expected, rtol=0, atol=1e-10)


class FunctionalDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.fc2 = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.dropout(self.fc1(x), 0.5, training=self.training))


def test_functional_dropout_of_a_training_mode_model_is_off():
    model = FunctionalDropout().train()
    converter = Converter(model, dtype="double")
    x = torch.randn(5, 3, dtype=torch.float64)
    expected = copy.deepcopy(model).double().eval()(x)
    torch.testing.assert_close(converter.model(x)[0], expected, rtol=0, atol=1e-10)
    assert model.training


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(_batchnorm_mlp().eval(), id="eval-mode"),
        pytest.param(
            nn.Sequential(nn.Linear(3, 2), nn.ReLU()).train(), id="nothing-mode-dependent"
        ),
    ],
)
def test_no_warning_without_mode_dependent_modules_in_training(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Converter(model)


def test_the_models_parameters_keep_their_type_and_values():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    before = copy.deepcopy(model.state_dict())
    converter = Converter(model, dtype="double")
    for key, value in model.state_dict().items():
        assert value.dtype == torch.float32
        assert torch.equal(value, before[key])
    assert all(parameter.requires_grad for parameter in model.parameters())
    assert not any(buffer.requires_grad for buffer in converter.model.buffers())


def test_the_converted_weights_are_copies():
    model = nn.Linear(3, 2)
    converter = Converter(model, dtype="double")
    x = torch.randn(4, 3, dtype=torch.float64)
    before = converter.model(x)[0]
    with torch.no_grad():
        model.weight.add_(1.0)
    torch.testing.assert_close(converter.model(x)[0], before)


class _Block(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(x)


def test_a_function_inside_a_submodule_is_named_by_that_module():
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Identity(), _Block()))
    with pytest.raises(
        UnsupportedLayerError, match=r"Cannot convert 'sin' \(sin\) in module '1\.1' \(_Block\)"
    ) as info:
        Converter(model, input_dim=(3,))
    assert (info.value.path, info.value.type_name) == ("1.1", "sin")


def test_unsupported_options_are_unsupported_layer_errors_and_value_errors():
    with pytest.raises(UnsupportedLayerError) as info:
        Converter(Lambda(lambda x: x / torch.sigmoid(x), nn.Linear(3, 3)), input_dim=(3,))
    assert isinstance(info.value, ValueError) and "divides by a tensor" in str(info.value)
