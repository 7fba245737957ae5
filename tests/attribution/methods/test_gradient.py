"""Gradient and SmoothGrad against autograd, and their properties."""

import numpy as np
import pytest
import torch

from attribution import Converter, Gradient, SmoothGrad


@pytest.mark.parametrize("ignore_last_act", [True, False])
def test_gradient_equals_autograd_per_output_node(mlp_model, jacobian, ignore_last_act):
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    res = Gradient(
        Converter(mlp_model),
        x,
        output_idx=[0, 2, 3],
        dtype="double",
        ignore_last_act=ignore_last_act,
    )
    reference_model = mlp_model[:-1] if ignore_last_act else mlp_model
    expected = jacobian(reference_model(x), x, [0, 2, 3])
    torch.testing.assert_close(res.get_result("torch"), expected, rtol=0, atol=1e-12)


def test_gradient_of_image_model_for_more_than_ten_outputs(cnn_model, jacobian):
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    res = Gradient(
        Converter(cnn_model, input_dim=(3, 8, 8)), x, output_idx=list(range(12)), dtype="double"
    )
    expected = jacobian(cnn_model(x), x, range(12))
    torch.testing.assert_close(res.get_result("torch"), expected, rtol=0, atol=1e-12)


def test_gradient_times_input(signal_model):
    conv = Converter(signal_model, input_dim=(2, 10))
    x = torch.randn(3, 2, 10, dtype=torch.float64)
    plain = Gradient(conv, x, dtype="double").get_result("torch")
    times = Gradient(conv, x, dtype="double", times_input=True)
    torch.testing.assert_close(times.get_result("torch"), plain * x.unsqueeze(-1))
    assert times.value_name == "Relevance"


def test_gradient_preds_and_goal(mlp_model):
    x = torch.randn(6, 5, dtype=torch.float64)
    res = Gradient(Converter(mlp_model), x, output_idx=[1, 3], dtype="double")
    torch.testing.assert_close(res.preds[0], mlp_model(x)[:, [1, 3]])
    torch.testing.assert_close(res.decomp_goal[0], mlp_model[:-1](x)[:, [1, 3]])


def test_gradient_of_two_input_two_output_model(two_model, jacobian):
    image = torch.randn(5, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    tabular = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    conv = Converter(two_model, input_dim=[(2, 6, 6), (4,)])
    res = Gradient(
        conv, [image, tabular], output_idx=[[0, 2], [1]], dtype="double", ignore_last_act=False
    )
    out1, out2 = two_model(image, tabular)
    torch.testing.assert_close(res.result[0][0], jacobian(out1, image, [0, 2]))
    torch.testing.assert_close(res.result[0][1], jacobian(out1, tabular, [0, 2]))
    assert res.result[1][0] is None  # output 2 does not read the image
    torch.testing.assert_close(res.result[1][1], jacobian(out2, tabular, [1]))


@pytest.mark.parametrize("times_input", [False, True])
def test_smoothgrad_without_noise_is_gradient(cnn_model, times_input):
    conv = Converter(cnn_model, input_dim=(3, 8, 8))
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    smooth = SmoothGrad(conv, x, noise_level=0, n=7, times_input=times_input, dtype="double")
    plain = Gradient(conv, x, times_input=times_input, dtype="double")
    torch.testing.assert_close(smooth.get_result("torch"), plain.get_result("torch"))


def test_smoothgrad_noise_is_one_sigma_over_the_whole_input_tensor():
    # SmoothGrad×Input of a linear model is w ⊙ mean(x + ε): the spread of its deviation
    # from w ⊙ x measures σ, which innsight takes over all rows and features at once.
    torch.manual_seed(1)
    model = torch.nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        model.weight.fill_(1.0)
    x = torch.rand(200, 4, dtype=torch.float64)
    x[0, 0] = 10.0  # one wide row: per-row or per-feature σ would be far smaller elsewhere
    n, noise_level = 400, 0.05
    res = SmoothGrad(
        Converter(model), x, n=n, noise_level=noise_level, times_input=True, dtype="double"
    )
    noise_means = res.get_result("torch")[..., 0] - x
    sigma = noise_means[1:].std().item() * np.sqrt(n)
    assert sigma == pytest.approx(noise_level * (10.0 - x.min().item()), rel=0.1)


def test_smoothgrad_is_the_expected_gradient_under_noise():
    # f(x) = softplus(w·x) has gradient sigmoid(w·x) w; SmoothGrad estimates its mean over
    # x + ε, which a large independent Monte Carlo sample gives to high accuracy.
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1, bias=False), torch.nn.Softplus()).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[2.0, -1.5, 1.0]]))
    w = model[0].weight.detach()[0]
    x = torch.randn(6, 3, dtype=torch.float64)
    sigma = 0.3 * (x.max() - x.min())
    n = 4000
    smooth = SmoothGrad(
        Converter(model), x, n=n, noise_level=0.3, ignore_last_act=False, dtype="double"
    ).get_result("torch")[..., 0]
    noise = torch.randn(100_000, 1, 3, dtype=torch.float64) * sigma
    expected = torch.sigmoid((x + noise) @ w).mean(0).unsqueeze(-1) * w
    standard_error = 0.5 * w.abs().max() / np.sqrt(n)  # sigmoid(.) has sd <= 0.5
    assert (smooth - expected).abs().max() < 4 * standard_error
    assert (smooth - torch.sigmoid(x @ w).unsqueeze(-1) * w).abs().max() > 10 * standard_error
