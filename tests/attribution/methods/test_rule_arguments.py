"""The rule-based methods' arguments, layouts, result fields and summaries."""

import numpy as np
import pytest
import torch
from torch import nn

from attribution import LRP, ConnectionWeights, Converter, DeepLift, DeepSHAP


@pytest.fixture
def cnn_converter(cnn_model):
    return Converter(cnn_model, input_dim=(3, 8, 8))


@pytest.fixture
def mlp_converter(mlp_model):
    return Converter(mlp_model)


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [(LRP, {"rule_name": "epsilon"}), (DeepLift, {"rule_name": "reveal_cancel"}),
     (DeepSHAP, {"data_ref": np.random.default_rng(0).normal(size=(4, 3, 8, 8))}),
     (ConnectionWeights, {"times_input": True})],
)  # fmt: skip
def test_channels_last_data_gives_channels_last_results(cnn_converter, method, kwargs):
    x = torch.randn(3, 3, 8, 8)
    torch.manual_seed(0)
    first = method(cnn_converter, x, output_idx=[2, 7], **kwargs).get_result("torch")
    if "data_ref" in kwargs:
        kwargs = {**kwargs, "data_ref": np.moveaxis(kwargs["data_ref"], 1, -1)}
    torch.manual_seed(0)
    last = method(cnn_converter, x.permute(0, 2, 3, 1), channels_first=False, output_idx=[2, 7],
                  **kwargs).get_result("torch")  # fmt: skip
    torch.testing.assert_close(last, first.permute(0, 2, 3, 1, 4))


@pytest.mark.parametrize("method", [LRP, DeepLift, DeepSHAP])
def test_dtype_sets_the_precision(mlp_converter, method):
    x = torch.randn(2, 5)
    assert method(mlp_converter, x).get_result("torch").dtype == torch.float32
    assert method(mlp_converter, x, dtype="double").get_result("torch").dtype == torch.float64


@pytest.mark.parametrize(
    ("method", "value_name"),
    [(LRP, "Relevance"), (DeepLift, "Contribution"), (DeepSHAP, "Contribution")],
)
def test_value_names_and_default_output_nodes(cnn_converter, method, value_name):
    res = method(cnn_converter, torch.randn(2, 3, 8, 8))
    assert res.value_name == value_name
    assert res.output_idx == [list(range(10))]


def test_global_connection_weights_have_one_data_row_without_predictions(mlp_converter):
    res = ConnectionWeights(mlp_converter)
    assert res.value_name == "Relative Importance"
    assert res.preds == [None] and res.decomp_goal == [None]
    frame = res.get_result("data.frame")
    assert list(frame["data"].cat.categories) == ["data_1"]
    assert len(frame) == 5 * 4
    assert frame["pred"].isna().all() and frame["decomp_goal"].isna().all()
    assert "global ConnectionWeights" in repr(res)


def test_local_connection_weights_predict_the_data(mlp_converter, mlp_model):
    x = torch.randn(3, 5)
    res = ConnectionWeights(mlp_converter, x, times_input=True, output_idx=[1])
    torch.testing.assert_close(res.preds[0], mlp_model.float()(x)[:, [1]])
    assert "local ConnectionWeights" in repr(res)


@pytest.mark.parametrize(
    ("method", "kwargs", "error", "message"),
    [
        (DeepLift, {"rule_name": "simple"}, ValueError,
         "rule_name must be one of 'rescale', 'reveal_cancel'; got 'simple'"),
        (DeepSHAP, {"rule_name": "epsilon"}, ValueError, "rule_name must be one of"),
        (DeepLift, {"winner_takes_all": "yes"}, TypeError,
         "winner_takes_all must be True or False"),
        (LRP, {"winner_takes_all": 1}, TypeError, "winner_takes_all must be True or False"),
        (DeepLift, {"x_ref": np.zeros((2, 5))}, ValueError,
         r"x_ref must be a single instance \(one row\); got 2 rows. Use ExpectedGradient or "
         "DeepSHAP"),
        (DeepSHAP, {"limit_ref": 0}, ValueError, "limit_ref must be an integer >= 1; got 0"),
        (DeepSHAP, {"data_ref": np.zeros((3, 4))}, ValueError, "data_ref has shape"),
        (LRP, {"rule_name": "z_plus"}, ValueError, "valid rules: simple, epsilon, alpha_beta"),
    ],
)  # fmt: skip
def test_bad_arguments_raise_clear_errors(mlp_converter, method, kwargs, error, message):
    with pytest.raises(error, match=message):
        method(mlp_converter, torch.randn(2, 5), **kwargs)


def test_connection_weights_needs_data_only_for_the_local_variant(mlp_converter):
    with pytest.raises(ValueError, match="times_input=True .* pass data"):
        ConnectionWeights(mlp_converter, times_input=True)
    with pytest.warns(UserWarning, match="ignores data unless times_input=True"):
        ConnectionWeights(mlp_converter, torch.randn(2, 5))


def test_averaging_dilated_max_pooling_is_refused():
    model = nn.Sequential(
        nn.Conv1d(1, 2, 3), nn.MaxPool1d(2, dilation=2), nn.Flatten(), nn.Linear(2 * 4, 2)
    )
    conv = Converter(model.eval(), input_dim=(1, 12))
    x = torch.randn(2, 1, 12)
    assert LRP(conv, x).get_result().shape == (2, 1, 12, 2)
    with pytest.raises(ValueError, match="dilation .* Use winner_takes_all=True"):
        LRP(conv, x, winner_takes_all=False)


def test_summaries_show_the_rules(mlp_converter):
    text = repr(
        LRP(
            mlp_converter,
            torch.randn(2, 5),
            rule_name={"Dense_Layer": "epsilon"},
            rule_param={"Dense_Layer": 0.1},
        )
    )
    assert "rule_name: Dense_Layer: 'epsilon'; other layers: 'simple'" in text
    assert "rule_param: Dense_Layer: 0.1; other layers: the rule's default" in text
    assert "rule_param: 0.01" in repr(LRP(mlp_converter, torch.randn(2, 5), rule_name="epsilon"))
    text = repr(DeepSHAP(mlp_converter, torch.randn(2, 5), data_ref=torch.randn(6, 5)))
    assert "rule_name: 'rescale'" in text and "limit_ref: 100" in text
    assert "data_ref: mean:" in text


def test_verbose_bar_is_innsights(mlp_converter, capsys):
    DeepLift(mlp_converter, torch.randn(2, 5), verbose=True)
    assert "Backward pass 'DeepLift'" in capsys.readouterr().err
