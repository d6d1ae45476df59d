"""Safe decoding of uploaded product images, and the clean copy Vitrine serves.

Never trust the file: cap the bytes before decoding, open only allowed
formats, refuse decompression bombs, truncated files and too-small pictures,
apply EXIF orientation, composite transparency onto white and convert to
8-bit RGB.

Memory is decided by the header, not by the file's size: a 5 KB one-bit PNG
can hold 40 Mpx. So `decode_image` reads the header only (`Image.open`),
estimates what decoding will hold, refuses a picture over `max_decoded_bytes`,
and takes that much from a `DecodeBudget` shared by the process before any
pixel is decoded. Callers that know how big a picture they need (`target`: the
model's input, the display copy) get it decoded smaller: JPEG through
`draft` (DCT scaling, the full size never exists), other formats through
`reduce` right after decoding, so the RGB working copies are small.

`DecodeBudget` is our own: the standard library has no weighted semaphore
(taking n units of a `threading.Semaphore` one at a time lets two half-served
takers block each other forever), and Pillow has no memory limit of its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TypeVar

from PIL import ExifTags, Image, ImageFile

from catalogue.settings import CatalogueSettings
from embedding.encoder import Preprocessing

T = TypeVar("T")

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_DECODED_BYTES = 128 * 1024 * 1024
# Decode at least this many times the size a caller needs, as Image.thumbnail's
# reducing_gap does: the final resample still sees enough pixels to anti-alias.
REDUCING_GAP = 2
# What Vitrine serves for a product: a JPEG it wrote itself, longest side at most this.
DISPLAY_MAX_SIDE = 1024
DISPLAY_MEDIA_TYPE = "image/jpeg"
DISPLAY_QUALITY = 88

# A truncated file must fail, not be indexed as a half-grey image.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(ValueError):
    """An upload that is not a usable product image; the message says why."""


class DecodeBusy(RuntimeError):
    """The process's decode budget stayed full for the whole wait: try again later (503)."""


class DecodeBudget:
    """Bytes of decoded pixels this process may hold at once, shared by every decoder.

    A decoder holds its estimate for the duration of the decode and gives it back after;
    one that can't get it within `timeout` gets DecodeBusy. A single estimate larger
    than the whole budget takes all of it (it waits for the rest to drain), so one
    picture under the per-image cap always decodes eventually.
    """

    def __init__(self, max_bytes: int):
        if max_bytes <= 0:
            raise ValueError(f"a decode budget needs a positive size, not {max_bytes}")
        self.max_bytes = max_bytes
        self.used = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, nbytes: int, timeout: float | None) -> Iterator[None]:
        """Hold `nbytes` of the budget inside the block; wait at most `timeout` seconds
        (None: as long as it takes, for background work with nobody to answer)."""
        nbytes = max(0, min(nbytes, self.max_bytes))
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self.used + nbytes > self.max_bytes:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise DecodeBusy(
                        f"too many images are being decoded at once ({self.used} of "
                        f"{self.max_bytes} bytes of decode budget in use, {nbytes} needed)")
                self._cond.wait(left)
            self.used += nbytes
        try:
            yield
        finally:
            if nbytes >= TRIM_AFTER_BYTES:
                return_freed_memory()
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()


# Give freed memory back to the OS after a decode that held at least this much.
TRIM_AFTER_BYTES = 16 * 1024 * 1024
_malloc_trim: Callable[[int], int] | None
try:
    _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc: nothing to trim through
    _malloc_trim = None


def return_freed_memory() -> None:
    """glibc keeps large freed blocks in the freeing thread's arena (its mmap threshold
    rises past Pillow's 16 MiB blocks after the first one is freed), so without a trim
    RSS climbs past the budget, one arena at a time, and is never given back."""
    if _malloc_trim is not None:
        _malloc_trim(0)


_budgets: dict[int, DecodeBudget] = {}
_budgets_lock = threading.Lock()


def process_budget(max_bytes: int) -> DecodeBudget:
    """The process's one budget of this size: the API's routes and the local ingest thread
    read the same settings, so they share it."""
    with _budgets_lock:
        if max_bytes not in _budgets:
            _budgets[max_bytes] = DecodeBudget(max_bytes)
        return _budgets[max_bytes]


def model_input_size(preprocess: Preprocessing) -> tuple[int, int]:
    """The smallest (width, height) the model's preprocessing needs to see to lose nothing:
    CLIP resizes the short side to `resize_shortest`, SigLIP straight to `resize_to`."""
    if preprocess.resize_shortest:
        return preprocess.resize_shortest, preprocess.resize_shortest
    assert preprocess.resize_to is not None
    height, width = preprocess.resize_to
    return width, height


# Bytes per pixel as Pillow stores each mode ("1" takes a byte; RGB is padded to 4).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
RGB_COPIES = 3  # to_rgb's working copies at the output size: transposed, RGBA, background


def pixel_bytes(mode: str) -> int:
    return _PIXEL_BYTES.get(mode, 4)


def decoded_bytes(image: Image.Image) -> int:
    """What decoding `image` (opened, not loaded) will allocate: width x height x bands x
    bytes per band, as Pillow stores the mode. Only the first frame of an animation is
    ever decoded, so frames don't multiply it."""
    width, height = image.size
    return width * height * pixel_bytes(image.mode)


def reduce_factor(size: tuple[int, int], target: tuple[int, int] | None) -> int:
    """The largest integer shrink that keeps both sides at least REDUCING_GAP x target."""
    if target is None:
        return 1
    return max(1, min(size[0] // (target[0] * REDUCING_GAP),
                      size[1] // (target[1] * REDUCING_GAP)))


def needs_normalising(image: Image.Image) -> bool:
    """Modes `reduce` refuses, and colour keys that averaging would break."""
    return (image.mode in ("1", "P", *_SIXTEEN_BIT)
            or (image.mode in ("L", "RGB") and "transparency" in image.info))


def working_bytes(image: Image.Image, target: tuple[int, int] | None) -> int:
    """The peak a decode holds: the decoded picture, a full-size copy where `reduce` needs
    another mode first, and the RGB copies at the size that comes out."""
    width, height = image.size
    factor = reduce_factor(image.size, target)
    normalise = (width * height * (1 if image.mode == "1" else 5)  # 16-bit: via I then L
                 if factor > 1 and needs_normalising(image) else 0)
    out = (width // factor) * (height // factor)
    return decoded_bytes(image) + normalise + RGB_COPIES * 4 * out


def decode_image(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_pixels: int = DEFAULT_MAX_PIXELS, *,
                 max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES, min_side: int = 1,
                 target: tuple[int, int] | None = None, budget: DecodeBudget | None = None,
                 wait_s: float | None = None) -> Image.Image:
    """Bytes of an upload -> an RGB image, or ImageError naming the problem.

    `target` (width, height): the least the caller needs; the picture comes out shrunk by
    an integer factor while both sides stay at least twice that. Without one, full size.
    `budget`: decoding waits up to `wait_s` for room in it (DecodeBusy after).
    """
    return decode_then(data, _same, max_bytes, max_pixels, max_decoded_bytes=max_decoded_bytes,
                       min_side=min_side, target=target, budget=budget, wait_s=wait_s)


def _same(image: Image.Image) -> Image.Image:
    return image


def decode_then(data: bytes, finish: Callable[[Image.Image], T],
                max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS, *,
                max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES, min_side: int = 1,
                target: tuple[int, int] | None = None, budget: DecodeBudget | None = None,
                wait_s: float | None = None) -> T:
    """`decode_image`, then `finish` on the RGB picture while its budget is still held
    (re-encoding a display copy makes more full-size copies)."""
    if not data:
        raise ImageError("the image is empty")
    if len(data) > max_bytes:
        raise ImageError(f"the image is {len(data)} bytes, over the limit of {max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)  # the header only
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(f"the image is {width}x{height} pixels, over the limit of "
                                 f"{max_pixels} (decompression bomb?)")
            if min(width, height) < min_side:
                raise ImageError(f"the image is {width}x{height} pixels, under the minimum of "
                                 f"{min_side} on each side")
            if target is not None and image.format == "JPEG":
                image.draft(None, (target[0] * REDUCING_GAP, target[1] * REDUCING_GAP))
            size = decoded_bytes(image)
            if size > max_decoded_bytes:
                raise ImageError(
                    f"the image is {width}x{height} pixels in mode {image.mode}: {size} bytes "
                    f"once decoded, over the limit of {max_decoded_bytes}")
            if budget is None:
                return _finish(image, target, finish)
            with budget.hold(working_bytes(image, target), wait_s):
                return _finish(image, target, finish)
    except (ImageError, DecodeBusy):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"the image was refused as a decompression bomb: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError("the file is not an image in an allowed format "
                         f"({', '.join(ALLOWED_FORMATS)})") from exc
    except Exception as exc:  # Pillow's parsers raise IndexError, struct.error, ... on junk
        raise ImageError(f"the image could not be decoded (truncated or corrupt): {exc}") from exc


def decode_with(settings: CatalogueSettings, data: bytes,
                target: tuple[int, int] | None = None, background: bool = False
                ) -> Image.Image:
    """`decode_image` under the settings' limits and the process's budget. A request waits
    `decode_wait_seconds` for room (DecodeBusy, 503, after); `background` work (the ingest
    batch) waits as long as it takes, since nobody is there to retry."""
    return _decode_with(settings, data, _same, target, background)


def display_with(settings: CatalogueSettings, data: bytes, background: bool = False) -> bytes:
    """The display copy (`display_copy`) of an upload, under the settings' limits and the
    process's budget, which it holds until the copy is encoded."""
    # Decoded with both sides at least DISPLAY_MAX_SIDE (REDUCING_GAP x half of it): the
    # thumbnail to fit DISPLAY_MAX_SIDE then only ever shrinks.
    half = DISPLAY_MAX_SIDE // REDUCING_GAP
    return _decode_with(settings, data, display_copy, (half, half), background)


def narrowed_with(settings: CatalogueSettings, data: bytes, width: int) -> bytes:
    """A photo re-encoded as the display copy is, but at most `width` wide (a thumbnail, a
    grid card): the aspect kept, never enlarged, under the settings' limits and the
    process's budget."""
    # Decoded at least REDUCING_GAP x half of `width` wide: the thumbnail only shrinks.
    # Where the height bounds it instead, the decoded height is over DISPLAY_MAX_SIDE too.
    return _decode_with(settings, data, partial(display_copy, box=(width, DISPLAY_MAX_SIDE)),
                        (-(-width // REDUCING_GAP), 1))


def _decode_with(settings: CatalogueSettings, data: bytes, finish: Callable[[Image.Image], T],
                 target: tuple[int, int] | None, background: bool = False) -> T:
    return decode_then(data, finish, settings.max_image_bytes, settings.max_image_pixels,
                       max_decoded_bytes=settings.max_decoded_bytes,
                       min_side=settings.min_image_side, target=target,
                       budget=process_budget(settings.decode_budget_bytes),
                       wait_s=None if background else settings.decode_wait_seconds)


def _finish(image: ImageFile.ImageFile, target: tuple[int, int] | None,
            finish: Callable[[Image.Image], T]) -> T:
    try:
        return finish(_decode(image, target))
    finally:  # the decoded pixels go now, inside the hold, not when the caller lets go
        image.close()


def _decode(image: Image.Image, target: tuple[int, int] | None) -> Image.Image:
    # An animated GIF/WebP opens on its first frame, the product. Later frames are
    # never read (n_frames would parse them all, and a corrupt one would fail it).
    image.load()
    factor = reduce_factor(image.size, target)
    if factor > 1:
        orientation = exif_orientation(image)  # read before any copy can drop the EXIF
        if needs_normalising(image):
            image = normalise(image)
        image = upright(image.reduce(factor), orientation)
        return to_rgb(image, orientation=None)
    return to_rgb(image)


def normalise(image: Image.Image) -> Image.Image:
    """A mode `reduce` can average: 1 -> L, 16-bit -> L, palette or colour key -> RGBA."""
    if image.mode == "1":
        return image.convert("L")
    if image.mode in _SIXTEEN_BIT:
        return image.point(lambda v: v / 256).convert("L")
    return image.convert("RGBA")


def display_copy(image: Image.Image,
                 box: tuple[int, int] = (DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE)) -> bytes:
    """The copy Vitrine serves for a product: re-encoded from the decoded RGB pixels, so
    nothing of the uploaded file (appended archives, metadata, scripts) survives; shrunk
    to fit `box`, its aspect kept, never enlarged."""
    copy = image.copy()
    copy.thumbnail(box, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    copy.save(buf, "JPEG", quality=DISPLAY_QUALITY, optimize=True)
    return buf.getvalue()


# EXIF orientation -> the transpose that makes the picture upright.
_ORIENTATION = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                8: Image.Transpose.ROTATE_90}


def exif_orientation(image: Image.Image) -> int | None:
    """The EXIF orientation tag; None where absent or unreadable."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # unreadable metadata must not cost a good photo
        return None
    return orientation if isinstance(orientation, int) else None


def upright(image: Image.Image, orientation: int | None | bool = True) -> Image.Image:
    """Apply the EXIF orientation (read from `image` unless given); corrupt EXIF leaves the
    pixels as stored.

    Not ImageOps.exif_transpose: it re-serialises the EXIF block afterwards, and
    that raises TypeError or struct.error on damaged metadata we never use.
    """
    if orientation is True:
        orientation = exif_orientation(image)
    method = _ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(method) if method is not None else image


def to_rgb(image: Image.Image, orientation: int | None | bool = True) -> Image.Image:
    """Orientation applied, transparency on white, any mode (CMYK, 16-bit, P) to RGB."""
    image = upright(image, orientation)
    if image.mode in _SIXTEEN_BIT:
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode in ("P", "L", "RGB") and "transparency" in image.info:
        image = image.convert("RGBA")  # a palette or colour-key tRNS: transparent -> white
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")
