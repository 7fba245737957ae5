"""What every method shares: the model view, argument checks, data, result fields."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from attribution._data import infer_input_dims, prepare_inputs
from attribution._names import check_rank, default_input_names, default_output_names
from attribution._validation import check_bool, check_dtype, resolve_output_idx
from attribution.converter.converter import Converter
from attribution.converter.graph import ConvertedModel
from attribution.methods._autograd import Forward
from attribution.methods._progress import Progress
from attribution.result import AttributionResult

Needs = Literal["graph", "gradients", "predictions"]
"""What a method needs of a model: the converted layer graph (the rule-based methods), its
gradients (a converted graph or any differentiable torch module: the gradient family), or
only its predictions (LIME and SHAP: any model)."""

Run = Callable[[list[Tensor]], tuple[list[Tensor], list[Tensor]]]
"""Maps inputs to (differentiated outputs, activated outputs), one tensor per output layer."""


@dataclass
class ModelView:
    """A model as the gradient methods see it: inputs in, output layers out."""

    run: Run
    input_dims: list[tuple[int, ...]]
    input_names: list[list[list[str]]]
    output_names: list[list[str]]
    dtype: torch.dtype
    device: torch.device
    model: ConvertedModel | None = None

    @property
    def forward(self) -> Forward:
        """Inputs to the differentiated outputs."""
        return lambda inputs: self.run(inputs)[0]

    @classmethod
    def of_converter(cls, converter: Converter, dtype: str, ignore_last_act: bool) -> ModelView:
        """The converted model; ``ignore_last_act`` differentiates the pre-activations."""
        model = converter.model_as(dtype)

        def run(inputs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
            pass_ = model.run(inputs)
            return (pass_.preactivations if ignore_last_act else pass_.outputs), pass_.outputs

        return cls(
            run,
            converter.input_dim,
            converter.input_names,
            converter.output_names,
            model.dtype,
            model.device,
            model,
        )

    @classmethod
    def of_module(cls, model: nn.Module, inputs: list[Tensor]) -> ModelView:
        """Any differentiable module with one output tensor, run with autograd as it is.

        ``inputs`` (prepared data) fix the input shapes and the weights' precision.
        """
        dtype = inputs[0].dtype
        # detached: autograd then saves nothing for weight gradients (the model is untouched)
        cast = {
            name: value.detach().to(dtype) if value.is_floating_point() else value
            for name, value in [*model.named_parameters(), *model.named_buffers()]
        }

        def call(inputs: list[Tensor]) -> Any:
            if isinstance(model, torch.jit.ScriptModule):
                # compiled: no stateless call; its own weights, the inputs cast to them
                own = next((p.dtype for p in model.parameters()), dtype)
                out = model(*[x.to(own) for x in inputs])
                return out.to(dtype) if isinstance(out, Tensor) else out
            return torch.func.functional_call(model, cast, tuple(inputs))

        def run(inputs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
            out = call(inputs)
            if not isinstance(out, Tensor):
                raise TypeError(
                    f"{type(model).__name__} returns {type(out).__name__}; without "
                    "conversion, models are explained that return one tensor. Use Converter "
                    "for models with several outputs."
                )
            out = out.reshape(len(out), -1)
            return [out], [out]

        dims = [tuple(x.shape[1:]) for x in inputs]
        with torch.no_grad():
            n_outputs = run([x[:2] for x in inputs])[1][0].shape[1]
        names = [default_input_names(dim) if len(dim) <= 3 else [] for dim in dims]
        return cls(run, dims, names, [default_output_names(n_outputs)], dtype, inputs[0].device)


EVERY_OUTPUT = object()
"""``output_idx`` of the ``torch_*`` functions' default: every output node (the classes'
None selects innsight's first ``min(10, n)``)."""


def model_view(
    model: Any,
    data: Any,
    *,
    dtype: str,
    ignore_last_act: bool,
    channels_first: bool,
    modules: bool,
) -> tuple[ModelView, list[Tensor] | None]:
    """The one place where what the user passed becomes the view a method computes on,
    with the data prepared for it (None without data).

    A :class:`~attribution.Converter` gives its converted graph; with ``modules`` (the
    gradient family, which needs only gradients) a torch module or ``torch.export``
    program is run with autograd as it is, its input shapes read from ``data`` and its
    weights cast to ``dtype``. LIME and SHAP, which need only predictions, take any model
    through :func:`attribution.methods._predictions.predictor`.
    """
    if isinstance(model, Converter):
        view = ModelView.of_converter(model, dtype, ignore_last_act)
        inputs = None if data is None else prepare_inputs(
            data, view.input_dims, channels_first=channels_first, dtype=view.dtype,
            device=view.device,
        )  # fmt: skip
        return view, inputs
    if modules and isinstance(model, torch.export.ExportedProgram):
        model = model.module()
    if not modules or not isinstance(model, nn.Module):
        accepted = "an attribution.Converter or a torch module" if modules else (
            "an attribution.Converter"
        )  # fmt: skip
        raise TypeError(
            f"converter must be {accepted}; got {type(model).__name__}. Convert the model "
            "first (Converter(model, input_dim=...)), or explain it with the gradient "
            "family, LIME or SHAP, which need no conversion."
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    dims = [
        d if channels_first or len(d) == 1 else (d[-1], *d[:-1]) for d in infer_input_dims(data)
    ]
    inputs = prepare_inputs(
        data, dims, channels_first=channels_first, dtype=check_dtype(dtype), device=device
    )
    return ModelView.of_module(model, inputs), inputs


@dataclass
class Request:
    """Everything a method's computation needs, checked and prepared."""

    view: ModelView
    inputs: list[Tensor] | None
    references: list[Tensor] | None
    output_idx: list[list[int] | None]
    progress: Progress
    ignore_last_act: bool
    memory_budget: int | None


Computation = Callable[[Request], dict[str, Any]]
"""Returns ``result`` (per output layer, per input layer, channels first), ``preds`` and
``decomp_goal``."""


class InterpretingMethod(AttributionResult):
    """Shared set-up of the methods: arguments, data, output nodes, result fields.

    Subclasses compute in ``__init__`` (as innsight's ``$new()`` does) by handing
    :meth:`_attribute` their computation; the object then holds the result.
    """

    method_name: ClassVar[str]
    needs: ClassVar[Needs] = "graph"
    goal: ClassVar[str | None] = None

    def _attribute(
        self,
        converter: Converter,
        data: Any,
        compute: Computation,
        *,
        common: dict[str, Any],
        value_name: str,
        fields: dict[str, str],
        reference: tuple[str, Any, bool] | None = None,
    ) -> None:
        """Check the arguments, run ``compute`` and store the result.

        ``data`` may be None (global ConnectionWeights). ``reference`` is ``(argument
        name, value, single_row)`` for methods with a reference input (None: zeros).
        """
        channels_first = check_bool(common["channels_first"], "channels_first")
        ignore_last_act = check_bool(common.get("ignore_last_act", True), "ignore_last_act")
        verbose = check_bool(common["verbose"], "verbose")
        view, inputs = model_view(
            converter, data, dtype=common["dtype"], ignore_last_act=ignore_last_act,
            channels_first=channels_first, modules=self.needs == "gradients",
        )  # fmt: skip
        references = None
        if reference is not None:
            references = reference_inputs(view, channels_first, *reference)
            fields[reference[0]] = describe_reference(reference[1], references)
        output_idx = common["output_idx"]
        if output_idx is EVERY_OUTPUT:
            output_idx = list(range(len(view.output_names[0])))
        selection = resolve_output_idx(output_idx, common["output_label"], view.output_names)
        progress = Progress(
            f"Backward pass '{self.method_name}'", verbose, common.get("progress_callback")
        )
        computed = compute(
            Request(
                view,
                inputs,
                references,
                selection,
                progress,
                ignore_last_act,
                common.get("memory_budget"),
            )
        )
        # a module's output is explained as it is: no pre-activation to choose
        converted = view.model is not None
        other_fields = (
            {"ignore_last_act": str(ignore_last_act)}
            if "ignore_last_act" in common and converted
            else {}
        )
        super().__init__(
            method_name=self.method_name,
            value_name=value_name,
            result=to_data_layout(computed["result"], channels_first),
            preds=computed["preds"],
            decomp_goal=computed["decomp_goal"],
            output_idx=selection,
            input_names=view.input_names,
            output_names=view.output_names,
            input_dim=view.input_dims,
            channels_first=channels_first,
            fields=fields,
            other_fields={**other_fields, "dtype": repr(common["dtype"])},
            has_data=inputs is not None,
        )


def reference_inputs(
    view: ModelView, channels_first: bool, name: str, value: Any, single_row: bool
) -> list[Tensor]:
    if value is None:
        return [
            torch.zeros(1, *dim, dtype=view.dtype, device=view.device) for dim in view.input_dims
        ]
    references = prepare_inputs(
        value,
        view.input_dims,
        channels_first=channels_first,
        dtype=view.dtype,
        device=view.device,
        name=name,
    )
    if single_row and len(references[0]) != 1:
        raise ValueError(
            f"{name} must be a single instance (one row); got {len(references[0])} rows. Use "
            "ExpectedGradient or DeepSHAP for a distribution of references."
        )
    return references


def describe_reference(value: Any, references: list[Tensor]) -> str:
    if value is None:
        return "zeros"
    values = torch.cat([r.flatten() for r in references]).double()
    q1, q3 = torch.quantile(values, torch.tensor([0.25, 0.75], dtype=values.dtype))
    return f"mean: {values.mean():.4g} (q1: {q1:.4g}, q3: {q3:.4g})"


COMMON_DOC = """
    converter : Converter
        The converted model.
    data : array-like or list of array-like
        Instances ``(batch, *input_dim)`` as numpy arrays, DataFrames or tensors; a list
        with one per input layer for several input layers.
    channels_first : bool, default=True
        False if the channel axis of ``data`` is last. Results keep the data's layout.
    output_idx : int, list of int or list of lists, default=None
        Output nodes to explain (0-based): a list for the first output layer, or one list
        (or None) per output layer. None: the first ``min(10, n)`` nodes of the first
        output layer.
    output_label : str or list, default=None
        The same selection by output label; must agree with ``output_idx`` if both given.
    ignore_last_act : bool, default=True
        Explain each output layer's pre-activation instead of its activated output.
    verbose : bool, default=False
        Show innsight's "Backward pass" progress bar.
    dtype : {"float", "double"}, default="float"
        Precision of the computation.
    progress_callback : callable, default=None
        Called as ``callback(done, total)`` after each step (used by the dashboard).
    memory_budget : int, default=None
        Bytes of working memory per chunk of instances or sample points; None: on CPU
        32 MiB for the gradient methods and 96 MiB for the rule-based ones (the fastest
        measured), 1 GiB on GPU."""


COMMON_ARGS = (
    "channels_first",
    "output_idx",
    "output_label",
    "ignore_last_act",
    "verbose",
    "dtype",
    "progress_callback",
    "memory_budget",
)


def common_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The shared arguments a method has, picked from its constructor's ``locals()``."""
    return {name: arguments[name] for name in COMMON_ARGS if name in arguments}


def to_data_layout(result: list[list[Tensor | None]], channels_first: bool) -> list:
    """Move the channel axis of image and signal results last when the data had it last."""
    if channels_first:
        return result
    return [
        [r if r is None or r.ndim <= 3 else r.movedim(1, -2) for r in per_input]
        for per_input in result
    ]


def check_ranks(dims: Sequence[tuple[int, ...]]) -> None:
    """Results can be named and shown for inputs with 1 to 3 axes per instance."""
    for layer, dim in enumerate(dims, start=1):
        check_rank(dim, f"input layer {layer}")


def forward_in_chunks(run: Run, inputs: list[Tensor], rows: int) -> tuple[list, list]:
    """``run`` without gradients, ``rows`` instances at a time, concatenated."""
    parts: list[tuple[list[Tensor], list[Tensor]]] = []
    with torch.no_grad():
        for start in range(0, len(inputs[0]), rows):
            parts.append(run([x[start : start + rows] for x in inputs]))
    return tuple([torch.cat(ts) for ts in zip(*(p[i] for p in parts), strict=True)] for i in (0, 1))


def select_outputs(
    outputs: list[Tensor], output_idx: list[list[int] | None]
) -> list[Tensor | None]:
    return [
        None if not idx else out[:, idx].cpu() for out, idx in zip(outputs, output_idx, strict=True)
    ]
