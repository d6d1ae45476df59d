"""Fetching photos given as URLs, against a real HTTP server on 127.0.0.1 (so the guard is
off, allow_private=True, except in the guard tests). Backoff is recorded, not slept;
timeouts are tiny where a test expects one and roomy where it must not trip on a busy
machine."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from catalogue import fetch
from catalogue.fetch import Fetcher, FetchError, FetchPolicy, fetch_all, is_public_address
from catalogue.settings import CatalogueSettings

POLICY = FetchPolicy(connect_timeout=2.0, read_timeout=2.0, max_bytes=10_000,
                     max_redirects=5, retries=2, backoff=0.5, allow_private=True,
                     user_agent="vitrine-test")
QUICK = replace(POLICY, connect_timeout=1.0, read_timeout=0.3)  # deadline 1.9 s


class Handler(BaseHTTPRequestHandler):
    """Behaviour by path: /<route>/<argument>."""

    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        route, _, arg = self.path.lstrip("/").partition("/")
        try:
            getattr(self, "route_" + route.replace("-", "_"))(arg)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            pass

    def reply(self, code: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(code)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def route_ok(self, arg: str) -> None:
        self.reply(200, arg.encode())

    def route_big(self, arg: str) -> None:
        self.reply(200, b"x" * int(arg))

    def route_bigstream(self, arg: str) -> None:  # no Content-Length: read until close
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for _ in range(int(arg) // 1000):
            self.wfile.write(b"x" * 1000)

    def route_declares(self, arg: str) -> None:  # a Content-Length it never sends
        self.send_response(200)
        self.send_header("Content-Length", arg)
        self.end_headers()
        self.wfile.write(b"x")
        self.close_connection = True

    def route_missing(self, arg: str) -> None:
        self.reply(404, b"no")

    def route_flaky(self, arg: str) -> None:  # 500 on the first try of this path
        self.reply(500 if self.server.hits.count(self.path) == 1 else 200, b"ok")

    def route_error(self, arg: str) -> None:
        self.reply(503, b"down")

    def route_limited(self, arg: str) -> None:
        first = self.server.hits.count(self.path) == 1
        self.reply(429, Retry_After=arg) if first else self.reply(200, b"ok")

    def route_slow(self, arg: str) -> None:
        time.sleep(3)
        self.reply(200, b"late")

    def route_trickle_body(self, arg: str) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "200")
        self.end_headers()
        self.trickle(b"x" * 200)

    def route_trickle_headers(self, arg: str) -> None:
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        self.trickle(b"X-Slow: " + b"y" * 200)

    def trickle(self, data: bytes) -> None:
        for i in range(len(data)):
            self.wfile.write(data[i:i + 1])
            self.wfile.flush()
            time.sleep(0.05)

    def route_redirect(self, arg: str) -> None:  # /redirect/3 -> /redirect/2 ... -> /ok/landed
        n = int(arg)
        self.reply(302, Location=f"/redirect/{n - 1}" if n else "/ok/landed")

    def route_loop(self, arg: str) -> None:
        self.reply(302, Location="/loop/b" if arg == "a" else "/loop/a")

    def route_gate(self, arg: str) -> None:  # counts how many requests are in at once
        with self.server.lock:
            self.server.active += 1
            self.server.peak = max(self.server.peak, self.server.active)
        time.sleep(0.1)
        with self.server.lock:
            self.server.active -= 1
        self.reply(200, arg.encode())


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: list[str] = []
        self.lock = threading.Lock()
        self.active = self.peak = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def server():
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def fetcher_of(policy: FetchPolicy, sleeps: list[float], **kw) -> Fetcher:
    return Fetcher(policy, sleep=sleeps.append, **kw)


def failure(fetcher: Fetcher, url: str) -> FetchError:
    with fetcher, pytest.raises(FetchError) as caught:
        fetcher.fetch(url)
    assert caught.value.url == url
    assert "\n" not in str(caught.value)
    return caught.value


def test_policy_comes_from_settings():
    policy = FetchPolicy.of(CatalogueSettings(max_image_bytes=1234, fetch_retries=7))
    assert (policy.max_bytes, policy.retries) == (1234, 7)
    defaults = CatalogueSettings.model_fields
    assert defaults["fetch_allow_private"].default is False
    assert defaults["fetch_connect_timeout"].default + 3 * defaults[
        "fetch_read_timeout"].default == 50


@pytest.mark.parametrize("path, body", [("/ok/hello", b"hello"), ("/big/10000", b"x" * 10_000),
                                        ("/redirect/3", b"landed")])
def test_fetches_the_bytes(server, sleeps, path, body):
    with fetcher_of(POLICY, sleeps) as fetcher:
        assert fetcher.fetch(server.url(path)) == body
    assert sleeps == []


def test_a_404_is_not_retried(server, sleeps):
    error = failure(fetcher_of(POLICY, sleeps), server.url("/missing/"))
    assert str(error) == f"HTTP 404 from {server.url('/missing/')}"
    assert not error.retryable and len(server.hits) == 1 and sleeps == []


def test_a_500_is_retried_after_backoff(server, sleeps):
    with fetcher_of(POLICY, sleeps) as fetcher:
        assert fetcher.fetch(server.url("/flaky/")) == b"ok"
    assert len(server.hits) == 2 and len(sleeps) == 1 and 0.5 <= sleeps[0] <= 0.6


def test_always_5xx_gives_up_after_the_retries(server, sleeps):
    error = failure(fetcher_of(POLICY, sleeps), server.url("/error/"))
    assert error.retryable and "HTTP 503" in str(error) and "after 3 tries" in str(error)
    assert len(server.hits) == 3  # retries + 1
    assert all(base <= s <= 1.2 * base for s, base in zip(sleeps, [0.5, 1.0], strict=True))


def test_429_honours_retry_after(server, sleeps):
    with fetcher_of(POLICY, sleeps) as fetcher:
        assert fetcher.fetch(server.url("/limited/2")) == b"ok"
    assert sleeps == [2.0] and len(server.hits) == 2


def test_429_asking_too_long_a_wait_gives_up_at_once(server, sleeps):
    error = failure(fetcher_of(POLICY, sleeps), server.url("/limited/3600"))
    assert error.retryable and "Retry-After 3600" in str(error)
    assert len(server.hits) == 1 and sleeps == []


def test_a_silent_server_times_out_and_is_retried(server, sleeps):
    started = time.monotonic()
    error = failure(fetcher_of(QUICK, sleeps), server.url("/slow/"))
    assert error.retryable and "timed out" in str(error)
    assert len(server.hits) == 3 and time.monotonic() - started < QUICK.deadline + 0.5


@pytest.mark.parametrize("path", ["/trickle-body/", "/trickle-headers/"])
def test_a_trickling_server_is_cut_at_the_deadline(server, sleeps, path):
    """A byte every 0.05 s never trips the 0.3 s read timeout; the deadline (1.9 s) ends it,
    headers included, long before the 10 s the server would take."""
    started = time.monotonic()
    error = failure(fetcher_of(QUICK, sleeps), server.url(path))
    assert "took longer than 1.9 s" in str(error) and error.retryable
    assert time.monotonic() - started < QUICK.deadline + 1.5


@pytest.mark.parametrize("path", ["/big/20000", "/bigstream/50000", "/declares/20000"])
def test_a_photo_over_the_cap_is_refused(server, sleeps, path):
    error = failure(fetcher_of(POLICY, sleeps), server.url(path))
    assert "photo larger than 10000 bytes (VITRINE_MAX_IMAGE_BYTES)" in str(error)
    assert not error.retryable and len(server.hits) == 1


def test_a_redirect_loop_is_named(server, sleeps):
    error = failure(fetcher_of(POLICY, sleeps), server.url("/loop/a"))
    assert "redirect loop" in str(error) and "/loop/a" in str(error)
    assert server.hits == ["/loop/a", "/loop/b"]


def test_too_many_redirects(server, sleeps):
    error = failure(fetcher_of(POLICY, sleeps), server.url("/redirect/9"))
    assert str(error) == f"more than 5 redirects from {server.url('/redirect/9')}"
    assert len(server.hits) == 6 and not error.retryable


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg",
                                 "data:image/png;base64,iVBORw0KGgo=", "http:///a.jpg",
                                 "gopher://" + "x" * 1000])
def test_only_http_and_https_urls(sleeps, url):
    error = failure(fetcher_of(POLICY, sleeps), url)
    assert not error.retryable and len(str(error)) < 300 and sleeps == []


def test_credentials_are_not_shown(server, sleeps):
    url = server.url("/missing/").replace("//", "//shop:s3cret@")
    assert "s3cret" not in str(failure(fetcher_of(POLICY, sleeps), url))


# ------------------------------------------------------------------------------ the guard

GUARDED = replace(POLICY, allow_private=False)


@pytest.mark.parametrize("address", ["10.0.0.1", "172.16.0.1", "192.168.1.1", "127.0.0.1",
                                     "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
                                     "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
                                     "fc00::1", "ff02::1", "::ffff:127.0.0.1",
                                     "::ffff:10.0.0.1", "2002:a00:1::"])
def test_the_guard_refuses_non_public_addresses(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946",
                                     "::ffff:93.184.216.34"])
def test_the_guard_allows_public_addresses(address):
    assert is_public_address(address)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_loopback_is_refused_before_any_request(server, sleeps, host):
    url = server.url("/ok/secret").replace("127.0.0.1", host)
    error = failure(fetcher_of(GUARDED, sleeps), url)
    assert str(error).startswith("refused ") and "non-public address" in str(error)
    assert not error.retryable and server.hits == []


def test_a_rebinding_answer_never_gets_a_connection(server, sleeps, monkeypatch):
    """The name answers a public address to the hop check and loopback afterwards: the
    transport connects only to what it checked itself, so nothing reaches the server."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])
    monkeypatch.setattr(fetch, "resolve", lambda host, port: next(answers))
    url = server.url("/ok/secret").replace("127.0.0.1", "photos.example")
    error = failure(fetcher_of(GUARDED, sleeps), url)
    assert "non-public address 127.0.0.1" in str(error) and server.hits == []


def test_the_transport_connects_to_the_address_it_resolved(server, sleeps, monkeypatch):
    monkeypatch.setattr(fetch, "resolve", lambda host, port: ["127.0.0.1"])
    with fetcher_of(POLICY, sleeps) as fetcher:
        url = server.url("/ok/pinned").replace("127.0.0.1", "photos.example")
        assert fetcher.fetch(url) == b"pinned"


def test_a_redirect_to_a_private_address_is_refused(sleeps, monkeypatch):
    real = fetch.resolve
    monkeypatch.setattr(fetch, "resolve", lambda host, port: (
        ["93.184.216.34"] if host == "public.example" else real(host, port)))
    requests: list[str] = []

    def shop(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/"})

    client = httpx.Client(transport=httpx.MockTransport(shop))
    error = failure(fetcher_of(GUARDED, sleeps, client=client), "http://public.example/a.jpg")
    assert "refused http://169.254.169.254/latest/" in str(error) and not error.retryable
    assert requests == ["http://public.example/a.jpg"]


# --------------------------------------------------------------------------- fetch_all

def test_fetch_all_keeps_order_and_bounds_concurrency(server, sleeps):
    urls = [server.url(f"/gate/{i}") for i in range(12)]
    urls.insert(5, server.url("/missing/"))
    with fetcher_of(POLICY, sleeps) as fetcher:
        results = fetch_all(fetcher, urls, concurrency=3)
    assert isinstance(results.pop(5), FetchError)
    assert results == [str(i).encode() for i in range(12)]
    assert 2 <= server.peak <= 3


def test_fetch_all_of_nothing():
    with Fetcher(POLICY) as fetcher:
        assert fetch_all(fetcher, [], concurrency=8) == []
        with pytest.raises(ValueError):
            fetch_all(fetcher, ["http://example.com/"], concurrency=0)
