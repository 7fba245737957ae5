"""Connection Weights (innsight's ``ConnectionWeights``)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

from attribution._validation import DType, check_bool
from attribution.converter.converter import Converter
from attribution.layers.base import sum_present
from attribution.methods._progress import ProgressCallback
from attribution.methods._propagation import propagate, split_by_output, start_signals
from attribution.methods.base import (
    InterpretingMethod,
    Request,
    common_arguments,
    forward_in_chunks,
    select_outputs,
)


class ConnectionWeights(InterpretingMethod):
    """Connection Weights (Olden et al., 2004): products of the weights along all paths.

    Parameters
    ----------
    converter : Converter
        The converted model.
    data : array-like or list, default=None
        Only for the local variant (``times_input=True``); the global variant ignores it.
    output_idx, output_label, channels_first, verbose, dtype, progress_callback
        As for :class:`~attribution.Gradient`.
    times_input : bool, default=False
        False: the global variant, one importance per input feature, independent of any
        data (result batch of 1, ``data_1``). True: the local variant, the global result
        times each instance of ``data``.

    Notes
    -----
    The backward pass starts with 1 at each selected output node and applies each
    layer's weights transposed, ignoring activations and biases: for a dense network
    ``W₁ᵀ W₂ᵀ ⋯ W_Lᵀ``. Batch normalisation scales by ``γ/√(σ² + ε)``, average pooling
    spreads by ``1/k``, addition layers split equally, and max pooling goes to the first
    position of each window (innsight pools a tensor of ones).

    References
    ----------
    J. D. Olden et al. (2004), An accurate comparison of methods for quantifying variable
    importance in artificial neural networks using simulated data, Ecological Modelling
    178.

    Examples
    --------
    >>> import torch
    >>> from attribution import ConnectionWeights, Converter
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
    ...                             torch.nn.Linear(4, 2))
    >>> ConnectionWeights(Converter(model)).get_result().shape
    (1, 3, 2)
    """

    method_name = "ConnectionWeights"

    def __init__(
        self,
        converter: Converter,
        data: Any = None,
        *,
        output_idx: Any = None,
        output_label: Any = None,
        channels_first: bool = True,
        times_input: bool = False,
        verbose: bool = False,
        dtype: DType = "float",
        progress_callback: ProgressCallback | None = None,
    ) -> None:
        times_input = check_bool(times_input, "times_input")
        if times_input and data is None:
            raise ValueError(
                "times_input=True (local Connection Weights) multiplies by the data: pass "
                "data, or use times_input=False for the global variant."
            )
        if not times_input and data is not None:
            warnings.warn(
                "ConnectionWeights ignores data unless times_input=True (the global variant "
                "depends on the weights only).",
                stacklevel=2,
            )
            data = None
        self._attribute(
            converter,
            data,
            _importances,
            common=common_arguments(locals()),
            value_name="Relative Importance",
            fields={
                "times_input": f"{times_input} (→ {'local' if times_input else 'global'} "
                "ConnectionWeights)"
            },
        )


def _importances(request: Request) -> dict:
    model = request.view.model
    ones = [
        torch.ones(1, len(names), dtype=model.dtype, device=request.view.device)
        for names in request.view.output_names
    ]
    request.progress.start(len(model.nodes))

    def step(position: int, from_consumers: Tensor | None, own: Tensor | None) -> list[Tensor]:
        node = model.nodes[position]
        return node.layer.connection_weights(sum_present(from_consumers, own), node.in_dims)

    with torch.no_grad():
        signals = propagate(
            model, start_signals(model, request.output_idx, ones), step, request.progress
        )
    preds = [None] * len(request.output_idx)
    if request.inputs is not None:
        signals = [
            None if s is None else s * x for s, x in zip(signals, request.inputs, strict=True)
        ]
        outputs = forward_in_chunks(request.view.run, request.inputs, 1024)[1]
        preds = select_outputs(outputs, request.output_idx)
    return {
        "result": split_by_output(model, request.output_idx, signals),
        "preds": preds,
        "decomp_goal": [None] * len(request.output_idx),
    }
