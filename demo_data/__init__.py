"""The demo models of the dashboard: trained torch models with their test data.

Five demos, built by ``python -m demo_data.build`` and shipped in ``demo_data/files/``:

``iris``
    tabular classification (4 features, 3 species), a dense network.
``diabetes``
    tabular regression (10 features, disease progression), a dense network.
``signals``
    3-channel signals whose class is the channel holding a planted motif, a 1D CNN; the
    motif positions (the attribution a correct method should find) are in ``extras``.
``digits``
    scikit-learn's 8×8 handwritten digits, a 2D CNN.
``digits_table``
    two inputs (digit image, table of 3 features) and two output heads (digit class,
    digit + addend).

Loading needs numpy and torch only::

    from demo_data import DEMOS, load_demo
    demo = load_demo("iris")
    conv = demo.converter()                     # attribution.Converter with names
    demo.model(*demo.tensors())                 # the torch model on the test set
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from demo_data.models import ARCHITECTURES

__all__ = ["DEMOS", "FILES", "Demo", "load_demo", "metadata"]

FILES = Path(__file__).resolve().parent / "files"
"""The folder with ``demos.json`` and each demo's ``<name>.pt`` and ``<name>.npz``."""


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, dict[str, Any]]:
    with open(FILES / "demos.json", encoding="utf-8") as file:
        return {entry["name"]: entry for entry in json.load(file)["demos"]}


def metadata(name: str | None = None) -> Any:
    """The ``demos.json`` entry of one demo (a fresh copy), or a list of all entries."""
    if name is None:
        return [json.loads(json.dumps(entry)) for entry in _catalogue().values()]
    return json.loads(json.dumps(_entry(name)))


DEMOS: tuple[str, ...] = tuple(_catalogue())
"""The names of the demos, in the order of ``demos.json``."""


@dataclass
class Demo:
    """One demo: a torch model in eval mode and its test set, with names and metrics.

    Attributes
    ----------
    name, title, description : str
        Identifier, a one-line title and a paragraph for the dashboard.
    task : str
        ``"classification"``, ``"regression"`` or, per output layer joined by ``" + "``,
        e.g. ``"classification + regression"``.
    model : torch.nn.Module
        The trained model in eval mode, float32, weights loaded with
        ``torch.load(..., weights_only=True)``.
    inputs : list of numpy.ndarray
        The test set, one float32 array per input layer, ``(n, *input_dim)``, channels first.
    labels : list of numpy.ndarray
        The targets, one array per output layer: class indices (int64) for classification,
        float32 values for regression.
    input_dim : list of tuple of int
        The shape of one instance per input layer, as ``Converter(input_dim=...)`` takes it.
    input_names : list
        Per input layer, per axis, the names (innsight's defaults where none were chosen).
    output_names : list of list of str
        Per output layer, the names of its nodes (class names, or the predicted quantity).
    metric : list of dict
        Per output layer, ``{"output": "Output_1", "name": "accuracy" | "r2", "value": ...}``
        on the test set, as the build printed it.
    extras : dict of numpy.ndarray
        Further arrays per test sample; the ``signals`` demo has ``motif_channel``,
        ``motif_start``, ``distractor_channel`` and ``distractor_center``.
    meta : dict
        The whole ``demos.json`` entry (sizes, data source, ground truth, preprocessing).
    """

    name: str
    title: str
    description: str
    task: str
    model: nn.Module
    inputs: list[np.ndarray]
    labels: list[np.ndarray]
    input_dim: list[tuple[int, ...]]
    input_names: list
    output_names: list[list[str]]
    metric: list[dict[str, Any]]
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    def tensors(self) -> list[torch.Tensor]:
        """The inputs as torch tensors (sharing memory with the arrays)."""
        return [torch.from_numpy(x) for x in self.inputs]

    def converter(self, **kwargs: Any) -> Any:
        """``attribution.Converter`` of the model with the demo's dims and names.

        Keyword arguments go to ``Converter`` and replace the demo's own (e.g. ``dtype``).
        """
        from attribution import Converter

        arguments = {
            "input_dim": self.input_dim,
            "input_names": self.input_names,
            "output_names": self.output_names,
        }
        return Converter(self.model, **(arguments | kwargs))


def _entry(name: str) -> dict[str, Any]:
    catalogue = _catalogue()
    if name not in catalogue:
        raise ValueError(
            f"No demo named {name!r}; the demos are: {', '.join(repr(n) for n in catalogue)}."
        )
    return catalogue[name]


def load_demo(name: str) -> Demo:
    """Load a demo: its model (eval mode), test data, names and metrics.

    Parameters
    ----------
    name : str
        One of ``DEMOS``: ``"iris"``, ``"diabetes"``, ``"signals"``, ``"digits"``,
        ``"digits_table"``.

    Raises
    ------
    ValueError
        ``name`` is not a demo; the message lists the available ones.
    """
    meta = metadata(name)
    model = ARCHITECTURES[meta["architecture"]]()
    state = torch.load(FILES / meta["files"]["weights"], map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    n_inputs, n_outputs = len(meta["input_dim"]), len(meta["output_names"])
    with np.load(FILES / meta["files"]["data"], allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    inputs = [arrays.pop(f"input_{k}") for k in range(1, n_inputs + 1)]
    labels = [arrays.pop(f"label_{k}") for k in range(1, n_outputs + 1)]
    return Demo(
        name=meta["name"],
        title=meta["title"],
        description=meta["description"],
        task=meta["task"],
        model=model,
        inputs=inputs,
        labels=labels,
        input_dim=[tuple(dim) for dim in meta["input_dim"]],
        input_names=meta["input_names"],
        output_names=meta["output_names"],
        metric=meta["metric"],
        extras=arrays,
        meta=meta,
    )
