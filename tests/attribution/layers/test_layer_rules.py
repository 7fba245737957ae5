"""The rule methods of every layer type: LRP conservation, DeepLift summation-to-delta,
``transpose`` against autograd, and the LRP formulas against a slow per-element reference.

Signals have shape ``(K, batch, *shape)``: the ``K`` explained output nodes first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from attribution.layers.activation import Activation, ActivationLayer
from attribution.layers.base import Layer, LayerValues
from attribution.layers.conv import Conv1DLayer, Conv2DLayer, same_padding
from attribution.layers.dense import DenseLayer
from attribution.layers.merge import AddLayer, ConcatenateLayer
from attribution.layers.norm import BatchNormLayer
from attribution.layers.pooling import (
    AvgPool1DLayer,
    AvgPool2DLayer,
    GlobalAvgPoolLayer,
    GlobalMaxPoolLayer,
    MaxPool1DLayer,
    MaxPool2DLayer,
)
from attribution.layers.reshape import FlattenLayer, PaddingLayer
from attribution.rules import LRPRule, stabilizer

K, BATCH = 3, 4
STAB = stabilizer(torch.float64)


def rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


@dataclass
class Case:
    """A layer type with inputs of shape ``in_shapes``; ``make(bias)`` builds the layer,
    with a zero bias (shift) when ``bias`` is False."""

    make: Callable[[bool], Layer]
    in_shapes: list[tuple[int, ...]]
    linear: bool = True  # the pre-activation is a linear map (plus bias)


def _dense(activation: str | None = None) -> Callable[[bool], Layer]:
    def make(bias: bool) -> Layer:
        act = None if activation is None else Activation(activation)
        return DenseLayer(rand(5, 6), rand(5) if bias else None, act)

    return make


def _conv(layer_type, weight_shape, activation="tanh", **options) -> Callable[[bool], Layer]:
    def make(bias: bool) -> Layer:
        return layer_type(
            rand(*weight_shape),
            rand(weight_shape[0]) if bias else None,
            activation=Activation(activation),
            **options,
        )

    return make


def _batch_norm(bias: bool) -> Layer:
    mean, var, gamma = rand(3) + 0.5, rand(3).abs() + 0.3, rand(3)
    beta = rand(3) if bias else gamma * mean / torch.sqrt(var + 1e-3)  # zero shift
    return BatchNormLayer(mean, var, gamma, beta, eps=1e-3)


def _plain(layer: Callable[[], Layer]) -> Callable[[bool], Layer]:
    return lambda bias: layer()


LAYERS = {
    "Dense": Case(_dense(), [(6,)]),
    "Dense-tanh": Case(_dense("tanh"), [(6,)]),
    "Dense-softmax": Case(_dense("softmax"), [(6,)]),
    "Conv1D-stride-padding": Case(
        _conv(Conv1DLayer, (3, 2, 3), "relu", stride=(2,), padding=(1, 1), dilation=(1,)),
        [(2, 9)],
    ),
    "Conv1D-stride-lost-column": Case(
        _conv(Conv1DLayer, (3, 2, 3), "leaky_relu", stride=(3,), padding=(1, 1), dilation=(1,)),
        [(2, 10)],
    ),
    "Conv1D-same-asymmetric-dilation": Case(
        _conv(
            Conv1DLayer,
            (3, 2, 4),
            "softplus",
            stride=(1,),
            padding=same_padding((4,), (2,)),
            dilation=(2,),
        ),
        [(2, 9)],
    ),
    "Conv1D-reflect": Case(
        _conv(
            Conv1DLayer,
            (3, 2, 3),
            stride=(1,),
            padding=(2, 1),
            dilation=(1,),
            padding_mode="reflect",
        ),
        [(2, 8)],
    ),
    "Conv2D-stride-padding": Case(
        _conv(Conv2DLayer, (4, 2, 3, 3), stride=(2, 1), padding=(1, 1, 2, 2), dilation=(1, 1)),
        [(2, 6, 5)],
    ),
    "Conv2D-same-asymmetric": Case(
        _conv(
            Conv2DLayer,
            (3, 2, 4, 2),
            "elu",
            stride=(1, 1),
            padding=same_padding((4, 2), (1, 1)),
            dilation=(1, 1),
        ),
        [(2, 5, 6)],
    ),
    "Conv2D-asymmetric-stride": Case(
        _conv(
            Conv2DLayer, (3, 2, 2, 3), "gelu", stride=(2, 2), padding=(0, 1, 1, 0), dilation=(1, 1)
        ),
        [(2, 6, 7)],
    ),
    "Conv2D-dilation-groups": Case(
        _conv(
            Conv2DLayer,
            (4, 2, 2, 3),
            "sigmoid",
            stride=(1, 2),
            padding=(0, 0, 0, 0),
            dilation=(2, 1),
            groups=2,
        ),
        [(4, 6, 7)],
    ),
    "Conv2D-reflect": Case(
        _conv(
            Conv2DLayer,
            (3, 2, 3, 3),
            "silu",
            stride=(1, 1),
            padding=(1, 1, 1, 1),
            dilation=(1, 1),
            padding_mode="reflect",
        ),
        [(2, 5, 5)],
    ),
    "AvgPool1D": Case(_plain(lambda: AvgPool1DLayer(kernel_size=3, stride=2, padding=1)), [(2, 9)]),
    "AvgPool2D": Case(
        _plain(
            lambda: AvgPool2DLayer(
                kernel_size=(2, 3), stride=(2, 1), ceil_mode=True, count_include_pad=False
            )
        ),
        [(2, 5, 6)],
    ),
    "MaxPool1D": Case(_plain(lambda: MaxPool1DLayer(kernel_size=2, stride=2)), [(2, 9)], False),
    "MaxPool1D-overlapping": Case(
        _plain(lambda: MaxPool1DLayer(kernel_size=3, stride=2, padding=1)), [(2, 9)], False
    ),
    "MaxPool1D-ceil_mode": Case(
        _plain(lambda: MaxPool1DLayer(kernel_size=3, stride=2, ceil_mode=True)), [(2, 8)], False
    ),
    "MaxPool2D": Case(_plain(lambda: MaxPool2DLayer(kernel_size=2, stride=2)), [(2, 6, 4)], False),
    "MaxPool2D-overlapping": Case(
        _plain(lambda: MaxPool2DLayer(kernel_size=3, stride=(2, 1), padding=1)), [(2, 5, 6)], False
    ),
    "BatchNorm-tabular": Case(_batch_norm, [(3,)]),
    "BatchNorm-image": Case(_batch_norm, [(3, 4, 5)]),
    "BatchNorm-signal-no-affine": Case(
        lambda bias: BatchNormLayer(rand(3) if bias else torch.zeros(3), rand(3).abs() + 0.3),
        [(3, 5)],
    ),
    "Flatten": Case(_plain(FlattenLayer), [(3, 4, 2)]),
    "Flatten-channels_last": Case(_plain(lambda: FlattenLayer(channels_last=True)), [(3, 4, 2)]),
    "Flatten-channels_last-signal": Case(
        _plain(lambda: FlattenLayer(channels_last=True)), [(3, 5)]
    ),
    "GlobalAvgPool": Case(_plain(GlobalAvgPoolLayer), [(3, 4, 5)]),
    "GlobalAvgPool-keepdim": Case(_plain(lambda: GlobalAvgPoolLayer(keepdim=True)), [(3, 7)]),
    "GlobalMaxPool": Case(_plain(GlobalMaxPoolLayer), [(3, 4, 5)], False),
    "GlobalMaxPool-keepdim": Case(
        _plain(lambda: GlobalMaxPoolLayer(keepdim=True)), [(3, 7)], False
    ),
    "Padding-constant": Case(_plain(lambda: PaddingLayer((1, 2, 0, 1))), [(2, 3, 4)]),
    "Padding-reflect": Case(_plain(lambda: PaddingLayer((2, 1, 1, 2), "reflect")), [(2, 4, 4)]),
    "Padding-replicate": Case(_plain(lambda: PaddingLayer((2, 1), "replicate")), [(2, 5)]),
    "Padding-circular": Case(_plain(lambda: PaddingLayer((1, 2), "circular")), [(2, 5)]),
    "Concatenate-channels": Case(_plain(lambda: ConcatenateLayer(0)), [(2, 5), (3, 5)]),
    "Concatenate-last": Case(_plain(ConcatenateLayer), [(2, 3), (2, 4), (2, 1)]),
    "Add": Case(_plain(AddLayer), [(3, 4), (3, 4)]),
    "Add-three": Case(_plain(AddLayer), [(6,), (6,), (6,)]),
    **{
        f"Activation-{name}": Case(
            _plain(lambda name=name, params=params: ActivationLayer(Activation(name, **params))),
            [(3, 4)],
        )
        for name, params in [
            ("linear", {}),
            ("relu", {}),
            ("leaky_relu", {"negative_slope": 0.2}),
            ("elu", {"alpha": 0.7}),
            ("gelu", {}),
            ("silu", {}),
            ("softplus", {}),
            ("tanh", {}),
            ("sigmoid", {}),
            ("softmax", {"dim": 1}),
        ]
    },
}
MAX_POOLING = {name for name in LAYERS if "MaxPool" in name}
WEIGHTED = [name for name in LAYERS if name.startswith(("Dense", "Conv"))]


def values_of(layer: Layer, inputs: list[torch.Tensor]) -> LayerValues:
    """What a forward pass keeps for ``layer``."""
    pre, out = layer(*inputs)
    return LayerValues(inputs, pre, out)


def inputs_of(case: Case, batch: int = BATCH) -> list[torch.Tensor]:
    return [rand(batch, *shape) for shape in case.in_shapes]


def per_row(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Sum over everything but the ``(K, batch)`` axes, and over the list."""
    return sum(t.flatten(2).sum(-1) for t in tensors)


def out_signal(values: LayerValues) -> torch.Tensor:
    return rand(K, *values.out.shape)


def assert_rows_close(actual: torch.Tensor, expected: torch.Tensor, tol: float = 1e-10) -> None:
    assert actual.shape == expected.shape == (K, BATCH)
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)


# --- LRP conservation ----------------------------------------------------------------------


LRP_CASES = [(name, True) for name in LAYERS] + [(name, False) for name in sorted(MAX_POOLING)]


@pytest.mark.parametrize(("name", "winner_takes_all"), LRP_CASES)
def test_lrp_simple_conserves_relevance_without_bias(name, winner_takes_all):
    case = LAYERS[name]
    layer = case.make(False)
    values = values_of(layer, inputs_of(case))
    R = out_signal(values)
    if name == "Padding-constant":  # a z-rule above gives the zeros of the padding nothing
        R = R * values.out
    R_in = layer.lrp(values, R, LRPRule("simple"), winner_takes_all, STAB)
    assert [tuple(r.shape) for r in R_in] == [(K, BATCH, *s) for s in case.in_shapes]
    assert_rows_close(per_row(R_in), per_row([R]))


def test_lrp_biases_absorb_relevance():
    # The conservation above needs the zero bias: it fails with one (the test can fail).
    case = LAYERS["Dense"]
    layer = case.make(True)
    values = values_of(layer, inputs_of(case))
    R = out_signal(values)
    R_in = layer.lrp(values, R, LRPRule("simple"), True, STAB)
    assert (per_row(R_in) - per_row([R])).abs().max() > 1e-3


def test_batch_norm_pass_skips_the_layer():
    case = LAYERS["BatchNorm-image"]
    layer = case.make(True)
    values = values_of(layer, inputs_of(case))
    R = out_signal(values)
    (R_in,) = layer.lrp(values, R, LRPRule("pass"), True, STAB)
    assert torch.equal(R_in, R)


def test_lrp_pass_is_an_error_for_weighted_layers():
    case = LAYERS["Dense"]
    layer = case.make(True)
    values = values_of(layer, inputs_of(case))
    with pytest.raises(ValueError, match="only works for layers whose input and output"):
        layer.lrp(values, out_signal(values), LRPRule("pass"), True, STAB)


# --- DeepLift summation-to-delta -----------------------------------------------------------


def _deeplift_case(name: str, rule_name: str, reference_rows: int, with_pre: bool):
    case = LAYERS[name]
    layer = case.make(True)
    xs, refs = inputs_of(case), inputs_of(case, reference_rows)
    if reference_rows == BATCH:  # some inputs equal their reference: Δx = 0 there
        for x, ref in zip(xs, refs, strict=True):
            ref[:, :1] = x[:, :1]
    values, reference = values_of(layer, xs), values_of(layer, refs)
    m_out = out_signal(values)
    m_pre = out_signal(values) if with_pre else None
    m_in = layer.deeplift(values, reference, m_out, m_pre, rule_name, False, STAB)
    delta_in = [m * (x - r) for m, x, r in zip(m_in, xs, refs, strict=True)]
    expected = m_out * (values.out - reference.out)
    if with_pre:
        expected = expected + m_pre * (values.pre - reference.pre)
    return per_row(delta_in), per_row([expected])


@pytest.mark.parametrize("reference_rows", [1, BATCH], ids=["one-reference", "per-instance"])
@pytest.mark.parametrize("rule_name", ["rescale", "reveal_cancel"])
@pytest.mark.parametrize("name", LAYERS)
def test_deeplift_summation_to_delta(name, rule_name, reference_rows):
    # Max pooling (also global) with winner_takes_all=False; True is tested below.
    actual, expected = _deeplift_case(name, rule_name, reference_rows, with_pre=False)
    assert_rows_close(actual, expected)


@pytest.mark.parametrize("rule_name", ["rescale", "reveal_cancel"])
@pytest.mark.parametrize("name", WEIGHTED)
def test_deeplift_summation_to_delta_with_a_preactivation_start(name, rule_name):
    # An output layer whose activation is ignored, and that also feeds other layers.
    actual, expected = _deeplift_case(name, rule_name, BATCH, with_pre=True)
    assert_rows_close(actual, expected)


def _reference_reveal_cancel(W, b, f, x, x_ref, m) -> torch.Tensor:
    """RevealCancel one element at a time, for an element-wise activation ``f``.

    With contributions ``c_ji = w_ji Δx_i``: ``Δz⁺_j``/``Δz⁻_j`` sum the positive/negative
    ones, ``Δy⁺ = ½[f(z_ref + Δz⁺) − f(z_ref)] + ½[f(z) − f(z_ref + Δz⁻)]`` (``Δy⁻`` the
    same with the parts swapped), ``m^± = m Δy^±/Δz^±`` and input ``i`` gets
    ``Σ_j w_ji m^±_j`` by the sign of ``c_ji`` (the mean of both where ``Δx_i = 0``).
    """
    W, b, m = W.tolist(), b.tolist(), m.T.tolist()
    x, x_ref = x.tolist(), x_ref.tolist()
    out = [[0.0] * len(x) for _ in m[0]]
    for w, bias, m_j in zip(W, b, m, strict=True):
        c = [w_i * (a - r) for w_i, a, r in zip(w, x, x_ref, strict=True)]
        z_ref = sum(w_i * r for w_i, r in zip(w, x_ref, strict=True)) + bias
        dz_pos, dz_neg = sum(c_i for c_i in c if c_i > 0), sum(c_i for c_i in c if c_i < 0)
        z = z_ref + dz_pos + dz_neg
        dy_pos = (f(z_ref + dz_pos) - f(z_ref) + f(z) - f(z_ref + dz_neg)) / 2
        dy_neg = (f(z_ref + dz_neg) - f(z_ref) + f(z) - f(z_ref + dz_pos)) / 2
        # without contributions of one sign, that part has Δy = 0 and a zero multiplier
        ratio_pos = dy_pos / dz_pos if dz_pos != 0 else 0.0
        ratio_neg = dy_neg / dz_neg if dz_neg != 0 else 0.0
        for k, m_jk in enumerate(m_j):
            row = out[k]
            for i, (w_i, c_i) in enumerate(zip(w, c, strict=True)):
                if c_i > 0:
                    row[i] += w_i * m_jk * ratio_pos
                elif c_i < 0:
                    row[i] += w_i * m_jk * ratio_neg
                else:
                    row[i] += w_i * m_jk * (ratio_pos + ratio_neg) / 2
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("name", ["Dense-tanh", "Conv2D-stride-padding", "Conv2D-dilation-groups"])
def test_reveal_cancel_matches_the_per_element_reference(name):
    case = LAYERS[name]
    layer = case.make(True)
    x, x_ref = rand(2, *case.in_shapes[0]), rand(1, *case.in_shapes[0])
    x[0, 0] = x_ref[0, 0]  # a zero Δx
    values, reference = values_of(layer, [x]), values_of(layer, [x_ref])
    m_out = rand(2, *values.out.shape)
    (m_in,) = layer.deeplift(values, reference, m_out, None, "reveal_cancel", True, STAB)
    W, b = _matrix_form(layer, case.in_shapes[0])
    f = {"tanh": math.tanh, "sigmoid": lambda z: 1 / (1 + math.exp(-z))}[layer.activation.name]
    for n in range(len(x)):
        expected = _reference_reveal_cancel(
            W, b, f, x[n].flatten(), x_ref[0].flatten(), m_out[:, n].flatten(1)
        )
        torch.testing.assert_close(m_in[:, n].flatten(1), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["Dense-tanh", "Conv2D-same-asymmetric"])
def test_reveal_cancel_differs_from_rescale(name):
    case = LAYERS[name]
    layer = case.make(True)
    xs, refs = inputs_of(case), inputs_of(case, 1)
    values, reference = values_of(layer, xs), values_of(layer, refs)
    m_out = out_signal(values)
    rescale, reveal = (
        layer.deeplift(values, reference, m_out, None, rule, True, STAB)[0]
        for rule in ("rescale", "reveal_cancel")
    )
    assert (rescale - reveal).abs().max() > 1e-3


def test_rescale_uses_the_midpoint_gradient_where_the_input_does_not_change():
    layer = ActivationLayer(Activation("tanh"))
    x = rand(BATCH, 3)
    ref = x.clone()
    ref[:, 0] += 1e-16  # |Δx| at most the stabiliser, or exactly 0
    ref[:, 1] += 0.5
    values, reference = values_of(layer, [x]), values_of(layer, [ref])
    m_out = out_signal(values)
    (m_in,) = layer.deeplift(values, reference, m_out, None, "rescale", True, STAB)
    slope = 1 - torch.tanh((x + ref) / 2) ** 2
    torch.testing.assert_close(m_in[..., [0, 2]], m_out[..., [0, 2]] * slope[:, [0, 2]])
    secant = (torch.tanh(x) - torch.tanh(ref)) / (x - ref)
    torch.testing.assert_close(m_in[..., 1], m_out[..., 1] * secant[:, 1])


# --- max pooling: winner takes all -----------------------------------------------------------


def _window_maxima_1d(x: torch.Tensor, R: torch.Tensor, kernel: int, stride: int, padding: int):
    """Slow reference: every window's ``R`` to the position of its maximum of ``x``."""
    expected = torch.zeros(R.shape[0], *x.shape, dtype=x.dtype)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            for o in range(R.shape[-1]):
                window = [
                    p for p in range(o * stride - padding, o * stride - padding + kernel)
                    if 0 <= p < x.shape[-1]
                ]  # fmt: skip
                winner = max(window, key=lambda p, b=b, c=c: x[b, c, p].item())
                expected[:, b, c, winner] += R[:, b, c, o]
    return expected


def _window_maxima_2d(x: torch.Tensor, R: torch.Tensor, kernel: int, stride: int):
    expected = torch.zeros(R.shape[0], *x.shape, dtype=x.dtype)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(R.shape[-2]):
                for j in range(R.shape[-1]):
                    window = [
                        (p, q)
                        for p in range(i * stride, i * stride + kernel)
                        for q in range(j * stride, j * stride + kernel)
                    ]
                    p, q = max(window, key=lambda pq, b=b, c=c: x[b, c, pq[0], pq[1]].item())
                    expected[:, b, c, p, q] += R[:, b, c, i, j]
    return expected


@pytest.mark.parametrize(
    ("layer", "shape", "reference"),
    [
        (MaxPool1DLayer(kernel_size=3, stride=2, padding=1), (BATCH, 2, 9),
         lambda x, R: _window_maxima_1d(x, R, 3, 2, 1)),
        (MaxPool1DLayer(kernel_size=2, stride=2), (BATCH, 2, 9),
         lambda x, R: _window_maxima_1d(x, R, 2, 2, 0)),
        (MaxPool2DLayer(kernel_size=2, stride=1), (BATCH, 2, 4, 5),
         lambda x, R: _window_maxima_2d(x, R, 2, 1)),
    ],
)  # fmt: skip
def test_winner_takes_all_routes_to_the_window_maxima(layer, shape, reference):
    x, x_ref = rand(*shape), rand(1, *shape[1:])
    values, ref_values = values_of(layer, [x]), values_of(layer, [x_ref])
    R = out_signal(values)
    expected = reference(x, R)
    for rule in (LRPRule("simple"), LRPRule("alpha_beta", 1.0), LRPRule("epsilon", 0.5)):
        (R_in,) = layer.lrp(values, R, rule, True, STAB)  # the rule is ignored
        torch.testing.assert_close(R_in, expected, rtol=0, atol=1e-12)
    for rule_name in ("rescale", "reveal_cancel"):
        (m_in,) = layer.deeplift(values, ref_values, R, None, rule_name, True, STAB)
        torch.testing.assert_close(m_in, expected, rtol=0, atol=1e-12)


def test_winner_takes_all_can_break_summation_to_delta():
    # Where the maxima of x and x_ref sit apart, Σ m Δx ≠ Σ m Δy: the reason the model
    # tests use winner_takes_all=False for summation-to-delta.
    layer = MaxPool1DLayer(kernel_size=2, stride=2)
    x = torch.tensor([[[2.0, 0.0]]], dtype=torch.float64)
    x_ref = torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)
    values, reference = values_of(layer, [x]), values_of(layer, [x_ref])
    m_out = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    for winner_takes_all, expected in [(True, 2.0), (False, 1.0)]:  # Δy = 2 − 1 = 1
        (m_in,) = layer.deeplift(values, reference, m_out, None, "rescale", winner_takes_all, STAB)
        assert (m_in * (x - x_ref)).sum().item() == pytest.approx(expected)


def test_global_max_pooling_routes_to_each_channels_maximum():
    layer = GlobalMaxPoolLayer()
    x = rand(BATCH, 3, 4, 5)
    values = values_of(layer, [x])
    R = out_signal(values)
    (R_in,) = layer.lrp(values, R, LRPRule("simple"), True, STAB)
    flat = x.flatten(2)
    expected = torch.zeros(K, *flat.shape, dtype=x.dtype)
    for b in range(BATCH):
        for c in range(3):
            expected[:, b, c, flat[b, c].argmax()] = R[:, b, c]
    torch.testing.assert_close(R_in, expected.reshape(K, *x.shape), rtol=0, atol=0)


@pytest.mark.parametrize("keepdim", [False, True])
def test_global_max_pooling_without_winner_takes_all_is_global_average_pooling(keepdim):
    layer, average = GlobalMaxPoolLayer(keepdim), GlobalAvgPoolLayer(keepdim)
    x, x_ref = rand(BATCH, 3, 4, 5), rand(1, 3, 4, 5)
    values, reference = values_of(layer, [x]), values_of(layer, [x_ref])
    R = out_signal(values)
    (R_in,) = layer.lrp(values, R, LRPRule("simple"), False, STAB)
    # global average pooling's rule: each position's share x / Σx of the channel's mean
    mean = x.mean((2, 3), keepdim=True)
    share = R.reshape(K, BATCH, 3, 1, 1) * x / (20 * (mean + STAB * torch.sign(mean)))
    torch.testing.assert_close(R_in, share, rtol=1e-12, atol=1e-15)
    averaged = values_of(average, [x])
    torch.testing.assert_close(R_in, average.lrp(averaged, R, LRPRule("simple"), True, STAB)[0])
    # innsight's even split, on request
    (even,) = average.lrp(averaged, R, LRPRule("equal"), True, STAB)
    spread = R.reshape(K, BATCH, 3, 1, 1).expand(-1, -1, -1, 4, 5) / 20
    torch.testing.assert_close(even, spread, rtol=0, atol=1e-15)
    (m_in,) = layer.deeplift(values, reference, R, None, "rescale", False, STAB)
    ratio = (x.amax((2, 3)) - x_ref.amax((2, 3))) / (x - x_ref).mean((2, 3))
    torch.testing.assert_close(m_in, spread * ratio.reshape(1, BATCH, 3, 1, 1))


def test_max_pooling_with_dilation_needs_winner_takes_all():
    layer = MaxPool1DLayer(kernel_size=2, stride=2, dilation=2)
    values = values_of(layer, [rand(BATCH, 2, 9)])
    with pytest.raises(ValueError, match="has dilation 2. Use winner_takes_all=True"):
        layer.lrp(values, out_signal(values), LRPRule("simple"), False, STAB)


# --- transpose against autograd --------------------------------------------------------------


def _vjp(function: Callable, inputs: list[torch.Tensor], v: torch.Tensor) -> list[torch.Tensor]:
    """``Jᵀ v[k]`` for each of the ``K`` rows of ``v``, by autograd."""
    inputs = [x.clone().requires_grad_(True) for x in inputs]
    out = function(*inputs)
    rows = [torch.autograd.grad(out, inputs, v[k], retain_graph=True) for k in range(len(v))]
    return [torch.stack([row[j] for row in rows]) for j in range(len(inputs))]


@pytest.mark.parametrize("name", [name for name in LAYERS if LAYERS[name].linear])
def test_transpose_is_the_adjoint_of_the_preactivation(name):
    case = LAYERS[name]
    layer = case.make(True)
    xs = inputs_of(case)
    values = values_of(layer, xs)
    v = out_signal(values)
    expected = _vjp(layer.preactivation, xs, v)
    actual = layer.transpose(v, values.in_shapes)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-12)
    # Connection Weights pass signals by the same map; additions split them equally
    share = len(xs) if isinstance(layer, AddLayer) else 1
    for a, e in zip(layer.connection_weights(v, values.in_shapes), expected, strict=True):
        torch.testing.assert_close(a, e / share, rtol=0, atol=1e-12)


def _linear_map(layer: Layer, in_shape: tuple[int, ...]):
    return layer.linear_map(in_shape) if hasattr(layer, "linear_map") else layer


@pytest.mark.parametrize("part", ["all", "pos", "neg"])
@pytest.mark.parametrize("name", [*WEIGHTED, "AvgPool1D", "AvgPool2D"])
def test_linear_map_parts_and_their_adjoints(name, part):
    case = LAYERS[name]
    layer = case.make(True)
    (x,) = inputs_of(case)
    linear_map = _linear_map(layer, case.in_shapes[0])
    b_pos, b_neg = linear_map.bias_parts()
    torch.testing.assert_close(
        linear_map.apply(x, "all") + b_pos + b_neg, layer.preactivation(x), rtol=0, atol=1e-12
    )
    applied = linear_map.apply(x, part)
    if applied is None:  # average pooling has no negative weights
        assert name.startswith("AvgPool") and part == "neg"
        assert linear_map.adjoint(out_signal(values_of(layer, [x])), part) is None
        return
    v = rand(K, *applied.shape)
    (expected,) = _vjp(lambda x: linear_map.apply(x, part), [x], v)
    torch.testing.assert_close(linear_map.adjoint(v, part), expected, rtol=0, atol=1e-12)
    # the parts are linear maps with weights of one sign
    sign = {"pos": 1, "neg": -1}.get(part)
    if sign is not None:
        assert (sign * linear_map.apply(x.abs(), part) >= 0).all()


def test_max_pooling_connection_weights_take_the_first_position_of_each_window():
    layer = MaxPool2DLayer(kernel_size=2, stride=2)
    R = rand(K, 1, 2, 2, 3)
    (signal,) = layer.connection_weights(R, [(2, 4, 6)])
    expected = torch.zeros(K, 1, 2, 4, 6, dtype=torch.float64)
    expected[..., ::2, ::2] = R
    assert torch.equal(signal, expected)


# --- LRP formulas against a slow per-element reference -----------------------------------------


def _matrix_form(layer: Layer, in_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight matrix ``W`` (out × in, flattened) and the bias per output element."""
    zero = torch.zeros(1, *in_shape, dtype=torch.float64)
    bias = layer.preactivation(zero).flatten()
    weight = torch.autograd.functional.jacobian(
        lambda x: layer.preactivation(x.reshape(1, *in_shape)).flatten() - bias, zero.flatten()
    )
    return weight, bias


def _reference_lrp(W, b, x, R, rule: LRPRule) -> torch.Tensor:
    """innsight's rules one element at a time: ``R_i = Σ_j c_ji / z̃_j · R_j`` with
    contributions ``c_ji = w_ji x_i``; ``alpha_beta`` splits contributions and bias by sign.
    """
    W, b, x, R = W.tolist(), b.tolist(), x.tolist(), R.T.tolist()  # plain floats: fast loops
    out = [[0.0] * len(x) for _ in R[0]]
    for w, bias, r in zip(W, b, R, strict=True):
        c = [w_i * x_i for w_i, x_i in zip(w, x, strict=True)]
        if rule.name == "epsilon":
            z = sum(c) + bias
            z_tilde = z + rule.param * math.copysign(1.0, z) if z != 0 else STAB
            shares = [c_i / z_tilde for c_i in c]
        else:
            alpha = rule.param
            z_pos = sum(c_i for c_i in c if c_i > 0) + max(bias, 0.0)
            z_neg = sum(c_i for c_i in c if c_i < 0) + min(bias, 0.0)
            z_pos = z_pos + STAB if z_pos > 0 else STAB
            z_neg = z_neg - STAB if z_neg < 0 else -STAB
            shares = [
                alpha * max(c_i, 0.0) / z_pos + (1 - alpha) * min(c_i, 0.0) / z_neg for c_i in c
            ]
        for k, r_k in enumerate(r):
            row = out[k]
            for i, share in enumerate(shares):
                row[i] += share * r_k
    return torch.tensor(out, dtype=torch.float64)


REFERENCE_LAYERS = [
    "Dense-tanh",
    "Conv1D-stride-padding",
    "Conv1D-same-asymmetric-dilation",
    "Conv2D-stride-padding",
    "Conv2D-same-asymmetric",
    "Conv2D-dilation-groups",
]  # zero padding only: reflected inputs enter a window twice, with per-copy weights


@pytest.mark.parametrize(
    "rule",
    [LRPRule("epsilon", 0.01), LRPRule("epsilon", 0.7), LRPRule("alpha_beta", 0.5),
     LRPRule("alpha_beta", 1.0), LRPRule("alpha_beta", 2.0)],
    ids=lambda rule: f"{rule.name}-{rule.param}",
)  # fmt: skip
@pytest.mark.parametrize("name", REFERENCE_LAYERS)
def test_lrp_rules_match_the_per_element_reference(name, rule):
    case = LAYERS[name]
    layer = case.make(True)
    x = rand(2, *case.in_shapes[0])
    values = values_of(layer, [x])
    R = rand(2, *values.out.shape)
    (R_in,) = layer.lrp(values, R, rule, True, STAB)
    W, b = _matrix_form(layer, case.in_shapes[0])
    for n in range(len(x)):
        expected = _reference_lrp(W, b, x[n].flatten(), R[:, n].flatten(1), rule)
        torch.testing.assert_close(R_in[:, n].flatten(1), expected, rtol=1e-10, atol=1e-12)


def test_simple_rule_is_epsilon_with_the_stabiliser():
    case = LAYERS["Conv2D-stride-padding"]
    layer = case.make(True)
    values = values_of(layer, inputs_of(case))
    R = out_signal(values)
    simple = layer.lrp(values, R, LRPRule("simple"), True, STAB)[0]
    epsilon = layer.lrp(values, R, LRPRule("epsilon", STAB), True, STAB)[0]
    torch.testing.assert_close(simple, epsilon, rtol=0, atol=0)
    W, b = _matrix_form(layer, case.in_shapes[0])
    x = values.inputs[0]
    z = (x.flatten(1) @ W.T + b).reshape(values.pre.shape)
    expected = x * layer.transpose(R / z, values.in_shapes)[0]
    torch.testing.assert_close(simple, expected, rtol=1e-10, atol=1e-12)


def test_batch_norm_rules_match_the_elementwise_formulas():
    case = LAYERS["BatchNorm-image"]
    layer = case.make(True)
    (x,) = inputs_of(case)
    values = values_of(layer, [x])
    R = out_signal(values)
    view = (1, 3, 1, 1)
    f = (layer.weight / torch.sqrt(layer.running_var + layer.eps)).view(view)
    c = (layer.bias - layer.running_mean * f.flatten()).view(view)
    y = f * x + c
    torch.testing.assert_close(values.pre, y)
    pos, neg = (f * x).clamp(min=0), (f * x).clamp(max=0)
    cases = {
        LRPRule("simple"): f * x / y,
        LRPRule("epsilon", 0.3): f * x / (y + 0.3 * torch.sign(y)),
        LRPRule("alpha_beta", 1.5): 1.5 * pos / (pos + STAB * (pos == 0) + c.clamp(min=0))
        - 0.5 * neg / (neg - STAB * (neg == 0) + c.clamp(max=0)),
    }
    for rule, ratio in cases.items():
        (R_in,) = layer.lrp(values, R, rule, True, STAB)
        torch.testing.assert_close(R_in, ratio * R, rtol=1e-10, atol=1e-12)
