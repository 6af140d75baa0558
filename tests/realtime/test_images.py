"""services/images.py: after cleaning, nothing but pixels; upright; bounded; a thumbnail.

Every fixture is made here with Pillow (HEIC with pillow-heif). Metadata is checked twice: as
Pillow reads it back, and as bytes (the camera's serial number, the owner's name, the GPS area
must not be anywhere in the file)."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image, ImageCms, PngImagePlugin

from realtime.services.file_types import FileType, Refusal, RefusalCode, inspect
from realtime.services.images import MAX_PIXELS, THUMB_SIDE, CleanImage, clean_image

SERIAL = "SN-CAMERA-0042317"
OWNER = "Ada Lovelace"
WHERE = "GPS-12-ROSE-STREET"
RED, BLUE = (255, 0, 0), (0, 0, 255)


def exif(orientation: int = 1) -> Image.Exif:
    """EXIF as a phone writes it: make, model, owner, serial, orientation and a GPS position."""
    data = Image.Exif()
    data[0x010F], data[0x0110], data[0x0112] = "PhoneMaker", "Phone 15", orientation
    data[0x8769] = {0xA430: OWNER, 0xA431: SERIAL}  # Exif IFD: CameraOwnerName, BodySerialNumber
    data[0x8825] = {1: "N", 2: (48.0, 51.0, 29.6), 3: "E", 4: (2.0, 17.0, 40.2), 0x1C: WHERE}
    return data


def landscape_red_left(width: int = 400, height: int = 200) -> Image.Image:
    """Left half red, right half blue: rotated to portrait, red must end up on top (EXIF 6)."""
    im = Image.new("RGB", (width, height), BLUE)
    im.paste(RED, (0, 0, width // 2, height))
    return im


def clean(path: Path, claimed: str) -> CleanImage:
    ftype = inspect(path, claimed)
    assert isinstance(ftype, FileType) and ftype.kind == "image", ftype
    result = clean_image(path, ftype)
    assert isinstance(result, CleanImage), result
    return result


def assert_no_metadata(path: Path, *secrets: str) -> None:
    raw = path.read_bytes()
    for secret in (SERIAL, OWNER, WHERE, *secrets):
        assert secret.encode() not in raw, (path.name, secret)
    for marker in (b"Exif", b"EXIF", b"ICC_PROFILE", b"iCCP", b"tEXt", b"iTXt", b"zTXt", b"eXIf",
                   b"XMP", b"xmpmeta", b"Photoshop"):
        assert marker not in raw, (path.name, marker)
    with Image.open(path) as im:
        assert not im.getexif()
        assert not {"exif", "icc_profile", "xmp", "comment", "XML:com.adobe.xmp"} & set(im.info)


def test_a_phone_jpeg_loses_its_exif_gps_and_serial_and_comes_out_upright(tmp_path):
    path = tmp_path / "upload"
    landscape_red_left().save(path, "JPEG", exif=exif(orientation=6), comment=b"taken at home")
    raw = path.read_bytes()
    assert SERIAL.encode() in raw and WHERE.encode() in raw  # the fixture has what we remove
    with Image.open(path) as before:
        assert before.getexif().get_ifd(0x8825)

    result = clean(path, "IMG_2041.JPG")

    assert (result.media_type, result.extension, result.name) == ("image/jpeg", ".jpg", "IMG_2041.jpg")
    assert_no_metadata(result.path, "taken at home", "PhoneMaker")
    with Image.open(result.path) as after:
        assert after.format == "JPEG"
        assert after.size == (200, 400) == (result.width, result.height)  # portrait, as it was taken
        assert _near(after.getpixel((100, 50)), RED) and _near(after.getpixel((100, 350)), BLUE)


def test_xmp_and_an_icc_profile_do_not_survive_and_colours_stay_srgb(tmp_path):
    path = tmp_path / "upload"
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>{OWNER}</dc:creator></x:xmpmeta>'.encode()
    Image.new("RGB", (64, 48), (200, 100, 50)).save(path, "JPEG", icc_profile=srgb, xmp=xmp, quality=95)
    assert b"xmpmeta" in path.read_bytes() and b"ICC_PROFILE" in path.read_bytes()

    result = clean(path, "drawing.jpg")

    assert_no_metadata(result.path)
    with Image.open(result.path) as after:
        assert _near(after.getpixel((30, 20)), (200, 100, 50), 6)


def test_png_text_chunks_are_gone_and_transparency_stays(tmp_path):
    path = tmp_path / "upload"
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", OWNER)
    info.add_text("Comment", SERIAL, zip=True)
    info.add_itxt("Location", WHERE)
    Image.new("RGBA", (50, 30), (10, 20, 30, 0)).save(path, "PNG", pnginfo=info)
    with Image.open(path) as before:
        assert before.text["Author"] == OWNER

    result = clean(path, "logo.png")

    assert result.media_type == "image/png"
    assert_no_metadata(result.path)
    with Image.open(result.path) as after:
        assert not after.text and after.mode == "RGBA" and after.getpixel((0, 0))[3] == 0


def test_an_animated_gif_keeps_its_frames_and_timing_but_not_its_comment(tmp_path):
    path = tmp_path / "upload"
    frames = [Image.new("RGB", (60, 40), (i * 60, 255 - i * 60, 0)) for i in range(4)]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=[50, 60, 70, 80],
                   loop=0, comment=OWNER.encode())

    result = clean(path, "dance.gif")

    assert result.media_type == "image/gif"
    assert_no_metadata(result.path)
    with Image.open(result.path) as after:
        assert after.n_frames == 4 and after.info.get("loop") == 0
        durations = []
        for i in range(4):
            after.seek(i)
            durations.append(after.info["duration"])
        assert durations == [50, 60, 70, 80]


def test_webp_keeps_its_format_not_its_exif(tmp_path):
    path = tmp_path / "upload"
    landscape_red_left().save(path, "WEBP", exif=exif(orientation=6), quality=90)
    result = clean(path, "sticker.webp")
    assert (result.media_type, result.width, result.height) == ("image/webp", 200, 400)
    assert_no_metadata(result.path)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_bmp_and_tiff_become_png(tmp_path, fmt):
    path = tmp_path / "upload"
    extra = {"tiffinfo": {315: OWNER, 33432: SERIAL}} if fmt == "TIFF" else {}  # Artist, Copyright
    landscape_red_left(40, 20).save(path, fmt, **extra)
    result = clean(path, f"scan.{fmt.lower()}")
    assert (result.media_type, result.extension, result.name) == ("image/png", ".png", "scan.png")
    assert_no_metadata(result.path)


def test_heic_becomes_an_upright_jpeg_without_its_exif(tmp_path):
    path = tmp_path / "upload"
    heif = pillow_heif.from_pillow(landscape_red_left(64, 32))
    heif.save(path, exif=exif(orientation=6).tobytes(), quality=90)
    assert SERIAL.encode() in path.read_bytes()

    result = clean(path, "IMG_0001.HEIC")

    assert (result.media_type, result.extension, result.name) == ("image/jpeg", ".jpg", "IMG_0001.jpg")
    assert (result.width, result.height) == (32, 64)
    assert_no_metadata(result.path)
    with Image.open(result.path) as after:
        assert _near(after.getpixel((16, 8)), RED, 40) and _near(after.getpixel((16, 56)), BLUE, 40)


def test_a_jpeg_with_more_pictures_after_it_keeps_the_first_only(tmp_path):
    path = tmp_path / "upload"  # MPO: Pillow opens it as its own format, not as "JPEG"
    landscape_red_left(40, 20).save(path, "MPO", save_all=True, append_images=[Image.new("RGB", (40, 20))],
                                    exif=exif())
    result = clean(path, "stereo.jpg")
    assert (result.media_type, result.width, result.height) == ("image/jpeg", 40, 20)
    assert_no_metadata(result.path)
    with Image.open(result.path) as after:
        assert after.format == "JPEG" and getattr(after, "n_frames", 1) == 1


def test_avif_becomes_jpeg(tmp_path):
    path = tmp_path / "upload"
    landscape_red_left(40, 20).save(path, "AVIF", exif=exif())
    result = clean(path, "picture.avif")
    assert (result.media_type, result.name) == ("image/jpeg", "picture.jpg")
    assert_no_metadata(result.path)


def test_the_thumbnail_is_small_webp_and_clean(tmp_path):
    path = tmp_path / "upload"
    landscape_red_left(1200, 500).save(path, "JPEG", exif=exif())
    result = clean(path, "wide.jpg")
    assert result.thumbnail_media_type == "image/webp"
    assert_no_metadata(result.thumbnail_path)
    with Image.open(result.thumbnail_path) as thumb:
        assert thumb.format == "WEBP" and max(thumb.size) == THUMB_SIDE and thumb.size == (320, 133)
    assert (result.width, result.height) == (1200, 500)


def test_a_small_image_is_not_enlarged_for_its_thumbnail(tmp_path):
    path = tmp_path / "upload"
    Image.new("RGB", (30, 20), "green").save(path, "PNG")
    result = clean(path, "tiny.png")
    with Image.open(result.thumbnail_path) as thumb:
        assert thumb.size == (30, 20)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) \
        + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path):
    path = tmp_path / "upload"
    path.write_bytes(_png_header_only(100_000, 100_000))  # 10 gigapixels in a few hundred bytes
    ftype = inspect(path, "bomb.png")
    started = time.perf_counter()
    result = clean_image(path, ftype)
    assert isinstance(result, Refusal) and result.code == RefusalCode.IMAGE_TOO_LARGE == "image_too_large"
    assert time.perf_counter() - started < 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upload"]  # nothing left behind


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, at open: ours refuses
def test_the_pixel_bound_is_ours_not_only_pillows(tmp_path):
    path = tmp_path / "upload"
    side = int(MAX_PIXELS**0.5) + 10  # just over: Pillow alone would only warn up to twice this
    path.write_bytes(_png_header_only(side, side))
    result = clean_image(path, inspect(path, "big.png"))
    assert isinstance(result, Refusal) and result.code == RefusalCode.IMAGE_TOO_LARGE


def test_an_animation_too_long_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("realtime.services.images.MAX_ANIMATION_PIXELS", 60 * 40 * 3)
    path = tmp_path / "upload"
    frames = [Image.new("RGB", (60, 40), (i * 60, 0, 0)) for i in range(4)]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:])
    result = clean_image(path, inspect(path, "long.gif"))
    assert isinstance(result, Refusal) and result.code == RefusalCode.IMAGE_TOO_LARGE


@pytest.mark.parametrize(("data", "claimed"), [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8, "photo.jpg"),  # says JPEG, is not
    (_png_header_only(64, 64)[:-30], "cut.png"),  # a PNG cut short
])
def test_an_image_that_does_not_decode_is_unreadable(tmp_path, data, claimed):
    path = tmp_path / "upload"
    path.write_bytes(data)
    ftype = inspect(path, claimed)
    assert isinstance(ftype, FileType) and ftype.kind == "image"
    result = clean_image(path, ftype)
    assert isinstance(result, Refusal) and result.code == RefusalCode.IMAGE_UNREADABLE == "image_unreadable"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upload"]


def test_only_images_are_cleaned(tmp_path):
    path = tmp_path / "upload"
    path.write_bytes(b"%PDF-1.4\n%%EOF\n")
    with pytest.raises(ValueError):
        clean_image(path, inspect(path, "a.pdf"))


def _near(pixel, colour, tolerance: int = 20) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))
