"""Safe decoding of uploaded product images.

Never trust the file: cap the bytes before decoding, open only allowed
formats, refuse decompression bombs and truncated files, apply EXIF
orientation, composite transparency onto white and convert to 8-bit RGB.
"""

from __future__ import annotations

import io
import warnings

from PIL import ExifTags, Image, ImageFile

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000

# A truncated file must fail, not be indexed as a half-grey image.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(ValueError):
    """An upload that is not a usable product image; the message says why."""


def decode_image(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Bytes of an upload -> an RGB image, or ImageError naming the problem."""
    if not data:
        raise ImageError("the image is empty")
    if len(data) > max_bytes:
        raise ImageError(f"the image is {len(data)} bytes, over the limit of {max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(f"the image is {width}x{height} pixels, over the limit of "
                                 f"{max_pixels} (decompression bomb?)")
            # An animated GIF/WebP opens on its first frame, the product. Later frames are
            # never read (n_frames would parse them all, and a corrupt one would fail it).
            image.load()
            return to_rgb(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"the image was refused as a decompression bomb: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError("the file is not an image in an allowed format "
                         f"({', '.join(ALLOWED_FORMATS)})") from exc
    except Exception as exc:  # Pillow's parsers raise IndexError, struct.error, ... on junk
        raise ImageError(f"the image could not be decoded (truncated or corrupt): {exc}") from exc


# EXIF orientation -> the transpose that makes the picture upright.
_ORIENTATION = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                8: Image.Transpose.ROTATE_90}


def upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; corrupt EXIF leaves the pixels as stored.

    Not ImageOps.exif_transpose: it re-serialises the EXIF block afterwards, and
    that raises TypeError or struct.error on damaged metadata we never use.
    """
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # unreadable metadata must not cost a good photo
        return image
    method = _ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(method) if method is not None else image


def to_rgb(image: Image.Image) -> Image.Image:
    """Orientation applied, transparency on white, any mode (CMYK, 16-bit, P) to RGB."""
    image = upright(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode in ("P", "L", "RGB") and "transparency" in image.info:
        image = image.convert("RGBA")  # a palette or colour-key tRNS: transparent -> white
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")
