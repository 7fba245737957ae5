"""IntegratedGradient against Captum and completeness; ExpectedGradient's properties."""

import pytest
import torch
from captum import attr as captum_attr

from attribution import Converter, ExpectedGradient, IntegratedGradient

# Captum builds its step sizes and alphas in float32, so agreement is at float32 precision.
CAPTUM_TOLERANCE = {"rtol": 1e-7, "atol": 1e-9}


def _captum_ig(model, x, baseline, targets, n, multiply_by_inputs=True):
    ig = captum_attr.IntegratedGradients(model, multiply_by_inputs=multiply_by_inputs)
    return torch.stack(
        [ig.attribute(x, baselines=baseline, target=k, n_steps=n, method="riemann_right")
         for k in targets], -1)  # fmt: skip


@pytest.mark.peer
@pytest.mark.parametrize("times_input", [True, False])
def test_integrated_gradient_equals_captum_riemann_right(cnn_model, times_input):
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    x_ref = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    res = IntegratedGradient(
        Converter(cnn_model, input_dim=(3, 8, 8)),
        x,
        x_ref=x_ref,
        n=20,
        output_idx=[0, 5, 11],
        times_input=times_input,
        dtype="double",
    )
    expected = _captum_ig(cnn_model, x, x_ref, [0, 5, 11], 20, times_input)
    torch.testing.assert_close(res.get_result("torch"), expected, **CAPTUM_TOLERANCE)


@pytest.mark.peer
def test_integrated_gradient_default_reference_is_zeros(mlp_model):
    x = torch.randn(5, 5, dtype=torch.float64)
    res = IntegratedGradient(
        Converter(mlp_model), x, n=10, output_idx=[2], dtype="double", ignore_last_act=False
    )
    expected = _captum_ig(mlp_model, x, torch.zeros(1, 5, dtype=torch.float64), [2], 10)
    torch.testing.assert_close(res.get_result("torch"), expected, **CAPTUM_TOLERANCE)


@pytest.mark.parametrize("ignore_last_act", [True, False])
def test_integrated_gradient_completeness_for_large_n(mlp_model, ignore_last_act):
    x = torch.randn(6, 5, dtype=torch.float64)
    x_ref = torch.randn(5, dtype=torch.float64)  # a single instance without batch axis
    res = IntegratedGradient(
        Converter(mlp_model),
        x,
        x_ref=x_ref,
        n=2000,
        output_idx=[0, 3],
        ignore_last_act=ignore_last_act,
        dtype="double",
    )
    head = mlp_model[:-1] if ignore_last_act else mlp_model
    goal = head(x)[:, [0, 3]] - head(x_ref.unsqueeze(0))[:, [0, 3]]
    torch.testing.assert_close(res.decomp_goal[0], goal)
    sums = res.get_result("torch").sum(1)
    assert (sums - goal).abs().max() < 1e-3 * goal.abs().max()
    coarse = IntegratedGradient(
        Converter(mlp_model),
        x,
        x_ref=x_ref,
        n=5,
        output_idx=[0, 3],
        ignore_last_act=ignore_last_act,
        dtype="double",
    )
    assert (coarse.get_result("torch").sum(1) - goal).abs().max() > (sums - goal).abs().max()


def test_integrated_gradient_of_two_inputs_is_complete(two_model):
    image = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    tabular = torch.randn(3, 4, dtype=torch.float64)
    conv = Converter(two_model, input_dim=[(2, 6, 6), (4,)])
    res = IntegratedGradient(
        conv, [image, tabular], n=3000, output_idx=[[1], [0, 1]], dtype="double"
    )
    total = res.result[0][0].sum((1, 2, 3)) + res.result[0][1].sum(1)
    assert (total - res.decomp_goal[0]).abs().max() < 1e-2 * res.decomp_goal[0].abs().max()
    assert res.result[1][0] is None
    torch.testing.assert_close(res.result[1][1].sum(1), res.decomp_goal[1], atol=1e-4, rtol=1e-4)


def test_expected_gradient_with_one_reference_row_on_a_linear_model_is_exact():
    torch.manual_seed(3)
    model = torch.nn.Linear(4, 3).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    x_ref = torch.randn(1, 4, dtype=torch.float64)
    res = ExpectedGradient(Converter(model), x, data_ref=x_ref, n=7, dtype="double")
    expected = (x - x_ref).unsqueeze(-1) * model.weight.detach().T
    torch.testing.assert_close(res.get_result("torch"), expected)


def test_expected_gradient_sums_to_output_minus_mean_reference_output(mlp_model):
    torch.manual_seed(4)
    x = torch.randn(8, 5, dtype=torch.float64)
    data_ref = torch.randn(30, 5, dtype=torch.float64)
    res = ExpectedGradient(
        Converter(mlp_model), x, data_ref=data_ref, n=4000, output_idx=[1, 2], dtype="double"
    )
    head = mlp_model[:-1]
    goal = head(x)[:, [1, 2]] - head(data_ref)[:, [1, 2]].mean(0)
    torch.testing.assert_close(res.decomp_goal[0], goal)
    error = (res.get_result("torch").sum(1) - goal).abs().max()
    assert error < 0.03 * goal.abs().max()


def test_expected_gradient_draws_a_reference_per_instance_and_sample():
    # With a linear model each draw contributes w ⊙ (x − r); the spread across instances of
    # identical x shows that the draws are independent per instance.
    torch.manual_seed(5)
    model = torch.nn.Linear(2, 1, bias=False).double()
    x = torch.zeros(50, 2, dtype=torch.float64)
    data_ref = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 2.0]], dtype=torch.float64)
    values = ExpectedGradient(
        Converter(model), x, data_ref=data_ref, n=20, dtype="double"
    ).get_result("torch")[..., 0]
    assert values.std(0).min() > 0
    w = model.weight.detach()[0]
    torch.testing.assert_close(values.mean(0), -(data_ref.mean(0) * w), atol=0.05, rtol=0.2)
