"""Train the demo models and write them, with their test data, into ``demo_data/files/``.

Run ``python -m demo_data.build`` (or ``python demo_data/build.py``) from the repository
root; it needs scikit-learn (``pip install -e ".[demo]"``), whose bundled data sets
(``load_iris``, ``load_diabetes``, ``load_digits``) are read without any download. The
signal data are synthetic. Every demo trains with fixed seeds on one CPU thread, so a
rebuild on the same machine and torch version reproduces the files byte for byte; the whole
build takes well under a minute.

Per demo it writes ``<name>.pt`` (the ``state_dict``, for ``torch.load(...,
weights_only=True)``) and ``<name>.npz`` (the test set: ``input_1``… as float32,
channels first, ``label_1``… per output layer, and extra arrays such as the signal
demo's motif positions), and ``demos.json`` holds the metadata of all demos.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: python demo_data/build.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo_data.models import DiabetesMLP, DigitsCNN, DigitsPlusTable, IrisMLP, SignalCNN

FILES = Path(__file__).resolve().parent / "files"
SEED = 0

# The signal demo: where the class-determining motif sits is known for every sample.
SIGNAL_LENGTH = 64
SIGNAL_CHANNELS = ["x", "y", "z"]
MOTIF_LENGTH = 12


@dataclass
class Built:
    """What one demo's builder returns: the trained model, the test set and metadata."""

    model: nn.Module
    inputs: list[np.ndarray]
    labels: list[np.ndarray]
    meta: dict[str, Any]
    extras: dict[str, np.ndarray] = field(default_factory=dict)


# --------------------------------------------------------------------------- training


def _seed(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _class_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a classifier's logits (its softmax left out)."""
    return nn.functional.cross_entropy(model.logits(x), y)


def _train(
    model: nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    inputs: list[np.ndarray],
    targets: list[np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    seed: int = SEED,
) -> None:
    """Mini-batch Adam; ``loss_fn(model, *inputs, *targets)`` gives the batch loss."""
    xs = [torch.as_tensor(x) for x in inputs]
    ys = [torch.as_tensor(y) for y in targets]
    n = len(xs[0])
    shuffle = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=shuffle)
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model, *(x[batch] for x in xs), *(y[batch] for y in ys))
            loss.backward()
            optimiser.step()
    model.eval()


def _split(n: int, n_test: int, labels: np.ndarray | None, seed: int) -> tuple[np.ndarray, ...]:
    """Train and test indices (stratified by ``labels`` when given), both sorted."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        np.arange(n), test_size=n_test, stratify=labels, random_state=seed
    )
    return np.sort(train), np.sort(test)


def _fold_target_scaling(layer: nn.Linear, mean: float, std: float) -> None:
    """Make a layer trained on standardised targets predict in the original units."""
    with torch.no_grad():
        layer.weight.mul_(std)
        layer.bias.mul_(std).add_(mean)


def _n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


# --------------------------------------------------------------------------- metrics


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose largest output is the label."""
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def r_squared(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Coefficient of determination, ``1 - SS_res / SS_tot`` (in float64)."""
    pred = np.asarray(predictions, dtype=np.float64).reshape(-1)
    target = np.asarray(targets, dtype=np.float64).reshape(-1)
    return float(1 - np.sum((target - pred) ** 2) / np.sum((target - target.mean()) ** 2))


METRICS = {"accuracy": accuracy, "r2": r_squared}


def _predict(model: nn.Module, inputs: list[np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(*(torch.as_tensor(x) for x in inputs))
    return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]


# --------------------------------------------------------------------------- the demos


def build_iris() -> Built:
    from sklearn.datasets import load_iris

    _seed(SEED)
    data = load_iris()
    x, y = _f32(data.data), data.target.astype(np.int64)
    train, test = _split(len(x), 50, y, SEED)
    model = IrisMLP()
    _train(
        model,
        _class_loss,
        [x[train]],
        [y[train]],
        epochs=300,
        batch_size=16,
        lr=0.01,
    )
    return Built(
        model,
        [x[test]],
        [y[test]],
        {
            "title": "Iris flowers (tabular classification)",
            "description": (
                "Fisher's iris data (scikit-learn's load_iris): four measurements of a flower "
                "in cm, unscaled, and its species. A dense network (4 → 16 ReLU → 3 softmax), "
                "like innsight's neuralnet example. The petal measurements separate the "
                "species; setosa has much shorter and narrower petals than the others."
            ),
            "data_source": "sklearn.datasets.load_iris",
            "input_names": [["sepal_length", "sepal_width", "petal_length", "petal_width"]],
            "output_names": [[str(name) for name in data.target_names]],
            "tasks": ["classification"],
            "sizes": {"train": len(train), "test": len(test)},
        },
    )


DIABETES_FEATURES = ["age", "sex", "bmi", "bp", "s1_tc", "s2_ldl", "s3_hdl", "s4_tch"]
DIABETES_FEATURES += ["s5_ltg", "s6_glu"]


def build_diabetes() -> Built:
    from sklearn.datasets import load_diabetes

    _seed(SEED)
    data = load_diabetes(scaled=False)
    x_raw, y = data.data, data.target
    train, test = _split(len(x_raw), 100, None, SEED)
    mean, std = x_raw[train].mean(axis=0), x_raw[train].std(axis=0)
    x = _f32((x_raw - mean) / std)
    y_mean, y_std = float(y[train].mean()), float(y[train].std())
    y_scaled = _f32((y - y_mean) / y_std)[:, None]
    model = DiabetesMLP()
    _train(
        model,
        lambda m, xb, yb: nn.functional.mse_loss(m(xb), yb),
        [x[train]],
        [y_scaled[train]],
        epochs=40,
        batch_size=32,
        lr=0.003,
        weight_decay=0.1,  # strong L2: 342 patients, noisy target
    )
    _fold_target_scaling(model.net[-1], y_mean, y_std)
    return Built(
        model,
        [x[test]],
        [_f32(y[test])],
        {
            "title": "Diabetes progression (tabular regression)",
            "description": (
                "scikit-learn's load_diabetes: age, sex, body mass index, blood pressure and "
                "six blood serum values (s1–s6) of 442 patients, standardised with the "
                "training set's mean and standard deviation (the 'preprocessing' entry has "
                "them), and a measure of disease progression one year later (25–346). A "
                "dense network (10 → 32 → 16 ReLU → 1) predicts it in the original units. "
                "bmi, s5_ltg and bp carry most of the signal."
            ),
            "data_source": "sklearn.datasets.load_diabetes(scaled=False)",
            "input_names": [DIABETES_FEATURES],
            "output_names": [["progression"]],
            "tasks": ["regression"],
            "sizes": {"train": len(train), "test": len(test)},
            "preprocessing": {
                "input_1": {
                    "kind": "standardise: (raw - mean) / std",
                    "mean": [round(float(v), 6) for v in mean],
                    "std": [round(float(v), 6) for v in std],
                }
            },
        },
    )


def _motif() -> np.ndarray:
    """The class-determining pattern: two periods of a sine under a Hann window."""
    t = np.arange(MOTIF_LENGTH)
    return np.sin(2 * np.pi * t / 6) * np.hanning(MOTIF_LENGTH + 2)[1:-1]


def make_signals(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Noisy 3-channel signals; the class is the channel that holds the motif.

    Every signal has Gaussian noise, a slow random wave per channel, the motif (amplitude
    2) in channel ``label`` starting at ``motif_start``, and a distractor: a Gaussian bump
    (amplitude 2, width 2) in a random channel at a random position.
    """
    t = np.arange(SIGNAL_LENGTH)
    c = len(SIGNAL_CHANNELS)
    x = rng.normal(0.0, 0.3, size=(n, c, SIGNAL_LENGTH))
    period = rng.uniform(32, 96, size=(n, c, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, c, 1))
    x += 0.5 * np.sin(2 * np.pi * t / period + phase)
    labels = rng.integers(0, c, size=n)
    starts = rng.integers(0, SIGNAL_LENGTH - MOTIF_LENGTH + 1, size=n)
    distractor_channel = rng.integers(0, c, size=n)
    distractor_center = rng.integers(3, SIGNAL_LENGTH - 3, size=n)
    motif = 2.0 * _motif()
    for i in range(n):
        x[i, labels[i], starts[i] : starts[i] + MOTIF_LENGTH] += motif
        bump = 2.0 * np.exp(-0.5 * ((t - distractor_center[i]) / 2.0) ** 2)
        x[i, distractor_channel[i]] += bump
    return {
        "x": _f32(x),
        "labels": labels.astype(np.int64),
        "motif_channel": labels.astype(np.int64),
        "motif_start": starts.astype(np.int64),
        "distractor_channel": distractor_channel.astype(np.int64),
        "distractor_center": distractor_center.astype(np.int64),
    }


def build_signals() -> Built:
    rng = _seed(SEED)
    train = make_signals(1500, rng)
    test = make_signals(300, rng)
    model = SignalCNN()
    _train(
        model,
        _class_loss,
        [train["x"]],
        [train["labels"]],
        epochs=15,
        batch_size=32,
        lr=0.003,
    )
    classes = [f"motif_in_{name}" for name in SIGNAL_CHANNELS]
    extras = {key: value for key, value in test.items() if key not in ("x", "labels")}
    return Built(
        model,
        [test["x"]],
        [test["labels"]],
        {
            "title": "Planted motif in 3-channel signals (1D CNN)",
            "description": (
                f"Synthetic signals with channels {', '.join(SIGNAL_CHANNELS)} and "
                f"{SIGNAL_LENGTH} steps: noise, a slow random wave per channel, a "
                f"{MOTIF_LENGTH}-step sine-burst motif whose channel is the class, at a "
                "random position, and a distractor bump in a random channel. A 1D CNN (two "
                "convolutions with batch norm and max pooling, global max pooling, dense "
                "softmax) classifies them. A correct attribution for the true class "
                "highlights the motif window of that channel, not the distractor."
            ),
            "data_source": "synthetic (demo_data.build.make_signals)",
            "input_names": [[SIGNAL_CHANNELS, None]],
            "output_names": [classes],
            "tasks": ["classification"],
            "sizes": {"train": len(train["x"]), "test": len(test["x"])},
            "ground_truth": {
                "input": "input_1",
                "what": (
                    "For sample i, the motif occupies channel motif_channel[i] (= its label) "
                    "at positions motif_start[i] … motif_start[i] + motif_length - 1; the "
                    "distractor bump (not class-related) is centred at "
                    "distractor_center[i] in channel distractor_channel[i]. The arrays are "
                    "in the .npz (Demo.extras)."
                ),
                "motif_length": MOTIF_LENGTH,
                "motif": [round(float(v), 6) for v in 2.0 * _motif()],
                "channel_of_class": dict(zip(classes, SIGNAL_CHANNELS, strict=True)),
            },
        },
        extras,
    )


def _digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = _f32(data.images[:, None] / 16.0)
    labels = data.target.astype(np.int64)
    train, test = _split(len(images), 450, labels, SEED)
    return images, labels, train, test


def build_digits() -> Built:
    _seed(SEED)
    images, labels, train, test = _digits_split()
    model = DigitsCNN()
    _train(
        model,
        _class_loss,
        [images[train]],
        [labels[train]],
        epochs=25,
        batch_size=32,
        lr=0.002,
    )
    return Built(
        model,
        [images[test]],
        [labels[test]],
        {
            "title": "Handwritten digits, 8×8 (image CNN)",
            "description": (
                "scikit-learn's load_digits: 1797 grey 8×8 images of handwritten digits "
                "(pixel values 0–16, scaled to 0–1). A CNN (two 3×3 convolutions, 2×2 max "
                "pooling, dense 256 → 64 → 10 softmax) classifies them."
            ),
            "data_source": "sklearn.datasets.load_digits",
            "input_names": None,
            "output_names": [[str(d) for d in range(10)]],
            "tasks": ["classification"],
            "sizes": {"train": len(train), "test": len(test)},
        },
    )


TABLE_FEATURES = ["addend", "even_hint", "noise"]


def make_table(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The tabular input of the two-input demo, one row per digit.

    ``addend``: an integer 0–9 (head 2 adds it to the digit); ``even_hint``: 1 if the digit
    is even, 0 if odd, flipped for 20 % of the rows; ``noise``: standard normal, unrelated.
    """
    n = len(labels)
    addend = rng.integers(0, 10, size=n)
    even = (labels % 2 == 0).astype(np.int64)
    flip = rng.random(n) < 0.2
    hint = np.where(flip, 1 - even, even)
    noise = rng.normal(size=n)
    return _f32(np.stack([addend, hint, noise], axis=1))


def build_digits_table() -> Built:
    rng = _seed(SEED)
    images, labels, train, test = _digits_split()
    table = make_table(labels, rng)
    total = (labels + table[:, 0]).astype(np.float64)
    t_mean, t_std = float(total[train].mean()), float(total[train].std())
    total_scaled = _f32((total - t_mean) / t_std)[:, None]

    def loss(m, image, tab, digit, target):
        logits, predicted = m.heads(image, tab)
        return nn.functional.cross_entropy(logits, digit) + nn.functional.mse_loss(
            predicted, target
        )

    model = DigitsPlusTable()
    _train(
        model,
        loss,
        [images[train], table[train]],
        [labels[train], total_scaled[train]],
        epochs=80,
        batch_size=32,
        lr=0.002,
    )
    _fold_target_scaling(model.sum, t_mean, t_std)
    return Built(
        model,
        [images[test], table[test]],
        [labels[test], _f32(total[test])],
        {
            "title": "Digit image + table, two heads (multi-input, multi-output)",
            "description": (
                "A digit image (scikit-learn's load_digits, scaled to 0–1) and a table row "
                "(addend: an integer 0–9; even_hint: whether the digit is even, wrong for "
                "20 % of the rows; noise: unrelated) go in; head 1 says which digit it is "
                "(softmax over 0–9), head 2 predicts digit + addend. The image branch "
                "(3×3 convolution, 2×2 max pooling, dense) and the table branch (dense) "
                "meet in a shared dense layer. Head 2 needs the image and addend; noise "
                "carries no information and should get little attribution."
            ),
            "data_source": "sklearn.datasets.load_digits + synthetic table",
            "input_names": [None, [TABLE_FEATURES]],
            "output_names": [[str(d) for d in range(10)], ["digit_plus_addend"]],
            "tasks": ["classification", "regression"],
            "sizes": {"train": len(train), "test": len(test)},
        },
    )


BUILDERS: dict[str, Callable[[], Built]] = {
    "iris": build_iris,
    "diabetes": build_diabetes,
    "signals": build_signals,
    "digits": build_digits,
    "digits_table": build_digits_table,
}


# --------------------------------------------------------------------------- writing


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with a fixed time stamp, so rebuilds are byte-identical."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def _to_json(value: Any, indent: str = "") -> str:
    """JSON with one key per line and lists of plain values on one line, for easy reading."""
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {_to_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [inner + _to_json(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False)


def _full_names(names: list, dims: list[tuple[int, ...]]) -> list:
    """Input names per layer and axis, innsight's defaults where ``None``."""
    from attribution._names import resolve_input_names

    return resolve_input_names(names, dims)


def write_demo(name: str, built: Built, out: Path) -> dict[str, Any]:
    """Save the weights and test set; return the ``demos.json`` entry with test metrics."""
    model = built.model.eval()
    torch.save(model.state_dict(), out / f"{name}.pt")
    arrays = {f"input_{k}": _f32(x) for k, x in enumerate(built.inputs, start=1)}
    arrays |= {f"label_{k}": y for k, y in enumerate(built.labels, start=1)}
    arrays |= built.extras
    _write_npz(out / f"{name}.npz", arrays)

    # The documented metrics come from the saved weights on the saved test set.
    reloaded = type(model)()
    reloaded.load_state_dict(torch.load(out / f"{name}.pt", weights_only=True))
    reloaded.eval()
    outputs = _predict(reloaded, [arrays[f"input_{k}"] for k in range(1, len(built.inputs) + 1)])
    metrics = []
    for k, (task, pred, label) in enumerate(
        zip(built.meta["tasks"], outputs, built.labels, strict=True), start=1
    ):
        metric = "accuracy" if task == "classification" else "r2"
        metrics.append(
            {"output": f"Output_{k}", "name": metric, "value": METRICS[metric](pred, label)}
        )
    meta = dict(built.meta)
    dims = [tuple(x.shape[1:]) for x in built.inputs]
    tasks = meta.pop("tasks")
    entry = {
        "name": name,
        "title": meta.pop("title"),
        "description": meta.pop("description"),
        "task": " + ".join(tasks),
        "output_tasks": tasks,
        "architecture": type(model).__name__,
        "input_dim": [list(d) for d in dims],
        "input_names": _full_names(meta.pop("input_names"), dims),
        "output_names": meta.pop("output_names"),
        "metric": metrics,
        "sizes": meta.pop("sizes") | {"parameters": _n_parameters(model)},
        "files": {"weights": f"{name}.pt", "data": f"{name}.npz"},
        "seed": SEED,
    }
    return entry | meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=FILES, help="output folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one thread: the same float sums on every run
    args.out.mkdir(parents=True, exist_ok=True)
    entries = []
    start_all = time.perf_counter()
    for name, builder in BUILDERS.items():
        start = time.perf_counter()
        entry = write_demo(name, builder(), args.out)
        entries.append(entry)
        scores = ", ".join(
            f"{m['name']} {m['value']:.4f}"
            + (f" ({m['output']})" if len(entry["metric"]) > 1 else "")
            for m in entry["metric"]
        )
        print(
            f"{name:<13} test {scores}  [train {entry['sizes']['train']}, test "
            f"{entry['sizes']['test']}, {entry['sizes']['parameters']} parameters, "
            f"{time.perf_counter() - start:.1f} s]"
        )
    with open(args.out / "demos.json", "w", encoding="utf-8") as file:
        file.write(_to_json({"version": 1, "demos": entries}) + "\n")
    print(f"wrote {len(entries)} demos to {args.out} in {time.perf_counter() - start_all:.1f} s")


if __name__ == "__main__":
    main()
