"""LIME and SHAP against lime, shap and Captum, in one process, on a tabular model.

Run from the repository root (``OMP_WAIT_POLICY=PASSIVE``, see the README)::

    python benchmarks/bench_agnostic.py [--quick] [--markdown]

The model: 10 features, 2 × 64 tanh, softmax over 3 classes (a scientist's classifier);
20 rows explained for all 3 outputs; 100 background / reference rows.

* LIME, 5000 perturbed samples per row, every feature: ours; lime's
  ``LimeTabularExplainer`` (quartile bins, as ours) once per row, all labels per call;
  Captum's ``Lime`` once per row and output (its interpretable model: a ridge).
* SHAP, the Monte-Carlo estimator of Štrumbelj & Kononenko with the same number of model
  evaluations (2 · features · nsim per row): ours and shap's ``SamplingExplainer`` (the
  same estimator); Captum's ``ShapleyValueSampling`` (permutations, one baseline row per
  call: the background mean) with as many evaluations. The error column is the largest
  distance from shap's exact interventional values (``shap.explainers.Exact``).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from harness import format_table, median_ms, parse_arguments
from torch import nn

from attribution import LIME, SHAP

FEATURES, CLASSES, ROWS, BACKGROUND, PERMUTATIONS = 10, 3, 20, 100, 5000


def make_case() -> tuple[nn.Module, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(FEATURES, 64),
        nn.Tanh(),
        nn.Linear(64, 64),
        nn.Tanh(),
        nn.Linear(64, CLASSES),
        nn.Softmax(dim=1),
    ).eval()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)
    background = rng.normal(size=(BACKGROUND, FEATURES)).astype(np.float32)
    return model, x, background


def predictions(model: nn.Module):
    def predict(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.as_tensor(rows, dtype=torch.float32)).numpy().astype(np.float64)

    return predict


def lime_peer(model, x, background):
    from lime.lime_tabular import LimeTabularExplainer

    explainer = LimeTabularExplainer(
        background,
        mode="classification",
        discretize_continuous=True,
        discretizer="quartile",
        random_state=0,
    )
    predict = predictions(model)
    return [
        explainer.explain_instance(
            row, predict, labels=range(CLASSES), num_features=FEATURES, num_samples=PERMUTATIONS
        )
        for row in x
    ]


def captum_lime(model, x):
    from captum.attr import Lime

    lime = Lime(model)
    inputs = torch.as_tensor(x)
    return [
        lime.attribute(
            inputs[i : i + 1], target=k, n_samples=PERMUTATIONS, perturbations_per_eval=PERMUTATIONS
        )
        for i in range(ROWS)
        for k in range(CLASSES)
    ]


def shap_sampling(model, x, background, nsim):
    import shap

    explainer = shap.SamplingExplainer(predictions(model), background)
    values = explainer.shap_values(x, nsamples=2 * FEATURES * nsim, silent=True)
    return np.stack(values, -1) if isinstance(values, list) else np.asarray(values)


def captum_shapley(model, x, background, nsim):
    from captum.attr import ShapleyValueSampling

    sampler = ShapleyValueSampling(model)
    baseline = torch.as_tensor(background.mean(0, keepdims=True))
    # one permutation costs FEATURES + 1 evaluations: as many as ours in all
    samples = max(1, round(2 * FEATURES * nsim / (FEATURES + 1)))
    return np.stack(
        [
            sampler.attribute(
                torch.as_tensor(x),
                baselines=baseline,
                target=k,
                n_samples=samples,
                perturbations_per_eval=FEATURES + 1,
            ).numpy()
            for k in range(CLASSES)
        ],
        -1,
    )


def exact_shapley(model, x, background) -> np.ndarray:
    import shap

    predict = predictions(model)
    masker = shap.maskers.Independent(background, BACKGROUND)
    return np.stack(
        [
            shap.explainers.Exact(lambda r, k=k: predict(r)[:, k], masker)(x).values
            for k in range(CLASSES)
        ],
        -1,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__.splitlines()[0], argv, models=False)
    import captum
    import lime
    import shap

    warnings.filterwarnings("ignore")
    model, x, background = make_case()
    print(
        f"torch {torch.__version__}, lime {getattr(lime, '__version__', '0.2')}, shap "
        f"{shap.__version__}, captum {captum.__version__}, {torch.get_num_threads()} threads"
    )
    rows = []
    ours_lime = median_ms(lambda: LIME(model, x, background, seed=0), args.settings)
    for peer, fn in (
        ("lime", lambda: lime_peer(model, x, background)),
        ("Captum Lime", lambda: captum_lime(model, x)),
    ):
        theirs = median_ms(fn, args.settings)
        rows.append(
            (
                "LIME",
                "5000 samples",
                peer,
                f"{ours_lime:.0f}",
                f"{theirs:.0f}",
                f"{ours_lime / theirs:.3f}",
                "",
                "",
            )
        )
    exact = exact_shapley(model, x, background)
    for nsim in (10, 100):
        ours = SHAP(model, x, background, nsim=nsim, seed=0).get_result()
        ours_ms = median_ms(
            lambda n=nsim: SHAP(model, x, background, nsim=n, seed=0), args.settings
        )
        for peer, fn in (
            ("shap Sampling", lambda n=nsim: shap_sampling(model, x, background, n)),
            ("Captum ShapleyValueSampling", lambda n=nsim: captum_shapley(model, x, background, n)),
        ):
            theirs = median_ms(fn, args.settings)
            error = np.abs(fn() - exact).max()
            rows.append(
                (
                    "SHAP",
                    f"nsim={nsim}",
                    peer,
                    f"{ours_ms:.0f}",
                    f"{theirs:.0f}",
                    f"{ours_ms / theirs:.3f}",
                    f"{np.abs(ours - exact).max():.3g}",
                    f"{error:.3g}",
                )
            )
    header = ("method", "setting", "peer", "ours ms", "peer ms", "ratio", "our error", "peer error")
    print(format_table(header, rows, args.markdown, numeric=(3, 4, 5, 6, 7)))
    slower = [f"{r[0]} vs {r[2]} ({r[1]})" for r in rows if float(r[5]) > 1.0]
    print("\nEvery ratio <= 1.0." if not slower else f"\nRatio > 1.0 for: {', '.join(slower)}.")


if __name__ == "__main__":
    main()
