"""The shop's search box in a real browser: typeahead (GET /v1/suggest) as an ARIA
combobox, the "Search by" mode control, a SKU typed in the box, and "Fewer look-alikes"
(diversity, paging by offset) over products that share one photo (testkit/browser.py
serves the app and drives Chromium)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from testkit.browser import PAGE_SIZE, Live, card_ids, expect, images_loaded, start_live

pytest_plugins = ["testkit.browser_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
BRAND = "Northwind"  # five letters or more: one typo is tolerated
TWINS = 6  # Northwind dresses, one photo between them


def demo_dress(demo_model, colour: str) -> bytes:
    """A plain dress from the catalogue the page's model learnt from."""
    with open(demo_model.catalogue, newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["articleType"] == "Dresses"
                   and r["baseColour"] == colour and r["pattern"] == "plain")
    return (demo_model.catalogue.parent / "images" / f"{row['id']}.jpg").read_bytes()


@pytest.fixture(scope="module")
def shop(tmp_path_factory, page_encoder, demo_model) -> Iterator[Live]:
    """`catalogue()` (30 products, brands Acme and Zeta) and six Northwind wrap dresses with
    one photo and a SKU each (NW-100...)."""
    live, stop = start_live(tmp_path_factory.mktemp("search") / "data", page_encoder)
    items = [{"id": f"nw{i}", "title": f"{BRAND} wrap dress {i}", "brand": BRAND,
              "category": "Dresses", "colour": "red", "price": 70.0 + i,
              "variants": [{"sku": f"NW-{100 + i}", "size": "M"}]} for i in range(TWINS)]
    photo = demo_dress(demo_model, "Red")
    response = live.http.post(
        "/v1/products/batch", data={"metadata": json.dumps(items)},
        files=[("images", (f"nw{i}.jpg", photo, "image/jpeg")) for i in range(TWINS)])
    assert response.status_code == 202, response.text
    assert live.wait_job(response.json()["job_id"])["succeeded"] == TWINS
    yield live
    stop()


def searches(page, path: str = "/v1/search") -> list[dict[str, list[str]]]:
    """The query strings of the page's calls to `path`, as they are made."""
    asked: list[dict[str, list[str]]] = []

    def note(request) -> None:
        url = urlparse(request.url)
        if url.path == path:
            asked.append(parse_qs(url.query))

    page.on("request", note)
    return asked


def settled(page) -> None:
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")


def photo_versions(page, first: int) -> list[str]:
    """The photo (its content hash, ?v=) of each of the first cards."""
    srcs = page.locator("#results .card img").evaluate_all("imgs => imgs.map(i => i.src)")
    return [parse_qs(urlparse(src).query)["v"][0] for src in srcs[:first]]


def test_typeahead_tolerates_a_typo_and_the_keyboard_picks_a_brand(page, shop):
    suggests = searches(page, "/v1/suggest")
    page.goto(shop.url + "/")
    box, listbox = page.locator("#q"), page.locator("#q-suggestions")
    box.focus()
    page.keyboard.type("Nrothw", delay=30)  # "Northw" with two letters swapped
    expect(listbox).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    first = listbox.get_by_role("option").first
    expect(first.locator(".suggestion-text")).to_have_text(BRAND)
    expect(first.locator(".suggestion-kind")).to_have_text("Brand")
    titles = listbox.locator('[data-kind="title"]')
    expect(titles.first).to_contain_text(f"{BRAND} wrap dress")
    expect(titles.locator(".suggestion-kind")).to_have_count(0)  # a title needs no label
    assert 1 <= len(suggests) < 5  # asked after pauses in typing, not per keystroke
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "shop-typeahead.png")

    page.keyboard.press("ArrowDown")
    expect(first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", first.get_attribute("id"))
    page.keyboard.press("ArrowUp")  # wraps round to the last
    expect(listbox.get_by_role("option").last).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    # The brand facet exists, so the brand becomes its filter: exactly its products.
    expect(listbox).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")
    expect(page.locator('fieldset[data-field="brand"] input[value="Northwind"]')).to_be_checked()
    expect(page.locator("#results .card")).to_have_count(TWINS)
    assert sorted(card_ids(page)) == [f"nw{i}" for i in range(TWINS)]
    assert "brand=Northwind" in page.url
    expect(box).to_be_focused()


def test_escape_closes_and_a_click_searches_a_title(page, shop):
    asked = searches(page)
    page.goto(shop.url + "/")
    page.locator("#q").focus()
    page.keyboard.type("dres", delay=30)
    listbox = page.locator("#q-suggestions")
    category = listbox.locator('[data-kind="category"]').first
    expect(category).to_contain_text("Dresses")
    expect(category.locator(".suggestion-kind")).to_have_text("Category")
    page.keyboard.press("Escape")
    expect(listbox).to_be_hidden()
    expect(page.locator("#q")).to_have_value("dres")  # Escape closed the list, kept the words

    page.fill("#q", "")
    page.keyboard.type("northwind wrap d", delay=20)
    listbox.get_by_role("option", name=f"{BRAND} wrap dress 4").click()
    expect(listbox).to_be_hidden()
    expect(page.locator("#q")).to_have_value(f"{BRAND} wrap dress 4")
    settled(page)
    assert asked[-1]["q"] == [f"{BRAND} wrap dress 4"]  # a title is searched for
    assert "q=Northwind+wrap+dress+4" in page.url
    assert "nw4" in card_ids(page)


def test_mode_control_changes_the_request_results_and_address(page, shop):
    asked = searches(page)
    page.goto(shop.url + "/?q=Northwind")
    settled(page)
    assert asked[-1]["mode"] == ["hybrid"] and asked[-1]["explain"] == ["true"]
    expect(page.locator("#mode-hybrid")).to_be_checked()
    expect(page.locator("#results .card")).to_have_count(PAGE_SIZE)  # words + pictures
    # A hybrid score is a fused rank: the card shows the photo's cosine from explain.
    expect(page.locator("#results .card .score strong").first).to_have_text(
        re.compile(r"^-?\d\.\d{3}$"))

    page.get_by_text("Words", exact=True).click()
    settled(page)
    assert asked[-1]["mode"] == ["keyword"] and "explain" not in asked[-1]
    expect(page.locator("#results .card")).to_have_count(TWINS)  # only products with the word
    expect(page.locator("#results .card .score")).to_have_count(0)  # no cosine to show
    expect(page.locator("#min-score")).to_be_disabled()
    assert "mode=keyword" in page.url

    page.get_by_text("Pictures", exact=True).click()
    settled(page)
    assert asked[-1]["mode"] == ["semantic"]
    expect(page.locator("#results .card")).to_have_count(PAGE_SIZE)
    expect(page.locator("#min-score")).to_be_enabled()
    scores = page.locator("#results .card .score strong").all_inner_texts()
    assert len(scores) == PAGE_SIZE and scores == sorted(scores, key=float, reverse=True)
    assert "mode=semantic" in page.url
    page.reload()  # the address keeps the mode
    expect(page.locator("#mode-semantic")).to_be_checked()


def test_a_sku_in_the_box_puts_that_product_first(page, shop):
    page.goto(shop.url + "/")
    page.fill("#q", "NW-103")
    page.press("#q", "Enter")
    settled(page)
    first = page.locator("#results .card").first
    expect(first).to_have_attribute("data-product-id", "nw3")
    expect(first.locator(".score")).to_have_text("exact match")
    expect(page.locator("#q-suggestions")).to_be_hidden()


def test_fewer_look_alikes_spreads_twins_and_pages_by_offset(page, shop):
    asked = searches(page)
    page.goto(shop.url + "/?q=wrap+dress")
    settled(page)
    row = 4  # the first row of the desktop grid
    before = photo_versions(page, row)
    assert len(set(before)) == 1, before  # all twins: one photo four times

    page.get_by_label("Fewer look-alikes").check()
    settled(page)
    assert asked[-1]["diversity"] == ["0.5"] and "diversity=0.5" in page.url
    after = photo_versions(page, row)
    assert len(set(after)) >= 3, after  # a twin, then other looks
    images_loaded(page, "#results .card img")

    # The next page by offset (diverse results have no cursor), nothing shown twice. Not
    # "all of them": the API's diverse pages overlap in hybrid mode (its MMR pool grows
    # with the offset), and the page only drops the repeats.
    page.locator("#sentinel").scroll_into_view_if_needed()
    expect(page.locator("#results .card")).not_to_have_count(PAGE_SIZE)
    settled(page)
    assert asked[-1]["offset"] == [str(PAGE_SIZE)] and "cursor" not in asked[-1]
    ids = card_ids(page)
    assert len(set(ids)) == len(ids) > PAGE_SIZE
    expect(page.locator("#load-more")).to_be_hidden()  # the last page


def test_managers_try_a_search_with_explain(page, shop):
    page.goto(shop.url + "/admin")
    page.fill("#t-q", "NW-103 wrap dress")
    page.get_by_role("button", name="Try it").click()
    rows = page.locator("#try-results tbody tr")
    expect(rows.first).to_have_attribute("data-product-id", "nw3")
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[-1] == "exact" and float(cells[4]) > 0  # pinned, and its words scored
    assert {"wrap", "dress"} <= set(cells[5].split(", "))
    assert re.fullmatch(r"-?\d\.\d{3}", cells[3])  # the photo's cosine
    page.get_by_label("Explain").uncheck()  # the plain search again: three columns
    expect(page.locator("#try-results thead th")).to_have_count(3)
