"""Reading PNG/JPEG images, one file or a zip of many, into the model's input shape.

Uploaded files are untrusted, so every size is bounded before it is allocated: the
pixels an image declares (checked from its header, before it is decoded), the members
of a zip, the bytes each member and all of them unpack to (from the zip's headers and
again while reading, so a header that lies gains nothing), and the decoded array. Zips
are read in memory, never extracted to disk, and zips inside zips are refused. Every
error is a ValueError naming the file, the problem and the fix.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

MB = 1000**2
MAX_DECODED_BYTES = 2**30
"""The most bytes the decoded float32 images of one upload may take."""

_FORMATS = ("PNG", "JPEG")
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}
_CHUNK = 1 << 16
_ZIP_MAGIC = b"PK\x03\x04"
_CENTRAL_MAGIC = b"PK\x01\x02"
_SKIPPED = ("__MACOSX/",)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on what one uploaded image or zip of images may unpack to.

    Parameters
    ----------
    max_member_bytes : int, default=50 MB
        The most bytes one zip member may unpack to.
    max_uncompressed_bytes : int, default=200 MB
        The most bytes all members of a zip may unpack to together.
    max_zip_members : int, default=10000
        The most files a zip may hold.
    max_image_pixels : int, default=16 million
        The most pixels (height × width) one image may declare.
    max_instance_values : int, default=4 million
        Models: the most values one instance may have at the input or any layer.
    trust_torchscript : bool, default=False
        Models: whether TorchScript files (which run code when loaded) are accepted.
    """

    max_member_bytes: int = 50 * MB
    max_uncompressed_bytes: int = 200 * MB
    max_zip_members: int = 10_000
    max_image_pixels: int = 16_000_000
    max_instance_values: int = 4_000_000
    trust_torchscript: bool = False


@dataclass
class Images:
    """Images read from an upload: the array and the name of each image."""

    array: np.ndarray
    names: list[str]


def read_images(
    data: bytes,
    filename: str,
    *,
    input_dim: Any = None,
    mean: Any = None,
    std: Any = None,
    limits: UploadLimits | None = None,
) -> Images:
    """Read a PNG, a JPEG or a zip of them into a ``(batch, channels, height, width)`` array.

    Parameters
    ----------
    data : bytes
        The file's content.
    filename : str
        Its name; ``.zip`` reads the archive's images sorted by their names.
    input_dim : list of tuple of int, default=None
        The model's input shapes; an image model has one, ``(channels, height, width)``
        with 1 (grey) or 3 (RGB) channels. The images are converted to its channels and
        must have its height and width. None keeps each image's own colours.
    mean, std : float or list of float, default=None
        Per channel (or one for all): the values become ``(pixel / 255 - mean) / std``.
        None: ``pixel / 255`` (values from 0 to 1).
    limits : UploadLimits, default=UploadLimits()

    Returns
    -------
    Images
        float32 values, channels first; the names are the file names.

    Raises
    ------
    ValueError
        The file is not a PNG/JPEG (or a zip of them), it is damaged, it breaks a limit, the
        images differ in size or do not fit the model.
    """
    limits = UploadLimits() if limits is None else limits
    want = _model_image(input_dim)
    if os.path.splitext(filename)[1].lower() == ".zip":
        files = _zip_members(data, filename, limits)
    else:
        files = [(filename, data)]
    opened = [_open(content, name, limits) for name, content in files]
    mode = _mode(want, opened)
    sizes = sorted({image.size for _, image in opened})
    if want is not None:
        for name, image in opened:
            _check_size(image.size, want, name)
    elif len(sizes) > 1:
        (w1, h1), (w2, h2) = sizes[:2]
        raise ValueError(
            f"The images in {filename} differ in size ({h1}×{w1} and {h2}×{w2}, "
            "height×width); every instance needs the same shape. Resize them to one size."
        )
    width, height = sizes[0]
    channels = 1 if mode == "L" else 3
    decoded = len(opened) * channels * height * width * 4
    if decoded > MAX_DECODED_BYTES:
        raise ValueError(
            f"The {len(opened)} images of {filename} decode to {decoded / MB:.0f} MB, more than "
            f"the {MAX_DECODED_BYTES / MB:.0f} MB the dashboard reads; upload fewer images."
        )
    array = np.empty((len(opened), channels, height, width), dtype=np.float32)
    for row, (name, image) in enumerate(opened):
        pixels = _decode(image, mode, name)
        array[row] = pixels[None] if channels == 1 else np.moveaxis(pixels, -1, 0)
    array /= 255.0
    if mean is not None or std is not None:
        mean = _per_channel(0.0 if mean is None else mean, channels, "mean")
        std = _per_channel(1.0 if std is None else std, channels, "std")
        if (std <= 0).any():
            raise ValueError(f"The std of the image scaling must be above 0; got {std.tolist()}.")
        array = (array - mean[:, None, None]) / std[:, None, None]
    return Images(np.ascontiguousarray(array, dtype=np.float32), [name for name, _ in opened])


def _model_image(input_dim: Any) -> tuple[int, int, int] | None:
    """The model's ``(channels, height, width)``, or None when there is no model."""
    if input_dim is None:
        return None
    dims = [tuple(int(s) for s in dim) for dim in input_dim]
    if len(dims) != 1 or len(dims[0]) != 3:
        shapes = ", ".join(str(dim) for dim in dims)
        raise ValueError(
            f"The model's input shape is {shapes} but images fit a model with one input of "
            "shape (channels, height, width); upload a .csv, .npy or .npz for this model."
        )
    channels, height, width = dims[0]
    if channels not in (1, 3):
        raise ValueError(
            f"The model expects images with {channels} channels; PNG/JPEG images are read as "
            "1 (grey) or 3 (RGB) channels. Upload the data as an .npy of shape "
            f"(batch, {channels}, {height}, {width}) instead."
        )
    return channels, height, width


def _zip_members(data: bytes, filename: str, limits: UploadLimits) -> list[tuple[str, bytes]]:
    # An upper bound on the entries, found before zipfile builds one object per entry.
    if data.count(_CENTRAL_MAGIC) > limits.max_zip_members:
        _too_many(filename, data.count(_CENTRAL_MAGIC), limits)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, *_DECODE_ERRORS) as error:
        raise ValueError(
            f"{filename} is not a readable zip archive ({error}); it may be truncated. Zip the "
            "images again."
        ) from None
    with archive:
        infos = [
            info
            for info in archive.infolist()
            if not info.is_dir() and not info.filename.startswith(_SKIPPED)
        ]
        if len(infos) > limits.max_zip_members:
            _too_many(filename, len(infos), limits)
        if not infos:
            raise ValueError(f"{filename} holds no files; zip the PNG or JPEG images to explain.")
        declared = sum(info.file_size for info in infos)
        for info in infos:
            _check_member(info, filename, limits)
        if declared > limits.max_uncompressed_bytes:
            _too_large(filename, f"{declared / MB:.1f} MB", limits)
        members, total = [], 0
        for info in sorted(infos, key=lambda info: info.filename):
            content = _read_member(archive, info, filename, limits, total)
            total += len(content)
            if content[:4] == _ZIP_MAGIC:
                _nested(filename, info.filename)
            members.append((info.filename, content))
    return members


def _check_member(info: zipfile.ZipInfo, filename: str, limits: UploadLimits) -> None:
    where = f"{info.filename!r} in {filename}"
    if info.filename.lower().endswith(".zip"):
        _nested(filename, info.filename)
    if info.flag_bits & 0x1:
        raise ValueError(f"{where} is encrypted; zip the images without a password.")
    if info.file_size > limits.max_member_bytes:
        _member_too_large(where, f"{info.file_size / MB:.1f} MB", limits)


def _member_too_large(where: str, size: str, limits: UploadLimits) -> None:
    raise ValueError(
        f"{where} unpacks to {size}; a zip member may have at most "
        f"{limits.max_member_bytes / MB:.1f} MB. Zip smaller images, or start the dashboard "
        "with a higher limit (--max-upload-mb)."
    )


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, filename: str, limits: UploadLimits, total: int
) -> bytes:
    """A member's bytes, counted while read: a header understating its size gains nothing."""
    allowed = min(limits.max_member_bytes, limits.max_uncompressed_bytes - total)
    chunks, size = [], 0
    try:
        with archive.open(info) as member:
            while size <= allowed and (chunk := member.read(_CHUNK)):
                size += len(chunk)
                chunks.append(chunk)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, *_DECODE_ERRORS) as error:
        raise ValueError(
            f"{info.filename!r} in {filename} cannot be unpacked ({error}); zip the images "
            "again (deflate, no password)."
        ) from None
    if size > limits.max_member_bytes:
        where, limit = f"{info.filename!r} in {filename}", limits.max_member_bytes
        _member_too_large(where, f"more than {limit / MB:.1f} MB", limits)
    if size > allowed:
        _too_large(filename, f"more than {limits.max_uncompressed_bytes / MB:.1f} MB", limits)
    return b"".join(chunks)


def _too_many(filename: str, count: int, limits: UploadLimits) -> None:
    raise ValueError(
        f"{filename} holds {count} files; a zip may hold at most {limits.max_zip_members}. "
        "Upload fewer images, or start the dashboard with a higher limit (--max-zip-members)."
    )


def _too_large(filename: str, size: str, limits: UploadLimits) -> None:
    raise ValueError(
        f"{filename} unpacks to {size}; a zip may unpack to at most "
        f"{limits.max_uncompressed_bytes / MB:.1f} MB in all. Upload fewer images, or "
        "start the dashboard with a higher limit (--max-uncompressed-mb)."
    )


def _nested(filename: str, member: str) -> None:
    raise ValueError(
        f"{member!r} in {filename} is a zip inside the zip, which is not read; zip the images "
        "themselves into one archive."
    )


def _open(content: bytes, name: str, limits: UploadLimits) -> tuple[str, Image.Image]:
    """The image, opened (its header read, nothing decoded) and its pixel count checked."""
    try:
        image = Image.open(io.BytesIO(content), formats=_FORMATS)
    except Image.DecompressionBombError:
        _too_many_pixels(name, None, limits)
    except _DECODE_ERRORS as error:
        raise ValueError(
            f"{name} is not a readable PNG or JPEG image ({error}); save it as .png or .jpg."
        ) from None
    width, height = image.size
    if width * height > limits.max_image_pixels:
        _too_many_pixels(name, (height, width), limits)
    return name, image


def _too_many_pixels(name: str, size: tuple[int, int] | None, limits: UploadLimits) -> None:
    declared = f" ({size[0]}×{size[1]} pixels)" if size else ""
    raise ValueError(
        f"{name} is too large an image{declared}; images may have at most "
        f"{limits.max_image_pixels} pixels. Resize it to the model's input size, or start "
        "the dashboard with a higher limit (--max-image-pixels)."
    )


def _mode(want: tuple[int, int, int] | None, opened: list[tuple[str, Image.Image]]) -> str:
    if want is not None:
        return "L" if want[0] == 1 else "RGB"
    grey = all(image.mode in _GREY_MODES for _, image in opened)
    return "L" if grey else "RGB"


def _check_size(size: tuple[int, int], want: tuple[int, int, int], name: str) -> None:
    width, height = size
    if (height, width) != want[1:]:
        raise ValueError(
            f"{name} is {height}×{width} pixels (height×width) but the model expects "
            f"{want[1]}×{want[2]}; resize the images to {want[1]}×{want[2]}."
        )


def _decode(image: Image.Image, mode: str, name: str) -> np.ndarray:
    try:
        with image:
            image.load()
            return np.asarray(image.convert(mode), dtype=np.float32)
    except Image.DecompressionBombError as error:
        raise ValueError(f"{name} is refused as a decompression bomb ({error}).") from None
    except _DECODE_ERRORS as error:
        raise ValueError(
            f"{name} is damaged or truncated ({error}); save the image again as .png or .jpg."
        ) from None


def _per_channel(value: Any, channels: int, what: str) -> np.ndarray:
    try:
        values = np.asarray(value, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        values = np.array([], dtype=np.float32)
    if values.size == 1:
        values = np.repeat(values, channels)
    if values.size != channels or not np.isfinite(values).all():
        raise ValueError(
            f"The {what} of the image scaling is {value!r}; give one number or one per channel "
            f"({channels}), e.g. {[0.5] * channels}."
        )
    return values
