"""Arguments every gradient method shares: data, layout, dtype, output selection, batching."""

import numpy as np
import pandas as pd
import pytest
import torch

from attribution import (
    LRP,
    Converter,
    ExpectedGradient,
    Gradient,
    IntegratedGradient,
    SmoothGrad,
    torch_grad,
)
from attribution.converter.graph import ConvertedModel

METHODS = [Gradient, SmoothGrad, IntegratedGradient, ExpectedGradient]


@pytest.fixture
def mlp_converter(mlp_model):
    return Converter(mlp_model, input_names=list("abcde"), output_names=["p", "q", "r", "s"])


@pytest.fixture
def cnn_converter(cnn_model):
    return Converter(cnn_model, input_dim=(3, 8, 8))


def test_numpy_pandas_torch_and_nested_lists_give_the_same_result(mlp_converter):
    x = np.random.default_rng(0).normal(size=(4, 5))
    expected = Gradient(mlp_converter, torch.from_numpy(x)).get_result()
    frame = pd.DataFrame(x, columns=list("abcde"))
    for data in (x, frame, x.tolist(), [x]):
        np.testing.assert_allclose(Gradient(mlp_converter, data).get_result(), expected)


def test_a_single_instance_gets_a_batch_axis(mlp_converter):
    x = np.arange(5.0)
    assert Gradient(mlp_converter, x).get_result().shape == (1, 5, 4)


def test_channels_last_data_gives_channels_last_results(cnn_converter):
    x = torch.randn(3, 3, 8, 8)
    first = Gradient(cnn_converter, x, output_idx=[1, 4]).get_result("torch")
    last = Gradient(cnn_converter, x.permute(0, 2, 3, 1), channels_first=False, output_idx=[1, 4])
    assert last.get_result().shape == (3, 8, 8, 3, 2)
    torch.testing.assert_close(last.get_result("torch"), first.permute(0, 2, 3, 1, 4))


def test_wrong_layout_names_channels_first(cnn_converter):
    with pytest.raises(ValueError, match=r"\(batch, 3, 8, 8\).*pass channels_first=False"):
        Gradient(cnn_converter, torch.randn(2, 8, 8, 3))
    with pytest.raises(ValueError, match="has shape \\(2, 4\\), but the model expects"):
        Gradient(Converter(torch.nn.Linear(5, 2)), torch.randn(2, 4))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("dtype", "expected"), [("float", torch.float32), ("double", torch.float64)]
)
def test_dtype_sets_the_precision(mlp_converter, method, dtype, expected):
    res = (
        method(mlp_converter, torch.randn(3, 5), dtype=dtype, n=2)
        if method is not Gradient
        else method(mlp_converter, torch.randn(3, 5), dtype=dtype)
    )
    assert res.get_result("torch").dtype == expected
    assert res.preds[0].dtype == expected
    assert mlp_converter.model.dtype == torch.float32  # the converter keeps its precision


def test_double_precision_is_more_exact(mlp_model, jacobian):
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    expected = jacobian(mlp_model[:-1](x), x, range(4))
    conv = Converter(mlp_model)
    error = {
        dtype: (Gradient(conv, x, dtype=dtype).get_result("torch").double() - expected).abs().max()
        for dtype in ("float", "double")
    }
    assert error["double"] < 1e-14 < 1e-9 < error["float"] < 1e-5


def test_default_output_idx_is_the_first_ten_nodes_of_the_first_layer(cnn_converter):
    res = Gradient(cnn_converter, torch.randn(2, 3, 8, 8))
    assert res.output_idx == [list(range(10))]
    assert res.get_result().shape == (2, 3, 8, 8, 10)


def test_output_label_selects_like_output_idx(mlp_converter):
    x = torch.randn(3, 5)
    by_label = Gradient(mlp_converter, x, output_label=["s", "q"])
    assert by_label.output_idx == [[3, 1]]
    np.testing.assert_array_equal(
        by_label.get_result(), Gradient(mlp_converter, x, output_idx=[3, 1]).get_result()
    )
    assert Gradient(mlp_converter, x, output_idx=3, output_label="s").output_idx == [[3]]


def test_output_selection_per_output_layer(two_model):
    conv = Converter(two_model, input_dim=[(2, 6, 6), (4,)])
    data = [torch.randn(2, 2, 6, 6), torch.randn(2, 4)]
    res = Gradient(conv, data, output_idx=[None, [1]])
    assert res.result[0] == [None, None]
    assert res.get_result()["Output_2"]["Input_2"].shape == (2, 4, 1)
    assert "Output_1" not in res.get_result()
    res = Gradient(conv, data, output_label=[["Y3"], ["Y1", "Y2"]])
    assert res.output_idx == [[2], [0, 1]]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"output_idx": [4]},
            ValueError,
            r"output_idx 4 is out of range: output layer 1 has 4 outputs \(0-based, 0–3\)",
        ),
        ({"output_idx": [-1]}, ValueError, "output_idx -1 is out of range"),
        ({"output_idx": [1.5]}, TypeError, "output_idx entries must be integers; got 1.5"),
        ({"output_idx": [0, 0]}, ValueError, "repeats an index"),
        (
            {"output_idx": [[0], [1]]},
            ValueError,
            "2 entries, one per output layer, but the model has 1",
        ),
        ({"output_idx": [[0], 1]}, TypeError, "or a list with one list"),
        ({"output_idx": [None]}, ValueError, "No output node is selected"),
        (
            {"output_label": ["zz"]},
            ValueError,
            "'zz' is not a label of output layer 1; its labels are p, q, r, s",
        ),
        ({"output_idx": [0], "output_label": ["q"]}, ValueError, "select different"),
        ({"dtype": "half"}, ValueError, "dtype must be 'float' or 'double'; got 'half'"),
        ({"times_input": "yes"}, TypeError, "times_input must be True or False"),
        ({"channels_first": None}, TypeError, "channels_first must be True or False"),
    ],
)
def test_bad_arguments_raise_clear_errors(mlp_converter, kwargs, error, message):
    with pytest.raises(error, match=message):
        Gradient(mlp_converter, torch.randn(2, 5), **kwargs)


@pytest.mark.parametrize(
    ("method", "kwargs", "message"),
    [
        (SmoothGrad, {"n": 0}, "n must be an integer >= 1; got 0"),
        (SmoothGrad, {"noise_level": -0.1}, "noise_level must be a number >= 0.0; got -0.1"),
        (IntegratedGradient, {"n": 2.5}, "n must be an integer >= 1"),
        (
            IntegratedGradient,
            {"x_ref": np.zeros((2, 5))},
            r"x_ref must be a single instance \(one row\); got 2 rows",
        ),
        (IntegratedGradient, {"x_ref": np.zeros((1, 4))}, "x_ref has shape"),
        (ExpectedGradient, {"data_ref": np.zeros((3, 6))}, "data_ref has shape"),
    ],
)
def test_method_specific_errors(mlp_converter, method, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        method(mlp_converter, torch.randn(2, 5), **kwargs)


def test_data_for_several_input_layers_must_be_a_list(two_model):
    conv = Converter(two_model, input_dim=[(2, 6, 6), (4,)])
    with pytest.raises(ValueError, match="must be a list of 2 arrays .* got one array"):
        Gradient(conv, torch.randn(2, 4))
    with pytest.raises(ValueError, match="different numbers of rows"):
        Gradient(conv, [torch.randn(2, 2, 6, 6), torch.randn(3, 4)])


def test_a_module_is_explained_by_the_gradient_family_and_refused_by_the_rules(mlp_model):
    x = torch.randn(2, 5)
    direct = Gradient(mlp_model, x, output_idx=[0, 1])
    np.testing.assert_array_equal(
        direct.get_result(), torch_grad(mlp_model, x, output_idx=[0, 1]).numpy()
    )
    with pytest.raises(TypeError, match=r"Convert the model first .* gradient family, LIME"):
        LRP(mlp_model, x)


@pytest.mark.parametrize("method", METHODS)
def test_all_outputs_share_one_forward_and_backward_pass(cnn_converter, method, monkeypatch):
    # The number of forward passes (each followed by at most one backward pass per output
    # layer) must not grow with the number of explained outputs.
    calls = []
    run = ConvertedModel.run
    monkeypatch.setattr(
        ConvertedModel, "run", lambda self, *a, **k: calls.append(1) or run(self, *a, **k)
    )
    backward = torch.autograd.grad
    grads = []
    monkeypatch.setattr(
        torch.autograd, "grad", lambda *a, **k: grads.append(1) or backward(*a, **k)
    )
    x = torch.randn(2, 3, 8, 8)
    counts = []
    for idx in ([0], list(range(12))):
        calls.clear()
        grads.clear()
        method(cnn_converter, x, output_idx=idx, **({} if method is Gradient else {"n": 3}))
        counts.append((len(calls), len(grads)))
    assert counts[0] == counts[1]


@pytest.mark.parametrize(("method", "kwargs"), [(Gradient, {}), (IntegratedGradient, {"n": 4})])
def test_chunking_does_not_change_deterministic_results(cnn_converter, method, kwargs):
    x = torch.randn(5, 3, 8, 8, dtype=torch.float64)
    steps = []
    tiny = method(
        cnn_converter,
        x,
        dtype="double",
        memory_budget=1,
        **kwargs,
        progress_callback=lambda done, total: steps.append((done, total)),
    )
    whole = method(cnn_converter, x, dtype="double", memory_budget=2**34, **kwargs)
    torch.testing.assert_close(tiny.get_result("torch"), whole.get_result("torch"))
    points = len(x) * kwargs.get("n", 1)
    assert steps == [(i, points) for i in range(1, points + 1)]  # one point per chunk


def test_chunks_cover_every_sample_of_every_instance():
    from attribution.methods._autograd import chunks

    for n_samples, n_rows, per_chunk in [(50, 7, 20), (3, 10, 4), (1, 1, 1), (5, 2, 100)]:
        seen = [
            (s, r)
            for samples, rows in chunks(n_samples, n_rows, per_chunk)
            for s in samples
            for r in range(rows.start, rows.stop)
        ]
        assert sorted(seen) == [(s, r) for s in range(n_samples) for r in range(n_rows)]
        assert all(
            len(samples) * (rows.stop - rows.start) <= max(per_chunk, 1)
            for samples, rows in chunks(n_samples, n_rows, per_chunk)
        )


def test_verbose_shows_innsights_progress_bar(mlp_converter, capsys):
    SmoothGrad(mlp_converter, torch.randn(3, 5), n=5, verbose=True)
    assert "Backward pass 'SmoothGrad'" in capsys.readouterr().err
    Gradient(mlp_converter, torch.randn(3, 5))
    assert capsys.readouterr().err == ""
