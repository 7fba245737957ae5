"""What the upload callbacks do, without Dash: decode, read data files, check, summarise.

``dcc.Upload`` hands over ``"data:<mime>;base64,<data>"``; :func:`decode_upload` turns it
into bytes within the size limit. Models are read by
:func:`attribution.converter.loading.load_model`, data by :func:`read_data` (CSV, NPY,
NPZ, never unpickled; PNG/JPEG images or a zip of them, by :mod:`dashboard.images`).
:func:`check_data_fits` compares the two, and :func:`model_summary` and
:func:`data_preview` give JSON-able views for the page. Every error is a ValueError or
TypeError naming the file, the problem and the fix.

Uploads are untrusted, so every size is bounded (by :class:`~dashboard.images.UploadLimits`)
before the work it implies: an ``.npz`` by its zip headers (member count, unpacked
bytes) and every array's ``.npy`` header (shape and dtype) before anything is unpacked,
an ``.npy`` by its header against its length, a CSV by its header row (columns) before
it is parsed, in time linear in the file's size.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from attribution._names import AXIS_TITLES, default_input_names
from attribution._validation import check_bool, check_input_dim
from attribution.converter.loading import LoadedModel
from dashboard.images import UploadLimits, read_images

DataFormat = Literal["csv", "npy", "npz", "png", "jpeg", "zip"]

MAX_ARRAY_BYTES = 2**30
"""The most bytes the input arrays of an ``.npz`` may hold (they may be compressed)."""

_KINDS = {1: "tabular", 2: "signal", 3: "image"}
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_CENTRAL_MAGIC = b"PK\x01\x02"
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)
_NUMPY_ERRORS = (ValueError, EOFError, OSError, *_ZIP_ERRORS)
_FULL_VALUES = 4096  # instances with at most this many values are previewed whole
_IMAGE_SUFFIXES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".zip": "zip"}


@dataclass
class LoadedData:
    """Data read from a file, one float32 array per input layer, channels first.

    Attributes
    ----------
    filename : str
    format : {"csv", "npy", "npz", "png", "jpeg", "zip"}
    arrays : list of numpy.ndarray
        Per input layer, ``(batch, *input_dim)``, channels first.
    channels_last : bool
        Whether the file had the channel axis last (the arrays no longer do).
    input_names : list of str or None
        The chosen CSV columns (the feature names of a tabular input); None otherwise.
    columns : list of str
        All CSV columns or NPZ arrays, to choose the inputs from; empty for NPY.
    ignored : list of str
        The columns or arrays that are not inputs (labels, non-numeric columns).
    row_names : list of str or None
        The file name of each image (PNG, JPEG, zip); None otherwise.
    """

    filename: str
    format: DataFormat
    arrays: list[np.ndarray]
    channels_last: bool = False
    input_names: list[str] | None = None
    columns: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    row_names: list[str] | None = None

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """The shape of one instance per input layer (channels first)."""
        return [tuple(array.shape[1:]) for array in self.arrays]

    @property
    def n_rows(self) -> int:
        """The number of instances."""
        return len(self.arrays[0])


def decode_upload(contents: str, filename: str, max_bytes: int) -> bytes:
    """The bytes of a ``dcc.Upload`` value, if the file is within ``max_bytes``.

    Raises
    ------
    ValueError
        The value is not ``"data:<mime>;base64,<data>"``, the file is empty, or it is
        larger than ``max_bytes`` (the message names the size and the limit).

    Examples
    --------
    >>> decode_upload("data:text/csv;base64,YSxiCjEsMgo=", "t.csv", max_bytes=100)
    b'a,b\\n1,2\\n'
    """
    header, _, payload = contents.partition(",") if isinstance(contents, str) else ("", "", "")
    if not (header.startswith("data:") and header.endswith(";base64")):
        raise ValueError(
            f"The upload of {filename} is malformed: expected 'data:<type>;base64,<data>' from "
            "the upload field. Upload the file again."
        )
    size = len(payload) * 3 // 4 - payload[-2:].count("=")
    if size > max_bytes:
        raise ValueError(
            f"{filename} has {_size(size)}; uploads may have at most "
            f"{_size(max_bytes)}. Upload a smaller file (fewer rows), or start the "
            "dashboard with a higher limit (--max-upload-mb)."
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(
            f"The upload of {filename} is malformed: its content is not base64 ({error}). "
            "Upload the file again."
        ) from None
    if not data:
        raise ValueError(f"{filename} is empty. Upload the file with its content.")
    return data


def read_data(
    data: bytes,
    filename: str,
    *,
    input_columns: list[str] | None = None,
    channels_last: bool = False,
    input_dim: Any = None,
    image_mean: Any = None,
    image_std: Any = None,
    limits: UploadLimits | None = None,
) -> LoadedData:
    """Read a data file into one channels-first float32 array per input layer.

    Parameters
    ----------
    data : bytes
        The file's content.
    filename : str
        Its name; the suffix (``.csv``, ``.npy``, ``.npz``, ``.png``, ``.jpg``/``.jpeg``,
        ``.zip`` of PNG/JPEG images) selects the reader.
    input_columns : list of str, default=None
        CSV: the columns that are inputs, in order (None: all numeric columns). NPZ: the
        arrays that are inputs, one per input layer in order (None: the arrays named
        ``input_1``, ``input_2``... if there are any, else all).
    channels_last : bool, default=False
        Whether signals and images have the channel axis last; it is moved first.
    input_dim : tuple of int or list of tuples, default=None
        The model's input shapes (channels first). Flat rows (a CSV of pixels, a 2-D NPY)
        and arrays that lack or add axes of length 1 are reshaped to them. Images are
        converted to its channels (1 grey, 3 RGB) and must have its height and width.
    image_mean, image_std : float or list of float, default=None
        Images: per channel (or one for all), values become ``(pixel / 255 - mean) / std``;
        None: ``pixel / 255`` (0 to 1).
    limits : UploadLimits, default=UploadLimits()
        The pixels of images, the members and unpacked bytes of zips and ``.npz``
        archives, and the columns of a CSV (at most ``max_instance_values``) allowed.

    Returns
    -------
    LoadedData

    Raises
    ------
    ValueError
        The file is damaged or of another kind, holds Python objects (never unpickled),
        non-numeric or missing values, or the chosen columns or arrays do not exist.

    Examples
    --------
    >>> table = read_data(b"age,bmi,label\\n50,21.5,yes\\n", "t.csv")
    >>> table.input_names, table.ignored, table.shapes
    (['age', 'bmi'], ['label'], [(2,)])
    """
    channels_last = check_bool(channels_last, "channels_last")
    limits = UploadLimits() if limits is None else limits
    suffix = os.path.splitext(filename)[1].lower()
    if suffix in _IMAGE_SUFFIXES:
        dims = check_input_dim(input_dim)
        images = read_images(
            data, filename, input_dim=dims, mean=image_mean, std=image_std, limits=limits
        )
        return LoadedData(filename, _IMAGE_SUFFIXES[suffix], [images.array], row_names=images.names)
    names = None
    if suffix == ".csv":
        arrays, names, columns, ignored = _read_csv(data, filename, input_columns, limits)
    elif suffix == ".npy":
        arrays, columns, ignored = [_read_npy(data, filename, limits)], [], []
    elif suffix == ".npz":
        arrays, columns, ignored = _read_npz(data, filename, input_columns, limits)
    else:
        raise ValueError(
            f"Cannot read {filename}: data files are .csv (a table with a header row), .npy "
            "(one array), .npz (one array per input layer), .png/.jpg images or a .zip of "
            "them."
        )
    dims = check_input_dim(input_dim)
    if dims is None or len(dims) != len(arrays):
        dims = [None] * len(arrays)
    arrays = [_to_layout(a, d, channels_last) for a, d in zip(arrays, dims, strict=True)]
    rows = {len(array) for array in arrays}
    if len(rows) > 1:
        raise ValueError(
            f"The input arrays of {filename} have different numbers of rows ({sorted(rows)}); "
            "every input layer needs one row per instance."
        )
    return LoadedData(filename, suffix[1:], arrays, channels_last, names, columns, ignored)


def check_data_fits(model: LoadedModel, data: LoadedData) -> None:
    """Raise a ValueError naming the expected and the given shapes, and the fix.

    Examples
    --------
    A 1×8×8 image model and data saved channels last, read without ``input_dim``::

        cnn.pt2 expects (batch, 1, 8, 8) but digits.npy has (batch, 8, 8, 1): switch
        channels-last on.
    """
    expected, got = model.input_dim, data.shapes
    if len(expected) != len(got):
        if len(expected) == 1:
            fix = "choose the one array that is the input (leave labels out)"
        elif data.format != "npz":
            fix = "upload an .npz with one array per input layer, named input_1, input_2, ..."
        else:
            fix = f"choose {len(expected)} arrays, or name them input_1, input_2, ..."
        raise ValueError(
            f"{model.name} has {len(expected)} input layer(s) {_shapes(expected)} but "
            f"{data.filename} holds {len(got)} input array(s) {_shapes(got)}: {fix}."
        )
    for layer, (want, have) in enumerate(zip(expected, got, strict=True), start=1):
        if want == have:
            continue
        where = f" for input layer {layer}" if len(expected) > 1 else ""
        raise ValueError(
            f"{model.name} expects {_shapes([want])}{where} but {data.filename} has "
            f"{_shapes([have])}: {_shape_fix(want, have, data)}."
        )


def model_summary(model: LoadedModel) -> dict[str, Any]:
    """What was understood of a model, as JSON values for the page.

    Returns
    -------
    dict
        ``name``, ``format``, ``converted``, ``conversion_error``, ``methods``;
        ``inputs`` (per input layer: ``layer``, ``shape``, ``axes`` with ``title`` and
        ``names``), ``outputs`` (``layer``, ``shape``, ``names``) and ``layers`` (of the
        converted graph, in order: ``position``, ``type``, ``activation``, ``origin``,
        ``input_dim``, ``output_dim``; empty when not converted).
    """
    layers = []
    if model.converter is not None:
        for position, node in enumerate(model.converter.model.nodes, start=1):
            activation = node.layer.activation
            layers.append(
                {
                    "position": position,
                    "type": node.layer.type_name,
                    "activation": None if activation is None else str(activation),
                    "origin": node.origin,
                    "input_dim": [list(dim) for dim in node.in_dims],
                    "output_dim": list(node.out_dim),
                }
            )
    return {
        "name": model.name,
        "format": model.format,
        "converted": model.converter is not None,
        "conversion_error": model.conversion_error,
        "methods": list(model.methods),
        "inputs": [
            {
                "layer": f"Input_{k}",
                "shape": list(dim),
                "axes": [
                    {"title": title, "names": list(axis)}
                    for title, axis in zip(AXIS_TITLES[len(dim)], names, strict=True)
                ],
            }
            for k, (dim, names) in enumerate(
                zip(model.input_dim, model.input_names, strict=True), start=1
            )
        ],
        "outputs": [
            {"layer": f"Output_{k}", "shape": list(dim), "names": list(names)}
            for k, (dim, names) in enumerate(
                zip(model.output_dim, model.output_names, strict=True), start=1
            )
        ],
        "layers": layers,
    }


def data_preview(data: LoadedData, rows: int = 5) -> dict[str, Any]:
    """A look at the data, as JSON values for the page.

    Parameters
    ----------
    data : LoadedData
    rows : int, default=5
        How many instances to show.

    Returns
    -------
    dict
        ``filename``, ``format``, ``n_rows``, ``channels_last``, ``columns``, ``ignored``
        and per input layer (``inputs``): ``layer``, ``kind`` (tabular, signal, image),
        ``shape`` (with the batch axis), ``stats`` (min, max, mean, std) and either
        ``records`` (tabular: the first rows as ``{name: value}``) or ``first`` (signals
        and images: the first instances as nested lists, when each has at most 4096
        values; of larger images every ``first_step``-th pixel along height and width) with
        ``channel_stats`` (per channel: min, max, mean, std); ``row_names`` (the first
        image file names, or None).
    """
    rows = max(1, int(rows))
    inputs = []
    for k, array in enumerate(data.arrays, start=1):
        dim = array.shape[1:]
        view: dict[str, Any] = {
            "layer": f"Input_{k}",
            "kind": _KINDS.get(len(dim), "other"),
            "shape": list(array.shape),
            "stats": _stats(array),
        }
        if len(dim) == 1:
            names = data.input_names if data.input_names else default_input_names(dim)[0]
            view["records"] = [
                dict(zip(names, map(_round, row), strict=True)) for row in array[:rows].tolist()
            ]
        else:
            if math.prod(dim) <= _FULL_VALUES:
                view["first"] = _rounded(array[:rows].tolist())
            elif len(dim) == 3:  # thumbnails of large images: every step-th pixel
                step = math.ceil(math.sqrt(math.prod(dim) / _FULL_VALUES))
                view["first"] = _rounded(array[:rows, :, ::step, ::step].tolist())
                view["first_step"] = step
            view["channel_stats"] = [_stats(array[:, c]) for c in range(dim[0])]
        inputs.append(view)
    return {
        "filename": data.filename,
        "format": data.format,
        "n_rows": data.n_rows,
        "channels_last": data.channels_last,
        "columns": list(data.columns),
        "ignored": list(data.ignored),
        "row_names": None if data.row_names is None else list(data.row_names[:rows]),
        "inputs": inputs,
    }


# --- readers --------------------------------------------------------------------------------


def _read_csv(data: bytes, filename: str, input_columns: list[str] | None, limits: UploadLimits):
    """The chosen (or all numeric) columns of a CSV table, in time linear in its size.

    A table of numbers only is parsed by ``numpy.loadtxt``; others by pandas, whose cost
    grows with the columns, so those may have at most :data:`_MAX_TEXT_COLUMNS`.
    """
    text = _csv_text(data, filename)
    header = _csv_header(text, filename, limits)
    array = _numeric_table(text, header)
    if array is None:
        if len(header) > _MAX_TEXT_COLUMNS:
            raise ValueError(
                f"{filename} has {len(header)} columns and some are not plain numbers (text, "
                f"missing values or quotes); tables of more than {_MAX_TEXT_COLUMNS} columns "
                "must hold numbers only. Drop the text columns and fill in missing values, "
                "or save the data as .npy."
            )
        return _read_frame(data, filename, input_columns)
    columns = list(header)
    chosen = columns if input_columns is None else [str(column) for column in input_columns]
    _check_choice(chosen, columns, filename, "column")
    if chosen != columns:
        position = {column: k for k, column in enumerate(columns)}
        array = array[:, [position[column] for column in chosen]]
    array = np.ascontiguousarray(array, dtype=np.float32)
    _check_finite(array, filename)
    chosen_set = set(chosen)
    return [array], chosen, columns, [c for c in columns if c not in chosen_set]


_MAX_TEXT_COLUMNS = 10_000
"""The most columns of a CSV with text or missing values (parsed by pandas)."""


def _csv_text(data: bytes, filename: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{filename} is not a readable CSV table: {error}. Save it as comma-separated "
            "text (UTF-8) with a header row."
        ) from None


def _csv_header(text: str, filename: str, limits: UploadLimits) -> list[str]:
    """The header row, its columns counted (from its commas) before it is split."""
    line = text.split("\n", 1)[0]
    if line.count(",") + 1 > limits.max_instance_values:
        raise ValueError(
            f"{filename} has {line.count(',') + 1} columns; an instance may have at most "
            f"{limits.max_instance_values} values. Upload fewer columns, or start the "
            "dashboard with a higher limit (--max-instance-values)."
        )
    try:
        return next(csv.reader(io.StringIO(text)), [])
    except csv.Error as error:
        raise ValueError(
            f"{filename} is not a readable CSV table: {error}. Save it as comma-separated "
            "text (UTF-8) with a header row."
        ) from None


def _numeric_table(text: str, header: list[str]) -> np.ndarray | None:
    """The rows as float64 when every field is a number and the header plain, else None.

    Only then is the result the same as pandas' (which names empty or repeated columns
    itself, and reads quoted, empty, ``NA`` or ``True`` fields).
    """
    first, _, rows = text.partition("\n")
    plain = header and all(header) and len(set(header)) == len(header)
    if not plain or '"' in first or not rows.strip():
        return None
    try:
        array = np.loadtxt(
            io.StringIO(rows), delimiter=",", comments=None, dtype=np.float64, ndmin=2
        )
    except ValueError:
        return None
    return array if array.shape[1] == len(header) else None


def _read_frame(data: bytes, filename: str, input_columns: list[str] | None):
    """What :func:`_read_csv` returns, parsed by pandas (tables with text or gaps)."""
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{filename} is not a readable CSV table: {error}. Save it as comma-separated "
            "text (UTF-8) with a header row."
        ) from None
    frame.columns = columns = [str(column) for column in frame.columns]
    kinds = zip(columns, frame.dtypes, strict=True)
    numeric = [c for c, dtype in kinds if pd.api.types.is_numeric_dtype(dtype)]
    if input_columns is None:
        chosen = numeric
        if not chosen:
            raise ValueError(
                f"{filename} has no numeric column ({', '.join(columns)}); inputs must be "
                "numbers. Encode categories as numbers before uploading."
            )
    else:
        chosen = [str(column) for column in input_columns]
        _check_choice(chosen, columns, filename, "column")
        numeric_set = set(numeric)
        text = [c for c in chosen if c not in numeric_set]
        if text:
            example = frame[text[0]].dropna().astype(str).iloc[:1].tolist()
            raise ValueError(
                f"{filename}: the column(s) {', '.join(map(repr, text))} are not numeric (e.g. "
                f"{example[0] if example else ''!r}); choose numeric input columns and leave "
                "labels out, or encode categories as numbers."
            )
    block = frame[chosen]
    gaps = block.isna().to_numpy()
    missing = [c for c, gap in zip(chosen, gaps.any(axis=0), strict=True) if gap]
    if missing:
        row = int(gaps[:, chosen.index(missing[0])].argmax())
        raise ValueError(
            f"{filename} has missing values in {', '.join(map(repr, missing))} (first in row "
            f"{row + 1}); fill them in or drop those rows before uploading."
        )
    array = block.to_numpy(dtype=np.float32)
    _check_finite(array, filename)
    chosen_set = set(chosen)
    return [array], chosen, columns, [c for c in columns if c not in chosen_set]


def _read_npy(data: bytes, filename: str, limits: UploadLimits) -> np.ndarray:
    if data[: len(_NPY_MAGIC)] != _NPY_MAGIC:
        kind = "an .npz archive: name it .npz" if data[:4] == _ZIP_MAGIC else "not .npy"
        raise ValueError(
            f"{filename} is not a NumPy .npy file (it is {kind}). Save the array with "
            "np.save(path, array)."
        )
    stream = io.BytesIO(data)
    values, size = _read_header(stream, filename)
    if size > len(data) - stream.tell():
        raise ValueError(
            f"{filename} declares {_size(size)} of values but has {_size(len(data))}: it is "
            "truncated or damaged. Save it again."
        )
    if size > limits.max_uncompressed_bytes:
        _too_large(filename, size, limits)
    _check_float_size(values, size, f"The values of {filename}")
    stream.seek(0)
    try:
        array = np.load(stream, allow_pickle=False)
    except _NUMPY_ERRORS as error:
        raise ValueError(_unreadable(filename, error)) from None
    return _check_array(array, filename)


def _read_npz(data: bytes, filename: str, input_columns: list[str] | None, limits: UploadLimits):
    if data[:4] != _ZIP_MAGIC:
        kind = "an .npy file: name it .npy" if data[:6] == _NPY_MAGIC else "not a zip archive"
        raise ValueError(
            f"{filename} is not a NumPy .npz archive (it is {kind}). Save the arrays with "
            "np.savez(path, input_1=..., input_2=...)."
        )
    _check_npz_sizes(data, filename, limits)
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    except _NUMPY_ERRORS as error:
        raise ValueError(_unreadable(filename, error)) from None
    with archive:
        names = list(archive.files)
        if input_columns is None:
            numbered = sorted(
                (int(match.group(1)), name)
                for name in names
                if (match := re.fullmatch(r"input_(\d+)", name))
            )
            chosen = [name for _, name in numbered] or names
        else:
            chosen = [str(name) for name in input_columns]
            _check_choice(chosen, names, filename, "array")
        members = {member.removesuffix(".npy"): member for member in archive.zip.namelist()}
        arrays, total_values, total_bytes = [], 0, 0
        for name in chosen:
            where = f"{filename} (array {name!r})"
            try:
                with archive.zip.open(members[name]) as member:
                    values, size = _read_header(member, where)
            except _ZIP_ERRORS as error:
                raise ValueError(_unreadable(where, error)) from None
            total_values, total_bytes = total_values + values, total_bytes + size
            _check_float_size(total_values, total_bytes, f"The input arrays of {filename}")
            try:
                array = archive[name]
            except _NUMPY_ERRORS as error:
                raise ValueError(_unreadable(where, error)) from None
            arrays.append(_check_array(array, where))
    return arrays, names, [name for name in names if name not in chosen]


def _check_npz_sizes(data: bytes, filename: str, limits: UploadLimits) -> None:
    """Refuse an ``.npz`` that would unpack to more than the limits, from its headers only.

    The members are counted in the raw bytes before ``zipfile`` lists them; the zip's
    sizes are summed; and each ``.npy`` member's header must declare no more bytes than
    the member unpacks to (``zipfile`` never reads a member beyond its declared size), so
    no array can allocate more than the zip admits to.
    """
    count = data.count(_CENTRAL_MAGIC)
    if count > limits.max_zip_members:
        raise ValueError(
            f"{filename} holds {count} arrays; an .npz may hold at most "
            f"{limits.max_zip_members}. Save fewer arrays, or start the dashboard with a "
            "higher limit (--max-zip-members)."
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (*_ZIP_ERRORS, OSError, ValueError, EOFError) as error:
        raise ValueError(_unreadable(filename, error)) from None
    unpacked = sum(info.file_size for info in infos)
    if unpacked > limits.max_uncompressed_bytes:
        _too_large(filename, unpacked, limits)
    for info in infos:
        where = f"{filename} (array {info.filename.removesuffix('.npy')!r})"
        try:
            with archive.open(info) as member:
                if member.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
                    continue  # not an array: read (and refused) only if chosen
                member.seek(0)
                _, size = _read_header(member, where)
                header = member.tell()
        except (*_ZIP_ERRORS, OSError) as error:
            raise ValueError(_unreadable(where, error)) from None
        if header + size > info.file_size:
            raise ValueError(
                f"{where} declares {_size(size)} of values but unpacks to "
                f"{_size(info.file_size)}: it is truncated or forged. Save it again."
            )


def _too_large(filename: str, size: int, limits: UploadLimits) -> None:
    raise ValueError(
        f"{filename} unpacks to {_size(size)}; data files may unpack to at most "
        f"{_size(limits.max_uncompressed_bytes)}. Upload fewer rows, or start the "
        "dashboard with a higher limit (--max-uncompressed-mb)."
    )


def _check_float_size(values: int, size: int, where: str) -> None:
    """Refuse arrays whose float32 copy (or their stored bytes) exceeds MAX_ARRAY_BYTES."""
    if max(size, 4 * values) > MAX_ARRAY_BYTES:
        raise ValueError(
            f"{where} hold more than {_size(MAX_ARRAY_BYTES)}, the most the dashboard reads "
            "(as float32); upload fewer rows."
        )


def _read_header(stream: Any, where: str) -> tuple[int, int]:
    """The values and bytes an array declares, read from its header; object arrays are
    refused.

    Nothing but the header is read, so an object array is never unpickled and a header
    declaring more than the file holds allocates nothing.
    """
    try:
        version = np.lib.format.read_magic(stream)
        read = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read is None:
            raise ValueError(f"format version {version} is not read here")
        shape, _, dtype = read(stream)
    except _NUMPY_ERRORS as error:
        raise ValueError(_unreadable(where, error)) from None
    if dtype.hasobject:
        raise ValueError(
            f"{where} holds Python objects (an object array), which would have to be "
            "unpickled; it is refused. Save numeric arrays: np.save(path, "
            "array.astype(np.float32))."
        )
    values = math.prod(shape)
    return values, values * dtype.itemsize


def _unreadable(where: str, error: Exception) -> str:
    return f"{where} is not a readable NumPy file ({error}); it may be truncated. Save it again."


def _check_array(array: np.ndarray, where: str) -> np.ndarray:
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(
            f"{where} has values of type {array.dtype}; inputs must be numbers. Save "
            "array.astype(np.float32)."
        )
    if array.ndim < 2 or len(array) == 0:
        raise ValueError(
            f"{where} has shape {array.shape}; it needs a batch axis first and at least one "
            "row, e.g. (batch, features) or (batch, channels, height, width). For a single "
            "instance save array[None]."
        )
    array = array.astype(np.float32)
    _check_finite(array, where)
    return array


def _check_finite(array: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(
            f"{where} holds {int(bad.sum())} missing or infinite values (first in row "
            f"{row + 1}); fill them in or drop those rows before uploading."
        )


def _check_choice(chosen: list[str], available: list[str], filename: str, what: str) -> None:
    offered = set(available)
    unknown = [name for name in chosen if name not in offered]
    if unknown or not chosen:
        problem = f"has no {what} {', '.join(map(repr, unknown))}" if unknown else "got none"
        raise ValueError(f"{filename} {problem}; choose input {what}s from {', '.join(available)}.")


def _to_layout(array: np.ndarray, dim: tuple[int, ...] | None, channels_last: bool):
    """Reshape flat rows (or singleton axes) to ``dim`` and move a last channel axis first."""
    if dim is not None:
        stored = dim if not channels_last or len(dim) == 1 else (*dim[1:], dim[0])
        shape = array.shape[1:]
        same_values = math.prod(shape) == math.prod(stored)
        squeezed = [s for s in shape if s != 1] == [s for s in stored if s != 1]
        if shape != stored and same_values and (len(shape) == 1 or squeezed):
            array = array.reshape(len(array), *stored)
    if channels_last and array.ndim > 2:
        array = np.moveaxis(array, -1, 1)
    return np.ascontiguousarray(array, dtype=np.float32)


# --- messages and views ---------------------------------------------------------------------


def _shape_fix(want: tuple[int, ...], have: tuple[int, ...], data: LoadedData) -> str:
    if len(want) > 1 and len(have) == len(want):
        if not data.channels_last and have == (*want[1:], want[0]):
            return "switch channels-last on"
        if data.channels_last and have == (want[-1], *want[:-1]):
            return "switch channels-last off"
    if len(want) == 1 and len(have) == 1 and data.format == "csv":
        return f"choose {want[0]} input columns (now {have[0]}), e.g. leave a label column out"
    if math.prod(want) == math.prod(have):
        return (
            f"the values per instance are right but not their layout; save the data as "
            f"{_shapes([want])} (channels first), or channels last with the switch on"
        )
    return f"upload data with {math.prod(want)} values per instance, shaped {_shapes([want])}"


def _shapes(dims: list[tuple[int, ...]]) -> str:
    return ", ".join(f"(batch, {', '.join(map(str, dim))})" for dim in dims)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 100_000 else f"{n_bytes} bytes"


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _rounded(values: Any) -> Any:
    return [_rounded(v) for v in values] if isinstance(values, list) else _round(values)


def _stats(array: np.ndarray) -> dict[str, float]:
    return {
        "min": _round(float(array.min())),
        "max": _round(float(array.max())),
        "mean": _round(float(array.mean())),
        "std": _round(float(array.std())),
    }
