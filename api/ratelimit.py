"""Rate limits per API key and per client address, answered 429 before the body is read.

Routes name their group with a dependency (`SEARCH_LIMIT`, `UPLOAD_LIMIT`,
`IMPORT_LIMIT`); the `RateLimit` middleware finds it on the route a request is
for (as api.limits finds the role) and counts the request before the route
runs, so a refused upload is never read. It sits inside `EarlyRefusal`: a
missing or wrong key is a 401 and counts against nothing.

Whose budget a request spends (`api.auth.caller`): its key's when it has one
(the role check has passed, so where keys are configured it is a valid one),
else its client address's: anonymous storefront search, or the local profile
without keys. Each group has a limit per kind, `VITRINE_RATE_LIMIT_<GROUP>_PER_KEY` and
`..._PER_ADDRESS`, in the `limits` package's notation: "N/second|minute|hour|
day", several joined by ";" ("10/second;300/minute"), "" for none. A refusal is
a 429 in the app's error shape naming the limit and its setting, with
Retry-After, and counts in `vitrine_rate_limited_requests_total{group,limit}`.
The client address is the ASGI one: behind a proxy, uvicorn takes it from
X-Forwarded-For only for the proxies FORWARDED_ALLOW_IPS trusts.

Counting is the `limits` package's sliding window counter: per caller two
fixed-window counters (this window's and the last's, the last weighted by how
much of it still overlaps the sliding window). It keeps O(1) state per caller
and has no fixed window's double burst at a window's edge; an exact moving
window would keep one entry per request. The local profile counts in process;
the cluster profile's replicas share counters in Redis (VITRINE_RATE_LIMIT_REDIS_URL,
by default the broker), where `limits` checks and increments in one Lua script,
so concurrent replicas cannot both take the last request of a window.

When Redis does not answer, requests pass uncounted for `OUTAGE_PAUSE_S` (logged):
a rate limit should not take search down with it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from fastapi import Depends
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import API_KEY_HEADER, caller
from api.errors import ApiProblem
from api.limits import CLOSE, header, http_error_response, matched_marker
from api.metrics import RATE_LIMITED

if TYPE_CHECKING:
    from api.settings import ApiSettings

log = logging.getLogger(__name__)

KINDS = ("key", "address")
REDIS_TIMEOUT_S = 0.5  # connect and answer; Redis is next door, or it is down
OUTAGE_PAUSE_S = 10.0


class Group(StrEnum):
    search = "search"
    uploads = "uploads"
    imports = "imports"


class RateLimited:
    """A route dependency naming the route's group. It does nothing when FastAPI calls it
    (after the body is parsed): the RateLimit middleware counts the request before."""

    def __init__(self, group: Group):
        self.group = group

    async def __call__(self) -> None:  # async: FastAPI would hop to a thread for nothing
        return None


# For route decorators: @router.get("/x", dependencies=[SHOPPER, SEARCH_LIMIT])
SEARCH_LIMIT = Depends(RateLimited(Group.search))
UPLOAD_LIMIT = Depends(RateLimited(Group.uploads))
IMPORT_LIMIT = Depends(RateLimited(Group.imports))


@dataclass(frozen=True)
class Rule:
    group: Group
    kind: str
    items: tuple[RateLimitItem, ...]
    setting: str


def setting_name(group: Group, kind: str) -> str:
    return f"VITRINE_RATE_LIMIT_{group.upper()}_PER_{kind.upper()}"


def parse_rules(settings: ApiSettings) -> dict[tuple[Group, str], Rule]:
    rules = {}
    for group in Group:
        for kind in KINDS:
            setting = setting_name(group, kind)
            text = str(getattr(settings, setting.removeprefix("VITRINE_").lower())).strip()
            if not text:
                continue
            try:
                items = tuple(parse_many(text))
            except ValueError:
                raise ValueError(f"{setting}={text!r} is not a rate limit such as "
                                 "'60/minute' or '10/second;300/minute'") from None
            rules[group, kind] = Rule(group, kind, items, setting)
    return rules


class Limits:
    """The rules and their counters. The counting strategy is made again for each event
    loop (a server has one; each TestClient session starts its own) around `storage()`,
    as an asyncio Redis client is bound to the loop it first connects in."""

    def __init__(self, rules: dict[tuple[Group, str], Rule], storage: Callable[[], Storage]):
        self.rules, self.storage = rules, storage
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limiter: SlidingWindowCounterRateLimiter | None = None
        self._paused_until = 0.0
        for group, kind in rules:  # at zero from the first scrape
            RATE_LIMITED.labels(group.value, kind)

    def limiter(self) -> SlidingWindowCounterRateLimiter:
        loop = asyncio.get_running_loop()
        if self._limiter is None or self._loop is not loop:
            self._loop, self._limiter = loop, SlidingWindowCounterRateLimiter(self.storage())
        return self._limiter

    async def take(self, group: Group, kind: str, who: str) -> ApiProblem | None:
        """Count one request of `who` in `group`; the 429 to answer when over a limit."""
        rule = self.rules.get((group, kind))
        if rule is None or time.monotonic() < self._paused_until:
            return None
        limiter = self.limiter()
        try:
            for item in rule.items:
                if not await limiter.hit(item, group.value, kind, who):
                    stats = await limiter.get_window_stats(item, group.value, kind, who)
                    return self.refusal(rule, item, stats.reset_time)
        except Exception as exc:  # any failure of the counters' store: let requests pass
            self._paused_until = time.monotonic() + OUTAGE_PAUSE_S
            log.warning("rate limits: the counters' store failed (%s: %s); not counting "
                        "for %.0f s", type(exc).__name__, exc, OUTAGE_PAUSE_S)
        return None

    @staticmethod
    def refusal(rule: Rule, item: RateLimitItem, reset_time: float) -> ApiProblem:
        RATE_LIMITED.labels(rule.group.value, rule.kind).inc()
        wait = max(1, math.ceil(reset_time - time.time()))
        whose = "this API key" if rule.kind == "key" else "this client address"
        return ApiProblem(429, f"over the rate limit of {item} for {rule.group} requests "
                               f"from {whose} ({rule.setting}); try again in {wait} s",
                          code="rate_limited", headers={"Retry-After": str(wait)})


def build_limits(settings: ApiSettings) -> Limits | None:
    """The limits the settings ask for; None when off (VITRINE_RATE_LIMIT_ENABLED). A
    malformed limit is a ValueError here, at start."""
    if not settings.rate_limits_on():
        return None
    rules = parse_rules(settings)
    if settings.profile != "cluster":
        memory = MemoryStorage()  # one for the process: it binds to no event loop
        return Limits(rules, lambda: memory)
    url = settings.rate_limit_redis_url
    if not url:
        raise RuntimeError("the cluster profile's rate limits need Redis: set "
                           "VITRINE_RATE_LIMIT_REDIS_URL (or VITRINE_BROKER_URL), or turn "
                           "them off with VITRINE_RATE_LIMIT_ENABLED=false")
    prefix = settings.rate_limit_redis_prefix

    def redis() -> Storage:
        return RedisStorage(f"async+{url}", implementation="redispy", key_prefix=prefix,
                            wrap_exceptions=True, socket_timeout=REDIS_TIMEOUT_S,
                            socket_connect_timeout=REDIS_TIMEOUT_S)

    return Limits(rules, redis)


class RateLimit:
    """ASGI middleware: 429 for a request over its group's limit, before its body is read."""

    def __init__(self, app: ASGIApp, limits: Limits | None):
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.limits is None or scope["type"] != "http" or "app" not in scope:
            return await self.app(scope, receive, send)
        app: Any = scope["app"]
        marks = matched_marker(app, scope, RateLimited)
        if marks:
            client = scope.get("client")
            kind, who = caller(header(scope, API_KEY_HEADER), client[0] if client else None)
            refusal = await self.limits.take(marks[0].group, kind, who)
            if refusal is not None:
                if header(scope, "content-length") not in (None, "0") \
                        or header(scope, "transfer-encoding"):
                    refusal.headers = {**(refusal.headers or {}), **CLOSE}  # body unread
                response = await http_error_response(Request(scope, receive), refusal)
                return await response(scope, receive, send)
        await self.app(scope, receive, send)
