"""Where each layer module says which torch modules, torch functions and spec types it converts.

A layer module registers a *builder* for the things it understands::

    @register_module(nn.Linear)
    def _from_linear(call: Call) -> DenseLayer: ...

A builder gets a :class:`Call` and returns a :class:`~attribution.layers.base.Layer`, an
:class:`~attribution.layers.activation.Activation` (which the importer turns into a
standalone activation layer or fuses into the preceding dense/conv layer), or :data:`SKIP`
(the call is the identity, e.g. ``Dropout``).
Modules are looked up by ``isinstance``, most specific class first, so subclasses of
supported modules are converted too (and then checked against the original forward).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

SKIP = object()
"""Builder result for calls that are the identity at inference time (Dropout, Identity)."""


@dataclass
class Call:
    """One call of a module, function or spec layer, as the builders see it.

    Shapes are per instance: without the batch axis; ``in_shapes`` has one entry per tensor
    argument, in call order. ``kwargs`` holds all arguments by parameter name where the
    signature is known, else the keyword arguments as called.
    """

    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...] | None = None
    module: nn.Module | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    constants: list[Any] = field(default_factory=list)
    """Tensor arguments that are the model's own constants (parameters, buffers), for
    builders registered with :func:`takes_constants`; ``in_shapes`` leaves them out."""

    @property
    def in_shape(self) -> tuple[int, ...]:
        """The shape of the first (usually only) tensor input."""
        return self.in_shapes[0]


Builder = Callable[[Call], Any]

_MODULES: list[tuple[type, Builder]] = []
_FUNCTIONS: dict[Any, Builder] = {}
_SPEC_TYPES: dict[str, Callable[[dict], Any]] = {}


def register_module(*module_types: type) -> Callable[[Builder], Builder]:
    """Register a builder for torch module types (matched with ``isinstance``)."""

    def decorate(builder: Builder) -> Builder:
        _MODULES.extend((module_type, builder) for module_type in module_types)
        return builder

    return decorate


def register_function(*targets: Any) -> Callable[[Builder], Builder]:
    """Register a builder for torch functions, or tensor methods given as ``"method:<name>"``."""

    def decorate(builder: Builder) -> Builder:
        for target in targets:
            _FUNCTIONS[target] = builder
        return builder

    return decorate


def register_spec(*type_names: str) -> Callable[[Callable[[dict], Any]], Callable[[dict], Any]]:
    """Register a builder for layer ``type`` names of innsight's named-list model format."""

    def decorate(builder: Callable[[dict], Any]) -> Callable[[dict], Any]:
        for name in type_names:
            _SPEC_TYPES[name] = builder
        return builder

    return decorate


_NAMED_MODULES: dict[str, Builder] = {}


def register_module_name(*qualified_names: str) -> Callable[[Builder], Builder]:
    """Register a builder for module classes of another library by their qualified name
    (``"torchvision.ops.stochastic_depth.StochasticDepth"``), so that the library need not
    be installed or imported."""

    def decorate(builder: Builder) -> Builder:
        _NAMED_MODULES.update(dict.fromkeys(qualified_names, builder))
        return builder

    return decorate


def module_builder(module: nn.Module) -> Builder | None:
    """The builder for ``module``: the registered class nearest in its MRO (or registered
    by its qualified name), or None."""
    mro = type(module).__mro__
    for cls in mro:
        named = _NAMED_MODULES.get(f"{cls.__module__}.{cls.__qualname__}")
        if named is not None:
            return named
    matches = [(mro.index(cls), builder) for cls, builder in _MODULES if isinstance(module, cls)]
    return min(matches, key=lambda match: match[0])[1] if matches else None


_TAKES_CONSTANTS: set[Builder] = set()


def takes_constants(builder: Builder) -> Builder:
    """Mark a builder whose calls may have constant tensors (a layer-scale parameter) among
    their arguments; other calls with constant tensors are refused."""
    _TAKES_CONSTANTS.add(builder)
    return builder


def accepts_constants(builder: Builder) -> bool:
    """Whether :func:`takes_constants` marked ``builder``."""
    return builder in _TAKES_CONSTANTS


def function_builder(target: Any) -> Builder | None:
    """The builder for a torch function or ``"method:<name>"``, or None."""
    try:
        return _FUNCTIONS.get(target)
    except TypeError:  # unhashable target
        return None


def spec_builder(type_name: str) -> Callable[[dict], Any] | None:
    """The builder for a spec layer type, or None."""
    return _SPEC_TYPES.get(type_name)


def supported_modules() -> list[str]:
    """Names of the supported torch module classes, sorted."""
    return sorted({cls.__name__ for cls, _ in _MODULES})


def supported_functions() -> list[str]:
    """Names of the supported torch functions and tensor methods, sorted."""
    names = set()
    for target in _FUNCTIONS:
        if isinstance(target, str):
            names.add("Tensor." + target.removeprefix("method:"))
        else:
            module = inspect.getmodule(target)
            prefix = module.__name__ + "." if module is not None else ""
            names.add(prefix + getattr(target, "__name__", str(target)))
    return sorted(names)


def supported_spec_types() -> list[str]:
    """The layer ``type`` names of the named-list format, sorted."""
    return sorted(_SPEC_TYPES)
