"""Images made safe to show children: decoded, turned upright, and written anew with nothing but
their pixels; and a thumbnail.

    clean_image(path, ftype, out_dir=None) -> CleanImage | Refusal

A pure function on files on disk (the upload path calls it in a thread, after `file_types.inspect`
said the file is an image). It writes two new files beside the upload (or in `out_dir`) and
changes nothing else; the caller stores them and deletes all three. On a refusal it leaves nothing.

**Nothing but pixels survives.** A photo carries where it was taken (EXIF GPS), the phone's make,
model and serial number, the owner's name, the time, editing software (XMP, IPTC, Photoshop
blocks), comments, PNG text chunks, HEIC depth maps and thumbnails of the uncropped picture. The
image is decoded and encoded again from its pixels alone: no EXIF, XMP, IPTC, comment, text chunk
or embedded thumbnail is written, and the result is opened again to check (a failure there is a
bug, raised as AssertionError, never a file let through). **ICC profiles** are dropped too, after
the pixels have been converted from the profile to sRGB (LittleCMS, in Pillow): a profile holds
no personal data worth the name, but dropping one without converting would change the colours of
every Display P3 phone photo, and a browser takes an image without a profile as sRGB. A profile
that LittleCMS cannot read is dropped unconverted.

**Orientation**: the EXIF orientation is applied to the pixels before EXIF is dropped, so a phone
photo taken upright stays upright (HEIC's own rotation is applied by the decoder).

**What comes out** (`CleanImage`): JPEG stays JPEG (quality 85), PNG stays PNG, GIF stays GIF and
WebP stays WebP — animated ones keep every frame, their durations and loop count (a GIF is how
children share a joke; the frames are bounded, below); an animated PNG keeps its frames too; BMP
and TIFF become PNG (browsers do not all show them; a TIFF's first page only); HEIC/HEIF and AVIF
become JPEG, or PNG if they have transparency (browsers do not show HEIC; pi-heif decodes it).
The thumbnail is WebP, its longest side at most `THUMB_SIDE` px (never enlarged), from the first
frame, with no metadata either.

**Bounds** (a decompression bomb is a tiny file that decodes to gigabytes): an image whose header
declares more than `MAX_PIXELS` pixels, or an animation whose frames add up to more than
`MAX_ANIMATION_PIXELS`, is refused before decoding. `PIL.Image.MAX_IMAGE_PIXELS` is set to
`MAX_PIXELS` when this module is imported (a setting of the whole process: Pillow's own check
then backs ours up everywhere, and raises at twice that).

**Refusal codes** (`file_types.Refusal`):
- `image_too_large`: more than `MAX_PIXELS` pixels (or the animation more than
  `MAX_ANIMATION_PIXELS`): a decompression bomb, or a picture far larger than any screen.
- `image_unreadable`: the content said it is this kind of image but it does not decode (damaged,
  truncated, or only pretending).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pi_heif
from PIL import Image, ImageCms, ImageOps, ImageSequence

from .file_types import FileType, Refusal, RefusalCode, safe_name

MAX_PIXELS = 40_000_000  # a 40-megapixel photo; phones take 12 to 50 (binned to 12 by default)
MAX_ANIMATION_PIXELS = 100_000_000  # all frames together: a 500×500 GIF of 400 frames
THUMB_SIDE = 320
JPEG_QUALITY = 85
WEBP_QUALITY = 85
THUMB_QUALITY = 80

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
pi_heif.register_heif_opener()

# Which of Pillow's decoders may open each type inspect() found: no other one is ever tried on it.
_DECODERS = {
    "image/jpeg": ["JPEG"], "image/png": ["PNG"], "image/gif": ["GIF"], "image/webp": ["WEBP"],
    "image/bmp": ["BMP", "DIB"], "image/tiff": ["TIFF"], "image/heic": ["HEIF", "AVIF"],
    "image/avif": ["AVIF", "HEIF"],
}
# Pillow's format -> (media type, extension, Pillow's encoder) of what is written. MPO is a JPEG
# with more pictures after it (a stereo camera's second eye, a phone's depth map): the first is kept.
_JPEG = ("image/jpeg", ".jpg", "JPEG")
_PNG = ("image/png", ".png", "PNG")
_OUTPUT = {"JPEG": _JPEG, "MPO": _JPEG, "PNG": _PNG, "GIF": ("image/gif", ".gif", "GIF"),
           "WEBP": ("image/webp", ".webp", "WEBP"), "BMP": _PNG, "DIB": _PNG, "TIFF": _PNG,
           "HEIF": _JPEG, "AVIF": _JPEG}
_ANIMATED = frozenset({"GIF", "WEBP", "PNG"})
# What must not be in a cleaned file's info once it is opened again.
_METADATA = frozenset({"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "photoshop",
                       "iptc", "adobe", "chunks", "thumbnails", "depth_images"})


@dataclass(frozen=True, slots=True)
class CleanImage:
    """The cleaned image (`path`, `media_type`, `extension`, its download `name`: the upload's
    safe name with the new extension, `width` × `height` once upright) and its thumbnail."""

    path: Path
    media_type: str
    extension: str
    name: str
    width: int
    height: int
    thumbnail_path: Path
    thumbnail_media_type: str


def clean_image(path: Path, ftype: FileType, out_dir: Path | None = None) -> CleanImage | Refusal:
    """The image at `path` (`ftype` from `file_types.inspect`, of kind "image") written again with
    its pixels only, upright and in sRGB, as `<name>.clean<ext>`, and its thumbnail as
    `<name>.thumb.webp`, both in `out_dir` (default: beside `path`, replaced if there); or a
    refusal (`image_too_large`, `image_unreadable`) and nothing written. Raises ValueError for a
    `ftype` that is not an image, OSError if the files cannot be read or written."""
    if ftype.kind != "image" or ftype.media_type not in _DECODERS:
        raise ValueError(f"not an image: {ftype.media_type}")
    out_dir = out_dir or path.parent
    try:
        im = Image.open(path, formats=_DECODERS[ftype.media_type])
    except Image.DecompressionBombError:
        return _too_large()
    except (OSError, SyntaxError, ValueError, EOFError):
        return _unreadable()
    with im:
        width, height = im.size
        if width * height > MAX_PIXELS:
            return _too_large()
        media_type, extension, encoder = _OUTPUT.get(im.format or "", _PNG)
        try:
            count = getattr(im, "n_frames", 1) if im.format in _ANIMATED else 1
            if count * width * height > MAX_ANIMATION_PIXELS:
                return _too_large()
            # Every frame decoded before anything is written (bounded by MAX_ANIMATION_PIXELS),
            # so that a frame that does not decode is a refusal and a write that fails is an error.
            frames, durations = [], []
            for frame in ImageSequence.Iterator(im) if count > 1 else [im]:
                frames.append(_pixels(frame))
                durations.append(int(frame.info.get("duration") or 100))
            loop = im.info.get("loop")
        except Image.DecompressionBombError:
            return _too_large()
        except Exception:  # decoders on hostile bytes raise what they raise: it did not decode
            return _unreadable()
    first = frames[0]
    if encoder == "JPEG" and first.mode in ("RGBA", "LA"):
        media_type, extension, encoder = _PNG
    clean_path = out_dir / f"{path.name}.clean{extension}"
    thumb_path = out_dir / f"{path.name}.thumb.webp"
    try:
        if len(frames) > 1:
            _save_animation(frames, durations, loop, clean_path, encoder)
        else:
            _save(first, clean_path, encoder)
        _save_thumbnail(first, thumb_path)
        _assert_clean(clean_path)
        _assert_clean(thumb_path)
    except BaseException:
        clean_path.unlink(missing_ok=True)
        thumb_path.unlink(missing_ok=True)
        raise
    return CleanImage(clean_path, media_type, extension, safe_name(ftype.name, extension),
                      first.width, first.height, thumb_path, "image/webp")


def _pixels(frame: Image.Image) -> Image.Image:
    """The frame upright, in sRGB, in a mode every encoder takes (L, LA, RGB, RGBA), with an
    empty `info`: a new image holding pixels only."""
    try:
        upright = ImageOps.exif_transpose(frame)
    except Exception:  # an EXIF block too damaged to read has no orientation we could trust
        upright = frame.copy()
    icc = frame.info.get("icc_profile")
    if icc:
        upright = _to_srgb(upright, icc)
    if upright.mode in ("I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit grey: scaled, not clipped
        upright = upright.convert("I").point(lambda v: v / 256).convert("L")
    elif upright.mode not in ("L", "LA", "RGB", "RGBA"):
        alpha = upright.mode in ("PA", "RGBa", "La") or "transparency" in upright.info
        upright = upright.convert("RGBA" if alpha else ("L" if upright.mode in ("1", "I", "F") else "RGB"))
    elif upright.mode == "RGB" and "transparency" in upright.info:  # a PNG's colour key
        upright = upright.convert("RGBA")
    if upright is frame:  # exif_transpose and convert return new images; this keeps it so
        upright = frame.copy()
    upright.info = {}
    return upright


def _to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    """The pixels converted from their profile to sRGB; unchanged if the profile is unreadable
    or not for the image's colours (grey stays grey: near enough in any grey profile)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = source.profile.xcolor_space.strip()
        if (space, im.mode) not in (("RGB", "RGB"), ("RGB", "RGBA"), ("CMYK", "CMYK")):
            return im
        mode = "RGBA" if im.mode == "RGBA" else "RGB"
        return ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, AttributeError):
        return im


def _save(im: Image.Image, dest: Path, encoder: str) -> None:
    options: dict = {}
    if encoder == "JPEG":
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        options = {"quality": JPEG_QUALITY, "optimize": True}
    elif encoder == "WEBP":
        options = {"quality": WEBP_QUALITY}
    im.save(dest, encoder, **options)


def _save_animation(frames: list[Image.Image], durations: list[int], loop: int | None, dest: Path,
                    encoder: str) -> None:
    """Every frame, composed as Pillow shows it, with its duration; the loop count kept (a GIF
    without one plays once, and still does)."""
    options: dict = {"save_all": True, "append_images": frames[1:], "duration": durations}
    if loop is not None:
        options["loop"] = int(loop)
    if encoder == "GIF":
        options["disposal"] = 2
    elif encoder == "WEBP":
        options["quality"] = WEBP_QUALITY
    frames[0].save(dest, encoder, **options)


def _save_thumbnail(first: Image.Image, dest: Path) -> None:
    thumb = first.copy()
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    if thumb.mode not in ("RGB", "RGBA"):
        thumb = thumb.convert("RGBA" if "A" in thumb.mode else "RGB")
    thumb.save(dest, "WEBP", quality=THUMB_QUALITY)


def _assert_clean(written: Path) -> None:
    """Open what was written and check that nothing but pixels is in it (not an `assert`: this
    check must hold under `python -O` too)."""
    with Image.open(written) as check:
        left = _METADATA & set(check.info)
        text = getattr(check, "text", None) if check.format == "PNG" else None
        if left or text or check.getexif():
            raise AssertionError(f"{written.name} kept {sorted(left) or 'text or EXIF'}: a bug in images.py")


def _too_large() -> Refusal:
    return Refusal(RefusalCode.IMAGE_TOO_LARGE,
                   f"the image is larger than {MAX_PIXELS // 1_000_000} megapixels (or its animation too long)")


def _unreadable() -> Refusal:
    return Refusal(RefusalCode.IMAGE_UNREADABLE, "the image is damaged and cannot be shown")
