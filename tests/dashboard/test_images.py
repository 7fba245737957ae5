"""Image uploads: PNG/JPEG and zips of them, converted to the model's input, within limits."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from dashboard.config import Config, parse_args
from dashboard.images import UploadLimits, read_images
from dashboard.uploads import data_preview, read_data

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(8, 6, 3), dtype=np.uint8)  # height 8, width 6
GREY = RNG.integers(0, 256, size=(8, 6), dtype=np.uint8)


def _save(pixels: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _pillow(content: bytes, mode: str) -> np.ndarray:
    """What Pillow itself decodes, channels first, 0 to 1."""
    pixels = np.asarray(Image.open(io.BytesIO(content)).convert(mode), dtype=np.float32)
    return (pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)) / 255


# --- single images --------------------------------------------------------------------------


@pytest.mark.parametrize(("pixels", "channels"), [(RGB, 3), (GREY, 1)])
def test_png_is_read_channels_first_in_0_1(pixels, channels):
    data = read_data(_save(pixels), "digit.png", input_dim=[(channels, 8, 6)])
    assert data.format == "png" and data.shapes == [(channels, 8, 6)] and data.n_rows == 1
    assert data.row_names == ["digit.png"] and data.arrays[0].dtype == np.float32
    expected = pixels[None] if channels == 1 else np.moveaxis(pixels, -1, 0)
    np.testing.assert_array_equal(data.arrays[0][0], expected.astype(np.float32) / 255)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg"])
@pytest.mark.parametrize(("mode", "channels"), [("RGB", 3), ("L", 1)])
def test_jpeg_matches_pillows_decoding(suffix, mode, channels):
    content = _save(RGB, "JPEG", quality=90)
    data = read_data(content, "photo" + suffix, input_dim=[(channels, 8, 6)])
    assert data.format == "jpeg"
    np.testing.assert_allclose(data.arrays[0][0], _pillow(content, mode), atol=1e-7)


def test_rgb_image_is_greyed_for_a_grey_model_and_vice_versa():
    grey = read_data(_save(RGB), "a.png", input_dim=[(1, 8, 6)]).arrays[0][0]
    np.testing.assert_allclose(grey, _pillow(_save(RGB), "L"))
    rgb = read_data(_save(GREY), "a.png", input_dim=[(3, 8, 6)]).arrays[0][0]
    assert rgb.shape == (3, 8, 6)
    np.testing.assert_array_equal(rgb[0], rgb[2])


def test_without_a_model_images_keep_their_colours():
    assert read_images(_save(GREY), "g.png").array.shape == (1, 1, 8, 6)
    assert read_images(_save(RGB), "c.png").array.shape == (1, 3, 8, 6)


def test_mean_std_scaling_per_channel():
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    data = read_data(_save(RGB), "a.png", input_dim=[(3, 8, 6)], image_mean=mean, image_std=std)
    raw = np.moveaxis(RGB, -1, 0).astype(np.float64) / 255
    expected = (raw - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(data.arrays[0][0], expected, rtol=1e-5, atol=1e-6)


def test_one_mean_and_std_serve_every_channel():
    scaled = read_images(_save(RGB), "a.png", mean=0.5, std=0.5).array
    np.testing.assert_allclose(scaled, read_images(_save(RGB), "a.png").array * 2 - 1, atol=1e-6)


@pytest.mark.parametrize(
    ("mean", "std", "message"),
    [
        ([0.5, 0.5], None, r"The mean of the image scaling is \[0\.5, 0\.5\]; give one number "
         r"or one per channel \(3\)"),
        (None, "wide", r"The std of the image scaling is 'wide'"),
        (None, [1.0, 0.0, 1.0], r"The std of the image scaling must be above 0"),
    ],
)  # fmt: skip
def test_bad_scaling_is_explained(mean, std, message):
    with pytest.raises(ValueError, match=message):
        read_images(_save(RGB), "a.png", mean=mean, std=std)


def test_size_mismatch_names_both_sizes_and_the_fix():
    with pytest.raises(
        ValueError,
        match=r"a\.png is 8×6 pixels \(height×width\) but the model expects 28×28; resize "
        r"the images to 28×28\.",
    ):
        read_data(_save(RGB), "a.png", input_dim=[(3, 28, 28)])


@pytest.mark.parametrize(
    ("input_dim", "message"),
    [
        ([(4, 8, 6)], r"The model expects images with 4 channels; PNG/JPEG images are read as "
         r"1 \(grey\) or 3 \(RGB\) channels\. Upload the data as an \.npy of shape "
         r"\(batch, 4, 8, 6\)"),
        ([(10,)], r"The model's input shape is \(10,\) but images fit a model with one input "
         r"of shape \(channels, height, width\)"),
        ([(1, 8, 6), (3,)], r"images fit a model with one input"),
    ],
)  # fmt: skip
def test_models_that_do_not_take_images_are_explained(input_dim, message):
    with pytest.raises(ValueError, match=message):
        read_data(_save(RGB), "a.png", input_dim=input_dim)


def test_channels_last_switch_does_not_move_image_axes():
    data = read_data(_save(RGB), "a.png", channels_last=True, input_dim=[(3, 8, 6)])
    assert data.shapes == [(3, 8, 6)] and data.channels_last is False


def test_other_files_named_png_are_refused():
    with pytest.raises(ValueError, match=r"a\.png is not a readable PNG or JPEG image"):
        read_data(b"GIF89a" + bytes(40), "a.png")
    gif = io.BytesIO()
    Image.fromarray(GREY).save(gif, format="GIF")
    with pytest.raises(ValueError, match=r"save it as \.png or \.jpg"):
        read_data(gif.getvalue(), "a.png")


def test_truncated_png_is_explained():
    content = _save(RNG.integers(0, 256, size=(64, 64, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"a\.png is damaged or truncated .*save the image"):
        read_data(content[: len(content) // 2], "a.png")


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width × height`` grey pixels (no pixel data)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [5000, 60000])  # beyond the limit, and beyond Pillow's own
def test_decompression_bomb_png_is_refused_before_decoding(side):
    with pytest.raises(ValueError, match=r"bomb\.png is too large an image.*at most 16000000 "
                       r"pixels.*--max-image-pixels"):  # fmt: skip
        read_data(_png_declaring(side, side), "bomb.png")


def test_pixel_limit_comes_from_the_config():
    limits = Config(max_image_pixels=40).upload_limits
    with pytest.raises(ValueError, match=r"\(8×6 pixels\); images may have at most 40 pixels"):
        read_data(_save(RGB), "a.png", limits=limits)
    assert read_data(_save(RGB), "a.png", limits=Config(max_image_pixels=48).upload_limits)


# --- zips -----------------------------------------------------------------------------------


def test_zip_of_five_images_sorted_by_name():
    images = [RNG.integers(0, 256, size=(8, 6, 3), dtype=np.uint8) for _ in range(5)]
    names = ["e.png", "b.jpg", "d/c.png", "a.png", "c.jpeg"]
    members = {n: _save(p, "JPEG" if n.endswith(("jpg", "jpeg")) else "PNG") for n, p in
               zip(names, images, strict=True)}  # fmt: skip
    members["__MACOSX/._a.png"] = b"resource fork"
    data = read_data(_zip(members), "batch.zip", input_dim=[(3, 8, 6)])
    assert data.format == "zip" and data.n_rows == 5 and data.shapes == [(3, 8, 6)]
    assert data.row_names == sorted(names)
    for row, name in enumerate(sorted(names)):
        np.testing.assert_allclose(data.arrays[0][row], _pillow(members[name], "RGB"), atol=1e-7)


def test_zip_images_of_different_sizes_are_refused():
    content = _zip({"a.png": _save(RGB), "b.png": _save(RGB[:4])})
    with pytest.raises(ValueError, match=r"b\.png is 4×6 pixels .* resize the images to 8×6"):
        read_data(content, "z.zip", input_dim=[(3, 8, 6)])
    with pytest.raises(ValueError, match=r"differ in size \(4×6 and 8×6, height×width\)"):
        read_data(content, "z.zip")


def test_non_image_in_zip_is_refused():
    content = _zip({"a.png": _save(RGB), "labels.csv": b"label\n3\n"})
    with pytest.raises(ValueError, match=r"labels\.csv is not a readable PNG or JPEG image"):
        read_data(content, "z.zip")


@pytest.mark.parametrize("name", ["inner.zip", "inner.png"])
def test_nested_zip_is_refused(name):
    content = _zip({"a.png": _save(RGB), name: _zip({"b.png": _save(RGB)})})
    with pytest.raises(ValueError, match=r"in z\.zip is a zip inside the zip"):
        read_data(content, "z.zip")


def test_zip_with_too_many_members_names_the_limit():
    content = _zip({f"{k}.png": b"" for k in range(11)})
    with pytest.raises(ValueError, match=r"z\.zip holds 11 files; a zip may hold at most 10\. "
                       r".*--max-zip-members"):  # fmt: skip
        read_data(content, "z.zip", limits=UploadLimits(max_zip_members=10))


def test_highly_compressible_member_is_refused():
    content = _zip({"a.png": _save(RGB), "zeros.png": bytes(3_000_000)})
    assert len(content) < 10_000
    with pytest.raises(ValueError, match=r"'zeros\.png' in z\.zip unpacks to 3\.0 MB; a zip "
                       r"member may have at most 1\.0 MB"):  # fmt: skip
        read_data(content, "z.zip", limits=UploadLimits(max_member_bytes=1_000_000))
    with pytest.raises(ValueError, match=r"z\.zip unpacks to 3\.0 MB; a zip may unpack to at "
                       r"most 2\.0 MB in all.*--max-uncompressed-mb"):  # fmt: skip
        read_data(content, "z.zip", limits=UploadLimits(max_uncompressed_bytes=2_000_000))


def _lying(content: bytes, name: bytes, size: int) -> bytes:
    """``content`` with the size ``name`` declares (local and central headers) set to ``size``."""
    out = bytearray(content)
    for magic, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = out.find(magic)
        while start != -1:
            if out[start + name_at :].startswith(name):
                struct.pack_into("<I", out, start + size_at, size)
            start = out.find(magic, start + 4)
    return bytes(out)


def test_member_understating_its_size_is_refused():
    content = _lying(_zip({"a.png": _save(RGB), "zeros.png": bytes(3_000_000)}), b"zeros", 100)
    with pytest.raises(ValueError, match=r"'zeros\.png' in z\.zip cannot be unpacked \(Bad CRC"):
        read_data(content, "z.zip")


def test_unpacked_bytes_are_counted_while_reading(monkeypatch):
    """A member that unpacks to more than its header says stops at the limit (no hang)."""
    calls = []

    def endless(self, n=-1):
        calls.append(n)
        return bytes(n)

    monkeypatch.setattr(zipfile.ZipExtFile, "read", endless)
    content = _zip({"a.png": _save(RGB)})
    with pytest.raises(ValueError, match=r"'a\.png' in z\.zip unpacks to more than 1\.0 MB; "
                       r"a zip member may have at most 1\.0 MB"):  # fmt: skip
        read_data(content, "z.zip", limits=UploadLimits(max_member_bytes=1_000_000))
    assert len(calls) == 16
    with pytest.raises(ValueError, match=r"z\.zip unpacks to more than 0\.5 MB; a zip may "
                       r"unpack to at most 0\.5 MB in all"):  # fmt: skip
        read_data(content, "z.zip", limits=UploadLimits(max_uncompressed_bytes=500_000))


def test_member_declaring_a_huge_size_is_refused_from_the_header():
    content = _lying(_zip({"a.png": _save(RGB)}), b"a.png", 4_000_000_000)
    with pytest.raises(ValueError, match=r"'a\.png' in z\.zip unpacks to 4000\.0 MB; a zip "
                       r"member may have at most 50\.0 MB"):  # fmt: skip
        read_data(content, "z.zip")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04" + bytes(30), r"z\.zip is not a readable zip archive"),
        (_zip({}), r"z\.zip holds no files"),
        (_zip({"d/": b""}), r"z\.zip holds no files"),
    ],
)
def test_damaged_or_empty_zips_are_explained(content, message):
    with pytest.raises(ValueError, match=message):
        read_data(content, "z.zip")


# --- preview and config ---------------------------------------------------------------------


def test_preview_shows_image_names_and_thumbnails():
    members = {f"{k}.png": _save(RGB) for k in range(6)}
    data = read_data(_zip(members), "z.zip", input_dim=[(3, 8, 6)])
    preview = data_preview(data, rows=5)
    view = preview["inputs"][0]
    assert preview["row_names"] == ["0.png", "1.png", "2.png", "3.png", "4.png"]
    assert view["kind"] == "image" and np.shape(view["first"]) == (5, 3, 8, 6)
    np.testing.assert_allclose(view["first"][0], data.arrays[0][0], atol=1e-6)


def test_preview_of_large_images_is_strided():
    big = RNG.integers(0, 256, size=(100, 90, 3), dtype=np.uint8)
    view = data_preview(read_data(_save(big), "big.png"))["inputs"][0]
    assert view["first_step"] == 3 and np.shape(view["first"]) == (1, 3, 34, 30)
    np.testing.assert_allclose(view["first"][0][1][2][5], big[6, 15, 1] / 255, atol=1e-6)


def test_limits_have_cli_flags():
    config = parse_args(
        ["--max-uncompressed-mb", "20", "--max-zip-members", "7", "--max-image-pixels", "99"]
    )
    assert config.upload_limits == UploadLimits(
        max_member_bytes=Config().max_upload_bytes,
        max_uncompressed_bytes=20_000_000,
        max_zip_members=7,
        max_image_pixels=99,
    )
    with pytest.raises(ValueError, match=r"max_zip_members must be a positive number; got 0"):
        Config(max_zip_members=0)
