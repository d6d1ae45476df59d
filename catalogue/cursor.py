"""Cursors: where the next page of an ordered result starts.

A cursor is the last hit of a page (score or sort value, point id, and its position
as a hint), as base64url JSON: opaque to clients, and checked field by field when it
comes back, so a mangled one is a 422 naming what is wrong rather than a 500. The
next page is the hits strictly after it, so products added or removed above it since
do not repeat or skip any.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re

from catalogue.store.base import POINT_ID_PATTERN, Hit
from catalogue.store.paging import After

CURSOR_MAX_LENGTH = 200
MAX_POSITION = 10_000_000


class InvalidCursor(ValueError):
    """A cursor that is not one this service made; the message says what is wrong."""


def encode_cursor(hit: Hit) -> str:
    """The cursor that continues after `hit`: its score, point id and position."""
    raw = json.dumps({"s": hit.score, "id": hit.id, "p": hit.position or 0},
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_cursor(token: str) -> After:
    """The hit a cursor continues after; InvalidCursor naming the problem otherwise."""
    if not token or len(token) > CURSOR_MAX_LENGTH:
        raise InvalidCursor(f"cursor must be 1 to {CURSOR_MAX_LENGTH} characters: pass "
                            "next_cursor of the previous page as it came")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidCursor("cursor is not one this service made (not base64url JSON): "
                            "pass next_cursor of the previous page as it came") from None
    if not isinstance(data, dict) or set(data) != {"s", "id", "p"}:
        raise InvalidCursor("cursor is not one this service made (it needs a score, a "
                            "point id and a position)")
    score, id, position = data["s"], data["id"], data["p"]
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise InvalidCursor("cursor's score is not a finite number")
    if not isinstance(id, str) or not re.fullmatch(POINT_ID_PATTERN, id):
        raise InvalidCursor("cursor's point id is not a point id")
    if isinstance(position, bool) or not isinstance(position, int) or not (
            0 <= position <= MAX_POSITION):
        raise InvalidCursor(f"cursor's position is not a whole number from 0 to {MAX_POSITION}")
    return After(float(score), id, position)


def check_cursor(token: str | None) -> str | None:
    """`token` if it decodes (for a request parameter's validation), InvalidCursor if not."""
    if token is not None:
        decode_cursor(token)
    return token
