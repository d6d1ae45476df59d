"""JSON from outside, bounded: size, nesting depth, and no NaN or Infinity.

The standard library's `json.loads` recurses once per nesting level and raises
RecursionError (not a ValueError) on a few thousand brackets, and it accepts the
non-JSON literals NaN and Infinity, whose floats no JSON reply can then carry.
Neither it nor pydantic bounds depth, so the depth is measured here before
parsing: one regular-expression pass that skips string literals and counts
brackets. Parsing itself stays with `json.loads`.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 32
"""Far above any product's metadata (a list of objects holding lists: 3)."""
MAX_JSON_BYTES = 1024 * 1024
"""Starlette's own cap on a non-file form field."""

# A whole string literal (skipped, brackets in it are text) or one bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class JsonInputError(ValueError):
    """The text is not acceptable JSON; the message says why (and where, when known)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def json_depth(text: str, limit: int) -> int:
    """The deepest nesting in `text`, counted up to just past `limit`. Where the text is
    not JSON the count may be off, but only after the point where json.loads stops."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif token in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not a JSON number; give a finite number")


def parse_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH,
               max_bytes: int = MAX_JSON_BYTES) -> Any:
    """`json.loads`, refusing text over `max_bytes`, nesting deeper than `max_depth` and
    the literals NaN, Infinity and -Infinity, all with a JsonInputError."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > max_bytes:
        raise JsonInputError(f"JSON of {size} bytes, over the limit of {max_bytes}")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonInputError(f"JSON is not UTF-8: {exc}") from None
    if json_depth(text, max_depth) > max_depth:
        raise JsonInputError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise JsonInputError(f"not valid JSON: {exc}", line=exc.lineno) from None
    except RecursionError:  # a smaller stack than the depth check assumes (a thread's)
        raise JsonInputError(f"JSON nested too deep (the limit is {max_depth})") from None
