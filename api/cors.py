"""Cross-origin access for a storefront on another origin (its own site calling search
and photos from the browser): only the origins VITRINE_CORS_ORIGINS lists, through
Starlette's CORSMiddleware. None listed (the default), no CORS header is ever sent and
browsers keep other sites' scripts out, as before.

No credentials (cookies): the API authenticates by the X-API-Key header, which a
storefront sends explicitly. What may be asked is what a storefront needs: GET and POST
(search, photos, suggestions), the key, a request id and a JSON body's Content-Type;
what its scripts may read beyond the safelisted headers: the request id to quote in a
support request, the ETag of a photo and Retry-After of a 429 or 503.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from catalogue.logs import REQUEST_ID_HEADER

METHODS = ["GET", "POST"]
HEADERS = ["X-API-Key", REQUEST_ID_HEADER, "Content-Type"]
EXPOSED = [REQUEST_ID_HEADER, "ETag", "Retry-After"]
PREFLIGHT_MAX_AGE = 600  # seconds a browser may reuse a preflight's answer


def check_origin(origin: str) -> str:
    """An origin as browsers send it in the Origin header (scheme://host[:port]), which
    the allowlist must match exactly: a path, a trailing slash or `*` would never match,
    or match everyone."""
    parts = urlsplit(origin)
    if (parts.scheme not in ("http", "https") or not parts.hostname or "*" in origin
            or parts.path or parts.query or parts.fragment or parts.username):
        raise ValueError(f"not an origin (scheme://host[:port], nothing after it): {origin!r}")
    return f"{parts.scheme}://{parts.netloc}".lower()


def allow_origins(app: FastAPI, origins: list[str]) -> None:
    """Answer CORS preflights and mark answers readable for `origins`; none: nothing."""
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=METHODS,
                           allow_headers=HEADERS, expose_headers=EXPOSED,
                           allow_credentials=False, max_age=PREFLIGHT_MAX_AGE)
