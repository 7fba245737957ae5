"""SHAP: exact where the Monte-Carlo estimate has no variance, shap's exact values in the
limit, fastshap's adjustment summing to the goal, and every kind of model."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from attribution import SHAP, Converter

torch.manual_seed(0)
MLP = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
X = torch.randn(5, 4, dtype=torch.float64)
BACKGROUND = torch.randn(40, 4, dtype=torch.float64)


def _linear_contributions(layer: nn.Linear, x, reference):
    """w_j (x_j − r_j) per feature and output, ``(n, features, outputs)``."""
    return ((x - reference)[:, :, None] * layer.weight.detach().T[None]).numpy()


def test_with_one_background_row_a_linear_model_gets_its_exact_contributions():
    layer = nn.Linear(4, 2).double()
    values = SHAP(layer, X, BACKGROUND[:1], seed=3).get_result()
    np.testing.assert_allclose(values, _linear_contributions(layer, X, BACKGROUND[:1]), atol=1e-6)


def test_converges_to_shaps_exact_interventional_values():
    shap = pytest.importorskip("shap")
    background = BACKGROUND[:10].numpy()

    def first_output(rows):
        with torch.no_grad():
            return MLP(torch.as_tensor(rows))[:, 0].numpy()

    exact = shap.explainers.Exact(first_output, shap.maskers.Independent(background, 10))
    want = exact(X.numpy()).values
    ours = SHAP(MLP, X, background, output_idx=[0], nsim=4000, seed=0).get_result()[..., 0]
    scale = np.abs(want).max()
    assert np.abs(ours - want).max() < 0.03 * scale


def test_adjust_sums_exactly_to_f_x_minus_the_mean_prediction():
    result = SHAP(MLP, X, BACKGROUND, nsim=3, adjust=True, seed=1)
    with torch.no_grad():
        goal = (MLP(X) - MLP(BACKGROUND).mean(0))[:, :3].numpy()
    np.testing.assert_allclose(result.decomp_goal[0].numpy(), goal, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.get_result().sum(1), goal, rtol=1e-5, atol=1e-5)
    unadjusted = SHAP(MLP, X, BACKGROUND, nsim=3, seed=1).get_result().sum(1)
    assert np.abs(unadjusted - goal).max() > 1e-3  # the adjustment did something
    with pytest.raises(ValueError, match="nsim >= 2"):
        SHAP(MLP, X, BACKGROUND, adjust=True)


def test_a_seed_repeats_the_numbers_and_another_seed_does_not():
    first = SHAP(MLP, X, BACKGROUND, seed=7).get_result()
    np.testing.assert_array_equal(first, SHAP(MLP, X, BACKGROUND, seed=7).get_result())
    assert not np.array_equal(first, SHAP(MLP, X, BACKGROUND, seed=8).get_result())


def test_result_fields_follow_innsight_with_preds_subset_by_output_idx():
    result = SHAP(MLP, X, BACKGROUND, output_idx=[2, 0], seed=0)
    assert (result.method_name, result.value_name) == ("SHAP", "Shapley Value")
    with torch.no_grad():
        np.testing.assert_allclose(result.preds[0].numpy(), MLP(X)[:, [2, 0]].numpy(), rtol=1e-6)
    assert result.get_result().shape == (5, 4, 2)
    frame = result.get_result("data.frame")
    assert set(frame["output_node"]) == {"Y3", "Y1"}
    assert result.plot(output_idx=[2]) is not None


def test_patches_share_one_value_and_sum_their_members_contributions():
    torch.manual_seed(1)
    image = torch.randn(3, 2, 4, 6, dtype=torch.float64)
    layer = nn.Linear(48, 2).double()
    model = nn.Sequential(nn.Flatten(), layer)
    reference = torch.randn(1, 2, 4, 6, dtype=torch.float64)
    values = SHAP(model, image, reference, patch_size=2, seed=0).get_result()
    per_value = _linear_contributions(layer, image.flatten(1), reference.flatten(1))
    per_value = per_value.reshape(3, 2, 4, 6, 2)
    patch = per_value[:, :, :2, :2].sum(axis=(1, 2, 3))  # both channels, the first 2×2
    np.testing.assert_allclose(values[:, 0, 0, 0], patch, atol=1e-6)
    assert np.allclose(values[:, :, :2, :2], values[:, :1, :1, :1])


def test_several_input_layers_and_feature_groups_across_them():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 2).double(), nn.Linear(2, 2).double()

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    model = TwoInputs()
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    rx, ry = torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64)
    values = SHAP(model, [x, y], [rx, ry], seed=0).get_result()["Output_1"]
    np.testing.assert_allclose(values["Input_1"], _linear_contributions(model.a, x, rx), atol=1e-6)
    np.testing.assert_allclose(values["Input_2"], _linear_contributions(model.b, y, ry), atol=1e-6)
    grouped = SHAP(model, [x, y], [rx, ry], feature_groups=[[0, 0, 1], [0, 0]], seed=0)
    first = _linear_contributions(model.a, x, rx)[:, :2].sum(1)
    np.testing.assert_allclose(grouped.get_result()["Output_1"]["Input_1"][:, 0], first, atol=1e-6)


def test_explains_converters_programs_scikit_learn_and_a_pred_fun_alike():
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["age", "bmi", "bp"])
    target = frame.to_numpy() @ np.array([1.0, -2.0, 0.5])
    regression = sklearn.LinearRegression().fit(frame, target)
    result = SHAP(regression, frame.iloc[:4], frame.iloc[:1], seed=0)
    assert result.input_names == [[["age", "bmi", "bp"]]]
    want = (frame.iloc[:4] - frame.iloc[0]).to_numpy() * regression.coef_
    np.testing.assert_allclose(result.get_result()[..., 0], want, atol=1e-5)

    classifier = sklearn.LogisticRegression().fit(frame, target > 0)
    probabilities = SHAP(classifier, frame.iloc[:3], frame, seed=0)
    assert probabilities.output_names == [["False", "True"]]
    np.testing.assert_allclose(
        probabilities.preds[0].numpy(), classifier.predict_proba(frame.iloc[:3]), rtol=1e-6
    )

    layer = nn.Linear(4, 2).double()
    direct = SHAP(layer, X, BACKGROUND[:1], seed=0).get_result()
    program = torch.export.export(layer, (X[:2],), dynamic_shapes=({0: torch.export.Dim("batch")},))
    for model in (Converter(layer, input_dim=(4,)), program, torch.jit.script(layer)):
        np.testing.assert_allclose(SHAP(model, X, BACKGROUND[:1], seed=0).get_result(), direct,
                                   atol=1e-5)  # fmt: skip
    by_function = SHAP(None, X, BACKGROUND[:1], pred_fun=lambda d: layer(torch.as_tensor(d)),
                       seed=0)  # fmt: skip
    np.testing.assert_allclose(by_function.get_result(), direct, atol=1e-6)
    with pytest.raises(TypeError, match="pred_fun"):
        SHAP("not a model", X)
