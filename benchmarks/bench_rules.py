"""Rule-based methods on the CPU: ours against Captum and Zennit, for all 10 outputs.

Run from the repository root::

    python benchmarks/bench_rules.py              # full run (a few minutes)
    python benchmarks/bench_rules.py --quick      # fewer repeats, for a first look
    python benchmarks/bench_rules.py --markdown   # the table as markdown
    python benchmarks/bench_rules.py --models cnn --memory-budget 128

What it measures: the wall time to explain *all 10 outputs* with

* DeepLift (rescale, zero reference; Captum: ``DeepLift``, zero baselines),
* LRP with the epsilon rule, ε = 0.01 on every dense and convolutional layer (Captum:
  ``LRP`` with ``EpsilonRule(0.01)`` attached to those layers, its default rules elsewhere;
  Zennit: a ``LayerMapComposite`` of its base map - activations ``Pass`` - and
  ``Epsilon(0.01)`` for ``Linear``/convolutions, with the ``Gradient`` attributor seeded
  with the one-hot output times the output),
* DeepSHAP with 100 reference rows on the CNN (Captum: ``DeepLiftShap`` with the same 100
  baselines),

on an MLP (batch 256, 20 features, 3 × 128 ReLU, 10 outputs) and a CNN (batch 32,
3 × 32 × 32, two 3 × 3 convolutions, max pooling, two dense layers, 10 outputs), both
float32 in eval mode with fixed seeds (the models of ``bench_gradients.py``). Ours builds
the :class:`~attribution.Converter` once outside the timing and explains the 10 outputs in
one call; the peers are called once per target in a Python loop, as their users must.
Captum's LRP refuses ``nn.Flatten``, so it gets a copy of the CNN whose ``forward`` calls
``torch.flatten`` (same weights). Captum's ``DeepLiftShap`` has no batching option; it is
given 1, 4 or all 32 images per call (each call expands them by the 100 baselines), each
setting is screened once on the first target and the fastest is timed in full, so Captum
gets its best setting (the 32-image setting alone needs about 12 GB of memory).

Every case gets warm-up calls, then the median of several timed calls (5; fewer for
slow cases so a case takes about 20 s at most, but at least 3). Threads are torch's
default. Ratios below 1.0 mean we are faster. Before timing, the script prints the
largest absolute difference to each peer on the first output (not timed), to show that
like is compared with like. Max pooling: Captum's DeepLift has its own max-pool rule
(it splits Δout between the maxima of x and of the reference, which keeps
summation-to-delta), ours passes the multiplier to the maximum of x (innsight's
``winner_takes_all=TRUE``). In the benchmark CNN the max pooling reads a ReLU's output,
and there Captum's rule is silently lost (the ReLU's tensor hook captures the incoming
gradient before the max-pool hook replaces it), so Captum also routes to the maximum of
x and both agree to rounding; the extra line "Captum max-pool rule in effect" runs Captum
on a copy with ``x * 1`` between the ReLU and the max pooling, where its rule applies,
and shows the size of the genuine difference.
"""

from __future__ import annotations

import copy
import importlib
import importlib.metadata
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import captum
import torch
from captum.attr import LRP as CaptumLRP
from captum.attr import DeepLift as CaptumDeepLift
from captum.attr import DeepLiftShap
from captum.attr._utils.lrp_rules import EpsilonRule
from harness import (
    N_OUTPUTS,
    SEED,
    Case,
    Settings,
    compare_with_peers,
    format_table,
    median_ms,
    parse_arguments,
    repeats,
    seconds,
)
from support.peers import import_zennit  # harness put tests/ on the path
from torch import Tensor, nn

from attribution import LRP, Converter, DeepLift, DeepSHAP

zennit = import_zennit()
from zennit.attribution import Gradient as ZennitGradient  # noqa: E402
from zennit.composites import LayerMapComposite, layer_map_base  # noqa: E402
from zennit.rules import Epsilon  # noqa: E402
from zennit.types import Convolution  # noqa: E402

EPSILON = 0.01
N_REFS = 100


@dataclass(frozen=True)
class Row:
    """Median times in ms of ours and one peer on one (model, method)."""

    model: str
    method: str
    ours: float
    peer: str
    peer_ms: float
    note: str


class FunctionalFlatten(nn.Module):
    """A sequential model whose ``nn.Flatten`` is replaced by ``torch.flatten`` in
    ``forward`` (Captum's LRP has no rule for ``nn.Flatten`` and refuses it)."""

    def __init__(self, model: nn.Sequential) -> None:
        super().__init__()
        layers = list(copy.deepcopy(model))
        cut = next(i for i, layer in enumerate(layers) if isinstance(layer, nn.Flatten))
        self.features = nn.Sequential(*layers[:cut])
        self.head = nn.Sequential(*layers[cut + 1 :])

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def for_captum_lrp(model: nn.Module) -> nn.Module:
    """A copy of ``model`` that Captum's LRP accepts, with ``EpsilonRule(ε)`` on every
    dense and convolutional layer (one rule object per layer)."""
    has_flatten = any(isinstance(m, nn.Flatten) for m in model.modules())
    copied = FunctionalFlatten(model) if has_flatten else copy.deepcopy(model)
    for module in copied.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            module.rule = EpsilonRule(epsilon=EPSILON)
    return copied.eval()


def zennit_composite() -> LayerMapComposite:
    """Zennit's base map (activations pass, average pooling normalised, ...) with
    ``Epsilon(ε)`` on dense and convolutional layers; max pooling keeps its gradient."""
    rules = [(Convolution, Epsilon(epsilon=EPSILON)), (nn.Linear, Epsilon(epsilon=EPSILON))]
    return LayerMapComposite(layer_map=[*layer_map_base(), *rules])


class Copy(nn.Module):
    """``x * 1``: a new tensor, so that Captum's hooks of the modules around it do not
    share a tensor."""

    def forward(self, x: Tensor) -> Tensor:
        return x * 1.0


def with_copy_before_max_pooling(model: nn.Sequential) -> nn.Sequential:
    """The same model with :class:`Copy` before every ``MaxPool2d``: Captum's DeepLift then
    applies its max-pool rule, which a directly preceding ReLU's hook otherwise discards."""
    layers = []
    for module in model:
        if isinstance(module, nn.MaxPool2d):
            layers.append(Copy())
        layers.append(module)
    return nn.Sequential(*layers).eval()


def reference_rows(case: Case) -> Tensor:
    """DeepSHAP's 100 reference rows (seeded draws like the data)."""
    generator = torch.Generator().manual_seed(SEED + 1)
    return torch.randn(N_REFS, *case.input_dim, generator=generator)


def best_of(
    options: dict[str, Callable[[range], object]], targets: range, settings: Settings
) -> tuple[float, str, dict[str, float]]:
    """The fastest of several settings of a slow per-target computation.

    Each option is screened by one call on the first target (which also warms it up); the
    fastest is then timed in full on all ``targets``. Returns its median in ms, its label
    and the screening times in ms.
    """
    screened = {
        label: 1e3 * seconds(lambda fn=fn: fn(targets[:1])) for label, fn in options.items()
    }
    best = min(screened, key=screened.__getitem__)
    estimate = screened[best] * len(targets) / 1e3
    times = [seconds(lambda: options[best](targets)) for _ in range(repeats(estimate, settings))]
    return 1e3 * statistics.median(times), best, screened


# --- the peers' computations (one call per target) ----------------------------------------


def captum_deeplift(model: nn.Module, x: Tensor, targets: range) -> list[Tensor]:
    deeplift = CaptumDeepLift(model)
    return [deeplift.attribute(x, baselines=torch.zeros_like(x[:1]), target=k) for k in targets]


def captum_lrp(model: nn.Module, x: Tensor, targets: range) -> list[Tensor]:
    lrp = CaptumLRP(model)
    return [lrp.attribute(x, target=k) for k in targets]


def zennit_lrp(model: nn.Module, x: Tensor, targets: range) -> list[Tensor]:
    eye = torch.eye(N_OUTPUTS, dtype=x.dtype)
    with ZennitGradient(model, zennit_composite()) as attributor:
        return [attributor(x, lambda out, k=k: out * eye[k])[1] for k in targets]


def captum_deepliftshap(
    model: nn.Module, x: Tensor, refs: Tensor, targets: range, images_per_call: int
) -> list[Tensor]:
    shap = DeepLiftShap(model)
    return [
        torch.cat(
            [
                shap.attribute(x[i : i + images_per_call], baselines=refs, target=k)
                for i in range(0, len(x), images_per_call)
            ]
        )
        for k in targets
    ]


# --- agreement (not timed) -----------------------------------------------------------------


def check_agreement(case: Case) -> list[tuple[str, float, float]]:
    """Largest |ours − peer| on output 0 per method and peer, with the peer's largest |value|."""
    model, x = case.model, case.x
    conv = Converter(model, input_dim=case.input_dim)
    first = range(1)
    lines = []

    def compare(label: str, ours: Tensor, peer: Tensor) -> None:
        diff = (ours - peer).abs().max().item()
        lines.append((f"{case.name} {label}", diff, peer.abs().max().item()))

    ours_deeplift = DeepLift(conv, x, output_idx=[0]).get_result("torch")[..., 0]
    compare("DeepLift vs Captum DeepLift", ours_deeplift, captum_deeplift(model, x, first)[0])
    if any(isinstance(m, nn.MaxPool2d) for m in model.modules()):
        copied = with_copy_before_max_pooling(model)
        compare(
            "DeepLift vs Captum max-pool rule in effect",
            ours_deeplift,
            captum_deeplift(copied, x, first)[0],
        )
    ours_lrp = LRP(conv, x, output_idx=[0], rule_name="epsilon", rule_param=EPSILON)
    ours_lrp = ours_lrp.get_result("torch")[..., 0]
    compare("LRP-eps vs Captum LRP", ours_lrp, captum_lrp(for_captum_lrp(model), x, first)[0])
    compare("LRP-eps vs Zennit", ours_lrp, zennit_lrp(model, x, first)[0])
    if case.name == "CNN":
        refs = reference_rows(case)
        ours_shap = DeepSHAP(conv, x, data_ref=refs, output_idx=[0]).get_result("torch")[..., 0]
        compare(
            "DeepSHAP vs Captum DeepLiftShap",
            ours_shap,
            captum_deepliftshap(model, x, refs, first, 4)[0],
        )
    return lines


# --- timing of one model ---------------------------------------------------------------------


def run_case(case: Case, settings: Settings, memory_budget: int | None) -> list[Row]:
    """Time ours and the peers on one model; prints Captum's screened options."""
    model, x = case.model, case.x
    conv = Converter(model, input_dim=case.input_dim)
    targets = range(N_OUTPUTS)
    idx = list(targets)
    budget = {"memory_budget": memory_budget}
    lrp_model = for_captum_lrp(model)
    lrp_note = "torch.flatten copy" if isinstance(lrp_model, FunctionalFlatten) else "-"

    rows = []
    ours_ms = median_ms(lambda: DeepLift(conv, x, output_idx=idx, **budget), settings)
    peer_ms = median_ms(lambda: captum_deeplift(model, x, targets), settings)
    rows.append(Row(case.name, "DeepLift", ours_ms, "Captum DeepLift", peer_ms, "-"))

    ours_ms = median_ms(
        lambda: LRP(conv, x, output_idx=idx, rule_name="epsilon", rule_param=EPSILON, **budget),
        settings,
    )
    peer_ms = median_ms(lambda: captum_lrp(lrp_model, x, targets), settings)
    rows.append(Row(case.name, "LRP-eps", ours_ms, "Captum LRP", peer_ms, lrp_note))
    peer_ms = median_ms(lambda: zennit_lrp(model, x, targets), settings)
    rows.append(Row(case.name, "LRP-eps", ours_ms, "Zennit Epsilon", peer_ms, "-"))

    if case.name == "CNN":
        refs = reference_rows(case)
        ours_ms = median_ms(
            lambda: DeepSHAP(conv, x, data_ref=refs, output_idx=idx, **budget), settings
        )
        peer_ms, setting, screened = best_of(
            {
                f"{n} images/call": (
                    lambda outputs, n=n: captum_deepliftshap(model, x, refs, outputs, n)
                )
                for n in (1, 4, len(x))
            },
            targets,
            settings,
        )
        tried = ", ".join(f"{label}: {ms:.0f}" for label, ms in screened.items())
        print(
            f"  {case.name} DeepSHAP: Captum options screened on one target (ms): {tried}",
            flush=True,
        )
        rows.append(
            Row(case.name, f"DeepSHAP ({N_REFS} refs)", ours_ms, "Captum DeepLiftShap", peer_ms,
                setting)
        )  # fmt: skip
    return rows


# --- output ------------------------------------------------------------------------------

HEADER = ("model", "method", "ours (ms)", "peer", "peer (ms)", "ours/peer", "peer setting")


def _cells(row: Row) -> tuple[str, ...]:
    return (
        row.model,
        row.method,
        f"{row.ours:.1f}",
        row.peer,
        f"{row.peer_ms:.1f}",
        f"{row.ours / row.peer_ms:.3f}",
        row.note,
    )


def table(rows: list[Row], markdown: bool) -> str:
    return format_table(HEADER, [_cells(row) for row in rows], markdown, numeric=(2, 4, 5))


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__.split("\n\n")[0], argv)
    # Captum asks for gradients on the input itself and announces its hooks on every call.
    warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
    warnings.filterwarnings("ignore", message="Setting forward, backward hooks and attributes")

    compare_with_peers(
        args,
        f"captum {captum.__version__}, zennit {importlib.metadata.version('zennit')}",
        check_agreement,
        run_case,
        table,
        lambda r: f"{r.model} {r.method} vs {r.peer}" if r.ours > r.peer_ms else None,
    )


if __name__ == "__main__":
    main()
