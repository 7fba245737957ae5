"""The README's pictures: one PNG per plot kind, written to ``docs/img/``.

Run from the repository root::

    pip install -e ".[docs]"        # kaleido, plotly's static image export
    python docs/make_figures.py

kaleido 1.x drives a Chrome or Chromium it finds on the ``PATH`` (Debian's ``chromium``
works); point the environment variable ``BROWSER_PATH`` at one elsewhere, or run
``plotly_get_chrome`` to download one.

Every model is small, trained for a few hundred steps on synthetic data made here with a
fixed seed (nothing is downloaded), so the pictures come out the same on every run:

* ``plot_tabular.png``: ``plot()`` of DeepLift on an iris-like MLP, 2 flowers × 3 classes;
* ``plot_image.png``: ``plot()`` of Integrated Gradients on a tiny CNN that tells
  horizontal, vertical and diagonal strokes apart in 16 × 16 images, 2 images × 3 classes;
* ``plot_global_box.png``: ``plot_global()`` of the iris-like DeepLift result over all
  150 flowers, with one flower drawn in red (``ref_data_idx``);
* ``plot_global_image.png``: ``plot_global()`` of the image result over 300 images
  (pixel-wise median of ``|attribution|``, with the quantile slider);
* ``plot_multi_input.png``: ``plot()`` of DeepLift on a model with an image and a tabular
  input, 2 data points × 2 outputs, one column per output node and input layer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly.io as pio
import torch
from torch import Tensor, nn

from attribution import Converter, DeepLift, IntegratedGradient
from attribution.plots import InnsightFigure

OUT = Path(__file__).resolve().parent / "img"
SEED = 0
WIDTH = 900
SIZE = 16
"""Height and width of the synthetic images."""

IRIS_FEATURES = ["sepal_len", "sepal_wid", "petal_len", "petal_wid"]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
IRIS_MEANS = [[5.0, 3.4, 1.5, 0.25], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]]
IRIS_SDS = [[0.35, 0.38, 0.17, 0.1], [0.5, 0.3, 0.47, 0.2], [0.64, 0.32, 0.55, 0.27]]
STROKES = ["horizontal", "vertical", "diagonal"]


def train(
    model: nn.Module, inputs: list[Tensor], target: Tensor, loss: Callable, steps: int = 300
) -> nn.Module:
    """Full-batch Adam; returns the model in eval mode."""
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        optimiser.zero_grad()
        loss(model(*inputs), target).backward()
        optimiser.step()
    return model.eval()


# --- data ---------------------------------------------------------------------------------


def iris_like(rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """150 flowers, 50 per class, from Gaussians with roughly iris's means and spreads."""
    x = np.concatenate(
        [rng.normal(mean, sd, size=(50, 4)) for mean, sd in zip(IRIS_MEANS, IRIS_SDS, strict=True)]
    )
    y = np.repeat(np.arange(3), 50)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def strokes(rng: np.random.Generator, n: int) -> tuple[Tensor, Tensor]:
    """``n`` noisy 1 × 16 × 16 images, each with one stroke: horizontal, vertical or diagonal."""
    labels = rng.integers(0, 3, n)
    images = rng.normal(0.0, 0.15, size=(n, 1, SIZE, SIZE))
    for image, label in zip(images, labels, strict=True):
        at = rng.integers(4, SIZE - 4)
        start = rng.integers(1, 5)
        span = np.arange(start, start + 9)
        if label == 0:
            image[0, at, span] += 1.0
        elif label == 1:
            image[0, span, at] += 1.0
        else:
            shift = rng.integers(-3, 4)
            image[0, span, np.clip(span + shift, 0, SIZE - 1)] += 1.0
    return torch.tensor(images, dtype=torch.float32), torch.tensor(labels)


# --- the models ---------------------------------------------------------------------------


def iris_model(x: Tensor, y: Tensor) -> Converter:
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    train(model, [x], y, nn.functional.cross_entropy)
    return Converter(model, input_names=IRIS_FEATURES, output_names=IRIS_CLASSES)


def stroke_model(x: Tensor, y: Tensor) -> Converter:
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 3),
    )  # fmt: skip
    train(model, [x], y, nn.functional.cross_entropy)
    return Converter(model, input_dim=(1, SIZE, SIZE), output_names=STROKES)


class ImageAndTable(nn.Module):
    """A convolutional branch for the image and a dense branch for three measurements."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(6 * 8 * 8, 16), nn.ReLU(),
        )  # fmt: skip
        self.table = nn.Sequential(nn.Linear(3, 8), nn.ReLU())
        self.head = nn.Linear(24, 2)

    def forward(self, image: Tensor, table: Tensor) -> Tensor:
        return self.head(torch.cat([self.image(image), self.table(table)], dim=1))


def multi_input_model(images: Tensor, labels: Tensor, table: Tensor) -> Converter:
    """Two scores: "horizontal" stroke plus age, "vertical" stroke minus dose."""
    target = torch.stack(
        [(labels == 0).float() + 0.5 * table[:, 0], (labels == 1).float() - 0.5 * table[:, 1]], 1
    )
    model = train(ImageAndTable(), [images, table], target, nn.functional.mse_loss, steps=400)
    return Converter(
        model,
        input_dim=[(1, SIZE, SIZE), (3,)],
        input_names=[None, ["age", "dose", "weight"]],
        output_names=["score_h", "score_v"],
    )


# --- the figures --------------------------------------------------------------------------


def figures() -> dict[str, InnsightFigure]:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    iris_x, iris_y = iris_like(rng)
    iris = iris_model(iris_x, iris_y)
    iris_result = DeepLift(iris, iris_x, x_ref=iris_x.mean(0), output_idx=[0, 1, 2])

    images, labels = strokes(rng, 600)
    cnn = stroke_model(images, labels)
    shown = images[:300]
    image_result = IntegratedGradient(cnn, shown, n=50, output_idx=[0, 1, 2])
    first = sorted(int(torch.nonzero(labels[:300] == k)[0]) for k in (0, 2))

    table = torch.tensor(rng.normal(size=(len(images), 3)), dtype=torch.float32)
    multi = multi_input_model(images, labels, table)
    multi_result = DeepLift(multi, [shown, table[:300]], output_idx=[0, 1])

    return {
        "plot_tabular": iris_result.plot(data_idx=[0, 100], output_idx=[0, 1, 2]),
        "plot_image": image_result.plot(data_idx=first, output_idx=[0, 1, 2]),
        "plot_global_box": iris_result.plot_global(output_idx=[0, 1, 2], ref_data_idx=100),
        "plot_global_image": image_result.plot_global(output_idx=[0, 1, 2]),
        "plot_multi_input": multi_result.plot(data_idx=first, output_idx=[0, 1]),
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    named = figures()
    paths = [OUT / f"{name}.png" for name in named]
    heights = [int(fig.layout.height) for fig in named.values()]
    pio.write_images(list(named.values()), paths, width=WIDTH, height=heights, scale=1)
    for path in paths:
        print(f"{path}: {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
