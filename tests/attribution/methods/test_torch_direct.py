"""The torch_* functions: any differentiable module, no conversion."""

import pytest
import torch
from captum import attr as captum_attr
from torch import nn

from attribution import (
    AttributionResult,
    torch_expgrad,
    torch_grad,
    torch_intgrad,
    torch_smoothgrad,
)


class Unconvertible(nn.Module):
    """A GRU and a product of tensors: nothing the converter maps, yet differentiable."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(3, 4, batch_first=True)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        hidden = self.gru(x)[0][:, -1]
        return self.head(hidden * hidden.sigmoid())


@pytest.fixture
def rnn():
    torch.manual_seed(0)
    return Unconvertible().double().eval()


def test_torch_grad_equals_autograd_for_all_outputs(rnn, jacobian):
    x = torch.randn(4, 5, 3, dtype=torch.float64, requires_grad=True)
    grads = torch_grad(rnn, x, dtype="double")
    assert grads.shape == (4, 5, 3, 2)
    torch.testing.assert_close(grads, jacobian(rnn(x), x, [0, 1]), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        torch_grad(rnn, x, output_idx=[1], times_input=True, dtype="double"),
        jacobian(rnn(x), x, [1]) * x.detach().unsqueeze(-1),
    )


def test_torch_grad_with_several_inputs_returns_a_list(two_model, jacobian):
    # two_model returns a tuple; wrap it so it returns the first output only.
    class First(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, image, tabular):
            return self.inner(image, tabular)[0]

    model = First(two_model)
    image = torch.randn(2, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    tabular = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    grads = torch_grad(model, [image, tabular], output_idx=[0, 2], dtype="double")
    out = model(image, tabular)
    torch.testing.assert_close(grads[0], jacobian(out, image, [0, 2]))
    torch.testing.assert_close(grads[1], jacobian(out, tabular, [0, 2]))


def test_torch_smoothgrad_without_noise_is_the_gradient(rnn):
    x = torch.randn(3, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(
        torch_smoothgrad(rnn, x, noise_level=0.0, n=4, dtype="double"),
        torch_grad(rnn, x, dtype="double"),
    )


@pytest.mark.peer
def test_torch_intgrad_equals_captum(rnn):
    x = torch.randn(3, 5, 3, dtype=torch.float64)
    x_ref = torch.randn(1, 5, 3, dtype=torch.float64)
    ours = torch_intgrad(rnn, x, x_ref=x_ref, n=15, dtype="double")
    ig = captum_attr.IntegratedGradients(rnn)
    expected = torch.stack(
        [
            ig.attribute(x, baselines=x_ref, target=k, n_steps=15, method="riemann_right")
            for k in range(2)
        ],
        -1,
    )
    torch.testing.assert_close(ours, expected, rtol=1e-7, atol=1e-9)


def test_torch_expgrad_sums_to_output_minus_mean_reference_output(rnn):
    torch.manual_seed(1)
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    data_ref = torch.randn(10, 5, 3, dtype=torch.float64)
    res = torch_expgrad(rnn, x, data_ref=data_ref, n=3000, dtype="double", return_object=True)
    goal = rnn(x) - rnn(data_ref).mean(0)
    torch.testing.assert_close(res.decomp_goal[0], goal)
    error = (res.get_result("torch").sum((1, 2)) - goal).abs().max()
    assert error < 0.03 * goal.abs().max()


def test_return_object_gives_a_result_with_default_names(rnn):
    res = torch_grad(rnn, torch.randn(2, 5, 3), return_object=True)
    assert isinstance(res, AttributionResult)
    assert res.input_names == [[["C1", "C2", "C3", "C4", "C5"], ["L1", "L2", "L3"]]]
    assert res.output_names == [["Y1", "Y2"]]
    assert res.value_name == "Gradient"
    assert len(res.get_result("data.frame")) == 2 * 5 * 3 * 2


def test_the_model_keeps_its_precision_and_mode(rnn):
    model = rnn.float().train()
    torch_grad(model, torch.randn(2, 5, 3), dtype="double")
    assert next(model.parameters()).dtype == torch.float32
    assert model.training


def test_models_returning_several_tensors_are_refused(two_model):
    with pytest.raises(TypeError, match="models are explained that return one tensor"):
        torch_grad(two_model, [torch.randn(2, 2, 6, 6), torch.randn(2, 4)])


def test_bad_arguments(rnn):
    x = torch.randn(2, 5, 3)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        torch_grad(lambda x: x, x)
    with pytest.raises(ValueError, match="output_idx 2 is out of range"):
        torch_grad(rnn, x, output_idx=[2])
    with pytest.raises(ValueError, match=r"x_ref must be a single instance \(one row\)"):
        torch_intgrad(rnn, x, x_ref=torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="needs a batch axis"):
        torch_grad(rnn, torch.randn(5))
