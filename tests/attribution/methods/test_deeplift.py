"""DeepLift and DeepSHAP on whole models: summation-to-delta, references, chunking.

Max pooling is run with ``winner_takes_all=False``: with True, multipliers go to the
maxima of ``x`` only, and where the maxima of ``x`` and ``x_ref`` sit in different places
of a window, ``Σ m Δx`` misses ``Δy`` (a documented property of innsight, tested at layer
level in ``test_layer_rules.py``).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attribution import Converter, DeepLift, DeepSHAP
from attribution.converter.graph import ConvertedModel

TOLERANCE = 1e-10

# torch warns that the asymmetric "same" padding of ImageNet copies the input
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


class ImageNet(nn.Module):
    """Conv2d with asymmetric "same" padding, batch norm with running statistics, max and
    average pooling, a dilated conv, a sigmoid output."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, (4, 3), padding="same"), nn.BatchNorm2d(4), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(4, 5, 3, dilation=2), nn.ELU(),
            nn.AvgPool2d(2), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Linear(5, 3)
        bn = self.features[1]
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        nn.init.normal_(bn.weight)
        nn.init.normal_(bn.bias)

    def pre(self, x):
        return [self.head(self.features(x))]

    def forward(self, x):
        return torch.sigmoid(self.pre(x)[0])


class Residual(nn.Module):
    """A skip connection: tanh(fc1 x) feeds fc2 and the addition; softmax output."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 3)

    def pre(self, x):
        h = torch.tanh(self.fc1(x))
        return [self.fc3(torch.relu(self.fc2(h) + h))]

    def forward(self, x):
        return torch.softmax(self.pre(x)[0], 1)


class SharedOutput(nn.Module):
    """Output 1 is h = tanh(linear x); it also feeds output 2 = sigmoid(head h)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear, self.head = nn.Linear(4, 3), nn.Linear(3, 2)

    def pre(self, x):
        z = self.linear(x)
        return [z, self.head(torch.tanh(z))]

    def forward(self, x):
        h = torch.tanh(self.linear(x))
        return h, torch.sigmoid(self.head(h))


def _sequential_pre(model):
    return lambda *x: [model[:-1](*x)] if isinstance(model[-1], nn.Softmax) else [model(*x)]


def _two_pre(model):
    def pre(image, tabular):
        a = torch.flatten(model.pool(torch.relu(model.conv(image))), 1)
        b = torch.tanh(model.dense(tabular))
        return [model.head1(torch.cat([a, b], 1)), model.head2(b)]

    return pre


@pytest.fixture
def image_model(seeded):
    return ImageNet().double().eval()


@pytest.fixture
def nets(request, seeded):
    """``nets(name) -> (model, input_dim, pre)``; ``pre(*x)`` gives the output
    pre-activations. Built on demand: only the net a test asks for."""

    def build(name):
        if name in ("mlp", "conv1d", "two_in_two_out"):
            fixture = {"mlp": "mlp_model", "conv1d": "signal_model"}.get(name, "two_model")
            model = request.getfixturevalue(fixture)
            pre = _two_pre(model) if name == "two_in_two_out" else _sequential_pre(model)
            dims = {"mlp": [(5,)], "conv1d": [(2, 10)], "two_in_two_out": [(2, 6, 6), (4,)]}
            return model, dims[name], pre
        model = {"conv2d": ImageNet, "residual": Residual, "shared_output": SharedOutput}[name]
        model = model().double().eval()
        return model, [(3, 12, 12)] if name == "conv2d" else [(4,)], model.pre

    return build


NETS = ["mlp", "conv1d", "conv2d", "two_in_two_out", "residual", "shared_output"]


def _outputs(model, inputs):
    out = model(*inputs)
    return list(out) if isinstance(out, tuple) else [out]


def _all_nodes(model, input_dim):
    """Every output node of every output layer."""
    example = [torch.zeros(1, *dim, dtype=torch.float64) for dim in input_dim]
    return [list(range(o.shape[1])) for o in _outputs(model, example)]


def _sums(res) -> list[torch.Tensor]:
    """Per output layer, each instance's contributions summed over all input layers."""
    return [
        sum(r.flatten(1, -2).sum(1) for r in per_input if r is not None) for per_input in res.result
    ]


def _assert_sums(res, expected: list[torch.Tensor]) -> None:
    for k, (actual, goal, exp) in enumerate(
        zip(_sums(res), res.decomp_goal, expected, strict=True)
    ):
        assert (goal - exp).abs().max() <= TOLERANCE, f"decomp_goal of output layer {k + 1}"
        assert (actual - exp).abs().max() <= TOLERANCE, f"sums of output layer {k + 1}"


@pytest.mark.parametrize("ignore_last_act", [True, False])
@pytest.mark.parametrize("rule_name", ["rescale", "reveal_cancel"])
@pytest.mark.parametrize("net", NETS)
def test_deeplift_summation_to_delta(nets, net, rule_name, ignore_last_act):
    model, input_dim, pre = nets(net)
    x = [torch.randn(4, *dim, dtype=torch.float64) for dim in input_dim]
    x_ref = [torch.randn(1, *dim, dtype=torch.float64) for dim in input_dim]
    res = DeepLift(
        Converter(model, input_dim=input_dim), x, x_ref=x_ref, rule_name=rule_name,
        ignore_last_act=ignore_last_act, winner_takes_all=False,
        output_idx=_all_nodes(model, input_dim), dtype="double",
    )  # fmt: skip
    with torch.no_grad():
        f = pre if ignore_last_act else (lambda *inputs: _outputs(model, inputs))
        expected = [a - b for a, b in zip(f(*x), f(*x_ref), strict=True)]
        for pred, out in zip(res.preds, _outputs(model, x), strict=True):
            torch.testing.assert_close(pred, out)
    _assert_sums(res, expected)


def test_deeplift_default_reference_is_zeros(mlp_model):
    x = torch.randn(3, 5, dtype=torch.float64)
    conv = Converter(mlp_model)
    default = DeepLift(conv, x, dtype="double").get_result("torch")
    zeros = DeepLift(conv, x, x_ref=torch.zeros(1, 5), dtype="double").get_result("torch")
    torch.testing.assert_close(default, zeros, rtol=0, atol=0)
    assert default.abs().max() > 0


@pytest.mark.parametrize("rule_name", ["rescale", "reveal_cancel"])
def test_deeplift_of_a_linear_model_is_weight_times_difference(rule_name):
    model = nn.Linear(4, 2).double()
    x, x_ref = torch.randn(3, 4, dtype=torch.float64), torch.randn(1, 4, dtype=torch.float64)
    res = DeepLift(Converter(model), x, x_ref=x_ref, rule_name=rule_name, dtype="double")
    expected = model.weight.detach().T * (x - x_ref).unsqueeze(-1)
    torch.testing.assert_close(res.get_result("torch"), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("ignore_last_act", [True, False])
@pytest.mark.parametrize("rule_name", ["rescale", "reveal_cancel"])
@pytest.mark.parametrize("net", NETS)
def test_deepshap_sums_to_the_difference_from_the_mean_reference(
    nets, net, rule_name, ignore_last_act
):
    model, input_dim, pre = nets(net)
    x = [torch.randn(3, *dim, dtype=torch.float64) for dim in input_dim]
    data_ref = [torch.randn(5, *dim, dtype=torch.float64) for dim in input_dim]
    res = DeepSHAP(
        Converter(model, input_dim=input_dim), x, data_ref=data_ref, rule_name=rule_name,
        ignore_last_act=ignore_last_act, winner_takes_all=False,
        output_idx=_all_nodes(model, input_dim), dtype="double",
    )  # fmt: skip
    with torch.no_grad():
        f = pre if ignore_last_act else (lambda *inputs: _outputs(model, inputs))
        expected = [a - b.mean(0) for a, b in zip(f(*x), f(*data_ref), strict=True)]
    _assert_sums(res, expected)


def test_deepshap_is_the_mean_of_deeplift_over_the_references(residual_converter):
    x = torch.randn(3, 4, dtype=torch.float64)
    refs = torch.randn(4, 4, dtype=torch.float64)
    shap = DeepSHAP(residual_converter, x, data_ref=refs, dtype="double", output_idx=[0, 2])
    lifts = [
        DeepLift(residual_converter, x, x_ref=r, dtype="double", output_idx=[0, 2]) for r in refs
    ]
    mean = torch.stack([lift.get_result("torch") for lift in lifts]).mean(0)
    torch.testing.assert_close(shap.get_result("torch"), mean, rtol=1e-12, atol=1e-14)


@pytest.fixture
def residual_converter(seeded):
    return Converter(Residual().double().eval())


def test_deepshap_limit_ref_draws_references_without_replacement():
    # f(x) = x: decomp_goal = x − mean of the kept references, whose decimal digits tell
    # which of 1, 10, 100, 1000, 10000 were drawn, and how often.
    model = nn.Linear(1, 1, bias=False).double()
    nn.init.ones_(model.weight)
    conv = Converter(model)
    refs = torch.tensor([[1.0], [10.0], [100.0], [1000.0], [10000.0]], dtype=torch.float64)
    drawn = set()
    for seed in range(8):
        torch.manual_seed(seed)
        res = DeepSHAP(conv, torch.zeros(1, 1), data_ref=refs, limit_ref=3, dtype="double")
        total = round(-3 * res.decomp_goal[0].item())
        digits = f"{total:05d}"
        assert sorted(digits) == ["0", "0", "1", "1", "1"], digits  # 3 distinct references
        drawn.add(digits)
        assert res.get_result("torch").sum().item() == pytest.approx(-total / 3)
    assert len(drawn) > 1  # a random subset, not always the first rows


def test_deepshap_keeps_all_references_up_to_limit_ref(residual_converter):
    x, refs = torch.randn(2, 4, dtype=torch.float64), torch.randn(4, 4, dtype=torch.float64)
    kept = DeepSHAP(residual_converter, x, data_ref=refs, limit_ref=4, dtype="double")
    shuffled = DeepSHAP(residual_converter, x, data_ref=refs.flip(0), dtype="double")
    torch.testing.assert_close(kept.get_result("torch"), shuffled.get_result("torch"))


@pytest.mark.parametrize("method", [DeepLift, DeepSHAP])
def test_results_do_not_depend_on_the_memory_budget(image_model, method):
    conv = Converter(image_model, input_dim=(3, 12, 12))
    x = torch.randn(5, 3, 12, 12, dtype=torch.float64)
    reference = (
        {"x_ref": torch.randn(1, 3, 12, 12)} if method is DeepLift
        else {"data_ref": torch.randn(3, 3, 12, 12)}
    )  # fmt: skip
    steps = []
    tiny = method(
        conv, x, **reference, memory_budget=1, dtype="double", output_idx=[0, 2],
        progress_callback=lambda done, total: steps.append((done, total)),
    )  # fmt: skip
    whole = method(conv, x, **reference, memory_budget=2**34, dtype="double", output_idx=[0, 2])
    torch.testing.assert_close(tiny.get_result("torch"), whole.get_result("torch"))
    torch.testing.assert_close(tiny.decomp_goal[0], whole.decomp_goal[0])
    # one (instance, reference) pair per chunk; the progress ticks once per layer per chunk
    pairs = len(x) * (3 if method is DeepSHAP else 1)
    total = pairs * len(conv.model.nodes)
    assert steps == [(i, total) for i in range(1, total + 1)]


def test_unconnected_output_and_input_layers_give_none(two_model):
    conv = Converter(two_model, input_dim=[(2, 6, 6), (4,)])
    x = [torch.randn(2, 2, 6, 6), torch.randn(2, 4)]
    for method in (DeepLift, DeepSHAP):
        res = method(conv, x, output_idx=[[0, 1], [1]], dtype="double", winner_takes_all=False)
        assert res.result[1][0] is None  # output 2 reads only the tabular input
        assert all(r is not None for r in (res.result[0][0], res.result[0][1], res.result[1][1]))
        assert res.result[1][1].shape == (2, 4, 1)


@pytest.mark.parametrize("method", [DeepLift, DeepSHAP])
def test_forward_passes_do_not_grow_with_the_explained_outputs(cnn_model, method, monkeypatch):
    calls = []
    run = ConvertedModel.run
    monkeypatch.setattr(
        ConvertedModel, "run", lambda self, *a, **k: calls.append(1) or run(self, *a, **k)
    )
    conv = Converter(cnn_model, input_dim=(3, 8, 8))
    x = torch.randn(3, 3, 8, 8)
    counts = []
    for idx in ([0], list(range(12))):
        calls.clear()
        method(conv, x, output_idx=idx)
        counts.append(len(calls))
    assert counts[0] == counts[1] <= 4


def test_verbose_shows_the_progress_bar(mlp_model, capsys):
    DeepLift(Converter(mlp_model), torch.randn(2, 5), verbose=True)
    assert "Backward pass 'DeepLift'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rule_name": "simple"}, "rule_name must be one of 'rescale', 'reveal_cancel'; got"),
        ({"x_ref": torch.zeros(2, 5)}, r"x_ref must be a single instance \(one row\)"),
        ({"winner_takes_all": 1}, "winner_takes_all must be True or False"),
    ],
)
def test_deeplift_argument_errors(mlp_model, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        DeepLift(Converter(mlp_model), torch.randn(2, 5), **kwargs)


def test_deepshap_limit_ref_must_be_a_positive_integer(mlp_model):
    with pytest.raises(ValueError, match="limit_ref must be an integer >= 1; got 0"):
        DeepSHAP(Converter(mlp_model), torch.randn(2, 5), limit_ref=0)


@pytest.mark.parametrize(
    "activation",
    [nn.ReLU6(), nn.Hardtanh(-0.5, 0.5), nn.Hardswish(), nn.Hardsigmoid(), nn.Mish()],
    ids=["ReLU6", "Hardtanh", "Hardswish", "Hardsigmoid", "Mish"],
)
def test_mobile_activations_sum_to_the_delta_and_have_autograds_gradient(activation):
    from attribution import LRP, Gradient

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3), activation, nn.Flatten(), nn.Linear(4 * 4 * 4, 3),
        nn.LogSoftmax(dim=1),
    ).double()  # fmt: skip
    x = 3 * torch.randn(4, 2, 6, 6, dtype=torch.float64)
    x_ref = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    converter = Converter(model, input_dim=(2, 6, 6), dtype="double")
    with torch.no_grad():
        delta = model(x) - model(x_ref)
    for ignore_last_act in (False, True):
        res = DeepLift(converter, x, x_ref=x_ref, output_idx=[0, 1, 2], dtype="double",
                       ignore_last_act=ignore_last_act)  # fmt: skip
        sums = torch.as_tensor(res.get_result()).sum((1, 2, 3))
        torch.testing.assert_close(sums, res.decomp_goal[0].double(), rtol=1e-8, atol=1e-10)
    goal_with_act = DeepLift(converter, x, x_ref=x_ref, output_idx=[0, 1, 2], dtype="double",
                             ignore_last_act=False).decomp_goal[0]  # fmt: skip
    torch.testing.assert_close(goal_with_act.double(), delta, rtol=1e-10, atol=1e-12)
    inputs = x.clone().requires_grad_(True)
    model(inputs)[:, 1].sum().backward()
    gradient = Gradient(converter, x, output_idx=[1], dtype="double", ignore_last_act=False)
    torch.testing.assert_close(torch.as_tensor(gradient.get_result())[..., 0], inputs.grad)
    assert torch.isfinite(torch.as_tensor(LRP(converter, x, dtype="double").get_result())).all()


@pytest.mark.parametrize("winner_takes_all", [True, False])
def test_adaptive_pooling_of_any_size_sums_to_the_delta(winner_takes_all):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((4, 3)), nn.Tanh(),
        nn.AdaptiveMaxPool2d((2, 2)), nn.Flatten(), nn.Linear(12, 2),
    ).double()  # fmt: skip
    x, x_ref = torch.randn(3, 2, 7, 5, dtype=torch.float64), torch.randn(1, 2, 7, 5).double()
    converter = Converter(model, input_dim=(2, 7, 5), dtype="double")
    with torch.no_grad():
        torch.testing.assert_close(converter.model_as("double").run([x]).outputs[0], model(x))
        delta = model(x) - model(x_ref)
    res = DeepLift(converter, x, x_ref=x_ref, dtype="double", winner_takes_all=winner_takes_all)
    sums = torch.as_tensor(res.get_result()).sum((1, 2, 3))
    torch.testing.assert_close(res.decomp_goal[0].double(), delta, rtol=1e-10, atol=1e-12)
    if not winner_takes_all:  # innsight's max-pooling multipliers sum to the delta this way
        torch.testing.assert_close(sums, delta, rtol=1e-8, atol=1e-10)


def _check_exact_block(model: nn.Module, layer_types: set[str], output: int) -> Converter:
    """A (2, 5, 5)-input block: converted forward = original, DeepLift sums exactly to the
    delta with bounded contributions, Gradient = autograd; its converter."""
    from attribution import Gradient

    converter = Converter(model, input_dim=(2, 5, 5), dtype="double")
    assert layer_types <= {node.layer.type_name for node in converter.model.nodes}
    x, x_ref = torch.randn(3, 2, 5, 5, dtype=torch.float64), torch.randn(1, 2, 5, 5).double()
    with torch.no_grad():
        torch.testing.assert_close(converter.model_as("double").run([x]).outputs[0], model(x))
        delta = model(x) - model(x_ref)
    contributions = torch.as_tensor(DeepLift(converter, x, x_ref=x_ref, dtype="double")
                                    .get_result())  # fmt: skip
    torch.testing.assert_close(contributions.sum((1, 2, 3)), delta, rtol=1e-9, atol=1e-12)
    assert contributions.abs().max() < 10 * delta.abs().max()  # bounded
    inputs = x.clone().requires_grad_(True)
    model(inputs)[:, output].sum().backward()
    gradient = Gradient(converter, x, output_idx=[output], dtype="double").get_result()[..., 0]
    torch.testing.assert_close(torch.as_tensor(gradient), inputs.grad)
    return converter


class _SqueezeExcitation(nn.Module):
    """EfficientNet's and MobileNetV3's block: a channel gate computed from the signal,
    times the signal (torchvision's ``SqueezeExcitation``, written here)."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 4, 3, padding=1, bias=bias)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce, self.expand = nn.Conv2d(4, 2, 1, bias=bias), nn.Conv2d(2, 4, 1, bias=bias)
        self.head = nn.Linear(4 * 5 * 5, 3, bias=bias)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        gate = torch.sigmoid(self.expand(torch.relu(self.reduce(self.pool(x)))))
        return self.head((gate * x).flatten(1))


def test_a_gate_times_a_signal_sums_to_the_delta_and_conserves_relevance():
    from attribution import LRP, ConnectionWeights

    converter = _check_exact_block(_SqueezeExcitation().double(), {"Multiply_Layer"}, 0)
    x = torch.randn(3, 2, 5, 5, dtype=torch.float64)
    shap = DeepSHAP(converter, x, data_ref=torch.randn(6, 2, 5, 5).double(), dtype="double")
    torch.testing.assert_close(torch.as_tensor(shap.get_result()).sum((1, 2, 3)),
                               shap.decomp_goal[0].double(), rtol=1e-9, atol=1e-12)  # fmt: skip
    with pytest.raises(ValueError, match="no meaning through a product of two tensors"):
        ConnectionWeights(converter)
    # bias-free: the signal takes all relevance, the gate none, and it is conserved
    bias_free = Converter(_SqueezeExcitation(bias=False).double(), input_dim=(2, 5, 5),
                          dtype="double")  # fmt: skip
    relevance = LRP(bias_free, x, dtype="double")
    torch.testing.assert_close(torch.as_tensor(relevance.get_result()).sum((1, 2, 3)),
                               relevance.preds[0].double(), rtol=1e-9, atol=1e-12)  # fmt: skip


def test_the_product_rules_by_hand():
    from attribution.layers.base import LayerValues
    from attribution.layers.merge import ProductLayer

    gate = torch.tensor([[[0.5], [2.0]]])  # (batch 1, 2, 1): broadcast over the last axis
    signal = torch.arange(6.0).reshape(1, 2, 3)
    layer = ProductLayer()
    values = LayerValues([gate, signal], gate * signal, gate * signal)
    R = torch.ones(1, 1, 2, 3)
    to_gate, to_signal = layer.lrp(values, R, None, True, 1e-6)
    assert to_gate.shape == (1, 1, 2, 1) and (to_gate == 0).all()
    torch.testing.assert_close(to_signal, R)
    reference = LayerValues([torch.zeros_like(gate), torch.ones_like(signal)], gate, gate)
    m_gate, m_signal = layer.deeplift(values, reference, None, R, "rescale", True, 1e-6)
    # Δ(g s) = m_g Δg + m_s Δs exactly, with m_g = Σ (s + s_ref)/2, m_s = (g + g_ref)/2
    total = (m_gate * (gate - 0)).sum() + (m_signal * (signal - 1)).sum()
    torch.testing.assert_close(total, (gate * signal - 0 * 1).sum())


class _ConvNeXtLike(nn.Module):
    """ConvNeXt's channels-last LayerNorm (permute, ``nn.LayerNorm(C)``, permute back),
    then GELU and a GroupNorm."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 4, 3, padding=1, bias=bias)
        self.layer_norm, self.group_norm = nn.LayerNorm(4, bias=bias), nn.GroupNorm(2, 4)
        self.head = nn.Linear(4 * 5 * 5, 3, bias=bias)
        with torch.no_grad():
            self.layer_norm.weight.uniform_(0.5, 1.5)
            self.group_norm.weight.uniform_(-1.0, 1.0)
            self.group_norm.bias.uniform_(-1.0, 1.0) if bias else self.group_norm.bias.zero_()

    def forward(self, x):
        x = self.layer_norm(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.head(self.group_norm(F.gelu(x)).flatten(1))


def test_layer_and_group_norm_have_exact_deeplift_and_conserving_lrp():
    from attribution import LRP, ConnectionWeights

    converter = _check_exact_block(
        _ConvNeXtLike().double(), {"LayerNorm_Layer", "GroupNorm_Layer"}, 2
    )
    x = torch.randn(3, 2, 5, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="no meaning through GroupNorm_Layer"):
        ConnectionWeights(converter)
    # β = 0 and no biases: the LN rule conserves relevance
    bias_free = _ConvNeXtLike(bias=False).double()
    relevance = LRP(Converter(bias_free, input_dim=(2, 5, 5), dtype="double"), x, dtype="double")
    with torch.no_grad():
        torch.testing.assert_close(torch.as_tensor(relevance.get_result()).sum((1, 2, 3)),
                                   bias_free(x), rtol=1e-9, atol=1e-12)  # fmt: skip
