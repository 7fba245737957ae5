"""LRP on whole models: conservation, the start value, innsight's worked example, rule
choice per layer type, and the shared machinery (outputs, passes, progress)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attribution import LRP, Converter, Gradient
from attribution.converter.graph import ConvertedModel
from attribution.layers.base import LayerValues
from attribution.layers.conv import ConvLayer
from attribution.layers.dense import DenseLayer
from attribution.layers.merge import AddLayer
from attribution.layers.norm import BatchNormLayer
from attribution.rules import LRPRule

TOLERANCE = 1e-10


class TwoBranches(nn.Module):
    """Image and tabular input, concatenated; two sigmoid outputs, the second reading the
    tabular branch only. No biases."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dense = nn.Linear(4, 5, bias=False)
        self.head1 = nn.Linear(3 + 5, 3, bias=False)
        self.head2 = nn.Linear(5, 2, bias=False)

    def pre(self, image, tabular):
        a = torch.flatten(self.pool(torch.relu(self.conv(image))), 1)
        b = torch.tanh(self.dense(tabular))
        return [self.head1(torch.cat([a, b], 1)), self.head2(b)]

    def forward(self, image, tabular):
        return tuple(torch.sigmoid(z) for z in self.pre(image, tabular))


class Residual(nn.Module):
    """A bias-free skip connection with an addition and global max pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(2, 3, 3, padding=1, bias=False)
        self.conv2 = nn.Conv1d(3, 3, 3, padding=1, bias=False)
        self.head = nn.Linear(3, 2, bias=False)

    def pre(self, x):
        h = torch.relu(self.conv1(x))
        h = torch.tanh(self.conv2(h) + h)
        return [self.head(torch.amax(h, 2))]

    def forward(self, x):
        return torch.sigmoid(self.pre(x)[0])


def _sequential(*layers):
    model = nn.Sequential(*layers, nn.Sigmoid())
    model.pre = lambda x: [model[:-1](x)]
    return model


def _net(name):
    """``(model, input_dim)``; ``model.pre(*x)`` gives the output pre-activations."""
    if name == "mlp":
        return _sequential(
            nn.Linear(5, 8, bias=False), nn.Softplus(), nn.Linear(8, 6, bias=False), nn.Tanh(),
            nn.Linear(6, 3, bias=False),
        ), [(5,)]  # fmt: skip
    if name == "conv1d":
        return _sequential(
            nn.Conv1d(2, 3, 3, bias=False), nn.Softplus(), nn.AvgPool1d(2), nn.MaxPool1d(2),
            nn.Flatten(), nn.Linear(6, 3, bias=False),
        ), [(2, 10)]  # fmt: skip
    if name == "conv2d":
        return _sequential(
            nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 4, 3, padding=1, stride=1, bias=False), nn.Tanh(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(16, 3, bias=False),
        ), [(3, 8, 8)]  # fmt: skip
    if name == "two_branches":
        return TwoBranches(), [(2, 5, 5), (4,)]
    return Residual(), [(2, 7)]


NETS = ["mlp", "conv1d", "conv2d", "two_branches", "residual"]


def _outputs(model, inputs):
    out = model(*inputs)
    return list(out) if isinstance(out, tuple) else [out]


def _sums(res) -> list[torch.Tensor]:
    return [
        sum(r.flatten(1, -2).sum(1) for r in per_input if r is not None) for per_input in res.result
    ]


@pytest.mark.parametrize("winner_takes_all", [True, False])
@pytest.mark.parametrize("ignore_last_act", [True, False])
@pytest.mark.parametrize("net", NETS)
def test_simple_rule_conserves_the_output_of_bias_free_nets(
    seeded, net, ignore_last_act, winner_takes_all
):
    model, input_dim = _net(net)
    model = model.double().eval()
    x = [torch.randn(3, *dim, dtype=torch.float64) for dim in input_dim]
    with torch.no_grad():
        pre = model.pre(*x)
    output_idx = [list(range(z.shape[1])) for z in pre]
    res = LRP(
        Converter(model, input_dim=input_dim), x, ignore_last_act=ignore_last_act,
        winner_takes_all=winner_takes_all, output_idx=output_idx, dtype="double",
    )  # fmt: skip
    # innsight's start: the pre-activation, or the sigmoid output minus 0.5
    expected = pre if ignore_last_act else [torch.sigmoid(z) - 0.5 for z in pre]
    for actual, goal, exp in zip(_sums(res), res.decomp_goal, expected, strict=True):
        assert (goal - exp).abs().max() <= TOLERANCE
        assert (actual - exp).abs().max() <= TOLERANCE


def test_the_start_is_not_centred_after_other_activations(seeded):
    model = nn.Sequential(nn.Linear(3, 2, bias=False), nn.Tanh()).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    res = LRP(Converter(model), x, ignore_last_act=False, dtype="double")
    with torch.no_grad():
        torch.testing.assert_close(_sums(res)[0], model(x), rtol=1e-12, atol=1e-12)


def test_simple_rule_of_a_bias_free_relu_net_is_gradient_times_input(seeded):
    model = nn.Sequential(
        nn.Linear(5, 7, bias=False), nn.ReLU(), nn.Linear(7, 4, bias=False), nn.ReLU(),
        nn.Linear(4, 3, bias=False),
    ).double()  # fmt: skip
    conv = Converter(model)
    x = torch.randn(6, 5, dtype=torch.float64)
    lrp = LRP(conv, x, dtype="double").get_result("torch")
    gradient = Gradient(conv, x, times_input=True, dtype="double").get_result("torch")
    torch.testing.assert_close(lrp, gradient, rtol=1e-10, atol=1e-12)


# --- innsight's worked alpha-beta example (Koenen & Wright 2024, JSS, appendix B) ------------


@pytest.fixture
def jss_example():
    layer = nn.Linear(2, 1).double()
    with torch.no_grad():
        layer.weight.fill_(0.5)
        layer.bias.fill_(-0.25)
    return Converter(layer), torch.ones(1, 2, dtype=torch.float64)


@pytest.mark.parametrize(("alpha", "expected", "innvestigate"), [(1, 0.75, 1.0), (2, 1.5, 2.0)])
def test_alpha_beta_splits_the_bias_as_innsight_does(jss_example, alpha, expected, innvestigate):
    conv, x = jss_example
    res = LRP(conv, x, rule_name="alpha_beta", rule_param=alpha, dtype="double")
    assert res.preds[0].item() == pytest.approx(0.75)
    total = res.get_result("torch").sum().item()
    assert total == pytest.approx(expected, abs=1e-12)
    assert total != pytest.approx(innvestigate)  # iNNvestigate keeps the bias unsplit


# --- rule choice per layer type -------------------------------------------------------------


@pytest.fixture
def cnn_converter(seeded):
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 3, 3), nn.Tanh(),
        nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3),
    ).double().eval()  # fmt: skip
    bn = model[1]
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    return Converter(model, input_dim=(2, 6, 6))


@pytest.fixture
def record_rules(monkeypatch):
    """Record the rule each dense, conv and batch-norm layer gets: ``{type: {rules}}``."""
    seen: dict[str, set[LRPRule]] = {}
    for cls in (DenseLayer, ConvLayer, BatchNormLayer):
        original = cls.lrp

        def spy(self, values, R, rule, *args, original=original):
            seen.setdefault(self.type_name, set()).add(rule)
            return original(self, values, R, rule, *args)

        monkeypatch.setattr(cls, "lrp", spy)
    return seen


@pytest.mark.parametrize(
    ("rule_name", "rule_param", "expected"),
    [
        ({"Conv2D_Layer": "alpha_beta"}, None,
         {"Conv2D_Layer": LRPRule("alpha_beta", 0.5), "Dense_Layer": LRPRule("simple"),
          "BatchNorm_Layer": LRPRule("simple")}),
        ("epsilon", {"Conv2D_Layer": 0.5},
         {"Conv2D_Layer": LRPRule("epsilon", 0.5), "Dense_Layer": LRPRule("epsilon", 0.01),
          "BatchNorm_Layer": LRPRule("epsilon", 0.01)}),
        ({"Dense_Layer": "epsilon", "BatchNorm_Layer": "pass"}, {"Dense_Layer": 0.2},
         {"Conv2D_Layer": LRPRule("simple"), "Dense_Layer": LRPRule("epsilon", 0.2),
          "BatchNorm_Layer": LRPRule("pass")}),
    ],
)  # fmt: skip
def test_rule_dicts_change_exactly_the_layer_types_they_name(
    cnn_converter, record_rules, rule_name, rule_param, expected
):
    LRP(cnn_converter, torch.randn(2, 2, 6, 6), rule_name=rule_name, rule_param=rule_param)
    assert record_rules == {key: {rule} for key, rule in expected.items()}


def test_a_rule_dict_on_the_only_layer_type_equals_the_rule_everywhere(seeded):
    dense_only = Converter(nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)))
    x = torch.randn(4, 5, dtype=torch.float64)
    for rule, param in [("epsilon", 0.3), ("alpha_beta", 1.5)]:
        everywhere = LRP(dense_only, x, rule_name=rule, rule_param=param, dtype="double")
        by_type = LRP(
            dense_only, x, rule_name={"Dense_Layer": rule}, rule_param={"Dense_Layer": param},
            dtype="double",
        )  # fmt: skip
        simple = LRP(dense_only, x, dtype="double")
        torch.testing.assert_close(by_type.get_result("torch"), everywhere.get_result("torch"))
        assert (by_type.get_result("torch") - simple.get_result("torch")).abs().max() > 1e-3


def test_a_rule_dict_naming_conv_layers_leaves_dense_layers_simple(cnn_converter):
    # Relevance reaching the conv layers is the same as with "simple" everywhere: the
    # dense layers above them (and the batch norm) did not change.
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    captured = {}
    original = ConvLayer.lrp

    def spy(self, values, R, rule, *args):
        captured.setdefault(rule.name, []).append(R)
        return original(self, values, R, rule, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ConvLayer, "lrp", spy)
        simple = LRP(cnn_converter, x, dtype="double")
        named = LRP(cnn_converter, x, rule_name={"Conv2D_Layer": "epsilon"}, dtype="double")
    # the upper conv layer gets the same relevance from the dense layers either way
    torch.testing.assert_close(captured["epsilon"][0], captured["simple"][0])
    assert (named.get_result("torch") - simple.get_result("torch")).abs().max() > 1e-6


def test_epsilon_defaults_to_innsights_documented_value(seeded):
    conv = Converter(nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)))
    x = torch.randn(4, 5, dtype=torch.float64)
    default = LRP(conv, x, rule_name="epsilon", dtype="double").get_result("torch")
    explicit = LRP(conv, x, rule_name="epsilon", rule_param=0.01, dtype="double")
    torch.testing.assert_close(default, explicit.get_result("torch"), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"rule_name": "z_plus"}, ValueError,
         "rule_name 'z_plus' is not an LRP rule; valid rules: simple, epsilon, alpha_beta, pass"),
        ({"rule_name": {"Dense_Layer": "gamma"}}, ValueError,
         "rule_name 'gamma' is not an LRP rule; valid rules: simple, epsilon, alpha_beta"),
        ({"rule_name": {"Linear": "epsilon"}}, ValueError,
         "rule_name has keys 'Linear', which are not layer types with rules; valid keys: "
         "Dense_Layer, Conv1D_Layer, Conv2D_Layer, BatchNorm_Layer, AvgPool1D_Layer"),
        ({"rule_param": {"Dense": 0.1}}, ValueError,
         "rule_param has keys 'Dense', which are not layer types with rules; valid keys: "
         "Dense_Layer"),
        ({"rule_name": {"Dense_Layer": "pass"}}, ValueError,
         "only for BatchNorm_Layer .* got it for Dense_Layer, whose valid rules are simple, "
         "epsilon, alpha_beta"),
        ({"rule_name": "pass"}, ValueError,
         r"only for BatchNorm_Layer: use rule_name=\{'BatchNorm_Layer': 'pass'\}"),
        ({"rule_name": "epsilon", "rule_param": "0.1"}, TypeError,
         "rule_param must be a number .* got '0.1' for Dense_Layer"),
        ({"rule_name": "alpha_beta", "rule_param": {"Dense_Layer": True}}, TypeError,
         "rule_param must be a number .* got True for Dense_Layer"),
        ({"winner_takes_all": "no"}, TypeError, "winner_takes_all must be True or False"),
    ],
)  # fmt: skip
def test_bad_rules_raise_errors_listing_the_valid_ones(seeded, kwargs, error, message):
    conv = Converter(nn.Linear(5, 2))
    with pytest.raises(error, match=message):
        LRP(conv, torch.randn(2, 5), **kwargs)


def test_numpy_numbers_are_rule_params(seeded):
    conv = Converter(nn.Linear(5, 2))
    x = torch.randn(2, 5)
    expected = LRP(conv, x, rule_name="alpha_beta", rule_param=2).get_result()
    for value in (np.int64(2), np.float32(2.0)):
        actual = LRP(conv, x, rule_name="alpha_beta", rule_param=value).get_result()
        assert (actual == expected).all()


# --- outputs, passes and progress ------------------------------------------------------------


def test_unconnected_output_and_input_layers_give_none(seeded):
    conv = Converter(TwoBranches().double(), input_dim=[(2, 5, 5), (4,)])
    res = LRP(conv, [torch.randn(2, 2, 5, 5), torch.randn(2, 4)], output_idx=[[0], [0, 1]])
    assert res.result[1][0] is None  # output 2 reads only the tabular input
    assert res.result[0][0].shape == (2, 2, 5, 5, 1)
    assert res.result[1][1].shape == (2, 4, 2)


def test_forward_passes_do_not_grow_with_the_explained_outputs(cnn_model, monkeypatch):
    calls = []
    run = ConvertedModel.run
    monkeypatch.setattr(
        ConvertedModel, "run", lambda self, *a, **k: calls.append(1) or run(self, *a, **k)
    )
    conv = Converter(cnn_model, input_dim=(3, 8, 8))
    counts = []
    for idx in ([0], list(range(12))):
        calls.clear()
        LRP(conv, torch.randn(3, 3, 8, 8), output_idx=idx)
        counts.append(len(calls))
    assert counts[0] == counts[1] == 1


def test_progress_ticks_once_per_layer_per_chunk_and_chunks_do_not_change_results(cnn_model):
    conv = Converter(cnn_model, input_dim=(3, 8, 8))
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    steps = []
    tiny = LRP(
        conv, x, memory_budget=1, dtype="double",
        progress_callback=lambda done, total: steps.append((done, total)),
    )  # fmt: skip
    whole = LRP(conv, x, memory_budget=2**34, dtype="double")
    torch.testing.assert_close(tiny.get_result("torch"), whole.get_result("torch"))
    total = len(x) * len(conv.model.nodes)  # one instance per chunk
    assert steps == [(i, total) for i in range(1, total + 1)]


def test_verbose_shows_the_progress_bar(mlp_model, capsys):
    LRP(Converter(mlp_model), torch.randn(2, 5), verbose=True)
    assert "Backward pass 'LRP'" in capsys.readouterr().err
    LRP(Converter(mlp_model), torch.randn(2, 5))
    assert capsys.readouterr().err == ""


# --- residual sums ---------------------------------------------------------------------------


class _ResidualStack(nn.Module):
    """Bias-free ResNet-style blocks ``x + conv(relu(conv(x)))`` with small branches (their
    outputs near zero, where innsight's equal split explodes), pooled, then a head."""

    def __init__(self, blocks: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, padding=1, bias=False))
            for _ in range(blocks)
        )  # fmt: skip
        with torch.no_grad():
            for branch in self.branches:
                branch[2].weight.mul_(0.05)
        self.head = nn.Linear(4 * 6 * 6, 3, bias=False)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        for branch in self.branches:
            x = torch.relu(x + branch(x))
        return self.head(torch.flatten(x, 1))


def test_lrp_at_a_residual_sum_follows_each_branchs_share():
    model = _ResidualStack().double().eval()
    x = torch.rand(3, 1, 6, 6, dtype=torch.float64)
    converter = Converter(model, input_dim=(1, 6, 6), dtype="double")
    outputs = [0, 1, 2]
    relevance = LRP(converter, x, output_idx=outputs, dtype="double")
    # bias-free ReLU network: LRP-0 is Gradient × Input, and relevance is conserved
    gradient_x_input = Gradient(converter, x, times_input=True, output_idx=outputs,
                                dtype="double").get_result()  # fmt: skip
    np.testing.assert_allclose(relevance.get_result(), gradient_x_input, atol=1e-10)
    np.testing.assert_allclose(relevance.get_result().sum((1, 2, 3)),
                               relevance.preds[0].numpy(), rtol=1e-9)  # fmt: skip
    # innsight's equal split stays available: it conserves too, but inflates relevance
    equal = LRP(converter, x, output_idx=outputs, dtype="double",
                rule_name={"Add_Layer": "equal"}).get_result()  # fmt: skip
    np.testing.assert_allclose(equal.sum((1, 2, 3)), relevance.preds[0].numpy(), rtol=1e-8)
    assert np.abs(equal).max() > 5 * np.abs(gradient_x_input).max()


def test_epsilon_and_alpha_beta_apply_at_a_sum_as_at_a_linear_layer():
    converter = Converter(_ResidualStack(1).double().eval(), input_dim=(1, 6, 6), dtype="double")
    x = torch.rand(2, 1, 6, 6, dtype=torch.float64)
    for rule in ("epsilon", "alpha_beta"):
        add_only = LRP(converter, x, dtype="double", rule_name={"Add_Layer": rule})
        assert add_only.get_result().shape == (2, 1, 6, 6, 3)
        assert np.isfinite(add_only.get_result()).all()
    # by hand: a sum a + b with inputs of both signs
    a = torch.tensor([[2.0, -1.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([[-1.0, -1.0, 1.0]], dtype=torch.float64)
    R = torch.tensor([[[1.0, 2.0, 4.0]]], dtype=torch.float64)  # (K=1, batch, 3)
    values = LayerValues([a, b], a + b, a + b)
    stab = 1e-15
    simple = AddLayer().lrp(values, R, LRPRule("simple"), True, stab)
    np.testing.assert_allclose(simple[0], R * a / (a + b) + 0 * R, rtol=1e-12)
    np.testing.assert_allclose(simple[0] + simple[1], R, rtol=1e-12)
    alpha = 2.0
    split = AddLayer().lrp(values, R, LRPRule("alpha_beta", alpha), True, stab)
    pos, neg = a.clamp(min=0) + b.clamp(min=0), a.clamp(max=0) + b.clamp(max=0)
    # where a part of the sum is zero, its share is zero (0 / 0 → 0)
    want_a = (
        alpha * torch.nan_to_num(a.clamp(min=0) / pos) * R
        + (1 - alpha) * torch.nan_to_num(a.clamp(max=0) / neg) * R
    )
    np.testing.assert_allclose(split[0], want_a, rtol=1e-10, atol=1e-12)


def test_the_equal_rule_is_for_sums_and_global_averages_only():
    converter = Converter(_ResidualStack(1).eval(), input_dim=(1, 6, 6))
    x = torch.rand(1, 1, 6, 6)
    with pytest.raises(ValueError, match=r"'equal' .* only for Add_Layer and GlobalAvgPool_Layer"):
        LRP(converter, x, rule_name="equal")
    with pytest.raises(ValueError, match=r"'equal' is only for Add_Layer .*; got it for Dense_L"):
        LRP(converter, x, rule_name={"Dense_Layer": "equal"})


@pytest.mark.parametrize(
    "pool",
    [nn.AdaptiveAvgPool2d((3, 3)), nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d((2, 3))],
    ids=["adaptive-avg-3x3-of-5x5", "global-avg", "adaptive-max-2x3"],
)
def test_pooled_bias_free_relu_nets_give_gradient_times_input(pool):
    """LRP-0 equals Gradient × Input on bias-free ReLU networks whose pooling is linear
    (average) or routes to the maxima; global average pooling included (innsight's even
    split breaks this, see the equal rule)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.ReLU(), pool, nn.Flatten(),
        nn.LazyLinear(2, bias=False),
    ).double()  # fmt: skip
    x = torch.rand(3, 2, 5, 5, dtype=torch.float64)
    model(x)  # materialise the lazy layer
    converter = Converter(model, input_dim=(2, 5, 5), dtype="double")
    lrp = LRP(converter, x, dtype="double").get_result()
    gradient_x_input = Gradient(converter, x, times_input=True, dtype="double").get_result()
    np.testing.assert_allclose(lrp, gradient_x_input, rtol=1e-9, atol=1e-12)
    if isinstance(pool, nn.AdaptiveAvgPool2d) and pool.output_size == 1:
        even = LRP(converter, x, dtype="double",
                   rule_name={"GlobalAvgPool_Layer": "equal"}).get_result()  # fmt: skip
        np.testing.assert_allclose(even.sum((1, 2, 3)), lrp.sum((1, 2, 3)), rtol=1e-9)
        assert np.abs(even - gradient_x_input).max() > 1e-3


class _ChannelMean(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 3, 3, bias=False)
        self.head = nn.Linear(16, 2, bias=False)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(1).flatten(1))


def test_a_mean_over_channels_is_averaged_as_pooling_is():
    x = torch.rand(3, 2, 6, 6, dtype=torch.float64)
    converter = Converter(_ChannelMean().double(), input_dim=(2, 6, 6), dtype="double")
    assert "Mean_Layer" in [node.layer.type_name for node in converter.model.nodes]
    lrp = LRP(converter, x, dtype="double").get_result()
    gradient_x_input = Gradient(converter, x, times_input=True, dtype="double").get_result()
    np.testing.assert_allclose(lrp, gradient_x_input, rtol=1e-9, atol=1e-12)
