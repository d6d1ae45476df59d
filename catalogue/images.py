"""Safe decoding of uploaded product images.

Never trust the file: cap the bytes before decoding, open only allowed
formats, refuse decompression bombs and truncated files, apply EXIF
orientation, composite transparency onto white and convert to 8-bit RGB.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageFile, ImageOps

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
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)  # animated GIF/WebP: the first frame is the product
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"the image was refused as a decompression bomb: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError("the file is not an image in an allowed format "
                         f"({', '.join(ALLOWED_FORMATS)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"the image could not be decoded (truncated or corrupt): {exc}") from exc
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Orientation applied, transparency on white, any mode (CMYK, 16-bit, P) to RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")
