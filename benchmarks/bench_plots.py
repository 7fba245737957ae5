"""Plot speed and size on the CPU: plot() and plot_global() figures as the dashboard redraws them.

Run from the repository root::

    python benchmarks/bench_plots.py              # full run (under a minute)
    python benchmarks/bench_plots.py --quick      # fewer repeats, for a first look
    python benchmarks/bench_plots.py --markdown   # the table as markdown

The dashboard rebuilds a figure on every click and sends it to the browser as JSON, so the
goal is: build plus ``fig.to_json()`` well under a second, and under 2 MB of JSON (1 MB =
10⁶ bytes). What it measures, for Gradient × Input results of all 10 outputs (float32,
fixed seeds; the attributions are computed once, outside the timing):

* ``image plot``: ``plot()`` of 10 data points × 10 outputs of a 1 × 28 × 28 image CNN
  (two 3 × 3 convolutions with max pooling, two dense layers), a 10 × 10 grid of heatmaps;
* ``tabular plot_global``: ``plot_global(ref_data_idx=0)`` of 1,000 rows × 30 features ×
  10 outputs of an MLP (30 → 64 → 64 → 10, ReLU), ten box-plot panels with the default
  "Data point" dropdown (``individual_max=20``) and the hidden violins;
* ``image plot_global``: ``plot_global()`` of 200 rows of the image result × 10 outputs
  (nine quantile heatmaps per panel), for context;
* ``tabular plot``: ``plot()`` of 10 rows × 10 outputs of the tabular result, for context.

For each figure: the median build time (the ``res.plot(...)`` call, which includes
picking the rows out of the result), the median time of ``fig.to_json()`` (what Dash
sends; plotly's default JSON engine), the JSON size, the number of traces and whether
build + JSON stays under 1,000 ms and the JSON under 2 MB.

There is no peer library for these figures. As a reference point in the same process,
two naive plotly figures of the same data are timed the same way - what a straightforward
implementation does:

* for ``image plot``: ``make_subplots(10, 10)`` and, per cell, ``add_trace(go.Heatmap(z=
  value / max|value|, text=<one hover string per pixel>))``;
* for ``tabular plot_global``: ``make_subplots(1, 10)`` and, per cell, ``add_trace(go.Box(
  x=<feature name per value>, y=<all 30,000 |values|>))``, letting plotly.js compute the
  boxes (no violins, no data-point dropdown: less than ours draws).

The naive figures get the values as ready numpy arrays. Ratios below 1.0 mean ours is
faster (build + JSON) or smaller. Every case gets warm-up calls, then the median of
several timed calls (5; fewer for slow cases).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import plotly
import plotly.graph_objects as go
import plotly.io as pio
import torch
from harness import N_OUTPUTS, SEED, Settings, format_table, median_ms, parse_arguments
from plotly.subplots import make_subplots
from torch import nn

from attribution import AttributionResult, Converter, Gradient

GRID_ROWS = 10
"""Data points of the plot() grids."""
TABULAR_ROWS = 1000
TABULAR_FEATURES = 30
IMAGE_ROWS = 200
IMAGE_SIZE = 28
REF_ROW = 0
GOAL_MS = 1000.0
GOAL_MB = 2.0
OUTPUTS = list(range(N_OUTPUTS))


@dataclass(frozen=True)
class Row:
    """Medians in ms and the JSON size in MB of one figure."""

    case: str
    figure: str
    traces: int
    build: float
    json: float
    size_mb: float
    naive: Row | None = None

    @property
    def total(self) -> float:
        return self.build + self.json


# --- the results ------------------------------------------------------------------------


def image_result() -> AttributionResult:
    """Gradient × Input of a 1 × 28 × 28 CNN, 200 images in [0, 1], all 10 outputs."""
    torch.manual_seed(SEED)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 7 * 7, 64), nn.ReLU(),
        nn.Linear(64, N_OUTPUTS),
    ).eval()  # fmt: skip
    conv = Converter(model, input_dim=(1, IMAGE_SIZE, IMAGE_SIZE))
    x = torch.rand(IMAGE_ROWS, 1, IMAGE_SIZE, IMAGE_SIZE)
    return Gradient(conv, x, times_input=True, output_idx=OUTPUTS)


def tabular_result() -> AttributionResult:
    """Gradient × Input of an MLP, 1,000 rows × 30 standard-normal features, all 10 outputs."""
    torch.manual_seed(SEED)
    model = nn.Sequential(
        nn.Linear(TABULAR_FEATURES, 64), nn.ReLU(),
        nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, N_OUTPUTS),
    ).eval()  # fmt: skip
    conv = Converter(model, input_dim=(TABULAR_FEATURES,))
    x = torch.randn(TABULAR_ROWS, TABULAR_FEATURES)
    return Gradient(conv, x, times_input=True, output_idx=OUTPUTS)


# --- the naive plotly figures -----------------------------------------------------------


def naive_image_grid(values: np.ndarray) -> go.Figure:
    """``values``: (rows, height, width, outputs); one heatmap per (row, output) cell."""
    n_rows, height, width, n_outputs = values.shape
    fig = make_subplots(rows=n_rows, cols=n_outputs)
    for r in range(n_rows):
        for c in range(n_outputs):
            z = values[r, :, :, c]
            text = [
                [
                    f"Value: {z[i, j]:.4g}<br>Input: Input_1<br>Height: H{i + 1}<br>"
                    f"Width: W{j + 1}<br>data_{r + 1}, Y{c + 1}"
                    for j in range(width)
                ]
                for i in range(height)
            ]
            fig.add_trace(
                go.Heatmap(
                    z=z / np.abs(z).max(), text=text, hoverinfo="text", zmin=-1, zmax=1,
                    colorscale=[[0, "blue"], [0.5, "white"], [1, "red"]], showscale=False,
                ),
                row=r + 1,
                col=c + 1,
            )  # fmt: skip
    return fig


def naive_boxes(values: np.ndarray, names: list[str]) -> go.Figure:
    """``values``: (rows, features, outputs); one box trace over all features per output."""
    n_rows, _, n_outputs = values.shape
    x = np.tile(names, n_rows)
    fig = make_subplots(rows=1, cols=n_outputs)
    for c in range(n_outputs):
        fig.add_trace(
            go.Box(x=x, y=values[:, :, c].ravel(), boxpoints="outliers"), row=1, col=c + 1
        )
    return fig


# --- timing -----------------------------------------------------------------------------


def measure(case: str, figure: str, build: Callable[[], go.Figure], settings: Settings) -> Row:
    """Median build and ``to_json`` times of one figure, its JSON size and trace count."""
    build_ms = median_ms(build, settings)
    fig = build()
    json_ms = median_ms(fig.to_json, settings)
    size_mb = len(fig.to_json().encode("utf-8")) / 1e6
    print(f"  {case} ({figure}): build {build_ms:.0f} ms, to_json {json_ms:.0f} ms", flush=True)
    return Row(case, figure, len(fig.data), build_ms, json_ms, size_mb)


def run(settings: Settings) -> list[Row]:
    image, tabular = image_result(), tabular_result()
    grid_rows = list(range(GRID_ROWS))
    image_values = image.get_result("array")[:GRID_ROWS, 0]  # (rows, H, W, outputs)
    tabular_values = np.abs(tabular.get_result("array"))  # plot_global's preprocess="abs"
    names = [f"X{i + 1}" for i in range(TABULAR_FEATURES)]

    rows = []
    for case, ours, naive in [
        (
            f"image plot ({GRID_ROWS} × {N_OUTPUTS}, {IMAGE_SIZE}×{IMAGE_SIZE})",
            lambda: image.plot(data_idx=grid_rows, output_idx=OUTPUTS),
            lambda: naive_image_grid(image_values),
        ),
        (
            f"tabular plot_global ({TABULAR_ROWS} × {TABULAR_FEATURES} × {N_OUTPUTS}, ref row)",
            lambda: tabular.plot_global(output_idx=OUTPUTS, ref_data_idx=REF_ROW),
            lambda: naive_boxes(tabular_values, names),
        ),
        (
            f"image plot_global ({IMAGE_ROWS} × {N_OUTPUTS}, {IMAGE_SIZE}×{IMAGE_SIZE})",
            lambda: image.plot_global(output_idx=OUTPUTS),
            None,
        ),
        (
            f"tabular plot ({GRID_ROWS} × {N_OUTPUTS}, {TABULAR_FEATURES} features)",
            lambda: tabular.plot(data_idx=grid_rows, output_idx=OUTPUTS),
            None,
        ),
    ]:
        naive_row = None if naive is None else measure(case, "naive plotly", naive, settings)
        ours_row = measure(case, "ours", ours, settings)
        rows.append(replace(ours_row, naive=naive_row))
        if naive_row is not None:
            rows.append(naive_row)
    return rows


# --- output ------------------------------------------------------------------------------

HEADER = (
    "case",
    "figure",
    "traces",
    "build (ms)",
    "to_json (ms)",
    "total (ms)",
    "JSON (MB)",
    f"goal (<{GOAL_MS:g} ms, <{GOAL_MB:g} MB)",
    "time ours/naive",
    "size ours/naive",
)


def goal(row: Row) -> str:
    misses = [
        what
        for what, missed in (("time", row.total >= GOAL_MS), ("size", row.size_mb >= GOAL_MB))
        if missed
    ]
    return "yes" if not misses else "no: " + ", ".join(misses)


def _cells(row: Row) -> tuple[str, ...]:
    naive = row.naive
    return (
        row.case,
        row.figure,
        str(row.traces),
        f"{row.build:.1f}",
        f"{row.json:.1f}",
        f"{row.total:.1f}",
        f"{row.size_mb:.3f}",
        goal(row),
        "-" if naive is None else f"{row.total / naive.total:.3f}",
        "-" if naive is None else f"{row.size_mb / naive.size_mb:.3f}",
    )


def table(rows: list[Row], markdown: bool) -> str:
    return format_table(
        HEADER, [_cells(row) for row in rows], markdown, numeric=(2, 3, 4, 5, 6, 8, 9)
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__.split("\n\n")[0], argv, models=False)
    print(
        f"plotly {plotly.__version__}, numpy {np.__version__}, torch {torch.__version__}, "
        f"JSON engine {pio.json.config.default_engine!r}, "
        f"{'quick' if args.quick else 'full'} run"
    )
    print("\nTiming (median ms):", flush=True)
    rows = run(args.settings)
    print()
    print(table(rows, args.markdown))
    missed = [f"{r.case}" for r in rows if r.figure == "ours" and goal(r) != "yes"]
    print(
        "\nEvery figure of ours meets the goal."
        if not missed
        else f"\nGoal missed for: {', '.join(missed)}."
    )


if __name__ == "__main__":
    main()
