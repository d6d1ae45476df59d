"""A product photo at the widths pages show it: a thumbnail, a grid card, a detail view.

Each is made from the photo's display copy (or, for a product ingested before display
copies, from its original, through the same safe decoder), at most that wide, its
aspect kept and never enlarged, and kept in the media store beside the originals under
the source's digest and the width (`MediaStore.put_derived`): a folder or the cluster's
S3 bucket alike, so every API replica finds what one of them made.

Made on the first request for it rather than at ingest: the widths are a setting of the
pages (`VITRINE_PHOTO_WIDTHS`) and may change without touching the catalogue, products
ingested before today get them too, ingest (the cluster's workers) stays as it is, and
widths nobody asks for cost nothing. The first request pays one small decode (a display
copy is at most 1024 px), every later one a read.

Two first requests at once both make the copy and both store it; each write is whole
(a renamed temporary file, or one S3 PUT) and the copies are the same, so the cache
never holds half a picture. A display copy already narrow enough is kept as it is,
rather than re-encoded: no quality lost, and no decode.
"""

from __future__ import annotations

import io

from PIL import Image

from catalogue.images import DISPLAY_MAX_SIDE, narrowed_with
from catalogue.media import MediaStore
from catalogue.settings import CatalogueSettings


class UnknownWidth(ValueError):
    """A width the settings don't list: the message names those they do."""


def check_width(settings: CatalogueSettings, width: int) -> None:
    if width not in settings.photo_widths:
        allowed = ", ".join(map(str, settings.photo_widths)) or "none configured"
        raise UnknownWidth(f"photos are served {width} px wide only when "
                           f"VITRINE_PHOTO_WIDTHS lists it; the widths are: {allowed}")


def derived_name(width: int) -> str:
    return f"w{width}"


def photo_at_width(settings: CatalogueSettings, media: MediaStore, digest: str, width: int,
                   *, display: bool) -> bytes:
    """The photo stored under `digest` at most `width` wide, made and stored on first use.
    `display`: `digest` is a display copy Vitrine wrote (else an uploaded original, which
    is always re-encoded). KeyError when nothing is stored under `digest`; UnknownWidth."""
    check_width(settings, width)
    name = derived_name(width)
    try:
        return media.get_derived(digest, name)
    except KeyError:
        pass
    source = media.get(digest)
    data = source if display and fits(source, width) else narrowed_with(settings, source, width)
    media.put_derived(digest, name, data)
    return data


def fits(display_copy: bytes, width: int) -> bool:
    """Whether a display copy (a JPEG Vitrine wrote) is already at most `width` wide; read
    from its header, nothing decoded."""
    try:
        with Image.open(io.BytesIO(display_copy), formats=("JPEG",)) as image:
            return image.width <= width and image.height <= DISPLAY_MAX_SIDE
    except Exception:  # not as written: decoded (and refused, 422) like any upload
        return False
