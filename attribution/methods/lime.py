"""LIME: local linear surrogates of any model (innsight's ``LIME``, via R's lime).

With lime's defaults, as innsight calls it: each feature of ``data_ref`` is cut into
``n_bins`` quantile bins; a perturbation draws a bin per feature by its frequency and a
value uniformly inside it; each perturbation is weighted by its similarity ``1 − Gower
distance`` to the explained row; the surrogate is a ridge regression (glmnet's, on
standardised features, λ = ``ridge_lambda``) of the predictions on the indicators "in the
same bin as the row", with every feature kept in input order. Its coefficients are the
result ("Weight").

With ``feature_groups`` or ``patch_size`` (images, signals) a perturbation switches
groups on or off at random (off: the mean of ``data_ref``), weighted by lime's image
kernel on the cosine distance, and the surrogate is fitted on the on/off indicators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribution._validation import check_int, check_number
from attribution.methods.agnostic import AGNOSTIC_DOC, AgnosticMethod, Perturbation

IMAGE_KERNEL_WIDTH = 0.25
"""lime's kernel width for superpixels (``LimeImageExplainer``)."""


class LIME(AgnosticMethod):
    """Local Interpretable Model-agnostic Explanations of any model.

    Parameters
    ----------
    {agnostic}
    output_type : {"classification", "regression"}, default=None
        None: inferred as innsight does (classification for models ending in softmax or
        sigmoid, and for scikit-learn classifiers, whose ``predict_proba`` is explained).
    n_permutations : int, default=5000
        Perturbed samples per row (the row itself included), as lime's default.
    n_bins : int, default=4
        Quantile bins per feature (lime's default).
    ridge_lambda : float, default=0.001
        The ridge penalty of the surrogate (lime's glmnet call).

    Notes
    -----
    The perturbed samples are drawn once and shared by all rows: each row's surrogate
    has lime's distribution, and the model is called ``n_permutations − 1 + n`` times
    instead of ``n · n_permutations``. All selected outputs are fitted in one weighted
    least-squares solve. glmnet also scales λ by each output's standard deviation; at
    λ = 0.001 that changes the weights by far less than the sampling does, and leaving it
    out lets one solve serve every output.

    Examples
    --------
    >>> import torch
    >>> from attribution import LIME
    >>> model = torch.nn.Linear(4, 2)
    >>> x, reference = torch.randn(3, 4), torch.randn(50, 4)
    >>> LIME(model, x, reference, n_permutations=500, seed=0).get_result().shape
    (3, 4, 2)
    """

    method_name = "LIME"
    value_name = "Weight"

    def __init__(
        self,
        model: Any,
        data: Any,
        data_ref: Any = None,
        output_type: str | None = None,
        pred_fun: Callable | None = None,
        output_idx: Any = None,
        output_label: Any = None,
        channels_first: bool = True,
        input_dim: Any = None,
        input_names: Any = None,
        output_names: Any = None,
        *,
        n_permutations: int = 5000,
        n_bins: int = 4,
        ridge_lambda: float = 0.001,
        feature_groups: Any = None,
        patch_size: Any = None,
        seed: int | None = None,
        verbose: bool = False,
        progress_callback: Callable[[int, int], None] | None = None,
        memory_budget: int | None = None,
    ) -> None:
        n_permutations = check_int(n_permutations, "n_permutations", minimum=2)
        n_bins = check_int(n_bins, "n_bins")
        ridge_lambda = check_number(ridge_lambda, "ridge_lambda")
        self._attribute(
            lambda p: (grouped_weights if p.features.grouped else binned_weights)(
                p, n_permutations, n_bins, ridge_lambda
            ),
            locals(),
            fields={
                "n_permutations": str(n_permutations),
                "n_bins": str(n_bins),
                "ridge_lambda": str(ridge_lambda),
            },
            with_goal=False,
        )


class QuantileBins:
    """lime's bins of one feature: the unique ``n_bins`` quantiles of the reference
    values (R's type 7), and how often each bin holds a reference value."""

    def __init__(self, values: np.ndarray, n_bins: int) -> None:
        self.cuts = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)))
        self.constant = len(self.cuts) == 1
        if not self.constant:
            counts = np.bincount(self.bin_of(values), minlength=len(self.cuts) - 1)
            self.frequency = counts / len(values)

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value, the outer bins open-ended (as lime's ``numerify``)."""
        return np.searchsorted(self.cuts[1:-1], values, side="left")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` values: a bin by its frequency, then uniformly inside it."""
        if self.constant:
            return np.full(n, self.cuts[0])
        bins = rng.choice(len(self.frequency), size=n, p=self.frequency)
        low, width = self.cuts[bins], np.diff(self.cuts)[bins]
        return low + width * rng.random(n)


def binned_weights(p: Perturbation, n_permutations: int, n_bins: int, ridge: float) -> Tensor:
    """lime's weights of every value of every row, ``(n, n_values, K)``."""
    rng = np.random.default_rng(int(torch.randint(2**62, (), generator=p.generator)))
    references = p.references.numpy()
    bins = [QuantileBins(references[:, f], n_bins) for f in range(references.shape[1])]
    samples = np.stack([b.sample(n_permutations - 1, rng) for b in bins], axis=1)
    sample_bins = np.stack([b.bin_of(samples[:, f]) for f, b in enumerate(bins)], axis=1)
    varies = torch.tensor([not b.constant for b in bins])
    rows = max(1, p.rows_per_call // (n_permutations * 4))
    p.progress.start(1 + -(-len(p.inputs) // rows))
    sample_predictions = p.predict(torch.from_numpy(samples))
    p.progress.step()
    perturbed = torch.from_numpy(samples)
    low, high = perturbed.min(0).values, perturbed.max(0).values
    parts = []
    for start in range(0, len(p.inputs), rows):
        x = p.inputs[start : start + rows]
        x_bins = np.stack([b.bin_of(x[:, f].numpy()) for f, b in enumerate(bins)], axis=1)
        same = torch.from_numpy(sample_bins[None] == x_bins[:, None]).double() * varies
        design = torch.cat([varies.double().expand(len(x), 1, -1), same], dim=1)
        spread = torch.maximum(high, x) - torch.minimum(low, x)  # Gower's ranges
        scaled = (perturbed[None] - x[:, None]).abs() / spread.clamp_min(1e-300)[:, None]
        counted = (spread > 0)[:, None]
        distance = (scaled * counted).sum(-1) / counted.sum(-1).clamp_min(1)
        weights = torch.cat([torch.ones(len(x), 1, dtype=torch.float64), 1 - distance], 1)
        targets = torch.cat(
            [
                p.outputs[start : start + rows, None],
                sample_predictions.expand(len(x), -1, -1),
            ],
            dim=1,
        )
        parts.append(weighted_ridge(design, targets, weights, ridge))
        p.progress.step()
    return torch.cat(parts)


def grouped_weights(p: Perturbation, n_permutations: int, n_bins: int, ridge: float) -> Tensor:
    """Weights of feature groups switched on and off, ``(n, n_features, K)``."""
    groups = p.features.n_features
    on = torch.rand(n_permutations, groups, generator=p.generator) < 0.5
    on[0] = True
    cosine = on.sum(1) / (on.sum(1).clamp_min(1) ** 0.5 * groups**0.5)
    distance = torch.where(on.any(1), 1 - cosine, torch.ones(()))
    weights = torch.sqrt(torch.exp(-(distance.double() ** 2) / IMAGE_KERNEL_WIDTH**2))
    off = p.references.mean(0)
    mask = p.features.expand(on)
    rows = max(1, p.rows_per_call // n_permutations)
    p.progress.start(1 + -(-len(p.inputs) // rows))
    targets = []
    for start in range(0, len(p.inputs), rows):
        x = p.inputs[start : start + rows]
        perturbed = torch.where(mask[None], x[:, None], off).flatten(0, 1)
        targets.append(p.predict(perturbed).reshape(len(x), n_permutations, -1))
        p.progress.step()
    targets = torch.cat(targets)  # (n, P, K): one design for every row and output
    n, _, k = targets.shape
    stacked = targets.permute(1, 0, 2).reshape(n_permutations, n * k)
    fitted = weighted_ridge(on.double()[None], stacked[None], weights[None], ridge)[0]
    p.progress.step()
    return fitted.reshape(groups, n, k).permute(1, 0, 2)


def weighted_ridge(design: Tensor, targets: Tensor, weights: Tensor, ridge: float) -> Tensor:
    """glmnet's ridge coefficients (intercept unpenalised, penalty on standardised
    features), batched: ``design (b, P, F)``, ``targets (b, P, K)``, ``weights (b, P)``
    give ``(b, F, K)``, every right-hand side from one solve. Features that never vary
    get 0."""
    share = (weights / weights.sum(1, keepdim=True))[..., None]
    centred = design - (share * design).sum(1, keepdim=True)
    centred_targets = targets - (share * targets).sum(1, keepdim=True)
    gram = centred.transpose(1, 2) @ (share * centred)
    variance = torch.diagonal(gram, dim1=1, dim2=2)
    constant = variance <= 1e-12 * variance.amax(1, keepdim=True).clamp_min(1e-300)
    penalty = torch.where(constant, torch.ones_like(variance), ridge * variance)
    gram = gram + torch.diag_embed(penalty)
    right = centred.transpose(1, 2) @ (share * centred_targets)
    right = torch.where(constant[..., None], torch.zeros_like(right), right)
    return torch.linalg.solve(gram, right)


LIME.__doc__ = LIME.__doc__.replace("{agnostic}", AGNOSTIC_DOC.strip())
