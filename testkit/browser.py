"""The shopper's and the catalogue manager's pages in a real browser, for tests.

Debian's Chromium (/usr/bin/chromium; Playwright never downloads one) drives the app
served by uvicorn on 127.0.0.1 over a temp data folder, with a small catalogue
ingested first through the HTTP API. The fixtures are in testkit.browser_fixtures;
this module has what the tests read and build with.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from embedding.encoder import Encoder
from testkit.images import image_bytes
from testkit.threaded import serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
KEYS = {"shopper": "shop-key-123", "manager": "manage-key-456"}

COLOURS = ["red", "blue", "green", "yellow", "black"]
CATEGORIES = {"Dresses": "dress", "Shirts": "shirt", "Jeans": "jeans"}
N_PRODUCTS = 30  # more than one page of the shopper's grid
PAGE_SIZE = 24  # the shopper's grid


def catalogue() -> list[tuple[dict, bytes]]:
    """Products with distinct photos, over colours x categories x genders x brands."""
    items = []
    for i in range(N_PRODUCTS):
        colour, (category, noun) = COLOURS[i % len(COLOURS)], list(CATEGORIES.items())[i % 3]
        items.append(({"id": f"p{i}", "title": f"{colour.title()} {noun} {i}",
                       "colour": colour, "category": category,
                       "gender": ["Women", "Men"][i % 2], "brand": ["Acme", "Zeta"][i // 15],
                       "price": 10.0 + 5 * i},
                      catalogue_photo(i)))
    return items


def catalogue_photo(i: int) -> bytes:
    """The photo of product p<i> of `catalogue()`."""
    return image_bytes(COLOURS[i % len(COLOURS)], size=(96, 128), seed=i)


# ---------------------------------------------------------------- the live server


@dataclass
class Live:
    url: str
    app: object
    http: httpx.Client

    @property
    def services(self):
        return self.app.state.services

    def wait_job(self, job_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.http.get(f"/v1/jobs/{job_id}").json()
            if job["state"] in ("done", "failed"):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish: {job}")


def build_app(data_dir: Path, encoder: Encoder, api_keys: dict[str, str] | None = None,
              tagging: bool = False):
    """The app on the local profile over `data_dir`. Moderation is off: judged by a test
    model it would hide products by chance (the moderation tests flag one themselves).
    Auto-tagging on `tagging`: it predicts only what an upload leaves out."""
    from api.settings import ApiSettings
    from catalogue.settings import CatalogueSettings
    from vitrine.wiring import build_services, create_api

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VITRINE_MODERATION_ENABLED", "false")
        mp.setenv("VITRINE_TAGGING_ENABLED", "true" if tagging else "false")
        services = build_services(CatalogueSettings(data_dir=data_dir), encoder=encoder)
    return create_api(ApiSettings(api_keys=api_keys or {}), services)


def start_live(data_dir: Path, encoder: Encoder, api_keys: dict[str, str] | None = None,
               manager_key: str | None = None) -> tuple[Live, Callable[[], None]]:
    """Serve the app with `catalogue()` ingested; return it and a function that stops it."""
    app = build_app(data_dir, encoder, api_keys, tagging=True)
    url, stop_server = serve_in_thread(app)
    headers = {"X-API-Key": manager_key} if manager_key else {}
    live = Live(url, app, httpx.Client(base_url=url, headers=headers, timeout=60))
    items = catalogue()
    response = live.http.post(
        "/v1/products/batch", data={"metadata": json.dumps([m for m, _ in items])},
        files=[("images", (f"{m['id']}.png", data, "image/png")) for m, data in items])
    assert response.status_code == 202, response.text
    job = live.wait_job(response.json()["job_id"])
    assert job["state"] == "done" and job["succeeded"] == N_PRODUCTS, job

    def stop():
        live.http.close()
        stop_server()

    return live, stop


# ---------------------------------------------------------------- the browser


def new_page(browser, viewport=DESKTOP):
    """A page in a context of its own; uncaught script errors collect in `page.uncaught`."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.uncaught = []
    page.on("pageerror", lambda exc: page.uncaught.append(str(exc)))
    return page


def expect(target):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


# ---------------------------------------------------------------- reading the pages


def card_ids(page) -> list[str]:
    return page.locator("#results .card").evaluate_all("cs => cs.map(c => c.dataset.productId)")


def facet_counts(page, field: str) -> dict[str, int]:
    return dict(page.locator(f'fieldset[data-field="{field}"] li').evaluate_all(
        "lis => lis.map(li => [li.querySelector('.facet-name').textContent,"
        " parseInt(li.querySelector('.count').textContent)])"))


def search_for(page, live: Live, text: str) -> None:
    page.goto(live.url + "/")
    page.fill("#q", text)
    page.press("#q", "Enter")
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")


def images_loaded(page, selector: str, first: int = 4) -> list[bool]:
    """Whether the first few photos (those on screen; the rest load lazily) show."""
    page.wait_for_function(
        "([sel, n]) => [...document.querySelectorAll(sel)].slice(0, n).every(i =>"
        " i.classList.contains('broken') || (i.complete && i.naturalWidth > 0))",
        arg=[selector, first])
    return page.locator(selector).evaluate_all(
        "(imgs, n) => imgs.slice(0, n).map(i => i.naturalWidth > 0)", first)
