"""Fixtures for the browser tests, a pytest plugin: a test module that says
`pytest_plugins = ["testkit.browser_fixtures"]` gets

- `browser`: Debian's Chromium under Playwright (skipped where it is not installed),
- `page`: a fresh desktop page that fails the test on an uncaught script error,
- `live` and `keyed_live`: the app served with `testkit.browser.catalogue()` ingested,
  without and with API keys, one each per test module, on the `demo_model` fixture
  (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.auth import hash_key
from embedding.encoder import Encoder
from testkit.browser import CHROMIUM, CHROMIUM_ARGS, KEYS, Live, new_page, start_live


@pytest.fixture(scope="module")
def page_encoder(demo_model) -> Encoder:
    """The model behind the pages under test: a demo-architecture model trained on a
    generated catalogue (tests/conftest.py), as shoppers would meet it."""
    return Encoder(model=str(demo_model.model))


@pytest.fixture(scope="module")
def live(tmp_path_factory, page_encoder) -> Iterator[Live]:
    server, stop = start_live(tmp_path_factory.mktemp("pages") / "data", page_encoder)
    yield server
    stop()


@pytest.fixture(scope="module")
def keyed_live(tmp_path_factory, page_encoder) -> Iterator[Live]:
    keys = {hash_key(key): role for role, key in KEYS.items()}
    server, stop = start_live(tmp_path_factory.mktemp("keyed") / "data", page_encoder,
                              api_keys=keys, manager_key=KEYS["manager"])
    yield server
    stop()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not at /usr/bin/chromium (apt-get install -y "
                    "chromium); Playwright is not allowed to download a browser")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = new_page(browser)
    yield page
    uncaught = page.uncaught
    page.context.close()
    assert uncaught == [], f"uncaught errors in the page: {uncaught}"
