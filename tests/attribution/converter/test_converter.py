"""The public Converter: arguments, fields, names, precision and the printed summary."""

from __future__ import annotations

import json

import pytest
import torch
from torch import Tensor, nn

from attribution import Converter


class TwoInTwoOut(nn.Module):
    """A tabular and an image input; outputs of 2 and 3 nodes."""

    def __init__(self) -> None:
        super().__init__()
        self.tab = nn.Linear(3, 2)
        self.img = nn.Conv2d(2, 1, 3, padding=1)
        self.out1 = nn.Linear(2 + 16, 2)
        self.out2 = nn.Linear(2, 3)

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        h = torch.relu(self.tab(x1))
        return self.out1(torch.cat([h, self.img(x2).flatten(1)], 1)), self.out2(h)


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_fields_of_a_tabular_model():
    converter = Converter(mlp())
    assert converter.input_dim == [(3,)]
    assert converter.output_dim == [(2,)]
    assert converter.input_names == [[["X1", "X2", "X3"]]]
    assert converter.output_names == [["Y1", "Y2"]]
    assert converter.dtype == "float"


@pytest.mark.parametrize(
    ("model", "input_dim", "names"),
    [
        pytest.param(
            nn.Sequential(nn.Conv1d(2, 1, 2), nn.Flatten()),
            (2, 3),
            [[["C1", "C2"], ["L1", "L2", "L3"]]],
            id="signal",
        ),
        pytest.param(
            nn.Sequential(nn.Conv2d(3, 1, 2), nn.Flatten()),
            (3, 2, 4),
            [[["C1", "C2", "C3"], ["H1", "H2"], ["W1", "W2", "W3", "W4"]]],
            id="image",
        ),
    ],
)
def test_default_input_names_follow_innsight(model, input_dim, names):
    assert Converter(model, input_dim=input_dim).input_names == names


def test_fields_of_a_two_input_two_output_model():
    converter = Converter(TwoInTwoOut(), input_dim=[(3,), (2, 2, 8)])
    assert converter.input_dim == [(3,), (2, 2, 8)]
    assert converter.output_dim == [(2,), (3,)]
    assert converter.input_names[0] == [["X1", "X2", "X3"]]
    assert converter.input_names[1][1] == ["H1", "H2"]
    assert converter.output_names == [["Y1", "Y2"], ["Y1", "Y2", "Y3"]]


def test_user_names_per_layer_and_axis():
    converter = Converter(
        TwoInTwoOut(),
        input_dim=[(3,), (2, 2, 8)],
        input_names=[["a", "b", "c"], [["red", "green"], None, [f"w{i}" for i in range(8)]]],
        output_names=[["yes", "no"], None],
    )
    assert converter.input_names[0] == [["a", "b", "c"]]
    assert converter.input_names[1] == [["red", "green"], ["H1", "H2"], [f"w{i}" for i in range(8)]]
    assert converter.output_names == [["yes", "no"], ["Y1", "Y2", "Y3"]]


def test_names_are_turned_into_strings():
    converter = Converter(mlp(), input_names=[1, 2, 3], output_names=("low", 2))
    assert converter.input_names == [[["1", "2", "3"]]]
    assert converter.output_names == [["low", "2"]]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param(
            {"input_names": ["a", "b"]},
            ValueError,
            r"input_names for Feature of input layer 1 has 2 names; it needs 3\.",
            id="too-few-input-names",
        ),
        pytest.param(
            {"input_names": ["a", "b", "a"]},
            ValueError,
            r"input_names for Feature of input layer 1 repeats a; names must be unique\.",
            id="duplicate-input-names",
        ),
        pytest.param(
            {"output_names": ["a", "b", "c"]},
            ValueError,
            r"output_names for output layer 1 has 3 names; it needs 2\.",
            id="too-many-output-names",
        ),
        pytest.param(
            {"output_names": [["a", "b"], ["c"]]},
            ValueError,
            r"output_names has names for 2 output layers; the model has 1\.",
            id="output-layers",
        ),
        pytest.param(
            {"output_names": "Y"},
            TypeError,
            r"output_names must be a list of names; got str\.",
            id="output-names-not-a-list",
        ),
        pytest.param(
            {"dtype": "half"},
            ValueError,
            r"dtype must be 'float' or 'double'; got 'half'\.",
            id="dtype",
        ),
        pytest.param(
            {"input_dim": (3, -1)},
            ValueError,
            r"input_dim must be the shape of one instance without the batch axis",
            id="input_dim",
        ),
    ],
)
def test_bad_arguments_are_explained(kwargs, error, message):
    with pytest.raises(error, match=message):
        Converter(mlp(), **kwargs)


def test_model_must_be_a_module_a_spec_or_a_path():
    with pytest.raises(
        TypeError,
        match=r"model must be a torch\.nn\.Module, a dict in innsight's named-list format, or "
        r"the path of a model file; got int\.",
    ):
        Converter(5)


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No model file at .*missing\.json\."):
        Converter(tmp_path / "missing.json")


def test_unsupported_model_file(tmp_path):
    path = tmp_path / "model.xyz"
    path.write_bytes(b"\x89HDF")
    with pytest.raises(
        ValueError,
        match=r"Cannot read model\.xyz: supported model files are .*\.json \(innsight's JSON "
        r"spec\), \.pt2 \(torch\.export program\), \.pt/\.ts \(TorchScript\).*\. Save the model "
        r"in one of them, or load it in Python and pass the module\.",
    ):
        Converter(str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{", r"model\.json is not valid JSON: ", id="invalid"),
        pytest.param(
            "[1, 2]", r"model\.json must hold a JSON object \(the model spec\)\.", id="list"
        ),
    ],
)
def test_malformed_json_file(tmp_path, text, message):
    path = tmp_path / "model.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        Converter(path)


def test_input_dim_must_match_a_specs():
    spec = {
        "input_dim": [3],
        "input_nodes": [1],
        "output_nodes": [1],
        "layers": [
            {"type": "Dense", "weight": [[1.0, 2.0, 3.0]], "input_layers": 0, "output_layers": -1}
        ],
    }
    assert Converter(spec, input_dim=3).input_dim == [(3,)]
    with pytest.raises(
        ValueError, match=r"input_dim \[\(4,\)\] does not match the spec's input_dim \[\(3,\)\]\."
    ):
        Converter(spec, input_dim=(4,))


# --- precision -------------------------------------------------------------------------------


def test_dtype_sets_the_precision_of_the_model():
    assert Converter(mlp()).model.dtype == torch.float32
    converter = Converter(mlp(), dtype="double")
    assert converter.model.dtype == torch.float64
    assert all(buffer.dtype == torch.float64 for buffer in converter.model.buffers())


def test_model_as_double_is_a_float64_copy():
    model = mlp()
    converter = Converter(model)
    double = converter.model_as("double")
    assert double is not converter.model
    assert double.dtype == torch.float64
    assert all(buffer.dtype == torch.float64 for buffer in double.buffers())
    assert converter.model.dtype == torch.float32
    assert all(buffer.dtype == torch.float32 for buffer in converter.model.buffers())
    assert converter.model_as("double") is double
    assert converter.model_as("float") is converter.model
    x = torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(double(x)[0], model.double()(x), rtol=0, atol=1e-12)


def test_model_as_rejects_unknown_dtypes():
    with pytest.raises(ValueError, match=r"dtype must be 'float' or 'double'; got 'int'\."):
        Converter(mlp()).model_as("int")


def test_a_graph_without_weights_still_has_the_requested_precision():
    model = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Softmax(dim=1))
    converter = Converter(model, input_dim=(3, 4))
    assert list(converter.model.buffers()) != []
    assert converter.model.dtype == torch.float32
    assert converter.model_as("double").dtype == torch.float64


# --- summary ---------------------------------------------------------------------------------


def test_summary_of_a_tabular_model():
    converter = Converter(mlp(), input_names=["age", "bmi", "bp"])
    assert repr(converter).splitlines() == [
        "── Converter " + "─" * 50,
        "Fields:",
        "  • input_dim: (*, 3)",
        "  • output_dim: (*, 2)",
        "  • input_names:",
        "      ─ Feature (3): age, bmi, bp",
        "  • output_names:",
        "      ─ Output node/Class (2): Y1, Y2",
        "  • model (class ConvertedModel):",
        "      1. Dense_Layer (relu): input_dim: (*, 3), output_dim: (*, 4)",
        "      2. Dense_Layer: input_dim: (*, 4), output_dim: (*, 2)",
        "─" * 63,
    ]


def test_summary_of_a_two_input_two_output_model(capsys):
    converter = Converter(TwoInTwoOut(), input_dim=[(3,), (2, 2, 8)])
    print(converter)
    lines = capsys.readouterr().out.splitlines()
    assert "  • input_dim: (*, 3), (*, 2, 2, 8)" in lines
    assert "  • output_dim: (*, 2), (*, 3)" in lines
    assert "    Input layer 1:" in lines
    assert "        ─ Feature (3): X1, X2, X3" in lines
    assert "    Input layer 2:" in lines
    assert "        ─ Channels (2): C1, C2" in lines
    assert "        ─ Image height (2): H1, H2" in lines
    assert "        ─ Image width (8): W1, W2, W3, W4, W5, W6, W7, W8" in lines
    assert "      ─ Output layer 1: Output node/Class (2): Y1, Y2" in lines
    assert "      ─ Output layer 2: Output node/Class (3): Y1, Y2, Y3" in lines
    assert "      4. Concatenate_Layer: input_dim: (*, 2), (*, 16), output_dim: (*, 18)" in lines
    numbered = [
        line.split(".")[0].strip() for line in lines if line.startswith("      ") and ". " in line
    ]
    assert numbered == ["1", "2", "3", "4", "5", "6"]


def test_summary_shortens_long_name_lists():
    converter = Converter(nn.Linear(100, 2))
    (line,) = [line for line in repr(converter).splitlines() if "Feature" in line]
    assert line.startswith("      ─ Feature (100): X1, X2, X3,")
    assert line.endswith(", …")
    assert "X100" not in line
    assert len(line) <= 6 + len("─ Feature (100): ") + 72


def test_summary_of_a_json_spec(tmp_path):
    spec = {
        "input_dim": [2, 6],
        "input_nodes": [1],
        "output_nodes": [2],
        "layers": [
            {"type": "AveragePooling1D", "kernel_size": 2, "input_layers": 0, "output_layers": 2},
            {"type": "Flatten", "input_layers": 1, "output_layers": -1},
        ],
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    text = repr(Converter(path))
    assert "      ─ Channels (2): C1, C2" in text
    assert "      ─ Signal length (6): L1, L2, L3, L4, L5, L6" in text
    assert "      1. AvgPool1D_Layer: input_dim: (*, 2, 6), output_dim: (*, 2, 3)" in text
    assert "      2. Flatten_Layer: input_dim: (*, 2, 3), output_dim: (*, 6)" in text
