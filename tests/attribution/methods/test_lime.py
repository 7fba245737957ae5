"""LIME: lime's bins and perturbations, the surrogate fit against lime's own fitting code,
exact weights where the surrogate is exact, and every kind of model."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from attribution import LIME
from attribution.methods.lime import QuantileBins, weighted_ridge

torch.manual_seed(0)
MLP = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
X = torch.randn(5, 4, dtype=torch.float64)
REFERENCE = torch.randn(200, 4, dtype=torch.float64)


def test_bins_are_lime_quantile_bins_and_samples_stay_inside_them():
    values = np.random.default_rng(0).normal(size=101)
    bins = QuantileBins(values, 4)
    np.testing.assert_allclose(bins.cuts, np.percentile(values, [0, 25, 50, 75, 100]))
    np.testing.assert_allclose(bins.frequency.sum(), 1.0)
    assert bins.frequency.min() > 0.2  # quartiles hold about a quarter each
    # the outer bins are open-ended, and a cut belongs to the bin below it (R's cut)
    assert list(bins.bin_of(np.array([-1e9, bins.cuts[1], bins.cuts[1] + 1e-9, 1e9]))) == [
        0, 0, 1, 3,
    ]  # fmt: skip
    drawn = bins.sample(4000, np.random.default_rng(1))
    assert drawn.min() >= bins.cuts[0] and drawn.max() <= bins.cuts[-1]
    shares = np.bincount(bins.bin_of(drawn), minlength=4) / 4000
    np.testing.assert_allclose(shares, bins.frequency, atol=0.03)
    assert QuantileBins(np.ones(10), 4).constant


def test_the_surrogate_fit_equals_limes_own_ridge_fit():
    lime_base = pytest.importorskip("lime.lime_base")
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    design = (rng.random((300, 5)) < 0.5).astype(float)
    targets = design @ rng.normal(size=(5, 2)) + rng.normal(scale=0.1, size=(300, 2))
    weights = rng.random(300)
    ridge = 0.5  # large enough that the penalty's form matters
    ours = weighted_ridge(*(torch.tensor(a)[None] for a in (design, targets, weights)), ridge)[0]
    # glmnet's penalty is on standardised features: lime's Ridge on design / std does it
    share = weights / weights.sum()
    std = np.sqrt(share @ (design - share @ design) ** 2)
    explainer = lime_base.LimeBase(kernel_fn=lambda weights_: weights_)
    for k in range(2):
        _, coefficients, _, _ = explainer.explain_instance_with_data(
            design / std, targets, weights, k, 5, feature_selection="none",
            model_regressor=Ridge(alpha=ridge * weights.sum()),
        )  # fmt: skip
        theirs = np.zeros(5)
        for feature, value in coefficients:
            theirs[feature] = value / std[feature]
        np.testing.assert_allclose(ours[:, k].numpy(), theirs, rtol=1e-8, atol=1e-10)


def test_a_feature_the_model_ignores_gets_almost_no_weight():
    def pred_fun(frame):
        values = frame.to_numpy()
        return np.stack([2.0 * (values[:, 0] > 0), values[:, 1] ** 2], axis=1)

    frame = pd.DataFrame(REFERENCE.numpy(), columns=["a", "b", "c", "d"])
    result = LIME(None, frame.iloc[:4], frame, pred_fun=pred_fun, seed=0)
    weights = result.get_result()
    assert result.input_names == [[["a", "b", "c", "d"]]]
    first = np.abs(weights[:, 0, 0])
    assert first.min() > 1.0  # "a in the row's bin" moves the step by about 2
    assert np.abs(weights[:, 1:, 0]).max() < 0.1 * first.min()
    assert np.abs(weights[:, [0, 2, 3], 1]).max() < 0.1 * np.abs(weights[:, 1, 1]).max()


def test_groups_switched_on_and_off_recover_an_additive_model_exactly():
    torch.manual_seed(2)
    layer = nn.Linear(2 * 4 * 4, 2).double()
    model = nn.Sequential(nn.Flatten(), layer)
    images = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    reference = torch.randn(10, 2, 4, 4, dtype=torch.float64)
    result = LIME(model, images, reference, patch_size=2, ridge_lambda=1e-12,
                  n_permutations=200, seed=0)  # fmt: skip
    weights = result.get_result()
    off = reference.mean(0, keepdim=True)
    per_value = ((images - off).flatten(1)[:, :, None] * layer.weight.detach().T[None]).numpy()
    per_value = per_value.reshape(3, 2, 4, 4, 2)
    np.testing.assert_allclose(weights[:, 0, 0, 0], per_value[:, :, :2, :2].sum((1, 2, 3)),
                               rtol=1e-6, atol=1e-8)  # fmt: skip
    assert np.allclose(weights[:, :, 2:, 2:], weights[:, :1, 3:, 3:])


def test_seed_output_selection_and_fields():
    result = LIME(MLP, X, REFERENCE, output_idx=[1], n_permutations=500, seed=4)
    again = LIME(MLP, X, REFERENCE, output_idx=[1], n_permutations=500, seed=4)
    np.testing.assert_array_equal(result.get_result(), again.get_result())
    assert (result.method_name, result.value_name) == ("LIME", "Weight")
    with torch.no_grad():
        np.testing.assert_allclose(result.preds[0].numpy(), MLP(X)[:, [1]].numpy(), rtol=1e-6)
    assert result.decomp_goal == [None]
    assert result.get_result().shape == (5, 4, 1)
    with pytest.raises(ValueError, match="output_type"):
        LIME(MLP, X, output_type="probabilities")


def test_output_type_is_inferred_as_innsight_does():
    softmax = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)).double()
    assert LIME(softmax, X, n_permutations=50, seed=0)._other_fields["output_type"] == (
        "classification"
    )
    assert LIME(MLP, X, n_permutations=50, seed=0)._other_fields["output_type"] == "regression"


def test_a_scikit_learn_pipeline_on_named_columns_is_explained_by_its_probabilities():
    pytest.importorskip("sklearn")
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 3)), columns=["age", "bmi", "bp"])
    labels = np.where(frame["bmi"] > 0, "high", "low")
    pipeline = make_pipeline(
        ColumnTransformer([("scaled", StandardScaler(), ["bmi", "age", "bp"])]),
        RandomForestClassifier(n_estimators=20, random_state=0),
    ).fit(frame, labels)
    result = LIME(pipeline, frame.iloc[:3], frame, n_permutations=1000, seed=0)
    assert result.output_names == [["high", "low"]]
    assert result._other_fields["output_type"] == "classification"
    np.testing.assert_allclose(
        result.preds[0].numpy(), pipeline.predict_proba(frame.iloc[:3]), rtol=1e-6
    )
    weights = np.abs(result.get_result())
    assert (weights[:, 1] > weights[:, 0]).all() and (weights[:, 1] > weights[:, 2]).all()
