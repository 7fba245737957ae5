"""What the benchmark scripts share: the two benchmark models, timing, the table, the CLI.

The scripts run as ``python benchmarks/<script>.py``, which puts this folder on the path;
this module also puts ``tests/`` there, for the helpers the tests share with the
benchmarks (``support.peers``, ``support.browser``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

_ROOT = Path(__file__).resolve().parents[1]
# tests/ holds folders named like the packages; with the repository root on the path too,
# the packages themselves are found first.
sys.path[1:1] = [str(_ROOT), str(_ROOT / "tests")]

N_OUTPUTS = 10
SEED = 0


@dataclass(frozen=True)
class Settings:
    """How often each case runs."""

    repeats: int
    """Timed calls per case, at most."""
    min_repeats: int
    """Timed calls per case, at least."""
    seconds: float
    """Time to spend on the timed calls of one case: slow cases get fewer repeats."""


FULL = Settings(repeats=5, min_repeats=3, seconds=20.0)
QUICK = Settings(repeats=3, min_repeats=1, seconds=5.0)


@dataclass(frozen=True)
class Case:
    """One model with its data."""

    name: str
    model: nn.Module
    x: Tensor
    input_dim: tuple[int, ...]


def make_mlp() -> Case:
    """Batch 256, 20 features, 3 × 128 ReLU, 10 outputs."""
    torch.manual_seed(SEED)
    model = nn.Sequential(
        nn.Linear(20, 128), nn.ReLU(),
        nn.Linear(128, 128), nn.ReLU(),
        nn.Linear(128, 128), nn.ReLU(),
        nn.Linear(128, N_OUTPUTS),
    )  # fmt: skip
    return Case("MLP", model.eval(), torch.randn(256, 20), (20,))


def make_cnn() -> Case:
    """Batch 32, 3 × 32 × 32, two convolutions, max pooling, two dense layers, 10 outputs."""
    torch.manual_seed(SEED)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(32 * 16 * 16, 128), nn.ReLU(),
        nn.Linear(128, N_OUTPUTS),
    )  # fmt: skip
    return Case("CNN", model.eval(), torch.randn(32, 3, 32, 32), (3, 32, 32))


CASES = {"mlp": make_mlp, "cnn": make_cnn}


# --- timing -----------------------------------------------------------------------------


def seconds(fn: Callable[[], object]) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeats(seconds_per_call: float, settings: Settings) -> int:
    """How many timed calls fit the settings' time for one case."""
    fitting = int(settings.seconds / max(seconds_per_call, 1e-9))
    return max(settings.min_repeats, min(settings.repeats, fitting))


def warm_up(fn: Callable[[], object]) -> float:
    """One warm-up call, two for fast functions; returns the last call's seconds."""
    duration = seconds(fn)
    if duration < 0.5:
        duration = seconds(fn)
    return duration


def median_ms(fn: Callable[[], object], settings: Settings) -> float:
    """Median wall time in ms of ``fn`` after warm-up."""
    estimate = warm_up(fn)
    return 1e3 * statistics.median(seconds(fn) for _ in range(repeats(estimate, settings)))


# --- output and command line ------------------------------------------------------------


def format_table(
    header: Sequence[str], body: list[tuple[str, ...]], markdown: bool, numeric: Sequence[int]
) -> str:
    """A plain-text table (``numeric`` columns right-aligned) or a markdown one."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, body)])


def parse_arguments(
    description: str, argv: list[str] | None, models: bool = True
) -> argparse.Namespace:
    """``--quick``, ``--markdown`` and, unless ``models=False``, ``--models`` and
    ``--memory-budget`` (in MiB).

    Adds ``settings`` and, with ``models``, ``memory_budget`` (bytes, or None for the
    library's default) and ``memory_budget_text``.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    if models:
        parser.add_argument(
            "--models", nargs="+", choices=sorted(CASES), default=list(CASES), help="models to run"
        )
        parser.add_argument(
            "--memory-budget",
            type=float,
            default=None,
            metavar="MIB",
            help="memory_budget of our converter-based classes in MiB (default: the library's)",
        )
    args = parser.parse_args(argv)
    args.settings = QUICK if args.quick else FULL
    if models:
        args.memory_budget_text = (
            "default" if args.memory_budget is None else f"{args.memory_budget:g} MiB"
        )
        args.memory_budget = None if args.memory_budget is None else int(args.memory_budget * 2**20)
    return args


def compare_with_peers(
    args: argparse.Namespace,
    peers: str,
    check_agreement: Callable[[Case], Sequence[tuple[str, float, float]]],
    run_case: Callable[[Case, Settings, int | None], Sequence],
    table: Callable[[Sequence, bool], str],
    slower: Callable[[object], str | None],
) -> None:
    """The report of a peer benchmark: versions, agreement on output 0, the timing table,
    and which rows are slower than the peer (``slower(row)`` names a slower row, else None).
    """
    print(
        f"torch {torch.__version__}, {peers}, {torch.get_num_threads()} threads, "
        f"{'quick' if args.quick else 'full'} run, memory_budget={args.memory_budget_text}"
    )
    cases = [CASES[name]() for name in args.models]
    print("\nAgreement on output 0 (max |ours - peer|, max |peer|):")
    for case in cases:
        for label, diff, scale in check_agreement(case):
            print(f"  {label:<45} {diff:.3g}  (scale {scale:.3g})")
    print("\nTiming (all outputs; median ms):", flush=True)
    rows = [row for case in cases for row in run_case(case, args.settings, args.memory_budget)]
    print()
    print(table(rows, args.markdown))
    named = [name for name in map(slower, rows) if name]
    print("\nEvery ratio <= 1.0." if not named else f"\nRatio > 1.0 for: {', '.join(named)}.")
