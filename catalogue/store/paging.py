"""The one search order, and paging through it: hits by score descending, equal scores
by point id ascending (as listings scroll), whatever order the engine returned them in.

The engine orders equal scores as it pleases, so a page boundary inside a group of equal
scores could repeat or skip a hit between pages. `VectorStore.search` therefore reads a
window a little wider than the page and widens it until the page's first and last groups
are whole (`Window`); a cursor (`After`) continues strictly after a hit in this order.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from catalogue.store.base import Hit


def order_key(score: float, id: str) -> tuple[float, str]:
    """The one search order: score descending, ties by point id ascending (as `scroll`)."""
    return -score, id


@dataclass(frozen=True)
class After:
    """Continue a search strictly after this hit in (score desc, id asc) order.

    `position` is where the hit was when the cursor was made: only where to start
    looking, since the catalogue may have changed since."""

    score: float
    id: str
    position: int = 0


# Widening stops here: a window this large that still ends inside one group of equal
# scores is returned as it is (ties then lose their order, nothing worse).
MAX_WINDOW = 65_536


class Window:
    """The engine's hits at positions [lo, hi), sorted into the search order, and whether
    they hold the whole group of equal scores at the page's start (`head`) and end
    (`tail`): only then is the sorted window's slice the page.

    Equal scores sit together in the engine's score order, so a group is whole when a
    strictly higher score comes before it in the window (or the window starts at the
    top) and a strictly lower one after it (or the engine had no more)."""

    def __init__(self, raw: list[Hit], lo: int, hi: int, limit: int, offset: int,
                 after: After | None):
        self.hits = sorted(raw, key=lambda h: order_key(h.score, h.id))
        self.lo, self.limit = lo, limit
        exhausted = len(raw) < hi - lo
        if after is None:
            self.start = offset - lo
            self.head = (lo == 0 or self.start >= len(self.hits)  # past the last hit: empty
                         or self.hits[0].score > self.hits[self.start].score)
        else:
            keys = [order_key(h.score, h.id) for h in self.hits]
            self.start = bisect_right(keys, order_key(after.score, after.id))
            self.head = lo == 0 or (bool(self.hits) and self.hits[0].score > after.score)
        last = self.start + limit - 1
        self.tail = exhausted or (last < len(self.hits)
                                  and self.hits[-1].score < self.hits[last].score)

    def page(self) -> list[Hit]:
        page = self.hits[self.start:self.start + self.limit]
        for i, hit in enumerate(page):
            hit.position = self.lo + self.start + i
        return page
