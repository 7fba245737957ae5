"""Reading model files: innsight's JSON spec, ``torch.export`` archives and TorchScript.

One registry maps file suffixes to readers (:func:`register_model_format`), so that
further formats (ONNX, Keras, skops) plug in with one call. A reader gets the file's bytes
and returns a spec dict or a ``torch.nn.Module`` that the ``torch_*`` functions can run.

Safety
------
A model file may come from anyone (a dashboard upload), so nothing in it is unpickled or
run unless the caller trusts it:

- TorchScript (``.pt``, ``.ts``) runs code from the file: its ``__setstate__`` methods
  when it is loaded, and compiled TorchScript in ``forward``, where ``torch.from_file``
  and ``torch.save`` read and write files of the server. It is read only with
  ``allow_code=True``. Without it, a file is refused *before any reader sees it* when its
  suffix is ``.pt``/``.ts`` or when its bytes are TorchScript whatever the suffix
  (:func:`is_torchscript`: a zip with an entry ``<root>/code/...``,
  ``<root>/constants.pkl`` or ``<root>/bytecode.pkl``, or a flatbuffer with the
  ``PTMF`` identifier).
- A ``torch.save`` archive (a zip with ``data.pkl`` and no TorchScript ``code/``) or raw
  pickle bytes is refused with a message on how to export the model instead; only
  ``torch.load(..., weights_only=True)`` ever looks into one, to say whether it holds a
  state_dict.
- ``torch.export.load`` unpickles weights stored with ``use_pickle``, custom objects and
  sample inputs that fail ``weights_only`` loading, evaluates shape expressions with
  ``sympy.sympify`` and runs operators named in the archive. An archive is therefore
  checked first (:func:`_check_export_archive`): one root folder, no pickled weights,
  constants or legacy files, sample inputs that load with ``weights_only=True``, weights
  no larger than the bytes stored for them, and an allow-list of call targets:

  * ``torch.ops.aten.<op>.<overload>`` and ``torch.ops.prims.<op>.<overload>``, except
    the ATen operators that touch files, other threads or the log
    (:data:`DENIED_OPERATORS`: ``from_file``, ``save``, ``wait``, ``_print``, ``warn``
    and the ``_test_*`` operators). Every other namespace is refused: custom operators
    (``torch.ops.<library>.*``) are registered by arbitrary code, and higher-order
    operators carry subgraphs;
  * ``_operator`` arithmetic and comparisons (not ``pow``), ``operator.getitem``, the
    symbolic-size functions ``torch.sym_*`` and the ``math`` functions of
    :data:`_MATH` (not ``factorial``, ``comb``, ``perm`` or ``prod``, which can run for
    hours on one integer);
  * shape expressions of integers, size symbols and sympy's arithmetic, without powers
    or shifts (``9**999999999`` would be evaluated when the archive is loaded).

  Its guards (Python code) are never compiled: ``module(check_guards=False)``. With
  ``max_instance_values``, the archive's declared input shapes are checked before its
  weights are loaded.

Conversion
----------
Neither kind of module converts with the ``torch.fx`` converter (``Converter``): the
``.module()`` of an ``ExportedProgram`` is a graph of ATen operators
(``aten.linear.default``) whose weights are graph attributes, while the converter maps
torch modules and torch functions, and ``torch.fx`` cannot trace TorchScript (compiled
code, not Python). Both still get the gradient family through ``torch_grad``,
``torch_smoothgrad``, ``torch_intgrad`` and ``torch_expgrad``; each format's
``conversion_note`` says so.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.export.pt2_archive import constants as pt2

_EXPORT_WAYS = (
    "torch.export.save(torch.export.export(model, (example,)), 'model.pt2'), or "
    "innsight's JSON spec (.json)"
)
EXPORT_HINT = f"Export the model in Python instead: {_EXPORT_WAYS}."
"""How to save a model in a format that loads without unpickling or running code."""

_CONVERT_HINT = (
    "The rule-based methods (LRP, DeepLift, DeepSHAP, ConnectionWeights) need the torch "
    "module itself (Converter(model) in Python) or innsight's JSON spec; the gradient family, "
    "LIME and SHAP explain this model as it is."
)


@dataclass(frozen=True)
class ModelFormat:
    """A kind of model file and how to read it.

    Attributes
    ----------
    name : str
        What the format is called in messages, e.g. ``"torch.export program"``.
    suffixes : tuple of str
        Lower-case file suffixes with the dot, e.g. ``(".pt", ".ts")``.
    read : callable
        ``read(data, name)`` returns a spec dict, a ``torch.nn.Module`` or a
        :class:`PredictionModel` from the file's bytes; ``name`` is the file name for
        messages. Raises ValueError for bad files.
    conversion_note : str or None
        Why modules of this format cannot be converted (None: try ``Converter``).
    runs_code : bool, default=False
        Whether reading a file runs code from it (TorchScript): such files are read only
        with ``allow_code=True``.
    bounds_sizes : bool, default=False
        Whether ``read`` takes the keyword ``max_instance_values`` (the most values one
        instance may have at the input), to refuse larger models before loading them.
    """

    name: str
    suffixes: tuple[str, ...]
    read: Callable[..., nn.Module | dict]
    conversion_note: str | None = None
    runs_code: bool = False
    bounds_sizes: bool = False


_FORMATS: dict[str, ModelFormat] = {}


def register_model_format(model_format: ModelFormat) -> ModelFormat:
    """Make ``read_model_file`` (and ``Converter(path)``) read files with these suffixes."""
    for suffix in model_format.suffixes:
        _FORMATS[suffix.lower()] = model_format
    return model_format


@dataclass(frozen=True)
class PredictionModel:
    """A model of another library that only its predictions explain (LIME and SHAP): a
    fitted estimator that is no neural network. ``reason`` says why it does not convert."""

    model: Any
    input_dim: list[tuple[int, ...]]
    input_names: list[str] | None
    output_names: list[str] | None
    reason: str


@dataclass(frozen=True)
class ModelObjectKind:
    """A kind of in-memory model of another library that maps to a spec or a torch module.

    Attributes
    ----------
    name : str
        What the kind is called in messages, e.g. ``"scikit-learn MLP"``.
    accepts : callable
        ``accepts(obj)`` says whether ``obj`` is of this kind; it should not import the
        other library (check ``type(obj).__module__``), which may not be installed.
    adapt : callable
        ``adapt(obj)`` returns innsight's spec dict, a ``torch.nn.Module`` or a
        :class:`PredictionModel`.
    """

    name: str
    accepts: Callable[[Any], bool]
    adapt: Callable[[Any], nn.Module | dict | PredictionModel]


_OBJECT_KINDS: list[ModelObjectKind] = []


def register_model_object(kind: ModelObjectKind) -> ModelObjectKind:
    """Make ``Converter(obj)`` and ``load_model(obj)`` accept models of another library."""
    _OBJECT_KINDS.append(kind)
    return kind


def model_object_kind(model: Any) -> ModelObjectKind | None:
    """The registered kind that accepts ``model``, or None."""
    return next((kind for kind in _OBJECT_KINDS if kind.accepts(model)), None)


def model_suffixes(allow_code: bool = False) -> list[str]:
    """The registered suffixes, e.g. ``[".json", ".pt2"]``.

    Parameters
    ----------
    allow_code : bool, default=False
        Whether to list the formats that run code from the file (TorchScript's ``.pt``
        and ``.ts``), which :func:`read_model_file` reads only with ``allow_code=True``.
    """
    return sorted(suffix for suffix, fmt in _FORMATS.items() if allow_code or not fmt.runs_code)


def model_format(filename: str | os.PathLike) -> ModelFormat:
    """The format of a file, from its name (``"model.pt2"``) or suffix (``".pt2"``).

    Raises
    ------
    ValueError
        No reader is registered for the suffix; the message lists the supported ones.
    """
    name = os.path.basename(os.fspath(filename))
    suffix = name.lower() if name.startswith(".") else os.path.splitext(name)[1].lower()
    if suffix not in _FORMATS:
        supported = ", ".join(
            f"{'/'.join(f.suffixes)} ({f.name})" for f in dict.fromkeys(_FORMATS.values())
        )
        raise ValueError(
            f"Cannot read {name}: supported model files are {supported}. Save the model in "
            f"one of them, or load it in Python and pass the module.{_HINTS.get(suffix, '')}"
        )
    return _FORMATS[suffix]


_STATE_DICT = (
    " A {suffix} file usually holds a state dict (the weights only, from "
    "torch.save(model.state_dict(), ...)): it is not a model, it needs the code of its "
    "class. Export the model with its code run once instead: "
    "torch.export.save(torch.export.export(model.eval(), (x,)), 'model.pt2') with an "
    "example input x."
)
_HINTS = {suffix: _STATE_DICT.format(suffix=suffix) for suffix in (".pth", ".bin", ".ckpt")}
"""What to do with files of suffixes that are often mistaken for models."""


def read_model_file(
    source: str | os.PathLike | bytes,
    suffix: str | None = None,
    *,
    allow_code: bool = False,
    max_instance_values: int | None = None,
) -> nn.Module | dict:
    """Read a model file without unpickling anything, and without running code from it
    unless ``allow_code``.

    Parameters
    ----------
    source : path or bytes
        The file, or its content.
    suffix : str, default=None
        The file's suffix (``".pt2"``) or name (``"model.pt2"``, then named in messages);
        required for bytes, taken from the path otherwise.
    allow_code : bool, default=False
        Whether to read TorchScript, which runs code from the file when it is loaded and
        run (it can read and write any file the process may). Only for files you trust;
        without it a file that is TorchScript by its suffix or its content is refused
        before anything reads it.
    max_instance_values : int, default=None
        The most values one instance may have at a model input, checked where the file
        declares its input shapes (``.pt2``) before its weights are loaded, and for
        ``.keras``/``.h5`` and ``.onnx`` at every layer, sized from the config or graph
        before the model is built. None: no bound.

    Returns
    -------
    dict or torch.nn.Module
        innsight's spec for ``.json``; a module in eval mode for ``.pt2``
        (:class:`ExportedModule`) and ``.pt``/``.ts`` (:class:`ScriptedModule`).

    Raises
    ------
    FileNotFoundError
        ``source`` is a path to no file.
    ValueError
        The suffix is unknown, the file is damaged or of another kind than its suffix
        says, it is a pickle (``torch.save``), TorchScript without ``allow_code``, or
        larger than ``max_instance_values``; the message says how to export instead.

    Examples
    --------
    >>> import json
    >>> spec = {"input_dim": [2], "layers": [{"type": "Dense", "weight": [[1.0, 2.0]]}]}
    >>> read_model_file(json.dumps(spec).encode(), "model.json")["input_dim"]
    [2]
    """
    if isinstance(source, (bytes, bytearray)):
        if suffix is None:
            raise ValueError(
                "suffix is required when source is bytes: give the file name or its suffix, "
                "e.g. suffix='model.pt2'."
            )
        data, name = bytes(source), os.path.basename(suffix)
    elif isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"No model file at {os.fspath(source)}.")
        with open(source, "rb") as file:
            data, name = file.read(), os.fspath(source)
    else:
        raise TypeError(f"source must be a path or the file's bytes; got {type(source).__name__}.")
    file_format = model_format(suffix or name)
    if not allow_code and (file_format.runs_code or is_torchscript(data)):
        if not is_torchscript(data):  # a .pt that is a pickle or no archive: say which
            _archive(data, name, f"{file_format.name} archive")
        raise ValueError(
            f"{os.path.basename(name)} is TorchScript, which runs code from the file when it "
            "is loaded; this server does not accept TorchScript uploads. Export the model with "
            "torch.export (torch.export.save(torch.export.export(model, (example,)), "
            "'model.pt2')) or as innsight's JSON spec, or start the dashboard with "
            "--trust-torchscript if every uploader is trusted (in Python: "
            "allow_code=True for a file you trust)."
        )
    if file_format.bounds_sizes:
        return file_format.read(data, name, max_instance_values=max_instance_values)
    return file_format.read(data, name)


# torch's zip reader compares entry names without regard to case
_TORCHSCRIPT_ENTRIES = re.compile(r"[^/]*/(?:code/.*|constants\.pkl|bytecode\.pkl)", re.I | re.S)
_FLATBUFFER_ID = b"PTMF"  # TorchScript's mobile (flatbuffer) format, bytes 4 to 8
_MAX_LISTED_ENTRIES = 100_000


def is_torchscript(data: bytes) -> bool:
    """Whether ``data`` is a TorchScript archive, judged from its zip entries only.

    TorchScript is a zip whose entries lie below one root folder, with the compiled code
    in ``<root>/code/`` and constants in ``<root>/constants.pkl`` (mobile archives:
    ``<root>/bytecode.pkl``), or a flatbuffer with the identifier ``PTMF``. Nothing is
    loaded or decompressed; a zip too damaged to list is not TorchScript (torch's reader
    could not open it either). Zips of more than 100,000 entries are taken as TorchScript
    (refused): listing them would cost more than any model needs.
    """
    if data[4:8] == _FLATBUFFER_ID:
        return True
    if b"PK\x05\x06" not in data[-(2**16 + 22) :]:  # no end of central directory: no zip
        return False
    if data.count(b"PK\x01\x02") > _MAX_LISTED_ENTRIES:
        return True
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return False
    return any(_TORCHSCRIPT_ENTRIES.fullmatch(name) for name in names)


# --- innsight's JSON spec ---------------------------------------------------------------------


def _read_spec(data: bytes, name: str) -> dict:
    try:
        spec = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # ValueError: also integers of 4300+ digits
        raise ValueError(f"{name} is not valid JSON: {error}") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{name} must hold a JSON object (the model spec).")
    return spec


# --- zip archives and pickles -----------------------------------------------------------------


_MAX_EXPANSION = 20


def open_zip(
    data: bytes, name: str, kind: str, max_expanded: int | None = None
) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """The zip archive in ``data`` and its entries, read in memory (never extracted).

    A clear ValueError when ``data`` is no zip (``kind`` says what it should be) or its
    entries would expand beyond ``max_expanded`` bytes (default: ``_MAX_EXPANSION`` times
    its size plus 1 MiB, far more than a model archive needs).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ValueError(
            f"{name} is not a {kind}: {error}. Check that the file is complete and has the "
            "right suffix."
        ) from None
    limit = _MAX_EXPANSION * len(data) + 2**20 if max_expanded is None else max_expanded
    expanded = sum(info.file_size for info in infos)
    if expanded > limit:
        raise ValueError(
            f"{name} would expand from {len(data)} to {expanded} bytes, more than the "
            f"{limit} read from a {kind.split(' (')[0]}; it is refused."
        )
    return archive, infos


def _archive(data: bytes, name: str, kind: str) -> tuple[zipfile.ZipFile, str, set[str]]:
    """The zip, its root folder and the entry names below it; refuses pickles.

    Torch writes every entry below one root folder, and compresses only code; an archive
    that would expand to more than ``_MAX_EXPANSION`` times its size is refused.
    """
    if data[:1] == b"\x80":
        raise ValueError(
            f"{name} is a pickle (torch.save or pickle.dump of a Python object); loading a "
            f"pickle can run any code, so it is refused. {EXPORT_HINT}"
        )
    archive, infos = open_zip(data, name, f"{kind} (a zip archive written by torch)")
    roots = {info.filename.split("/", 1)[0] for info in infos}
    nested = all("/" in info.filename for info in infos)
    if len(roots) != 1 or not nested:
        raise ValueError(
            f"{name} is not a {kind}: torch writes all entries below one folder. Save the "
            "model again with torch instead of repacking the archive."
        )
    root = roots.pop()
    entries = {info.filename[len(root) + 1 :] for info in infos}
    if "data.pkl" in entries and not any(entry.startswith("code/") for entry in entries):
        _refuse_torch_save(data, name)
    return archive, root, entries


def _refuse_torch_save(data: bytes, name: str) -> None:
    """Raise for a ``torch.save`` archive, saying whether it holds weights or an object."""
    try:
        content = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # weights_only refuses every class it does not know
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f"a pickled {found.group(1)}" if found else "a pickled Python object"
        raise ValueError(
            f"{name} is a torch.save archive of {what} (torch.save(model)); loading it would "
            f"run code from the file, so it is refused. {EXPORT_HINT}"
        ) from None
    if isinstance(content, dict) and all(isinstance(v, Tensor) for v in content.values()):
        raise ValueError(
            f"{name} holds weights only (a state_dict of {len(content)} tensors), not the "
            "model's architecture. Build the model in Python, call "
            f"model.load_state_dict(torch.load(path, weights_only=True)) and save it with "
            f"{_EXPORT_WAYS}."
        )
    raise ValueError(
        f"{name} is a torch.save archive of a {type(content).__name__}, not a model. " + EXPORT_HINT
    )


# --- torch.export ---------------------------------------------------------------------------

DENIED_OPERATORS = frozenset({"from_file", "save", "wait", "_print", "warn"})
"""ATen operators refused in a ``torch.export`` archive (with those starting ``_test``):
they read or write files (``from_file``, ``save``), wait for other threads (``wait``) or
write to the server's log."""
_MATH = (
    "ceil", "floor", "trunc", "sqrt", "exp", "log", "log2", "log10", "sin", "cos", "tan",
    "tanh", "fabs", "isnan", "isinf", "isfinite", "copysign", "fmod", "remainder", "pi",
)  # fmt: skip
_TARGET = re.compile(
    r"torch\.ops\.(?:aten|prims)\.(?P<op>(?!__)\w+)\.(?!__)\w+"  # operator and overload
    r"|torch\.sym_(?:max|min|float|int|not|ite|sum)"
    rf"|math\.(?:{'|'.join(_MATH)})"
    r"|_?operator\.(?:getitem|add|sub|mul|truediv|floordiv|mod|neg|eq|ne|lt|le|gt|ge)"
)
"""The call targets loaded: ATen and prims operators, symbolic-size and math functions."""
_SYMPY_NAMES = {
    "Symbol", "Integer", "Rational", "Add", "Mul", "Max", "Min", "Mod", "Abs",
    "floor", "ceiling", "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv",
    "CeilToInt", "FloorToInt", "CeilDiv", "RShift", "IntTrueDiv",
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "True", "False", "oo",
    "positive", "negative", "nonnegative", "integer", "real", "finite",
}  # fmt: skip
"""sympy names a shape expression may use: no ``Pow``, ``PowByNatural`` or ``LShift``,
which sympy evaluates eagerly however large the result."""
_SYMPY_TOKEN = re.compile(
    r"\s*(?:(?P<number>-?\d{1,20})(?!\d)|(?P<symbol>'[a-z]\d+'|[a-z]\d+)"
    r"|(?P<name>[A-Za-z_]\w*)|(?P<op>\*(?!\*)|<(?!<)|>(?!>)|[-+/%(),=!&|~]))"
)
"""One token of a shape expression: no ``**``, ``<<``, ``>>`` or numbers over 20 digits."""


def _check_expression(expression: str, name: str) -> None:
    """Refuse a shape expression with anything but integers, symbols and sympy arithmetic."""
    position = 0
    while position < len(expression):
        match = _SYMPY_TOKEN.match(expression, position)
        token = match.group("name") if match else None
        if match is None or (token is not None and token not in _SYMPY_NAMES):
            raise ValueError(
                f"{name} holds the shape expression {expression[:80]!r}, which is not plain "
                f"arithmetic on sizes; it is refused. {EXPORT_HINT}"
            )
        position = match.end()


def _check_target(target: str, name: str) -> None:
    """Refuse a call target outside the allow-list (see the module's docstring)."""
    match = _TARGET.fullmatch(target)
    operator = match.group("op") if match else None
    if match is None or operator in DENIED_OPERATORS or str(operator).startswith("_test"):
        why = (
            "which reads or writes files or the log"
            if operator is not None
            else "which is not an ATen, prims or arithmetic operator (custom operators run "
            "code registered by other libraries)"
        )
        raise ValueError(f"{name} calls {target!r}, {why}; it is refused. {EXPORT_HINT}")


def _check_program(program: Any, name: str) -> None:
    """Walk a serialised program: operators and shape expressions must be harmless."""
    if isinstance(program, dict):
        for key, value in program.items():
            if key == "target" and isinstance(value, str):
                _check_target(value, name)
            elif key == "expr_str" and isinstance(value, str):
                _check_expression(value, name)
            elif key == "range_constraints" and isinstance(value, dict):
                for symbol in value:
                    _check_expression(symbol, name)
            _check_program(value, name)
    elif isinstance(program, list):
        for value in program:
            _check_program(value, name)


def _check_export_archive(
    archive: zipfile.ZipFile,
    root: str,
    entries: set[str],
    name: str,
    max_instance_values: int | None = None,
) -> None:
    """Refuse anything in a ``torch.export`` archive that its loader would unpickle or run,
    and tensors larger than the archive stores or ``max_instance_values`` allows."""

    def read(entry: str) -> bytes:
        if entry not in entries:
            raise ValueError(f"{name} lacks {entry}; save it again with torch.export.save.")
        try:
            return archive.read(f"{root}/{entry}")
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
            raise ValueError(
                f"{name} is damaged ({error}); save it again with torch.export.save."
            ) from None

    def parse(entry: str) -> Any:
        try:
            return json.loads(read(entry))
        except (ValueError, RecursionError) as error:  # also integers of 4300+ digits
            raise ValueError(f"{name} has a damaged {entry}: {error}.") from None

    if pt2.ARCHIVE_FORMAT_PATH not in entries or read(pt2.ARCHIVE_FORMAT_PATH) != b"pt2":
        scripted = any(entry.startswith("code/") for entry in entries)
        kind = "a TorchScript archive: name it .pt" if scripted else "not one"
        raise ValueError(
            f"{name} is not a torch.export archive (it is {kind}). Save it with "
            "torch.export.save(torch.export.export(model, (example,)), 'model.pt2')."
        )
    models = sorted(
        entry[len(pt2.MODELS_DIR) : -len(".json")]
        for entry in entries
        if entry.startswith(pt2.MODELS_DIR) and entry.endswith(".json")
    )
    payload_dirs = (pt2.AOTINDUCTOR_DIR, pt2.EXECUTORCH_DIR, pt2.MTIA_DIR, pt2.XL_MODEL_WEIGHTS_DIR)
    compiled = sorted(entry for entry in entries if entry.startswith(payload_dirs))
    if not models or compiled:
        what = f"compiled code ({compiled[0]})" if compiled else "no program (models/*.json)"
        raise ValueError(f"{name} holds {what}; it cannot be loaded safely. {EXPORT_HINT}")
    for model in models:
        for config_format, kind in (
            (pt2.WEIGHTS_CONFIG_FILENAME_FORMAT, "weight"),
            (pt2.CONSTANTS_CONFIG_FILENAME_FORMAT, "constant"),
        ):
            legacy = f"{os.path.dirname(config_format)}/{model}.pt"
            config = config_format.format(model)
            if legacy in entries or config not in entries:
                raise ValueError(
                    f"{name} stores its {kind}s in an older, pickled layout. Save it again "
                    "with this torch version: torch.export.save(program, 'model.pt2')."
                )
            payloads = parse(config)
            payloads = payloads.get("config") if isinstance(payloads, dict) else None
            if not isinstance(payloads, dict):
                raise ValueError(f"{name} has a damaged {config}: it lists no 'config'.")
            for fqn, meta in payloads.items():
                meta = meta if isinstance(meta, dict) else {}
                path = str(meta.get("path_name", ""))
                plain = kind == "weight" or path.startswith(pt2.TENSOR_CONSTANT_FILENAME_PREFIX)
                if meta.get("use_pickle") is not False or not plain:
                    raise ValueError(
                        f"{name} stores the {kind} {fqn!r} as a pickle (a tensor subclass or "
                        f"custom object); it is refused. {EXPORT_HINT}"
                    )
                stored = f"{root}/{os.path.dirname(config_format)}/{path}"
                _check_payload_size(meta, archive, stored, f"the {kind} {fqn!r}", name)
        sample_inputs = read(pt2.SAMPLE_INPUTS_FILENAME_FORMAT.format(model))
        try:
            torch.load(io.BytesIO(sample_inputs), map_location="cpu", weights_only=True)
        except Exception:  # torch.export.load would then unpickle them without limits
            raise ValueError(
                f"{name} has sample inputs that are not plain tensors; it is refused. "
                + EXPORT_HINT
            ) from None
        program = parse(pt2.MODELS_FILENAME_FORMAT.format(model))
        try:
            _check_program(program, name)
        except RecursionError:
            raise ValueError(f"{name} nests its program too deeply; it is refused.") from None
        if max_instance_values is not None:
            _check_declared_inputs(program, name, max_instance_values)


def _declared_shape(meta: Any) -> list[int]:
    """The sizes in a serialised tensor meta: integers, or a symbol's example value
    (1 where the archive gives none)."""
    sizes = meta.get("sizes") if isinstance(meta, dict) else None
    if not isinstance(sizes, list):
        return []
    shape = []
    for size in sizes:
        size = size if isinstance(size, dict) else {}
        value = size.get("as_int")
        if value is None and isinstance(size.get("as_expr"), dict):
            hint = size["as_expr"].get("hint")
            value = hint.get("as_int") if isinstance(hint, dict) else None
        shape.append(value if isinstance(value, int) and value >= 0 else 1)
    return shape


def _check_payload_size(
    meta: dict, archive: zipfile.ZipFile, stored: str, what: str, name: str
) -> None:
    """A weight may not declare more values than its record has bytes.

    ``torch.export.load`` makes ``torch.zeros(sizes)`` of a weight whose record is empty,
    so the declared sizes alone could allocate any amount.
    """
    try:
        n_bytes = archive.getinfo(stored).file_size
    except KeyError:
        raise ValueError(f"{name} lacks the data of {what}; save it again.") from None
    shape = _declared_shape(meta.get("tensor_meta"))
    if math.prod(shape) > n_bytes:
        raise ValueError(
            f"{name} declares {what} of shape {tuple(shape)} ({math.prod(shape)} values) but "
            f"stores {n_bytes} bytes for it: the archive is damaged or forged; it is refused."
        )


def _check_declared_inputs(program: Any, name: str, max_instance_values: int) -> None:
    """Refuse a program whose inputs declare more values per instance than allowed."""
    module = program.get("graph_module") if isinstance(program, dict) else None
    module = module if isinstance(module, dict) else {}
    graph, signature = module.get("graph") or {}, module.get("signature") or {}
    tensors = graph.get("tensor_values") if isinstance(graph, dict) else None
    specs = signature.get("input_specs") if isinstance(signature, dict) else None
    if not isinstance(tensors, dict) or not isinstance(specs, list):
        raise ValueError(f"{name} has a damaged program: it lists no inputs.")
    for spec in specs:
        arg = spec.get("user_input", {}).get("arg", {}) if isinstance(spec, dict) else {}
        tensor = arg.get("as_tensor") if isinstance(arg, dict) else None
        if not isinstance(tensor, dict) or tensor.get("name") not in tensors:
            continue
        shape = _declared_shape(tensors[tensor["name"]])
        values = math.prod(shape[1:])
        if values > max_instance_values:
            raise ValueError(
                f"{name} takes inputs of shape (batch, {', '.join(map(str, shape[1:]))}), "
                f"{values} values per instance; this server explains models with at most "
                f"{max_instance_values} (start the dashboard with a higher "
                "--max-instance-values if the machine has the memory)."
            )


class ExportedModule(nn.Module):
    """A ``torch.export`` program as a module that runs on any batch size.

    Parameters
    ----------
    module : torch.nn.Module
        The program's ``module()``.
    input_dim : list of tuple of int
        The shape of one instance per input, as exported (without the batch axis).
    batch_size : int or None
        The batch size the program was exported for when it is fixed (no dynamic batch
        axis): inputs are then run in pieces of that size, the last one padded with zeros.
    """

    def __init__(self, module: nn.Module, input_dim: list[tuple[int, ...]], batch_size: int | None):
        super().__init__()
        self.module = module
        self.input_dim = input_dim
        self.batch_size = batch_size

    def forward(self, *inputs: Tensor) -> Any:
        if self.batch_size is None:
            return self.module(*inputs)
        size, n = self.batch_size, len(inputs[0])
        pieces = []
        for start in range(0, n, size):
            piece = [x[start : start + size] for x in inputs]
            missing = size - len(piece[0])
            if missing:
                piece = [torch.cat([x, x.new_zeros(missing, *x.shape[1:])]) for x in piece]
            pieces.append(self.module(*piece)[: size - missing])
        return torch.cat(pieces)


def _read_exported(
    data: bytes, name: str, max_instance_values: int | None = None
) -> ExportedModule:
    archive, root, entries = _archive(data, name, "torch.export archive")
    _check_export_archive(archive, root, entries, name, max_instance_values)
    try:
        program = torch.export.load(io.BytesIO(data))
        module = program.module(check_guards=False)
    except Exception as error:
        raise ValueError(
            f"torch.export.load cannot read {name}: {error}. The file may be damaged or "
            f"saved by another torch version (this is {torch.__version__})."
        ) from None
    n_outputs = len(program.graph_signature.user_outputs)
    if n_outputs != 1:
        raise ValueError(
            f"{name} returns {n_outputs} outputs; a torch.export program is explained without "
            "conversion, which needs one output tensor (batch, n_outputs). Export a model "
            "returning one tensor, or save innsight's JSON spec for several outputs."
        )
    shapes = []
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in program.graph_signature.user_inputs:
            value = node.meta.get("val")
            if not isinstance(value, Tensor) or value.ndim < 2:
                raise ValueError(
                    f"{name} takes an input {node.name!r} that is not a tensor (batch, ...); "
                    "export a model whose inputs are tensors with the batch axis first."
                )
            shapes.append(tuple(value.shape))
    fixed = {shape[0] for shape in shapes if isinstance(shape[0], int)}
    dims = [tuple(int(size) for size in shape[1:]) for shape in shapes]
    return ExportedModule(module, dims, fixed.pop() if fixed else None)


# --- TorchScript ------------------------------------------------------------------------------


class ScriptedModule(nn.Module):
    """A TorchScript module as the ``torch_*`` functions can run it.

    ``torch.func.functional_call`` (which the ``torch_*`` functions use to run a model in
    the precision asked for) cannot swap a TorchScript module's weights, so the scripted
    module is kept out of this module's parameters, and inputs run through a copy in their
    own precision.
    """

    def __init__(self, script: torch.jit.ScriptModule) -> None:
        super().__init__()
        weights = next((p for p in script.parameters() if p.is_floating_point()), None)
        dtype = torch.float32 if weights is None else weights.dtype
        object.__setattr__(self, "_scripts", {dtype: script})  # not a submodule

    @property
    def script(self) -> torch.jit.ScriptModule:
        """The TorchScript module, in its saved precision."""
        return next(iter(self._scripts.values()))

    def forward(self, *inputs: Tensor) -> Any:
        dtype = inputs[0].dtype
        if dtype not in self._scripts:
            self._scripts[dtype] = copy.deepcopy(self.script).to(dtype)
        return self._scripts[dtype](*inputs)


def _read_torchscript(data: bytes, name: str) -> ScriptedModule:
    *_, entries = _archive(data, name, "TorchScript archive")
    if pt2.ARCHIVE_FORMAT_PATH in entries:
        raise ValueError(f"{name} is a torch.export archive, not TorchScript: name it .pt2.")
    try:
        script = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as error:
        raise ValueError(
            f"torch.jit.load cannot read {name}: {error}. The file may be damaged or saved by "
            f"another torch version (this is {torch.__version__})."
        ) from None
    return ScriptedModule(script.eval())


def script_input_dim(module: ScriptedModule) -> list[tuple[int, ...]] | None:
    """The input shape of a TorchScript ``Sequential`` that starts with ``Linear``, else None.

    TorchScript keeps no input shapes; other models need ``input_dim``.
    """
    first = module.script
    while first.original_name == "Sequential" and next(first.children(), None) is not None:
        first = next(first.children())
    if first.original_name == "Linear":
        return [(int(first.weight.shape[1]),)]
    return None


register_model_format(ModelFormat("innsight's JSON spec", (".json",), _read_spec))
register_model_format(
    ModelFormat(
        "torch.export program",
        (".pt2",),
        _read_exported,
        "a torch.export program is a graph of ATen operators (aten.linear, aten.conv2d...) "
        "whose weights are graph attributes, not of torch modules; the converter maps "
        f"modules and torch functions only. {_CONVERT_HINT}",
        bounds_sizes=True,
    )
)
register_model_format(
    ModelFormat(
        "TorchScript",
        (".pt", ".ts"),
        _read_torchscript,
        "torch.fx cannot trace TorchScript (its forward is compiled code, not Python), so "
        f"the converter cannot map its layers. {_CONVERT_HINT}",
        runs_code=True,
    )
)
