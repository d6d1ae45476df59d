"""The web pages: shoppers' search at /, catalogue managers' console at /admin.

Plain HTML, CSS and JavaScript modules from api/static, no build step and no
third-party hosts. The pages hold no data; the API calls they make carry the key.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from api.auth import PUBLIC

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# Everything from this origin; images may also be blob: URLs (fetched with the key).
CSP = ("default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin", "Cache-Control": "no-cache"}

router = APIRouter(tags=["pages"], include_in_schema=False)
static_files = StaticFiles(directory=STATIC_DIR)


def page(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type="text/html; charset=utf-8",
                        headers=PAGE_HEADERS)


@router.get("/", dependencies=[PUBLIC])
def shopper_page():
    """Search by words, a photo or both, with filters and facets."""
    return page("index.html")


@router.get("/admin", dependencies=[PUBLIC])
def manager_page():
    """Uploads with job progress, catalogue imports, moderation, predicted tags."""
    return page("admin.html")


@router.get("/static/{path:path}", dependencies=[PUBLIC])
async def static_file(path: str, request: Request) -> Response:
    """The pages' CSS and JavaScript (a route rather than a mount, so it declares its role)."""
    response = await static_files.get_response(path, request.scope)
    # No fingerprinted names without a build step: revalidate (ETag) instead of guessing.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
