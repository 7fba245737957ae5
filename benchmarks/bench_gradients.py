"""Gradient-family speed on the CPU: ours against Captum, for all 10 outputs of two models.

Run from the repository root::

    python benchmarks/bench_gradients.py              # full run (several minutes)
    python benchmarks/bench_gradients.py --quick      # fewer repeats, for a first look
    python benchmarks/bench_gradients.py --markdown   # the table as markdown
    python benchmarks/bench_gradients.py --models cnn --memory-budget 128

What it measures: the wall time to explain *all 10 outputs* with

* Gradient (Captum: ``Saliency``, ``abs=False``),
* SmoothGrad with ``n = 50`` noisy copies and the same absolute noise σ =
  0.1 · (max(x) − min(x)) (Captum: ``NoiseTunnel(Saliency)``, ``nt_type="smoothgrad"``),
* Integrated Gradients with ``n = 50`` right-Riemann steps from a zero reference
  (Captum: ``IntegratedGradients``, ``method="riemann_right"``),

on an MLP (batch 256, 20 features, 3 × 128 ReLU, 10 outputs) and a CNN (batch 32,
3 × 32 × 32, two 3 × 3 convolutions, max pooling, two dense layers, 10 outputs), both
float32 in eval mode with fixed seeds. "ours" is the converter-based class
(``Gradient(conv, x, output_idx=...)`` etc., the :class:`~attribution.Converter` built once
outside the timing); "torch_*" is the conversion-free function (``torch_grad`` etc.).
Captum is called once per target in a Python loop, as its users must; its batching
options (``nt_samples_batch_size``, ``internal_batch_size``) are each tried once and the
fastest is timed in full, so Captum gets its best setting.

Every case gets warm-up calls, then the median of several timed calls (5; fewer for
slow cases so a case takes about 20 s at most). Threads are torch's default. Ratios
below 1.0 mean we are faster. Before timing, the script prints the largest absolute
difference to Captum on the first output for the deterministic methods (Gradient and
IG), as a check that both compute the same thing.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import captum
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
from harness import (
    N_OUTPUTS,
    Case,
    Settings,
    compare_with_peers,
    format_table,
    median_ms,
    parse_arguments,
    repeats,
    seconds,
    warm_up,
)
from torch import Tensor, nn

from attribution import (
    Converter,
    Gradient,
    IntegratedGradient,
    SmoothGrad,
    torch_grad,
    torch_intgrad,
    torch_smoothgrad,
)

N_SAMPLES = 50
NOISE_LEVEL = 0.1


@dataclass(frozen=True)
class Row:
    """Median times in ms of one (model, method)."""

    model: str
    method: str
    ours: float
    direct: float
    captum: float
    captum_setting: str


# --- timing -----------------------------------------------------------------------------


def fastest_ms(
    options: dict[str, Callable[[], object]], settings: Settings
) -> tuple[float, str, dict[str, float]]:
    """The fastest of several settings of one computation.

    Each option is warmed up and timed once; the fastest is then timed in full (its
    screening call counts as one repeat). Returns its median in ms, its label and the
    screening times in ms of all options.
    """
    screened = {}
    for label, fn in options.items():
        warm_up(fn)
        screened[label] = seconds(fn)
    best = min(screened, key=screened.__getitem__)
    times = [screened[best]]
    times += [seconds(options[best]) for _ in range(repeats(screened[best], settings) - 1)]
    return (
        1e3 * statistics.median(times),
        best,
        {label: 1e3 * s for label, s in screened.items()},
    )


# --- the computations -------------------------------------------------------------------


def captum_gradient(model: nn.Module, x: Tensor) -> list[Tensor]:
    saliency = Saliency(model)
    return [saliency.attribute(x, target=k, abs=False) for k in range(N_OUTPUTS)]


def captum_smoothgrad(
    model: nn.Module, x: Tensor, sigma: float, batch_size: int | None
) -> list[Tensor]:
    tunnel = NoiseTunnel(Saliency(model))
    return [
        tunnel.attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=N_SAMPLES,
            nt_samples_batch_size=batch_size,
            stdevs=sigma,
            target=k,
            abs=False,
        )
        for k in range(N_OUTPUTS)
    ]


def captum_intgrad(model: nn.Module, x: Tensor, internal_batch_size: int | None) -> list[Tensor]:
    ig = IntegratedGradients(model)
    return [
        ig.attribute(
            x,
            target=k,
            n_steps=N_SAMPLES,
            method="riemann_right",
            internal_batch_size=internal_batch_size,
        )
        for k in range(N_OUTPUTS)
    ]


def check_agreement(case: Case) -> list[tuple[str, float, float]]:
    """Largest |ours − Captum| on output 0 for Gradient and IG, with Captum's largest |value|."""
    model, x = case.model, case.x
    conv = Converter(model, input_dim=case.input_dim)
    targets = list(range(N_OUTPUTS))
    reference = {
        "Gradient": Saliency(model).attribute(x, target=0, abs=False),
        "IntegratedGradient": IntegratedGradients(model).attribute(
            x, target=0, n_steps=N_SAMPLES, method="riemann_right"
        ),
    }
    ours = {
        ("Gradient", "ours"): Gradient(conv, x, output_idx=targets).get_result("torch"),
        ("Gradient", "torch_grad"): torch_grad(model, x),
        ("IntegratedGradient", "ours"): IntegratedGradient(
            conv, x, n=N_SAMPLES, output_idx=targets
        ).get_result("torch"),
        ("IntegratedGradient", "torch_intgrad"): torch_intgrad(model, x, n=N_SAMPLES),
    }
    return [
        (
            f"{case.name} {method} ({which})",
            (result[..., 0] - reference[method]).abs().max().item(),
            reference[method].abs().max().item(),
        )
        for (method, which), result in ours.items()
    ]


def run_case(case: Case, settings: Settings, memory_budget: int | None) -> list[Row]:
    """Time the three methods on one model; prints Captum's screened options."""
    model, x = case.model, case.x
    conv = Converter(model, input_dim=case.input_dim)
    targets = list(range(N_OUTPUTS))
    sigma = NOISE_LEVEL * (x.max() - x.min()).item()
    batch = len(x)
    budget = {"memory_budget": memory_budget}

    methods: list[tuple[str, Callable[[], object], Callable[[], object], dict]] = [
        (
            "Gradient",
            lambda: Gradient(conv, x, output_idx=targets, **budget),
            lambda: torch_grad(model, x),
            {"-": lambda: captum_gradient(model, x)},
        ),
        (
            "SmoothGrad",
            lambda: SmoothGrad(conv, x, n=N_SAMPLES, output_idx=targets, **budget),
            lambda: torch_smoothgrad(model, x, n=N_SAMPLES),
            {
                f"nt_samples_batch_size={size}": (
                    lambda size=size: captum_smoothgrad(model, x, sigma, size)
                )
                for size in (None, 5, 10)
            },
        ),
        (
            "IntegratedGradient",
            lambda: IntegratedGradient(conv, x, n=N_SAMPLES, output_idx=targets, **budget),
            lambda: torch_intgrad(model, x, n=N_SAMPLES),
            {
                f"internal_batch_size={size}": (lambda size=size: captum_intgrad(model, x, size))
                for size in (None, batch, 5 * batch, 10 * batch)
            },
        ),
    ]
    rows = []
    for method, ours, direct, captum_options in methods:
        ours_ms = median_ms(ours, settings)
        direct_ms = median_ms(direct, settings)
        captum_ms, setting, screened = fastest_ms(captum_options, settings)
        if len(screened) > 1:
            tried = ", ".join(f"{label}: {ms:.0f}" for label, ms in screened.items())
            print(f"  {case.name} {method}: Captum options tried once (ms): {tried}", flush=True)
        rows.append(Row(case.name, method, ours_ms, direct_ms, captum_ms, setting))
    return rows


# --- output ------------------------------------------------------------------------------

HEADER = (
    "model",
    "method",
    "ours (ms)",
    "ours torch_* (ms)",
    "captum (ms)",
    "ours/captum",
    "torch_*/captum",
    "captum setting",
)


def _cells(row: Row) -> tuple[str, ...]:
    return (
        row.model,
        row.method,
        f"{row.ours:.1f}",
        f"{row.direct:.1f}",
        f"{row.captum:.1f}",
        f"{row.ours / row.captum:.3f}",
        f"{row.direct / row.captum:.3f}",
        row.captum_setting,
    )


def table(rows: list[Row], markdown: bool) -> str:
    return format_table(HEADER, [_cells(row) for row in rows], markdown, numeric=range(2, 7))


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__.split("\n\n")[0], argv)
    # Captum asks for gradients on the input itself and says so on every call.
    warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")

    compare_with_peers(
        args,
        f"captum {captum.__version__}",
        check_agreement,
        run_case,
        table,
        lambda r: f"{r.model} {r.method}" if max(r.ours, r.direct) > r.captum else None,
    )


if __name__ == "__main__":
    main()
