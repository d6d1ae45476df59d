"""Fetch product photos that shops' feeds give as URLs, for the ingest workers.

A feed is someone else's input, so a URL is treated like an uploaded file: only http and
https; timeouts on connecting and on every wait for bytes, and a deadline on the whole
fetch (connect + DEADLINE_FACTOR x read timeout, retries and redirects included, held
at every socket wait: catalogue.fetch_deadline) so a server that trickles a byte a
second cannot hold a worker; the size cap
(VITRINE_MAX_IMAGE_BYTES) counted while reading, never taken from Content-Length; retries
with exponential backoff on timeouts, connection errors, 5xx and 429 only; redirects
followed by hand, each hop checked again. The bytes are returned as sent
(`Accept-Encoding: identity`); decoding them is `catalogue.images`' job.

The address guard (on unless `fetch_allow_private`) keeps a feed from making the workers
reach internal services (cloud metadata at 169.254.169.254, the job database, Redis): a
host is refused when any address it resolves to is not public (`is_public_address`).
Every hop is checked before its request. DNS rebinding (a name that answers a public
address to the check and a private one to the connection) is closed on the default
transport: its network backend resolves the host itself, checks those addresses and
connects to exactly them, so no unchecked address is ever connected to; TLS still
verifies the certificate against the host name. What remains open: with an injected
`client` only the per-hop check runs, and the client resolves the name again when it
connects, so a name that changes its answer in between gets through. The lookups
themselves (`socket.getaddrinfo`) run before the deadline can cut them; the system
resolver's own timeout bounds them. Proxies are not used (`trust_env=False`).
"""

from __future__ import annotations

import email.utils
import ipaddress
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

from catalogue import fetch_deadline
from catalogue.settings import CatalogueSettings

DEADLINE_FACTOR = 3
"""A whole fetch ends after connect_timeout + DEADLINE_FACTOR x read_timeout (50 s by
default): room for a slow first try and a retry, never minutes."""
RETRY_AFTER_CAP = 30.0
"""Longest Retry-After honoured; a server asking for more gets no retry from us."""
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PORTS = {"http": 80, "https": 443}
SHOWN_CHARS = 200


class FetchError(Exception):
    """Why a URL gave no photo; str(exc) is a one-line reason that names the URL.

    `retryable` is True where a later try may succeed (timeouts, connection errors, 5xx,
    429: what this fetch retried until its tries or its deadline ran out)."""

    def __init__(self, url: str, reason: str, retryable: bool = False) -> None:
        super().__init__(reason)
        self.url = url
        self.retryable = retryable


class _Retry(Exception):
    """A failure worth another try; `retry_after` is the server's Retry-After, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Refused(Exception):
    """A host that resolves to a non-public address while the guard is on."""


@dataclass(frozen=True)
class FetchPolicy:
    connect_timeout: float
    read_timeout: float
    max_bytes: int
    max_redirects: int
    retries: int
    backoff: float
    allow_private: bool
    user_agent: str

    @classmethod
    def of(cls, settings: CatalogueSettings) -> FetchPolicy:
        return cls(connect_timeout=settings.fetch_connect_timeout,
                   read_timeout=settings.fetch_read_timeout,
                   max_bytes=settings.max_image_bytes,
                   max_redirects=settings.fetch_max_redirects,
                   retries=settings.fetch_retries, backoff=settings.fetch_backoff,
                   allow_private=settings.fetch_allow_private,
                   user_agent=settings.fetch_user_agent)

    @property
    def deadline(self) -> float:
        """Seconds one fetch may take in all: tries, redirects and backoff included."""
        return self.connect_timeout + DEADLINE_FACTOR * self.read_timeout

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect_timeout, read=self.read_timeout,
                             write=self.read_timeout, pool=self.connect_timeout)


def _shown(url: str) -> str:
    """A URL for a one-line message: printable, no credentials, at most ~SHOWN_CHARS."""
    try:
        parts = urlsplit(url)
        if "@" in parts.netloc:
            url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    except ValueError:  # unparsable (a broken IPv6 literal): shown as given
        pass
    url = "".join(c if c.isprintable() else "?" for c in url)
    return url if len(url) <= SHOWN_CHARS else url[:SHOWN_CHARS - 1] + "…"


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_public_address(address: str) -> bool:
    """Whether the guard lets a fetch connect to this IP address. IPv4-mapped (::ffff:a.b.c.d)
    and 6to4 (2002::/16) IPv6 addresses are judged by the IPv4 address inside them."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local
                                 or ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _addresses(host: str, port: int, allow_private: bool) -> list[str]:
    """`host`'s addresses, all of them public unless `allow_private` (else _Refused)."""
    addresses = resolve(host, port)
    if not allow_private:
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            raise _Refused(f"{host} resolves to the non-public address {refused[0]}")
    return addresses


class _PinnedBackend(httpcore.SyncBackend):
    """Resolves, checks and connects to the checked addresses themselves (no second lookup
    for a rebinding answer to slip into); every socket wait is clipped to the deadline."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        try:
            addresses = _addresses(host, port, self._allow_private)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        failure: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:  # like socket.create_connection: the first that answers
            try:
                stream = super().connect_tcp(address, port,
                                             fetch_deadline.clip(timeout, httpcore.ConnectTimeout),
                                             local_address, socket_options)
                return fetch_deadline.DeadlineStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure


def _transport(policy: FetchPolicy) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx takes no network backend of its own; swap the pool it built for one with ours.
    if not isinstance(getattr(transport, "_pool", None), httpcore.ConnectionPool):
        raise RuntimeError("httpx.HTTPTransport no longer keeps an httpcore pool in _pool")
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False), max_connections=100,
        max_keepalive_connections=20, keepalive_expiry=5.0,
        network_backend=_PinnedBackend(policy.allow_private))
    return transport


def _bad_certificate(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    return cause is not None


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (a number or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Fetcher:
    """Fetches photo URLs under one policy, over one connection pool (safe to share
    between threads). An injected `client` is the caller's to close; see the module
    docstring for what the guard cannot do through one."""

    def __init__(self, policy: FetchPolicy, client: httpx.Client | None = None,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.policy = policy
        self._owned = client is None
        if client is None:
            client = httpx.Client(transport=_transport(policy), follow_redirects=False,
                                  trust_env=False, timeout=policy.timeout)
        self._client = client
        self._sleep = sleep
        self._headers = {"User-Agent": policy.user_agent, "Accept": "image/*",
                         "Accept-Encoding": "identity"}

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._client.close()

    def fetch(self, url: str) -> bytes:
        """The photo's bytes, or FetchError."""
        deadline = time.monotonic() + self.policy.deadline
        fetch_deadline.current.deadline = deadline
        try:
            attempt = 0
            while True:
                try:
                    return self._follow(url, deadline)
                except _Retry as exc:
                    failure = exc
                wait = self.policy.backoff * 2**attempt * random.uniform(1.0, 1.2)
                if failure.retry_after is not None:
                    if failure.retry_after > RETRY_AFTER_CAP:
                        raise FetchError(url, f"{failure} (Retry-After {failure.retry_after:g}"
                                              f" s, over {RETRY_AFTER_CAP:g} s)", True)
                    wait = max(wait, failure.retry_after)
                if attempt >= self.policy.retries:
                    tries = f"{attempt + 1} tries" if attempt else "1 try"
                    raise FetchError(url, f"{failure} (after {tries})", True)
                if time.monotonic() + wait >= deadline:
                    raise FetchError(url, f"{failure} (no time left to retry within "
                                          f"{self.policy.deadline:g} s)", True)
                self._sleep(wait)
                attempt += 1
        finally:
            fetch_deadline.current.deadline = None

    def _checked(self, url: str, hop: str) -> httpx.URL:
        """The hop's URL once its scheme, host and (guard on) addresses pass."""
        try:
            target = httpx.URL(hop)
        except httpx.InvalidURL as exc:
            raise FetchError(url, f"invalid URL {_shown(hop)} ({_line(exc)})") from None
        if target.scheme not in PORTS:
            raise FetchError(url, f"unsupported scheme {target.scheme or 'none'!r} in "
                                  f"{_shown(hop)} (only http and https)")
        if not target.host:
            raise FetchError(url, f"no host in {_shown(hop)}")
        if not self.policy.allow_private:
            host = target.raw_host.decode("ascii")
            try:
                _addresses(host, target.port or PORTS[target.scheme], False)
            except _Refused as exc:
                raise FetchError(url, f"refused {_shown(hop)}: {exc}") from None
            except OSError as exc:
                raise _Retry(f"cannot resolve {host} for {_shown(hop)} ({_line(exc)})") from None
        return target

    def _follow(self, url: str, deadline: float) -> bytes:
        """One try: the redirect chain from `url` to a photo."""
        seen: set[str] = set()
        hop = url
        for _ in range(self.policy.max_redirects + 1):
            target = self._checked(url, hop)
            try:
                with self._client.stream("GET", target, headers=self._headers,
                                         timeout=self.policy.timeout,
                                         follow_redirects=False) as response:
                    seen.add(str(response.url))
                    code = response.status_code
                    if code in REDIRECTS:
                        hop = self._location(url, hop, response)
                        if hop in seen:
                            raise FetchError(url, f"redirect loop: {_shown(str(response.url))}"
                                                  f" leads back to {_shown(hop)}")
                        continue
                    if code == 429 or code >= 500:
                        raise _Retry(f"HTTP {code} from {_shown(hop)}", _retry_after(response))
                    if code != 200:
                        raise FetchError(url, f"HTTP {code} from {_shown(hop)}")
                    return self._read(url, hop, response, deadline)
            except httpx.TimeoutException as exc:
                if time.monotonic() >= deadline:
                    raise FetchError(url, f"took longer than {self.policy.deadline:g} s: "
                                          f"{_shown(hop)}", True) from None
                raise _Retry(f"timed out ({type(exc).__name__}) fetching {_shown(hop)}") from None
            except httpx.TransportError as exc:
                if _bad_certificate(exc):  # another try meets the same certificate
                    raise FetchError(url, f"bad TLS certificate at {_shown(hop)} "
                                          f"({_line(exc)})") from None
                raise _Retry(f"connection failed to {_shown(hop)} ({_line(exc)})") from None
            except _Refused as exc:
                raise FetchError(url, f"refused {_shown(hop)}: {exc}") from None
        raise FetchError(url, f"more than {self.policy.max_redirects} redirects from "
                              f"{_shown(url)}")

    @staticmethod
    def _location(url: str, hop: str, response: httpx.Response) -> str:
        location = response.headers.get("location")
        if not location:
            raise FetchError(url, f"HTTP {response.status_code} without a Location from "
                                  f"{_shown(hop)}")
        try:
            return str(response.url.join(location))
        except httpx.InvalidURL as exc:
            raise FetchError(url, f"bad redirect from {_shown(hop)} ({_line(exc)})") from None

    def _read(self, url: str, hop: str, response: httpx.Response, deadline: float) -> bytes:
        limit = self.policy.max_bytes
        too_large = FetchError(url, f"photo larger than {limit} bytes (VITRINE_MAX_IMAGE_BYTES)"
                                    f" at {_shown(hop)}")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise FetchError(url, f"unasked-for Content-Encoding {encoding[:40]!r} from "
                                  f"{_shown(hop)}")
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        body = bytearray()
        for chunk in response.iter_raw():
            body += chunk
            if len(body) > limit:
                raise too_large
            if time.monotonic() >= deadline:  # an injected client's sockets are not clipped
                raise FetchError(url, f"took longer than {self.policy.deadline:g} s: "
                                      f"{_shown(hop)}", True)
        return bytes(body)


def fetch_all(fetcher: Fetcher, urls: Sequence[str],
              concurrency: int) -> list[bytes | FetchError]:
    """Each URL's photo or its FetchError, in the order given, at most `concurrency`
    fetches at once (VITRINE_FETCH_CONCURRENCY)."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    if not urls:
        return []

    def one(url: str) -> bytes | FetchError:
        try:
            return fetcher.fetch(url)
        except FetchError as exc:
            return exc

    with ThreadPoolExecutor(min(concurrency, len(urls)), thread_name_prefix="fetch") as pool:
        return list(pool.map(one, urls))
