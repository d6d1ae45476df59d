"""Product photos, by product id: the copy Vitrine wrote, never the uploaded bytes.

A product ingested now has a display copy (`display_sha256`: a JPEG re-encoded from
the decoded pixels at ingest, beside the original kept for reindexing), served as
stored. A product ingested before display copies has none: its copy is re-encoded
on the fly from the original, within the decode budget, and not stored (a GET
changes nothing); its ETag is the original's digest, so revalidation (304) costs no
decode. Re-uploading the product gives it a stored copy.

`?w=` asks for the photo at most that wide, one of `VITRINE_PHOTO_WIDTHS` (a thumbnail,
a grid card, a detail view: `catalogue.derivatives`), made once and kept in the media
store; its ETag is the source's digest and the width, so a 304 reads nothing either.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from api.auth import SHOPPER
from api.deps import ApiSettingsDep, MediaDep, ProductsDep, SettingsDep
from api.errors import ApiProblem, responses
from catalogue.derivatives import UnknownWidth, check_width, photo_at_width
from catalogue.images import DISPLAY_MEDIA_TYPE, ImageError, display_with
from catalogue.ingest import DISPLAY_KEY
from catalogue.products import visible_to
from catalogue.schemas import Role

router = APIRouter(prefix="/v1", tags=["products"])

YEAR = 365 * 24 * 3600


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag in tags or "*" in tags


IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {DISPLAY_MEDIA_TYPE: {}},
                         "description": "The product's photo, as Vitrine re-encoded it"},
                   304: {"description": "Not modified (ETag is the served copy's SHA-256)"},
                   **responses(401, 404, 422, 503)}
Version = Annotated[str | None, Query(max_length=64, description=(
    "The photo's sha256 (or display_sha256): the URL is then content-addressed and cached "
    "for a year"))]
Width = Annotated[int | None, Query(ge=16, le=4096, description=(
    "The photo at most this many pixels wide (aspect kept, never enlarged), one of the "
    "widths VITRINE_PHOTO_WIDTHS lists (default 160, 400, 1000)"))]


@router.get("/products/{product_id}/image", response_class=Response, responses=IMAGE_RESPONSES)
def read_product_image(product_id: str, request: Request, products: ProductsDep,
                       media: MediaDep, api_settings: ApiSettingsDep, settings: SettingsDep,
                       role: Annotated[Role, SHOPPER], v: Version = None, w: Width = None):
    """The product's main photo; hidden (flagged, rejected) products' only to managers."""
    return read_product_photo(product_id, 0, request, products, media, api_settings, settings,
                              role, v, w)


@router.get("/products/{product_id}/images/{index}", response_class=Response,
            responses=IMAGE_RESPONSES)
def read_product_photo(product_id: str, index: Annotated[int, Path(ge=0, le=99)],
                       request: Request, products: ProductsDep, media: MediaDep,
                       api_settings: ApiSettingsDep, settings: SettingsDep,
                       role: Annotated[Role, SHOPPER], v: Version = None, w: Width = None):
    """One of the product's photos, by its place (0: the main one)."""
    if w is not None:
        try:
            check_width(settings, w)
        except UnknownWidth as exc:
            raise ApiProblem(422, str(exc), field="w") from None
    point = products.point(product_id, role)  # hidden from this role: 404, nothing leaked
    hidden = not visible_to(point.payload, Role.shopper)
    images = point.payload.get("images") or [{"sha256": point.payload["image_sha256"],
                                              "display_sha256": point.payload.get(DISPLAY_KEY)}]
    if index >= len(images):
        raise HTTPException(404, f"product {product_id!r} has {len(images)} photo(s), "
                                 f"no photo {index}")
    original = images[index]["sha256"]
    display = images[index].get("display_sha256")
    digest = display or original
    keyed = bool(api_settings.key_roles())
    scope = "private" if keyed or hidden else "public"
    # By id alone the URL may point at a new photo after a re-upload: revalidate (ETag).
    # With ?v=<sha256> it names one exact photo forever (the copy is made from the original).
    pinned = v is not None and v in (original, display)
    cache = f"{scope}, max-age={YEAR}, immutable" if pinned else f"{scope}, no-cache"
    etag = f'"{digest}"' if w is None else f'"{digest}-w{w}"'
    headers = {"ETag": etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    if etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    try:  # through the media store's own get(): a shared folder or an S3 bucket alike
        if w is not None:
            data = photo_at_width(settings, media, digest, w, display=bool(display))
        else:
            data = media.get(digest)
            if not display:  # ingested before display copies: made now, from the original
                data = display_with(settings, data)
    except ImageError:  # a ValueError too, but the picture's fault: 422
        raise
    except (ValueError, KeyError):
        raise HTTPException(404, f"no image stored for product {product_id!r}") from None
    return Response(data, media_type=DISPLAY_MEDIA_TYPE, headers=headers)
