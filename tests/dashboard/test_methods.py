"""Method parameters (innsight's defaults, canonical form) and running a method as the job does."""

from __future__ import annotations

import inspect
import io
import json
import re

import numpy as np
import pytest
import torch
from support.dashboard import SESSION
from torch import nn

import attribution
import demo_data
from attribution import (
    LRP,
    ConnectionWeights,
    DeepLift,
    DeepSHAP,
    ExpectedGradient,
    Gradient,
    IntegratedGradient,
    SmoothGrad,
)
from attribution.converter.loading import load_model
from attribution.methods.catalogue import METHODS
from dashboard.callbacks.views import download
from dashboard.jobs import build_request, request_owner, run_attribution, session_key
from dashboard.methods import (
    METHOD_PARAMETERS,
    PARAMETERS,
    FromData,
    canonical_params,
    engine_kwargs,
    parameter_default,
    parameter_problem,
    parameter_text,
    rule_layer_types,
    run_method,
)
from dashboard.store import Store

ALL_METHODS = tuple(METHODS)
GRADIENT_METHODS = tuple(name for name, cls in METHODS.items() if cls.needs == "gradients")
RULE_METHODS = tuple(name for name, cls in METHODS.items() if cls.needs == "graph")
AGNOSTIC_METHODS = ("LIME", "SHAP")

DEFAULTS = {
    "Gradient": {"times_input": False, "ignore_last_act": True, "dtype": "float"},
    "SmoothGrad": {
        "times_input": False, "n": 50, "noise_level": 0.1, "seed": 0, "ignore_last_act": True,
        "dtype": "float",
    },
    "IntegratedGradient": {
        "times_input": True, "n": 50, "reference": "zeros", "ignore_last_act": True,
        "dtype": "float",
    },
    "ExpectedGradient": {
        "n": 50, "seed": 0, "background": "data", "ignore_last_act": True, "dtype": "float",
    },
    "LRP": {
        "rule_name": {"Dense_Layer": "simple"}, "rule_param": {"Dense_Layer": None},
        "winner_takes_all": True, "ignore_last_act": True, "dtype": "float",
    },
    "DeepLift": {
        "rule_name": "rescale", "reference": "zeros", "winner_takes_all": True,
        "ignore_last_act": True, "dtype": "float",
    },
    "DeepSHAP": {
        "rule_name": "rescale", "limit_ref": 100, "seed": 0, "background": "data",
        "winner_takes_all": True, "ignore_last_act": True, "dtype": "float",
    },
    "ConnectionWeights": {"times_input": False, "dtype": "float"},
    "LIME": {
        "background": "data", "n_permutations": 5000, "n_bins": 4, "ridge_lambda": 0.001,
        "seed": 0,
    },
    "SHAP": {"background": "data", "nsim": 1, "adjust": False, "seed": 0},
}  # fmt: skip
"""innsight's defaults as the iris demo (Dense layers only) gets them, and seed 0."""

STOCHASTIC = ("SmoothGrad", "ExpectedGradient", "DeepSHAP", "LIME", "SHAP")
"""The methods that draw random numbers."""

_NOT_INNSIGHTS = ("rule_param", "seed")
"""Parameters whose default is not the engine's."""


def _array(result) -> np.ndarray:
    return result.get_result("array")


# --- canonical parameters ------------------------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS)
def test_empty_request_gets_innsights_defaults(iris, method):
    assert canonical_params(method, {}, iris) == DEFAULTS[method]


@pytest.mark.parametrize("method", ALL_METHODS)
def test_defaults_are_those_of_the_engine(iris, method):
    """Every plain parameter's default is the engine's (which follows innsight), but the
    seed: the engine's None draws from torch's global generator, the dashboard's 0 is
    reproducible."""
    signature = inspect.signature(getattr(attribution, method)).parameters
    params = canonical_params(method, {}, iris)
    assert ("seed" in params) == (method in STOCHASTIC) == ("seed" in signature)
    compared = [name for name in params if name in signature and name not in _NOT_INNSIGHTS]
    assert compared, method
    for name in compared:
        engine_default = signature[name].default
        value = params[name]
        if method == "LRP" and name == "rule_name":
            assert set(value.values()) == {engine_default}
        else:
            assert value == engine_default, (method, name)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_an_empty_choice_takes_the_default_an_empty_number_field_is_refused(iris, method):
    choices = [n for n in METHOD_PARAMETERS[method] if not PARAMETERS[n].numeric]
    for empty in ("", None):
        raw = dict.fromkeys(choices, empty)
        assert canonical_params(method, raw, iris) == DEFAULTS[method]
    numbers = [n for n in DEFAULTS[method] if PARAMETERS[n].numeric]
    for name in numbers:
        for empty in ("", None):
            with pytest.raises(ValueError, match=f"^{name} is empty: type a value"):
                canonical_params(method, {name: empty}, iris)


@pytest.mark.parametrize(
    ("method", "name", "value", "message"),
    [
        ("SmoothGrad", "noise_level", -0.3, "noise_level must be a number >= 0.0; got -0.3"),
        ("SmoothGrad", "n", 0, "n must be an integer >= 1; got 0"),
        ("SmoothGrad", "n", 2.5, "n must be an integer >= 1; got 2.5"),
        ("SmoothGrad", "seed", "x", "seed must be an integer"),
        ("Gradient", "times_input", "yes", "times_input must be True or False; got 'yes'"),
    ],
)
def test_a_refused_value_is_never_replaced_by_the_default(iris, method, name, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        canonical_params(method, {name: value}, iris)
    assert message in parameter_problem(method, name, value)
    assert parameter_problem(method, name, parameter_default(method, name)) is None


def test_each_method_that_shares_a_parameter_describes_it_in_its_own_words():
    texts = {method: parameter_text(method, "n") for method in METHOD_PARAMETERS
             if "n" in METHOD_PARAMETERS[method]}  # fmt: skip
    assert len(set(texts.values())) == len(texts) == 3
    assert "noisy" in texts["SmoothGrad"][1] and "path" in texts["IntegratedGradient"][1]


def test_keys_the_method_does_not_take_are_dropped(iris):
    raw = {"n": 5, "noise_level": 0.3, "rule_name": "epsilon", "x_ref": 1, "times_input": True}
    assert canonical_params("Gradient", raw, iris) == {**DEFAULTS["Gradient"], "times_input": True}
    connection = canonical_params("ConnectionWeights", {"n": 5, "ignore_last_act": False}, iris)
    assert connection == DEFAULTS["ConnectionWeights"]
    expected = {**DEFAULTS["ExpectedGradient"], "n": 5}
    assert canonical_params("ExpectedGradient", {"n": 5, "times_input": True}, iris) == expected


def test_reference_row_is_kept_only_for_the_row_reference(iris):
    zeros = canonical_params("IntegratedGradient", {"reference_row": 4}, iris)
    assert "reference_row" not in zeros
    row = canonical_params("IntegratedGradient", {"reference": "row", "reference_row": 4}, iris)
    assert row["reference"] == "row" and row["reference_row"] == 4
    default_row = canonical_params("DeepLift", {"reference": "row"}, iris)
    assert default_row["reference_row"] == 0


def test_equal_requests_in_another_key_order_are_equal(demo_model):
    digits = demo_model("digits")
    raw = {
        "dtype": "double",
        "rule_param": {"MaxPool2D_Layer": None, "Conv2D_Layer": 0.5, "Dense_Layer": 0.05},
        "rule_name": {"MaxPool2D_Layer": "simple", "Conv2D_Layer": "alpha_beta",
                      "Dense_Layer": "epsilon"},
        "winner_takes_all": False,
    }  # fmt: skip
    reordered = {
        "winner_takes_all": False,
        "rule_name": dict(reversed(raw["rule_name"].items())),
        "rule_param": dict(reversed(raw["rule_param"].items())),
        "dtype": "double",
    }
    a, b = canonical_params("LRP", raw, digits), canonical_params("LRP", reordered, digits)
    assert a == b
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["rule_param"] == {"Dense_Layer": 0.05, "Conv2D_Layer": 0.5, "MaxPool2D_Layer": None}


def test_numbers_are_normalised(iris):
    whole = canonical_params("SmoothGrad", {"n": 5.0, "noise_level": 1}, iris)
    assert whole["n"] == 5 and type(whole["n"]) is int
    assert whole["noise_level"] == 1.0 and type(whole["noise_level"]) is float
    assert whole == canonical_params("SmoothGrad", {"n": 5, "noise_level": 1.0}, iris)


@pytest.mark.parametrize("method", STOCHASTIC)
def test_the_seed_is_a_canonical_whole_number(iris, method):
    assert canonical_params(method, {}, iris)["seed"] == 0
    given = canonical_params(method, {"seed": 7.0}, iris)
    assert given["seed"] == 7 and type(given["seed"]) is int
    assert given == canonical_params(method, {"seed": 7}, iris)


@pytest.mark.parametrize(
    ("method", "raw", "error", "message"),
    [
        ("SmoothGrad", {"n": 0}, ValueError, r"n must be an integer >= 1; got 0\."),
        ("SmoothGrad", {"n": 2.5}, ValueError, r"n must be an integer >= 1; got 2\.5\."),
        ("SmoothGrad", {"noise_level": -0.1}, ValueError, r"noise_level must be a number >= 0"),
        ("DeepSHAP", {"limit_ref": 0}, ValueError, r"limit_ref must be an integer >= 1"),
        ("Gradient", {"times_input": "yes"}, ValueError, r"times_input must be True or False"),
        ("Gradient", {"dtype": "half"}, ValueError,
         r"dtype 'half' is not allowed; choose one of float, double\."),
        ("DeepLift", {"reference": "median"}, ValueError,
         r"reference 'median' is not allowed; choose one of zeros, mean, row, upload\."),
        ("DeepLift", {"reference": "row", "reference_row": -1}, ValueError,
         r"reference_row must be an integer >= 0; got -1\."),
        ("DeepLift", {"rule_name": "epsilon"}, ValueError,
         r"DeepLift rule 'epsilon' is not allowed; choose one of rescale, reveal_cancel\."),
        ("LRP", {"rule_name": {"Dense_Layer": "pass"}}, ValueError,
         r"LRP rule 'pass' is not allowed for Dense_Layer; choose one of simple, epsilon, "
         r"alpha_beta\."),
        ("LRP", {"rule_name": {"Dense_Layer": "epsilon"}, "rule_param": {"Dense_Layer": "x"}},
         ValueError, r"rule_param of Dense_Layer must be a number"),
        ("SmoothGrad", {"seed": -1}, ValueError, r"seed must be an integer >= 0; got -1\."),
        ("ExpectedGradient", {"seed": 0.5}, ValueError,
         r"seed must be an integer >= 0; got 0\.5\."),
        ("DeepSHAP", {"seed": 2**64}, ValueError,
         r"seed must be an integer from 0 to 18446744073709551615; got 18446744073709551616\."),
    ],
)  # fmt: skip
def test_bad_values_are_named(iris, method, raw, error, message):
    with pytest.raises(error, match=message):
        canonical_params(method, raw, iris)


def test_unknown_method_lists_the_methods(iris):
    with pytest.raises(ValueError, match=r"Unknown method 'Saliency'; choose one of Gradient, "):
        canonical_params("Saliency", {}, iris)


@pytest.mark.parametrize(("name", "types"), [
    ("iris", ["Dense_Layer"]),
    ("digits", ["Dense_Layer", "Conv2D_Layer", "MaxPool2D_Layer"]),
    ("signals", ["Dense_Layer", "Conv1D_Layer", "BatchNorm_Layer", "MaxPool1D_Layer"]),
])  # fmt: skip
def test_lrp_rules_cover_the_rule_layer_types_present(demo_model, name, types):
    model = demo_model(name)
    assert rule_layer_types(model) == types
    params = canonical_params("LRP", {"rule_name": {"Dense_Layer": "epsilon"}}, model)
    assert list(params["rule_name"]) == types
    assert params["rule_name"] == {t: "epsilon" if t == "Dense_Layer" else "simple" for t in types}
    assert params["rule_param"] == dict.fromkeys(types)


def test_lrp_pass_is_for_batchnorm_and_rules_without_parameter_drop_it(demo_model):
    signals = demo_model("signals")
    raw = {
        "rule_name": {"BatchNorm_Layer": "pass", "Conv1D_Layer": "epsilon"},
        "rule_param": {"BatchNorm_Layer": 3.0, "Conv1D_Layer": 0.2, "Dense_Layer": 7},
    }
    params = canonical_params("LRP", raw, signals)
    assert params["rule_name"]["BatchNorm_Layer"] == "pass"
    assert params["rule_param"] == {
        "Dense_Layer": None,  # simple takes no parameter
        "Conv1D_Layer": 0.2,
        "BatchNorm_Layer": None,
        "MaxPool1D_Layer": None,
    }


def test_unconverted_models_take_the_gradient_family_and_lime_and_shap(scripted_model):
    for method in GRADIENT_METHODS:
        params = canonical_params(method, {"ignore_last_act": False}, scripted_model)
        assert "ignore_last_act" not in params  # the torch_* functions explain the output
        expected = {k: v for k, v in DEFAULTS[method].items() if k != "ignore_last_act"}
        assert params == expected
    for method in RULE_METHODS:
        with pytest.raises(
            ValueError,
            match=rf"{method} needs a converted model; this one is not converted \(torch\.fx "
            r"cannot trace TorchScript.*\)\. Choose one of Gradient, SmoothGrad, "
            r"IntegratedGradient, ExpectedGradient, LIME, SHAP\.$",
        ):
            canonical_params(method, {}, scripted_model)


# --- running a method ----------------------------------------------------------------------


def test_engine_kwargs_are_the_methods_own(iris):
    """The page's reference and background become x_ref and data_ref, taken from the data."""
    row = canonical_params("DeepLift", {"reference": "row", "reference_row": 3}, iris)
    assert engine_kwargs("DeepLift", row) == {
        "rule_name": "rescale", "x_ref": FromData("row", row=3), "winner_takes_all": True,
        "ignore_last_act": True, "dtype": "float",
    }  # fmt: skip
    zeros = engine_kwargs("IntegratedGradient", canonical_params("IntegratedGradient", {}, iris))
    assert zeros["x_ref"] is None and "reference" not in zeros
    raw = {"background": "sample", "sample_size": 7, "sample_seed": 2}
    sampled = engine_kwargs("ExpectedGradient", canonical_params("ExpectedGradient", raw, iris))
    assert sampled["data_ref"] == FromData("sample", size=7, seed=2)
    assert not {"background", "sample_size", "sample_seed"} & set(sampled)
    lrp = engine_kwargs("LRP", canonical_params("LRP", {}, iris))
    assert lrp["rule_param"] == {}  # the simple rule takes none


def test_lrp_epsilon_equals_the_engine(iris, iris_x):
    x = iris_x[:6]
    params = canonical_params(
        "LRP", {"rule_name": {"Dense_Layer": "epsilon"}, "rule_param": {"Dense_Layer": 0.05}}, iris
    )
    got = run_method(iris, [x], "LRP", params, [[0, 2]])
    conv = iris.converter
    want = LRP(conv, x, rule_name={"Dense_Layer": "epsilon"}, rule_param={"Dense_Layer": 0.05},
               output_idx=[0, 2])  # fmt: skip
    np.testing.assert_array_equal(_array(got), _array(want))
    simple = LRP(conv, x, output_idx=[0, 2])
    assert not np.allclose(_array(got), _array(simple))  # the rule made a difference


def test_lrp_default_parameter_is_the_rules_default(iris, iris_x):
    x = iris_x[:4]
    params = canonical_params("LRP", {"rule_name": {"Dense_Layer": "alpha_beta"}}, iris)
    got = run_method(iris, [x], "LRP", params, [[1]])
    want = LRP(iris.converter, x, rule_name="alpha_beta", output_idx=[1])
    np.testing.assert_array_equal(_array(got), _array(want))


def test_deeplift_mean_reference_is_the_data_mean(iris, iris_x):
    x = iris_x[:5]
    params = canonical_params("DeepLift", {"reference": "mean", "rule_name": "reveal_cancel"}, iris)
    got = run_method(iris, [x], "DeepLift", params, [[0, 1, 2]])
    want = DeepLift(iris.converter, x, x_ref=x.mean(axis=0, keepdims=True),
                    rule_name="reveal_cancel", output_idx=[0, 1, 2])  # fmt: skip
    np.testing.assert_array_equal(_array(got), _array(want))
    zeros = DeepLift(iris.converter, x, rule_name="reveal_cancel", output_idx=[0, 1, 2])
    assert not np.allclose(_array(got), _array(zeros))


def test_reference_data_other_than_the_inputs(iris, iris_x):
    """The job explains the first rows but takes references from all the data."""
    x, data = iris_x[:3], iris_x
    params = canonical_params("DeepLift", {"reference": "mean"}, iris)
    got = run_method(iris, [x], "DeepLift", params, [[0]], reference_data=[data])
    want = DeepLift(iris.converter, x, x_ref=data.mean(axis=0, keepdims=True), output_idx=[0])
    np.testing.assert_array_equal(_array(got), _array(want))
    params = canonical_params("IntegratedGradient", {"reference": "row", "reference_row": 30}, iris)
    got = run_method(iris, [x], "IntegratedGradient", params, [[0]], reference_data=[data])
    want = IntegratedGradient(iris.converter, x, x_ref=data[30:31], output_idx=[0])
    np.testing.assert_array_equal(_array(got), _array(want))
    with pytest.raises(ValueError, match=r"Reference row 30 is out of range: the data has 3 rows"):
        run_method(iris, [x], "IntegratedGradient", params, [[0]])


def test_integrated_gradient_row_reference_and_times_input(iris, iris_x):
    x = iris_x[:5]
    raw = {"reference": "row", "reference_row": 2, "n": 8, "times_input": False}
    params = canonical_params("IntegratedGradient", raw, iris)
    got = run_method(iris, [x], "IntegratedGradient", params, [[0, 1]])
    want = IntegratedGradient(iris.converter, x, x_ref=x[2:3], n=8, times_input=False,
                              output_idx=[0, 1])  # fmt: skip
    np.testing.assert_array_equal(_array(got), _array(want))
    with_input = IntegratedGradient(iris.converter, x, x_ref=x[2:3], n=8, output_idx=[0, 1])
    assert not np.allclose(_array(got), _array(with_input))


@pytest.mark.parametrize(
    ("method", "engine", "raw"),
    [
        ("ExpectedGradient", ExpectedGradient, {"n": 6, "seed": 3}),
        ("DeepSHAP", DeepSHAP, {"limit_ref": 7, "seed": 3}),
        ("SmoothGrad", SmoothGrad, {"n": 6, "noise_level": 0.3, "seed": 3}),
    ],
)
def test_sampling_methods_equal_the_engine(iris, iris_x, method, engine, raw):
    """The engine gets the seed; ExpectedGradient and DeepSHAP take the data as reference
    set."""
    x = iris_x[:4]
    params = canonical_params(method, raw, iris)
    got = run_method(iris, [x], method, params, [[0, 2]], reference_data=[iris_x])
    kwargs = raw if method == "SmoothGrad" else {**raw, "data_ref": iris_x}
    want = engine(iris.converter, x, output_idx=[0, 2], **kwargs)
    np.testing.assert_array_equal(_array(got), _array(want))


def test_connection_weights_global_and_local(iris, iris_x):
    x = iris_x[:4]
    params = canonical_params("ConnectionWeights", {}, iris)
    global_ = run_method(iris, [x], "ConnectionWeights", params, [[0, 1, 2]])
    assert not global_.has_data
    np.testing.assert_array_equal(
        _array(global_), _array(ConnectionWeights(iris.converter, output_idx=[0, 1, 2]))
    )
    params = canonical_params("ConnectionWeights", {"times_input": True}, iris)
    local = run_method(iris, [x], "ConnectionWeights", params, [[0]])
    assert local.has_data and _array(local).shape == (4, 4, 1)
    np.testing.assert_array_equal(
        _array(local),
        _array(ConnectionWeights(iris.converter, x, times_input=True, output_idx=[0])),
    )


def test_two_inputs_and_two_outputs(demo_model):
    model = demo_model("digits_table")
    inputs = [x[:3] for x in demo_data.load_demo("digits_table").inputs]
    params = canonical_params("Gradient", {"times_input": True, "dtype": "double"}, model)
    got = run_method(model, inputs, "Gradient", params, [[1, 4], [0]])
    want = Gradient(model.converter, inputs, times_input=True, dtype="double",
                    output_idx=[[1, 4], [0]])  # fmt: skip
    got, want = got.get_result("array"), want.get_result("array")
    assert set(got) == {"Output_1", "Output_2"}
    for output in want:
        for layer in want[output]:
            np.testing.assert_array_equal(got[output][layer], want[output][layer])
    assert got["Output_1"]["Input_1"].shape == (3, 1, 8, 8, 2)
    assert got["Output_1"]["Input_1"].dtype == np.float64


@pytest.mark.parametrize("method", ALL_METHODS)
def test_progress_rises_to_the_total(demo_model, method):
    model = demo_model("digits")
    x = demo_data.load_demo("digits").inputs[0][:3]
    params = canonical_params(method, {"n": 4, "times_input": True}, model)
    calls = []
    run_method(
        model, [x], method, params, [[0, 1]], lambda done, total: calls.append((done, total))
    )
    assert calls, method
    totals = {total for _, total in calls}
    assert len(totals) == 1 and next(iter(totals)) >= 1
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[0] >= 1
    assert calls[-1] == (calls[-1][1], calls[-1][1])


# --- models that do not convert ------------------------------------------------------------


class _Tanh(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first, self.second = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.second(torch.tanh(self.first(x)) * 1.5)


def _exported() -> tuple[nn.Module, bytes]:
    module = _Tanh().eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(module, (torch.zeros(2, 4),), dynamic_shapes=({0: batch},))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return module, buffer.getvalue()


TORCH_FUNCTIONS = {
    "Gradient": (attribution.torch_grad, {"times_input": True}),
    "SmoothGrad": (attribution.torch_smoothgrad, {"n": 5, "noise_level": 0.2, "seed": 4}),
    "IntegratedGradient": (attribution.torch_intgrad, {"n": 6}),
    "ExpectedGradient": (attribution.torch_expgrad, {"n": 5, "seed": 4}),
}


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_exported_program_runs_through_the_torch_functions(iris_x, method):
    module, data = _exported()
    model = load_model(data, "tanh.pt2")
    assert model.converter is None
    assert model.methods == [*GRADIENT_METHODS, *AGNOSTIC_METHODS]
    x = iris_x[:5]
    function, kwargs = TORCH_FUNCTIONS[method]
    raw = dict(kwargs)
    if method == "IntegratedGradient":
        raw["reference"] = "mean"
        kwargs = {**kwargs, "x_ref": iris_x.mean(axis=0, keepdims=True)}
    if method == "ExpectedGradient":
        kwargs = {**kwargs, "data_ref": iris_x}
    params = canonical_params(method, raw, model)
    calls = []
    got = run_method(model, [x], method, params, [[0, 2]], lambda d, t: calls.append((d, t)),
                     reference_data=[iris_x])  # fmt: skip
    want = function(model.module, x, output_idx=[0, 2], return_object=True, **kwargs)
    np.testing.assert_array_equal(_array(got), _array(want))
    assert calls == [(1, 1)]
    original = function(module, x, output_idx=[0, 2], **kwargs)  # the module before export
    np.testing.assert_allclose(_array(got), original.numpy(), rtol=1e-5, atol=1e-6)


def test_torchscript_gradient_equals_torch_grad_and_the_converted_model(
    scripted_model, image_model
):
    torch.manual_seed(0)
    x = torch.rand(3, 1, 8, 8).numpy()
    params = canonical_params("Gradient", {"times_input": True}, scripted_model)
    got = run_method(scripted_model, [x], "Gradient", params, [[0, 2]])
    want = attribution.torch_grad(scripted_model.module, x, output_idx=[0, 2], times_input=True)
    np.testing.assert_array_equal(_array(got), want.numpy())
    converted = run_method(image_model, [x], "Gradient", params | {"ignore_last_act": True},
                           [[0, 2]])  # fmt: skip
    np.testing.assert_allclose(_array(got), _array(converted), rtol=1e-5, atol=1e-6)


def test_torch_function_results_carry_the_loaded_models_names(iris_x):
    _, data = _exported()
    model = load_model(data, "tanh.pt2", input_names=["sl", "sw", "pl", "pw"],
                       output_names=["setosa", "versicolor", "virginica"])  # fmt: skip
    params = canonical_params("Gradient", {}, model)
    result = run_method(model, [iris_x[:3]], "Gradient", params, [[1]])
    assert result.input_names == [[["sl", "sw", "pl", "pw"]]]
    assert result.output_names == [["setosa", "versicolor", "virginica"]]
    frame = result.get_result("data.frame")
    assert list(frame["feature"].cat.categories) == ["sl", "sw", "pl", "pw"]
    assert set(frame["output_node"]) == {"versicolor"}


# --- reproducible requests -----------------------------------------------------------------

CACHE_LIMIT = 50 * 1024**2

SAMPLING = {
    "SmoothGrad": {"n": 4}, "ExpectedGradient": {"n": 4}, "DeepSHAP": {"limit_ref": 5},
    "LIME": {"n_permutations": 50}, "SHAP": {"nsim": 2},
}  # fmt: skip
"""Requests that draw random numbers (DeepSHAP: 5 of the demo's 50 reference rows)."""


def _job_array(cache_dir, demo_ref, method: str, raw: dict) -> np.ndarray:
    """The result of an iris job for ``method``, computed in a new store in ``cache_dir``."""
    ref = demo_ref("iris")
    with Store(cache_dir, size_limit=CACHE_LIMIT) as store:
        request = build_request(store, ref, ref, method, raw, ["0:0", "0:2"], 5, SESSION)
        key = run_attribution(store, request, request_owner(request, SESSION), lambda _: None)[
            "key"
        ]
        return _array(store.get_result(key))


@pytest.mark.parametrize("method", STOCHASTIC)
def test_a_request_gives_the_same_numbers_in_another_cache(tmp_path, demo_ref, method):
    first = _job_array(tmp_path / "first", demo_ref, method, SAMPLING[method])
    torch.rand(3)  # torch's global generator is elsewhere for the second job
    second = _job_array(tmp_path / "second", demo_ref, method, SAMPLING[method])
    np.testing.assert_array_equal(second, first)


@pytest.mark.parametrize("method", STOCHASTIC)
def test_another_seed_gives_other_numbers(tmp_path, demo_ref, method):
    first = _job_array(tmp_path, demo_ref, method, {**SAMPLING[method], "seed": 1})
    second = _job_array(tmp_path, demo_ref, method, {**SAMPLING[method], "seed": 2})
    assert not np.allclose(first, second)


def test_the_seed_is_part_of_the_cache_key(store, demo_ref):
    ref = demo_ref("iris")

    def key(raw: dict) -> str:
        return session_key(
            build_request(store, ref, ref, "SmoothGrad", raw, ["0:0"], 3, SESSION), SESSION
        )

    assert key({}) == key({"seed": 0}) != key({"seed": 1})


def test_the_downloaded_parameters_hold_the_seed(store, compute):
    ref = compute("iris", "ExpectedGradient", {"n": 4, "seed": 9})
    saved = json.loads(download(store, ref, SESSION, "params")["content"])
    params = {**DEFAULTS["ExpectedGradient"], "n": 4, "seed": 9}
    assert saved["kwargs"] == {k: v for k, v in params.items() if k != "background"}
    assert saved["from_data"] == {"data_ref": {"kind": "all"}}
