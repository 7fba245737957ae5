"""SHAP: Monte-Carlo Shapley values of any model (innsight's ``SHAP``, via fastshap).

The estimator of Štrumbelj & Kononenko (2014), as fastshap implements it: for each
feature ``j``, row ``x`` and simulation, draw a background row ``w`` from ``data_ref`` and
a random order of the features; ``b1`` takes ``x``'s values for ``j`` and the features
before it and ``w``'s for the rest, ``b2`` the same but ``w``'s value for ``j``; the
Shapley value of ``j`` is the mean of ``f(b1) − f(b2)`` over ``nsim`` simulations. Its
expectation is the interventional Shapley value with background ``data_ref``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from attribution._validation import check_bool, check_int
from attribution.methods.agnostic import AGNOSTIC_DOC, AgnosticMethod, Perturbation


class SHAP(AgnosticMethod):
    """Shapley values of any model, estimated by Monte-Carlo sampling (fastshap).

    Parameters
    ----------
    {agnostic}
    nsim : int, default=1
        Simulations per feature and row (fastshap's default); more give steadier values.
    adjust : bool, default=False
        Shift each row's values so they sum exactly to ``f(x) − mean f(data_ref)``: the
        gap is shared in proportion to each value's variance over the simulations (the
        limit of fastshap's adjustment, which leaves a share of about 1e-6 unassigned).
        Needs ``nsim >= 2``.

    Attributes
    ----------
    decomp_goal : ``f(x) − mean f(data_ref)`` for the selected outputs.

    Examples
    --------
    >>> import torch
    >>> from attribution import SHAP
    >>> model = torch.nn.Linear(4, 2)
    >>> x, background = torch.randn(3, 4), torch.randn(20, 4)
    >>> SHAP(model, x, background, nsim=5, seed=0).get_result().shape
    (3, 4, 2)
    """

    method_name = "SHAP"
    goal = "f(x) − mean f(data_ref)"
    value_name = "Shapley Value"

    def __init__(
        self,
        model: Any,
        data: Any,
        data_ref: Any = None,
        pred_fun: Callable | None = None,
        output_idx: Any = None,
        output_label: Any = None,
        channels_first: bool = True,
        input_dim: Any = None,
        input_names: Any = None,
        output_names: Any = None,
        *,
        nsim: int = 1,
        adjust: bool = False,
        feature_groups: Any = None,
        patch_size: Any = None,
        seed: int | None = None,
        verbose: bool = False,
        progress_callback: Callable[[int, int], None] | None = None,
        memory_budget: int | None = None,
    ) -> None:
        nsim = check_int(nsim, "nsim")
        adjust = check_bool(adjust, "adjust")
        if adjust and nsim < 2:
            raise ValueError(
                "adjust=True shares the gap by the variance over simulations: set nsim >= 2."
            )
        self._attribute(
            lambda p: estimate_shapley(p, nsim, adjust),
            locals(),
            fields={"nsim": str(nsim), "adjust": str(adjust)},
            with_goal=True,
        )


def estimate_shapley(p: Perturbation, nsim: int, adjust: bool) -> Tensor:
    """``(n, n_features, K)`` Shapley values; every output from the same coalitions."""
    n, groups = len(p.inputs), p.features.n_features
    tasks = nsim * n * groups  # (simulation, row, feature), row-major
    chunk = max(1, p.rows_per_call // 2)
    samples: Tensor | None = None
    p.progress.start(-(-tasks // chunk))
    for start in range(0, tasks, chunk):
        t = torch.arange(start, min(start + chunk, tasks))
        sim, row, feature = t // (n * groups), (t // groups) % n, t % groups
        background = p.references[torch.randint(len(p.references), (len(t),),
                                                generator=p.generator)]  # fmt: skip
        keys = torch.rand(len(t), groups, generator=p.generator, dtype=torch.float64)
        own = torch.nn.functional.one_hot(feature, groups).bool()
        before = keys < keys.gather(1, feature[:, None])
        x = p.inputs[row]
        with_j = torch.where(p.features.expand(before | own), x, background)
        without_j = torch.where(p.features.expand(before), x, background)
        out = p.predict(torch.cat([with_j, without_j]))
        if samples is None:
            samples = torch.zeros(nsim, n, groups, out.shape[1], dtype=torch.float64)
        samples[sim, row, feature] = out[: len(t)] - out[len(t) :]
        p.progress.step()
    values = samples.mean(0)
    if adjust:
        gap = p.goal - values.sum(1)
        variance = samples.var(0)
        total = variance.sum(1, keepdim=True)
        share = torch.where(total > 0, variance / total.clamp_min(1e-300), 1.0 / groups)
        values = values + gap[:, None, :] * share
    return values


SHAP.__doc__ = SHAP.__doc__.replace("{agnostic}", AGNOSTIC_DOC.strip())
