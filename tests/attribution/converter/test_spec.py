"""Converting innsight's named-list model format (a dict or a JSON file)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribution import Converter

TOLERANCE = 1e-10


def wired(*layers: dict) -> list[dict]:
    """The layers wired one after the other (layer 1 reads the model input)."""
    n = len(layers)
    return [
        {**layer, "input_layers": [k], "output_layers": [k + 2 if k + 1 < n else -1]}
        for k, layer in enumerate(layers)
    ]


def sequential(input_dim, *layers: dict, **top) -> dict:
    """A complete spec of one input and one output layer."""
    return {
        "input_dim": input_dim,
        "input_nodes": [1],
        "output_nodes": [len(layers)],
        "layers": wired(*layers),
        **top,
    }


def rand(*shape: int) -> Tensor:
    return torch.randn(*shape, dtype=torch.float64)


def convert(spec: dict) -> Converter:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete spec converts without warnings
        return Converter(spec, dtype="double")


def assert_matches(converter: Converter, reference: Callable[..., Tensor | tuple]) -> None:
    inputs = [rand(5, *dim) for dim in converter.input_dim]
    expected = reference(*inputs)
    expected = list(expected) if isinstance(expected, tuple) else [expected]
    got = converter.model(*inputs)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() <= TOLERANCE


FLATTEN = {"type": "Flatten"}


def dense(weight: Tensor, bias: Tensor | None = None, **keys) -> dict:
    layer = {"type": "Dense", "weight": weight.tolist(), **keys}
    if bias is not None:
        layer["bias"] = bias.tolist()
    return layer


def conv(kind: str, weight: Tensor, bias: Tensor | None = None, **keys) -> dict:
    layer = {"type": kind, "weight": weight.tolist(), **keys}
    if bias is not None:
        layer["bias"] = bias.tolist()
    return layer


# --- every layer type and key ----------------------------------------------------------------


def _layer_cases() -> list:
    torch.manual_seed(1)
    w2, b4 = rand(4, 3), rand(4)
    w1d, w2d, b3 = rand(3, 2, 3), rand(3, 2, 3, 2), rand(3)
    mean, var, gamma, beta = rand(2), rand(2).abs() + 0.5, rand(2), rand(2)
    return [
        pytest.param(
            [dense(w2, b4, activation_name="relu")],
            (3,),
            lambda x: F.relu(F.linear(x, w2, b4)),
            id="Dense",
        ),
        pytest.param([dense(w2)], (3,), lambda x: F.linear(x, w2), id="Dense-defaults"),
        pytest.param(
            [conv("Conv1D", w1d, b3, stride=2, padding=1, dilation=2), FLATTEN],
            (2, 9),
            lambda x: F.conv1d(x, w1d, b3, stride=2, padding=1, dilation=2).flatten(1),
            id="Conv1D-stride-padding-dilation",
        ),
        pytest.param(
            [conv("Conv1D", w1d, b3, padding=[1, 2], activation_name="tanh"), FLATTEN],
            (2, 9),
            lambda x: torch.tanh(F.conv1d(F.pad(x, (1, 2)), w1d, b3)).flatten(1),
            id="Conv1D-padding-left-right",
        ),
        pytest.param(
            [conv("Conv1D", w1d), FLATTEN],
            (2, 9),
            lambda x: F.conv1d(x, w1d).flatten(1),
            id="Conv1D-defaults",
        ),
        pytest.param(
            [conv("Conv2D", w2d, b3, padding=1), FLATTEN],
            (2, 5, 6),
            lambda x: F.conv2d(x, w2d, b3, padding=1).flatten(1),
            id="Conv2D-padding-1",
        ),
        pytest.param(
            [conv("Conv2D", w2d, b3, padding=[1, 2]), FLATTEN],
            (2, 5, 6),
            lambda x: F.conv2d(F.pad(x, (1, 1, 2, 2)), w2d, b3).flatten(1),
            id="Conv2D-padding-2",
        ),
        pytest.param(
            [conv("Conv2D", w2d, b3, padding=[0, 1, 2, 3]), FLATTEN],
            (2, 5, 6),
            lambda x: F.conv2d(F.pad(x, (0, 1, 2, 3)), w2d, b3).flatten(1),
            id="Conv2D-padding-4",
        ),
        pytest.param(
            [conv("Conv2D", w2d, b3, stride=[2, 1], dilation=[1, 2]), FLATTEN],
            (2, 7, 6),
            lambda x: F.conv2d(x, w2d, b3, stride=(2, 1), dilation=(1, 2)).flatten(1),
            id="Conv2D-stride-dilation",
        ),
        pytest.param(
            [conv("Conv2D", w2d, stride=2, dilation=2, activation_name="softplus"), FLATTEN],
            (2, 7, 6),
            lambda x: F.softplus(F.conv2d(x, w2d, stride=2, dilation=2)).flatten(1),
            id="Conv2D-scalar-stride-dilation",
        ),
        pytest.param(
            [{"type": "MaxPooling1D", "kernel_size": 2}, FLATTEN],
            (2, 7),
            lambda x: F.max_pool1d(x, 2).flatten(1),
            id="MaxPooling1D-strides-default",
        ),
        pytest.param(
            [{"type": "MaxPooling1D", "kernel_size": 3, "strides": 1}, FLATTEN],
            (2, 7),
            lambda x: F.max_pool1d(x, 3, 1).flatten(1),
            id="MaxPooling1D",
        ),
        pytest.param(
            [{"type": "AveragePooling1D", "kernel_size": [2], "strides": [1]}, FLATTEN],
            (2, 7),
            lambda x: F.avg_pool1d(x, 2, 1).flatten(1),
            id="AveragePooling1D",
        ),
        pytest.param(
            [{"type": "MaxPooling2D", "kernel_size": [2, 3], "strides": [1, 2]}, FLATTEN],
            (2, 6, 7),
            lambda x: F.max_pool2d(x, (2, 3), (1, 2)).flatten(1),
            id="MaxPooling2D",
        ),
        pytest.param(
            [{"type": "AveragePooling2D", "kernel_size": 2}, FLATTEN],
            (2, 6, 7),
            lambda x: F.avg_pool2d(x, 2).flatten(1),
            id="AveragePooling2D-strides-default",
        ),
        pytest.param(
            [
                {
                    "type": "BatchNorm",
                    "num_features": 2,
                    "eps": 1e-3,
                    "gamma": gamma.tolist(),
                    "beta": beta.tolist(),
                    "run_mean": mean.tolist(),
                    "run_var": var.tolist(),
                },
                FLATTEN,
            ],
            (2, 3, 3),
            lambda x: F.batch_norm(x, mean, var, gamma, beta, False, 0.0, 1e-3).flatten(1),
            id="BatchNorm",
        ),
        pytest.param(
            [{"type": "BatchNorm", "run_mean": mean.tolist(), "run_var": var.tolist()}, FLATTEN],
            (2, 4),
            lambda x: F.batch_norm(x, mean, var, eps=1e-5).flatten(1),
            id="BatchNorm-defaults",
        ),
        pytest.param([FLATTEN], (2, 3, 4), lambda x: x.flatten(1), id="Flatten-defaults"),
        pytest.param(
            [{"type": "Flatten", "start_dim": 3}, FLATTEN],
            (2, 3, 4),
            lambda x: x.flatten(1),
            id="Flatten-start_dim",
        ),
        pytest.param(
            [{"type": "Flatten", "start_dim": 2, "end_dim": 3}, {"type": "GlobalPooling"}],
            (2, 3, 4),
            lambda x: x.flatten(1, 2).mean(-1),
            id="Flatten-end_dim",
        ),
        pytest.param(
            [{"type": "GlobalPooling", "method": "average"}],
            (2, 3, 4),
            lambda x: x.mean((2, 3)),
            id="GlobalPooling-average",
        ),
        pytest.param(
            [{"type": "GlobalPooling", "method": "max"}],
            (2, 5),
            lambda x: x.amax(2),
            id="GlobalPooling-max",
        ),
        pytest.param(
            [{"type": "Padding", "padding": [1, 2], "value": 0.5}, FLATTEN],
            (2, 4),
            lambda x: F.pad(x, (1, 2), value=0.5).flatten(1),
            id="Padding-constant",
        ),
        pytest.param(
            [{"type": "Padding", "padding": [1, 1, 2, 0], "mode": "reflect"}, FLATTEN],
            (2, 4, 4),
            lambda x: F.pad(x, (1, 1, 2, 0), mode="reflect").flatten(1),
            id="Padding-reflect",
        ),
        pytest.param(
            [{"type": "Padding", "padding": [2, 1], "mode": "replicate"}, FLATTEN],
            (2, 4),
            lambda x: F.pad(x, (2, 1), mode="replicate").flatten(1),
            id="Padding-replicate",
        ),
        pytest.param(
            [{"type": "Padding", "padding": [1, 1, 1, 1], "mode": "circular"}, FLATTEN],
            (2, 4, 4),
            lambda x: F.pad(x, (1, 1, 1, 1), mode="circular").flatten(1),
            id="Padding-circular",
        ),
        *[
            pytest.param(
                [dense(w2, b4), {"type": "Activation", "act_name": name}],
                (3,),
                lambda x, f=f: f(F.linear(x, w2, b4)),
                id=f"Activation-{name}",
            )
            for name, f in [
                ("relu", F.relu),
                ("leaky_relu", lambda z: F.leaky_relu(z, 0.01)),
                ("softplus", F.softplus),
                ("sigmoid", torch.sigmoid),
                ("logistic", torch.sigmoid),
                ("tanh", torch.tanh),
                ("softmax", lambda z: torch.softmax(z, -1)),
                ("linear", lambda z: z),
            ]
        ],
        pytest.param(
            [dense(w2, b4), {"type": "Skipping"}, dense(w2.T.contiguous())],
            (3,),
            lambda x: F.linear(F.linear(x, w2, b4), w2.T),
            id="Skipping",
        ),
    ]


@pytest.mark.parametrize(("layers", "input_dim", "reference"), _layer_cases())
def test_each_layer_type_matches_torch(layers, input_dim, reference):
    assert_matches(convert(sequential(list(input_dim), *layers)), reference)


def test_a_dense_activation_is_fused_and_a_standalone_one_is_a_layer():
    torch.manual_seed(0)
    spec = sequential(
        [3], dense(rand(4, 3), activation_name="relu"), {"type": "Activation", "act_name": "tanh"}
    )
    kinds = [(n.layer.type_name, repr(n.layer.activation)) for n in convert(spec).model.nodes]
    assert kinds == [("Dense_Layer", "relu"), ("Activation_Layer", "tanh")]


def test_leaky_relu_has_innsights_fixed_slope():
    spec = sequential(
        [1], dense(torch.ones(1, 1, dtype=torch.float64), activation_name="leaky_relu")
    )
    (out,) = convert(spec).model(torch.tensor([[-2.0]], dtype=torch.float64))
    assert out.item() == pytest.approx(-0.02)


# --- graphs ----------------------------------------------------------------------------------


def test_concatenate_of_two_inputs_with_two_outputs():
    torch.manual_seed(0)
    w1, w2, w3, w4 = rand(4, 3), rand(2, 5), rand(2, 6), rand(3, 6)
    spec = {
        "input_dim": [[3], [5]],
        "input_nodes": [1, 2],
        "output_nodes": [4, 5],
        "layers": [
            {**dense(w1, activation_name="relu"), "input_layers": [0], "output_layers": [3]},
            {**dense(w2), "input_layers": [0], "output_layers": [3]},
            {
                "type": "Concatenate",
                "axis": 2,
                "dim_in": [[4], [2]],
                "dim_out": [6],
                "input_layers": [1, 2],
                "output_layers": [4, 5],
            },
            {**dense(w3), "input_layers": [3], "output_layers": [-1]},
            {**dense(w4, activation_name="softmax"), "input_layers": [3], "output_layers": [-1]},
        ],
    }
    converter = convert(spec)
    assert converter.output_dim == [(2,), (3,)]

    def reference(x1, x2):
        h = torch.cat([F.relu(F.linear(x1, w1)), F.linear(x2, w2)], dim=1)
        return F.linear(h, w3), torch.softmax(F.linear(h, w4), dim=1)

    assert_matches(converter, reference)


@pytest.mark.parametrize("axis", [2, -3])
def test_concatenate_axis_counts_from_one_with_the_batch_axis(axis):
    torch.manual_seed(0)
    w1, w2 = rand(2, 2, 3, 3), rand(3, 2, 3, 3)
    spec = {
        "input_dim": [2, 5, 5],
        "input_nodes": [1],
        "output_nodes": [4],
        "layers": [
            {**conv("Conv2D", w1, padding=1), "input_layers": [0], "output_layers": [2, 3]},
            {**conv("Conv2D", w2, padding=1), "input_layers": [1], "output_layers": [3]},
            {"type": "Concatenate", "axis": axis, "input_layers": [1, 2], "output_layers": [4]},
            {**FLATTEN, "input_layers": [3], "output_layers": [-1]},
        ],
    }

    def reference(x):
        h = F.conv2d(x, w1, padding=1)
        return torch.cat([h, F.conv2d(h, w2, padding=1)], dim=1).flatten(1)

    assert_matches(convert(spec), reference)


def test_concatenate_axis_defaults_to_the_last():
    torch.manual_seed(0)
    w = rand(2, 3)
    spec = {
        "input_dim": [3],
        "input_nodes": [1],
        "output_nodes": [3],
        "layers": [
            {**dense(w), "input_layers": [0], "output_layers": [2, 3]},
            {"type": "Activation", "act_name": "tanh", "input_layers": [1], "output_layers": [3]},
            {"type": "Concatenate", "input_layers": [1, 2], "output_layers": [-1]},
        ],
    }
    assert_matches(convert(spec), lambda x: torch.cat([x @ w.T, torch.tanh(x @ w.T)], 1))


def test_add_of_a_residual_connection_through_a_skipping_input_layer():
    torch.manual_seed(0)
    w, b = rand(3, 3), rand(3)
    spec = {
        "input_dim": [3],
        "input_nodes": [1],
        "output_nodes": [4],
        "layers": [
            {"type": "Skipping", "dim_in": [3], "input_layers": [0], "output_layers": [2, 3]},
            {**dense(w, b, activation_name="relu"), "input_layers": [1], "output_layers": [3]},
            {"type": "Add", "dim_in": [[3], [3]], "input_layers": [1, 2], "output_layers": [4]},
            {
                "type": "Activation",
                "act_name": "sigmoid",
                "input_layers": [3],
                "output_layers": [-1],
            },
        ],
    }
    converter = convert(spec)
    assert [node.layer.type_name for node in converter.model.nodes] == [
        "Dense_Layer",
        "Add_Layer",
        "Activation_Layer",
    ]
    assert_matches(converter, lambda x: torch.sigmoid(x + F.relu(F.linear(x, w, b))))


def test_layers_may_be_a_named_list():
    torch.manual_seed(0)
    w = rand(2, 3)
    spec = sequential([3], dense(w), output_dim=[2])
    spec["layers"] = {"dense_1": spec["layers"][0]}
    assert_matches(convert(spec), lambda x: F.linear(x, w))


# --- JSON files built from torch models ------------------------------------------------------


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, stride=1, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(3 * 2 * 2, 4)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(F.relu(self.bn(self.conv(x))))
        return torch.softmax(self.fc(torch.flatten(x, 1)), dim=1)


def small_cnn_spec(model: SmallCNN) -> dict:
    """The innsight spec of :class:`SmallCNN`, weights as nested lists."""
    bn = model.bn
    return sequential(
        [2, 4, 4],
        conv("Conv2D", model.conv.weight.detach(), model.conv.bias.detach(), padding=1),
        {
            "type": "BatchNorm",
            "num_features": 3,
            "eps": bn.eps,
            "gamma": bn.weight.tolist(),
            "beta": bn.bias.tolist(),
            "run_mean": bn.running_mean.tolist(),
            "run_var": bn.running_var.tolist(),
        },
        {"type": "Activation", "act_name": "relu"},
        {"type": "MaxPooling2D", "kernel_size": [2, 2]},
        {"type": "Flatten", "start_dim": 2, "end_dim": -1},
        dense(model.fc.weight.detach(), model.fc.bias.detach(), activation_name="softmax"),
        output_dim=[4],
    )


@pytest.mark.parametrize("as_path", [str, lambda path: path])
def test_json_file_reproduces_the_torch_model(tmp_path, as_path):
    torch.manual_seed(0)
    model = SmallCNN().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1.0, 1.0)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 2.0)
        model.bn.bias.uniform_(-1.0, 1.0)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(small_cnn_spec(model)), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        converter = Converter(as_path(path), dtype="double")
    assert converter.input_dim == [(2, 4, 4)]
    assert_matches(converter, model.double())


def test_spec_names_are_used():
    torch.manual_seed(0)
    spec = sequential(
        [2], dense(rand(3, 2)), input_names=["age", "bmi"], output_names=["a", "b", "c"]
    )
    converter = convert(spec)
    assert converter.input_names == [[["age", "bmi"]]]
    assert converter.output_names == [["a", "b", "c"]]


def test_names_given_to_the_converter_replace_the_specs():
    torch.manual_seed(0)
    spec = sequential([2], dense(rand(3, 2)), input_names=["age", "bmi"])
    converter = Converter(spec, input_names=["u", "v"], output_names=["p", "q", "r"])
    assert converter.input_names == [[["u", "v"]]]
    assert converter.output_names == [["p", "q", "r"]]


# --- innsight's defaults for the wiring, with warnings ---------------------------------------


def test_missing_nodes_and_wiring_get_innsights_defaults_with_warnings():
    torch.manual_seed(0)
    w1, w2 = rand(4, 3), rand(2, 4)
    spec = {
        "input_dim": [3],
        "layers": [dense(w1, activation_name="tanh"), dense(w2)],
    }
    with pytest.warns(UserWarning) as record:
        converter = Converter(spec, dtype="double")
    messages = [str(warning.message) for warning in record]
    assert messages == [
        "The model spec has no 'input_nodes'; assuming layer 1 (innsight's default). Set it to "
        "silence this warning.",
        "The model spec has no 'output_nodes'; assuming layer 2 (innsight's default). Set it to "
        "silence this warning.",
        "Layer(s) 1, 2 of the model spec have no 'input_layers'; assuming each is wired to the "
        "previous layer (innsight's default).",
        "Layer(s) 1, 2 of the model spec have no 'output_layers'; assuming each is wired to the "
        "next layer (innsight's default).",
    ]
    assert_matches(converter, lambda x: F.linear(torch.tanh(F.linear(x, w1)), w2))


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("input_nodes", r"no 'input_nodes'; assuming layer 1"),
        ("output_nodes", r"no 'output_nodes'; assuming layer 2"),
    ],
)
def test_each_missing_node_list_warns(drop, message):
    torch.manual_seed(0)
    spec = sequential([3], dense(rand(4, 3)), dense(rand(2, 4)))
    del spec[drop]
    with pytest.warns(UserWarning, match=message):
        Converter(spec)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("input_layers", r"Layer\(s\) 2 of the model spec have no 'input_layers'; assuming each "),
        ("output_layers", r"Layer\(s\) 2 of the model spec have no 'output_layers'; assuming"),
    ],
)
def test_each_missing_wiring_key_warns(drop, message):
    torch.manual_seed(0)
    spec = sequential([3], dense(rand(4, 3)), dense(rand(2, 4)))
    del spec["layers"][1][drop]
    with pytest.warns(UserWarning, match=message):
        Converter(spec)


# --- errors ----------------------------------------------------------------------------------

W = torch.ones(4, 3, dtype=torch.float64)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"layers": [dense(W)]},
            r"The model spec has no 'input_dim': a spec needs 'input_dim' and 'layers'",
            id="no-input_dim",
        ),
        pytest.param(
            {},
            r"The model spec has no 'input_dim' and no 'layers'",
            id="empty",
        ),
        pytest.param(
            {"input_dim": [3], "layers": []},
            r"'layers' must be a non-empty list of layer dicts",
            id="no-layers",
        ),
        pytest.param(
            {"input_dim": [3], "layers": [5]},
            r"'layers' must be a non-empty list of layer dicts",
            id="layer-not-a-dict",
        ),
        pytest.param(
            sequential([1, 2, 2, 2], FLATTEN),
            r"input layer 1 of the model spec has shape \(batch, 1, 2, 2, 2\); only tabular",
            id="input-with-4-axes",
        ),
        pytest.param(
            sequential([3], {**dense(W), "type": "Dense2"}),
            r"Layer 1 has type 'Dense2'; supported types: Activation, Add, AveragePooling1D, "
            r"AveragePooling2D, BatchNorm, Concatenate, Conv1D, Conv2D, Dense, Flatten, "
            r"GlobalPooling, MaxPooling1D, MaxPooling2D, Padding, Skipping\.",
            id="unknown-type",
        ),
        pytest.param(
            sequential([3], {"weight": W.tolist()}),
            r"Layer 1 has type None; supported types",
            id="no-type",
        ),
        pytest.param(
            sequential([3], dense(torch.ones(3))),
            r"Layer 1 \(Dense\): 'weight' must have 2 axes; got shape \(3,\)\.",
            id="weight-axes",
        ),
        pytest.param(
            sequential([3], {"type": "Dense", "weight": [["a", "b", "c"]]}),
            r"Layer 1 \(Dense\): 'weight' must be numeric \(nested lists or an array\)",
            id="weight-not-numeric",
        ),
        pytest.param(
            sequential([2, 5, 5], conv("Conv2D", torch.ones(3, 2, 2)), FLATTEN),
            r"Layer 1 \(Conv2D\): 'weight' must have 4 axes; got shape \(3, 2, 2\)\.",
            id="conv-weight-axes",
        ),
        pytest.param(
            sequential([3], dense(W, torch.ones(1))),
            r"Layer 1 \(Dense\): 'bias' must have 4 entries; got 1\.",
            id="bias-length",
        ),
        pytest.param(
            sequential([3], dense(torch.ones(4, 5))),
            r"layer 1, Dense_Layer \(layer 1 \(Dense\)\), failed on inputs of shape \(1, 3\): "
            r".*\. Weights are laid out as in torch: 'Dense' \(out_features, in_features\), "
            r"'Conv1D' \(out_channels, in_channels, kernel_length\)",
            id="weight-does-not-fit-the-input",
        ),
        pytest.param(
            sequential([2, 5, 5], conv("Conv2D", torch.ones(3, 4, 2, 2)), FLATTEN),
            r"layer 1, Conv2D_Layer \(layer 1 \(Conv2D\)\), failed on inputs of shape "
            r"\(1, 2, 5, 5\): .*'Conv2D' \(out_channels, in_channels, kernel_height, "
            r"kernel_width\); check this layer's 'weight', its 'input_layers' and the spec's "
            r"'input_dim' \(channels first\)\.",
            id="conv-weight-does-not-fit-the-input",
        ),
        pytest.param(
            sequential([3], {"type": "Dense"}),
            r"Layer 1 \(Dense\): the key 'weight' is missing\.",
            id="no-weight",
        ),
        pytest.param(
            sequential([3], dense(W), {"type": "Activation"}),
            r"Layer 2 \(Activation\): the key 'act_name' is missing\.",
            id="no-act_name",
        ),
        pytest.param(
            sequential([2, 6], {"type": "MaxPooling1D"}, FLATTEN),
            r"Layer 1 \(MaxPooling1D\): the key 'kernel_size' is missing\.",
            id="no-kernel_size",
        ),
        pytest.param(
            sequential([3], {"type": "BatchNorm", "run_mean": [0.0, 0.0, 0.0]}),
            r"Layer 1 \(BatchNorm\): the key 'run_var' is missing\.",
            id="no-run_var",
        ),
        pytest.param(
            sequential([2, 4], {"type": "Padding"}, FLATTEN),
            r"Layer 1 \(Padding\): the key 'padding' is missing\.",
            id="no-padding",
        ),
        pytest.param(
            sequential(
                [3],
                {"type": "BatchNorm", "num_features": 3, "run_mean": [0, 0], "run_var": [1, 1, 1]},
            ),
            r"Layer 1 \(BatchNorm\): 'run_mean' must have 3 entries; got 2\.",
            id="batchnorm-num_features",
        ),
        pytest.param(
            sequential([3], dense(W, activation_name="swish")),
            r"Layer 1 \(Dense\): Unknown activation 'swish'\. Supported activations: elu, gelu, "
            r"hardsigmoid, hardswish, hardtanh, leaky_relu, linear, log_softmax, logistic, mish, "
            r"relu, relu6, sigmoid, silu, softmax, softplus, tanh\.",
            id="unknown-activation",
        ),
        pytest.param(
            sequential(
                [2, 5, 5], conv("Conv2D", torch.ones(3, 2, 2, 2), padding=[1, 1, 1]), FLATTEN
            ),
            r"Layer 1 \(Conv2D\): 'padding' must have length 1 or 2 or 4; got 3\.",
            id="conv2d-padding-length",
        ),
        pytest.param(
            sequential([2, 5], conv("Conv1D", torch.ones(3, 2, 2), padding=[1, 1, 1, 1]), FLATTEN),
            r"Layer 1 \(Conv1D\): 'padding' must have length 1 or 2; got 4\.",
            id="conv1d-padding-length",
        ),
        pytest.param(
            sequential([2, 5], conv("Conv1D", torch.ones(3, 2, 2), stride="a"), FLATTEN),
            r"Layer 1 \(Conv1D\): 'stride' must be an integer or a vector of integers; got 'a'\.",
            id="stride-not-an-integer",
        ),
        pytest.param(
            sequential([2, 5], conv("Conv1D", torch.ones(3, 2, 2), dilation=1.5), FLATTEN),
            r"'dilation' must be an integer or a vector of integers; got 1\.5\.",
            id="dilation-not-an-integer",
        ),
        pytest.param(
            sequential([2, 6, 6], {"type": "MaxPooling2D", "kernel_size": [2, 2, 2]}, FLATTEN),
            r"Layer 1 \(MaxPooling2D\): 'kernel_size' must have length 1 or 2; got 3\.",
            id="kernel_size-length",
        ),
        pytest.param(
            sequential([2, 5], {"type": "GlobalPooling", "method": "min"}),
            r"Layer 1 \(GlobalPooling\): 'method' must be 'average' or 'max'; got 'min'\.",
            id="globalpooling-method",
        ),
        pytest.param(
            sequential([2, 5], {"type": "Padding", "padding": [1, 1], "mode": "zeros"}, FLATTEN),
            r"Layer 1 \(Padding\): 'mode' must be one of 'constant', 'reflect', 'replicate', "
            r"'circular'; got 'zeros'\.",
            id="padding-mode",
        ),
        pytest.param(
            sequential([2, 5], {"type": "Padding", "padding": [1, 1, 1]}, FLATTEN),
            r"Layer 1 \(Padding\): 'padding' must have length 2 or 4; got 3\.",
            id="padding-length",
        ),
        pytest.param(
            sequential([2, 5], {"type": "Flatten", "start_dim": 1}),
            r"Layer 1 \(Flatten\): 'start_dim' is 1, but axes count from 1 with the batch axis "
            r"first, and the batch axis cannot be used: give 2 for the first axis after the "
            r"batch, or -1 for the last\.",
            id="flatten-batch-axis",
        ),
        pytest.param(
            sequential([2, 5], {"type": "Flatten", "end_dim": "last"}),
            r"Layer 1 \(Flatten\): 'end_dim' must be an integer axis; got 'last'\.",
            id="flatten-axis-not-an-integer",
        ),
        pytest.param(
            sequential([2, 5], {"type": "Conv1D", "weight": torch.ones(3, 2, 2).tolist()}),
            r"Output layer 1 computes shape \(batch, 3, 4\); outputs must have shape "
            r"\(batch, n\) as in innsight: end it with a 'Flatten' or 'GlobalPooling' layer\.",
            id="output-not-flat",
        ),
        pytest.param(
            sequential([3], {"type": "Skipping"}),
            r"Output layer\(s\) \[1\] only pass the model input through \('Skipping' layers\)",
            id="output-skips-the-input",
        ),
        pytest.param(
            sequential([3], dense(W), output_nodes=[3]),
            r"'output_nodes' names layer 3, but layers are numbered 1 to 1\.",
            id="output_nodes-out-of-range",
        ),
        pytest.param(
            sequential([3], dense(W), input_nodes="1"),
            r"'input_nodes' must be a layer number or a list of them; got '1'\.",
            id="input_nodes-not-numbers",
        ),
        pytest.param(
            sequential([3], dense(W), input_nodes=[1, 1]),
            r"'input_nodes' lists 2 layers but 'input_dim' gives 1 input shapes; give one input "
            r"layer per input shape\.",
            id="input_nodes-count",
        ),
        pytest.param(
            {
                "input_dim": [3],
                "input_nodes": [1],
                "output_nodes": [1],
                "layers": [{**dense(W), "input_layers": [5], "output_layers": [-1]}],
            },
            r"'input_layers' of layer 1 names layer 5, but layers are numbered 1 to 1 "
            r"\(0 = model input\)\.",
            id="input_layers-out-of-range",
        ),
        pytest.param(
            {
                "input_dim": [3],
                "input_nodes": [1],
                "output_nodes": [2],
                "layers": [
                    {**dense(W), "input_layers": [0], "output_layers": [2]},
                    {**dense(torch.ones(2, 3)), "input_layers": [0], "output_layers": [-1]},
                ],
            },
            r"Layer 1 lists 2 in 'output_layers', but layer 2 does not read layer 1 "
            r"\('input_layers'\)\.",
            id="output_layers-inconsistent",
        ),
        pytest.param(
            {
                "input_dim": [3],
                "input_nodes": [1],
                "output_nodes": [3],
                "layers": [
                    {**dense(W), "input_layers": [0], "output_layers": [3]},
                    {**dense(W), "input_layers": [0], "output_layers": [3]},
                    {"type": "Add", "input_layers": [1, 2], "output_layers": [-1]},
                ],
            },
            r"Layer 2 reads the model input \(input_layers 0\) but is not in 'input_nodes'\.",
            id="reads-the-input-but-no-input-node",
        ),
        pytest.param(
            {
                "input_dim": [3],
                "input_nodes": [1],
                "output_nodes": [3],
                "layers": [
                    {**dense(W), "input_layers": [0], "output_layers": [2]},
                    {"type": "Add", "input_layers": [1, 3], "output_layers": [3]},
                    {"type": "Activation", "act_name": "relu", "input_layers": [2]},
                ],
            },
            r"The layers \[2, 3\] of the model spec form a cycle through their 'input_layers'\.",
            id="cycle",
        ),
        pytest.param(
            sequential([3], dense(W, dim_in=[5])),
            r"Layer 1 \(Dense\) has dim_in \(5\), but the model computes \(3\) there: check its "
            r"weights and wiring\.",
            id="dim_in",
        ),
        pytest.param(
            sequential([3], dense(W, dim_out=[5])),
            r"Layer 1 \(Dense\) has dim_out \(5\), but the model computes \(4\) there",
            id="dim_out",
        ),
        pytest.param(
            sequential([3], dense(W), {"type": "Skipping", "dim_in": [3]}, dense(torch.ones(2, 4))),
            r"Layer 2 \(Skipping\) has dim_in \(3\), but the model computes \(4\) there",
            id="skipping-dim_in",
        ),
        pytest.param(
            sequential([3], dense(W), output_dim=[5]),
            r"'output_dim' is \(5\), but the model computes \(4\)\.",
            id="output_dim",
        ),
    ],
)
def test_malformed_specs_are_explained(spec, message):
    with pytest.raises(ValueError, match=message), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing wiring keys in some of the specs
        Converter(spec)


@pytest.mark.parametrize("axis", [1, 0, "2"])
def test_concatenate_rejects_the_batch_axis_and_non_integers(axis):
    spec = {
        "input_dim": [3],
        "input_nodes": [1],
        "output_nodes": [3],
        "layers": [
            {**dense(W), "input_layers": [0], "output_layers": [2, 3]},
            {"type": "Activation", "act_name": "tanh", "input_layers": [1], "output_layers": [3]},
            {"type": "Concatenate", "axis": axis, "input_layers": [1, 2], "output_layers": [-1]},
        ],
    }
    with pytest.raises(ValueError, match=r"Layer 3 \(Concatenate\): 'axis' "):
        Converter(spec)


def test_matching_dims_pass_the_checks():
    spec = sequential(
        [3],
        dense(W, dim_in=[3], dim_out=[4]),
        {"type": "Skipping", "dim_in": [4], "dim_out": 4},
        dense(torch.ones(2, 4), dim_in=4, dim_out=[2]),
        output_dim=[[2]],
    )
    assert convert(spec).output_dim == [(2,)]
