"""Connection Weights: products of the weight matrices (global), times the input (local)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attribution import ConnectionWeights, Converter
from attribution.converter.graph import ConvertedModel


@pytest.fixture
def mlp(seeded):
    return nn.Sequential(
        nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.ReLU(), nn.Linear(6, 4), nn.Softmax(1)
    ).double()


def _weight_product(model) -> torch.Tensor:
    """``W₁ᵀ W₂ᵀ ⋯`` (inputs × outputs), activations and biases ignored."""
    product = None
    for layer in model:
        if isinstance(layer, nn.Linear):
            weight = layer.weight.detach().T
            product = weight if product is None else product @ weight
    return product


def test_global_connection_weights_are_the_product_of_the_weights(mlp):
    res = ConnectionWeights(Converter(mlp), output_idx=[0, 1, 2, 3], dtype="double")
    result = res.get_result("torch")
    assert result.shape == (1, 5, 4)
    torch.testing.assert_close(result[0], _weight_product(mlp), rtol=1e-12, atol=1e-14)
    assert res.preds == [None] and res.decomp_goal == [None]


def test_local_connection_weights_are_the_global_ones_times_the_input(mlp):
    conv = Converter(mlp)
    x = torch.randn(3, 5, dtype=torch.float64)
    local = ConnectionWeights(conv, x, times_input=True, output_idx=[1, 3], dtype="double")
    expected = _weight_product(mlp)[:, [1, 3]] * x.unsqueeze(-1)
    torch.testing.assert_close(local.get_result("torch"), expected, rtol=1e-12, atol=1e-14)
    with torch.no_grad():
        torch.testing.assert_close(local.preds[0], mlp(x)[:, [1, 3]])


def test_global_variant_ignores_data_with_a_warning(mlp):
    conv = Converter(mlp)
    with pytest.warns(UserWarning, match="ignores data unless times_input=True"):
        with_data = ConnectionWeights(conv, torch.randn(6, 5), dtype="double")
    without = ConnectionWeights(conv, dtype="double")
    assert with_data.get_result().shape == (1, 5, 4)
    torch.testing.assert_close(with_data.get_result("torch"), without.get_result("torch"))


def test_local_variant_needs_data(mlp):
    with pytest.raises(ValueError, match="times_input=True .* multiplies by the data: pass data"):
        ConnectionWeights(Converter(mlp), times_input=True)


def test_conv_net_weights_follow_the_transposed_layers(seeded):
    # conv → batch norm → avg pool → flatten → dense is linear once activations and
    # biases are dropped, so its Connection Weights are the Jacobian of that linear map
    conv = nn.Conv2d(2, 3, 3, padding=1, stride=2)
    bn = nn.BatchNorm2d(3).eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    nn.init.normal_(bn.weight)
    dense = nn.Linear(12, 2)
    model = nn.Sequential(conv, bn, nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), dense)
    model = model.double().eval()
    res = ConnectionWeights(Converter(model, input_dim=(2, 8, 8)), dtype="double")
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().view(1, 3, 1, 1)

    def linear_part(x):
        h = nn.functional.conv2d(x, conv.weight, stride=2, padding=1) * scale
        return nn.functional.linear(torch.flatten(nn.functional.avg_pool2d(h, 2), 1), dense.weight)

    jacobian = torch.autograd.functional.jacobian(
        lambda x: linear_part(x.unsqueeze(0))[0], torch.zeros(2, 8, 8, dtype=torch.float64)
    )  # (2 outputs, 2, 8, 8)
    torch.testing.assert_close(
        res.get_result("torch")[0], jacobian.movedim(0, -1), rtol=1e-12, atol=1e-14
    )


def test_unconnected_output_and_input_layers_give_none(two_model):
    conv = Converter(two_model, input_dim=[(2, 6, 6), (4,)])
    res = ConnectionWeights(conv, output_idx=[[0], [0, 1]])
    assert res.result[1][0] is None  # output 2 reads only the tabular input
    assert res.result[0][0].shape == (1, 2, 6, 6, 1)
    assert res.result[1][1].shape == (1, 4, 2)


def test_one_backward_pass_for_all_outputs(cnn_model, monkeypatch):
    calls = []
    run = ConvertedModel.run
    monkeypatch.setattr(
        ConvertedModel, "run", lambda self, *a, **k: calls.append(1) or run(self, *a, **k)
    )
    conv = Converter(cnn_model, input_dim=(3, 8, 8))
    counts = []
    for idx in ([0], list(range(12))):
        calls.clear()
        ConnectionWeights(conv, torch.randn(2, 3, 8, 8), times_input=True, output_idx=idx)
        counts.append(len(calls))
    assert counts[0] == counts[1] == 1  # the prediction; the weights need no forward pass


def test_progress_ticks_once_per_layer(cnn_model):
    conv = Converter(cnn_model, input_dim=(3, 8, 8))
    steps = []
    ConnectionWeights(conv, progress_callback=lambda done, total: steps.append((done, total)))
    total = len(conv.model.nodes)
    assert steps == [(i, total) for i in range(1, total + 1)]
