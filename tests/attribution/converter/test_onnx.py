"""ONNX models written by ``torch.onnx.export``: conversion, forward equality, bad files."""

from __future__ import annotations

import io
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnx.reference")

import attribution.converter.onnx_format as onnx_format  # noqa: E402  (registers .onnx)
from attribution import LRP, Converter, Gradient, UnsupportedLayerError  # noqa: E402
from attribution.converter.loading import load_model  # noqa: E402
from attribution.methods.catalogue import applicable  # noqa: E402

BATCH = 5


class TwoBranch(nn.Module):
    """A residual ``+`` on one branch, ``torch.cat`` of both."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(6, 6), nn.Linear(6, 4), nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = torch.relu(self.fc1(x)) + x
        return self.fc3(torch.cat([residual, torch.tanh(self.fc2(x))], dim=1))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(-1))


def _cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=(1, 0)), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 3),
    )  # fmt: skip


def _signal() -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2), nn.BatchNorm1d(4),
        nn.Conv1d(4, 4, 3, stride=2), nn.LeakyReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
        nn.Linear(4, 2), nn.Sigmoid(),
    )  # fmt: skip


MODELS = {"mlp": (_mlp, (4,)), "cnn": (_cnn, (3, 8, 10)), "signal": (_signal, (2, 16)),
          "two_branch": (TwoBranch, (6,))}  # fmt: skip


def _export(model: nn.Module, x: torch.Tensor) -> bytes:
    file = io.BytesIO()
    with warnings.catch_warnings():  # torch deprecates this (TorchScript-based) exporter
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, x, file, dynamo=False, input_names=["x"], output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )  # fmt: skip
    return file.getvalue()


@pytest.fixture(params=sorted(MODELS))
def exported(request, tmp_path):
    """(torch model, input, path of its .onnx file, the file's bytes)."""
    torch.manual_seed(0)
    build, dim = MODELS[request.param]
    model = build().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-1.0, 1.0)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.5, 0.5)
    x = torch.randn(BATCH, *dim)
    data = _export(model, x)
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    return model, x, path, data


def test_forward_equals_onnx_reference_and_torch(exported):
    model, x, path, data = exported
    converter = Converter(path)
    assert converter.input_dim == [tuple(x.shape[1:])]
    out = converter.model(x)[0].detach()
    reference = onnx.reference.ReferenceEvaluator(onnx.load_model_from_string(data))
    expected = reference.run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)
    torch.testing.assert_close(out, model(x).detach(), atol=1e-5, rtol=1e-5)


def test_gradient_equals_autograd_and_lrp_runs(exported):
    model, x, path, _ = exported
    converter = Converter(path)
    n_out = converter.output_dim[0][0]
    result = Gradient(converter, x, output_idx=list(range(n_out)), ignore_last_act=False)
    grads = result.get_result("torch")
    inputs = x.clone().requires_grad_(True)
    out = model(inputs)
    expected = torch.stack(
        [torch.autograd.grad(out[:, k].sum(), inputs, retain_graph=True)[0] for k in range(n_out)],
        dim=-1,
    )
    torch.testing.assert_close(grads, expected, atol=1e-5, rtol=1e-4)
    relevance = LRP(converter, x, rule_name="epsilon").get_result("torch")
    assert relevance.shape == (*x.shape, min(10, n_out))
    assert torch.isfinite(relevance).all() and relevance.abs().sum() > 0


def test_load_model_of_bytes_gives_every_method(exported):
    model, x, _, data = exported
    loaded = load_model(data, "m.onnx")
    assert loaded.methods == applicable(converted=True, differentiable=True)
    assert loaded.format == "ONNX model" and loaded.input_dim == [tuple(x.shape[1:])]
    out = loaded.converter.model(x)[0].detach()
    torch.testing.assert_close(out, model(x).detach(), atol=1e-5, rtol=1e-5)


def test_matmul_with_bias_and_fixed_batch_convert():
    """A bare ``x @ W + b`` exports as MatMul and Add; a fixed batch of 1 is accepted."""

    class MatMul(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight, self.bias = nn.Parameter(torch.randn(4, 3)), nn.Parameter(torch.randn(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(x @ self.weight + self.bias, dim=-1)

    model, x = MatMul().eval(), torch.randn(1, 4)
    file = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, x, file, dynamo=False)
    ops = [node.op_type for node in onnx.load_model_from_string(file.getvalue()).graph.node]
    assert ops == ["MatMul", "Add", "Softmax"]
    converter = Converter(onnx_format.read_onnx(file.getvalue(), "m.onnx"))
    batch = torch.randn(BATCH, 4)
    torch.testing.assert_close(converter.model(batch)[0].detach(), model(batch).detach())


class ViewFlat(nn.Module):
    """``x.view(x.size(0), -1)``: the exporter computes the shape in the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 2, 3), nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        return self.fc(h.view(h.size(0), -1))


class ReshapeFlat(ViewFlat):
    """``x.reshape(-1, n)``: the shape is a constant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).reshape(-1, 32))


@pytest.mark.parametrize("build", [ViewFlat, ReshapeFlat])
def test_reshape_to_flat_converts(build):
    model, x = build().eval(), torch.randn(BATCH, 1, 6, 6)
    data = _export(model, x)
    assert "Reshape" in [node.op_type for node in onnx.load_model_from_string(data).graph.node]
    converter = Converter(onnx_format.read_onnx(data, "m.onnx"))
    torch.testing.assert_close(converter.model(x)[0].detach(), model(x).detach())


def test_two_inputs_convert():
    """Each graph input is an input layer; a Concat may read both directly."""

    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(5, 2)

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.cat([a, b], dim=1))

    model, a, b = TwoInputs().eval(), torch.randn(BATCH, 3), torch.randn(BATCH, 2)
    file = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (a, b), file, dynamo=False, input_names=["a", "b"],
            dynamic_axes={"a": {0: "batch"}, "b": {0: "batch"}},
        )  # fmt: skip
    converter = Converter(onnx_format.read_onnx(file.getvalue(), "m.onnx"))
    assert converter.input_dim == [(3,), (2,)]
    torch.testing.assert_close(converter.model(a, b)[0].detach(), model(a, b).detach())


def test_initializers_shared_through_identity_convert():
    """Equal weights (untrained BatchNorm) are stored once and passed on by Identity nodes."""
    model, x = _signal().eval(), torch.randn(BATCH, 2, 16)
    data = _export(model, x)
    assert "Identity" in [node.op_type for node in onnx.load_model_from_string(data).graph.node]
    converter = Converter(onnx_format.read_onnx(data, "m.onnx"))
    torch.testing.assert_close(converter.model(x)[0].detach(), model(x).detach())


class Squaring(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.fc(x)


@pytest.mark.parametrize(
    ("model", "op", "message"),
    [
        (Squaring(), "Mul", r"the operator Mul has no innsight layer"),
        (nn.Sequential(nn.Linear(3, 2), nn.LeakyReLU(0.2)), "LeakyRelu", r"alpha=0\.2 differs"),
        (nn.Sequential(nn.Conv1d(1, 2, 3, groups=1), nn.MaxPool1d(2, padding=1), nn.Flatten()),
         "MaxPool", "only 1D and 2D pooling without padding"),
    ],
)  # fmt: skip
def test_unsupported_operator_is_named(model, op, message):
    x = torch.randn(2, 3) if op != "MaxPool" else torch.randn(2, 1, 8)
    with pytest.raises(UnsupportedLayerError, match=rf"\({op}\) of m\.onnx: {message}") as info:
        load_model(_export(model.eval(), x), "m.onnx")
    assert info.value.type_name == op


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "not an ONNX"),
        (b"", "not a valid ONNX model"),
    ],
)
def test_garbage_is_explained(data, message):
    with pytest.raises(ValueError, match=message):
        load_model(data, "m.onnx")


def test_truncated_file_is_explained():
    data = _export(_mlp().eval(), torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"m\.onnx is not .*ONNX model"):
        load_model(data[: len(data) // 2], "m.onnx")


def test_external_data_is_refused(tmp_path):
    model = onnx.load_model_from_string(_export(_mlp().eval(), torch.randn(2, 4)))
    path = tmp_path / "big.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, size_threshold=0)
    with pytest.raises(ValueError, match="external data.*save_as_external_data=False"):
        Converter(path)


def test_size_is_bounded(monkeypatch):
    data = _export(_mlp().eval(), torch.randn(2, 4))
    monkeypatch.setattr(onnx_format, "MAX_ONNX_BYTES", len(data) - 1)
    with pytest.raises(ValueError, match=f"has {len(data)} bytes, more than"):
        load_model(data, "m.onnx")


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'innsight-python\[onnx\]'"):
        onnx_format.read_onnx(b"", "m.onnx")
