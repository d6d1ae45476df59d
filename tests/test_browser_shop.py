"""The shopper's page in a real browser: search by words and by photo, filters with
counts, paging, "more like this", the empty and error states, the keyboard, a phone,
and asking for a key (testkit/browser.py serves the app and drives Chromium)."""

from __future__ import annotations

import re

import pytest

from testkit.browser import (
    COLOURS,
    KEYS,
    PAGE_SIZE,
    PHONE,
    card_ids,
    catalogue_photo,
    expect,
    facet_counts,
    images_loaded,
    new_page,
    search_for,
)

pytest_plugins = ["testkit.browser_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_query_shows_results_with_image_title_price_and_score(page, live):
    search_for(page, live, "red dress")
    cards = page.locator("#results .card")
    expect(cards).to_have_count(PAGE_SIZE)  # the first page
    first = cards.first
    expect(first.locator(".title")).not_to_be_empty()
    expect(first.locator(".price")).to_have_text(re.compile(r"\d"))
    expect(first.locator(".score strong")).to_have_text(re.compile(r"^-?\d\.\d{3}$"))
    assert all(images_loaded(page, "#results .card img"))
    # The grid asks for the grid-sized copy (?w=400), content-addressed, not the full photo.
    src = first.locator("img").get_attribute("src")
    assert re.search(r"/images/\d+\?v=[0-9a-f]{64}&w=400$", src), src
    widths = page.locator("#results .card img").evaluate_all(
        "imgs => imgs.slice(0, 4).map(i => i.naturalWidth)")
    assert all(0 < w <= 400 for w in widths), widths
    expect(page.locator("#status")).to_contain_text(f"{PAGE_SIZE} results shown")
    assert "q=red+dress" in page.url  # the search is in the address, to share or reload


def test_a_width_the_server_lacks_falls_back_to_the_display_copy(page, live):
    search_for(page, live, "red dress")
    src = page.locator("#results .card img").first.get_attribute("src")
    page.evaluate("""async (src) => {
      const { showImage } = await import("/static/js/api.js");
      const img = document.createElement("img");
      img.id = "probe";
      img.style = "position: fixed; top: 0; left: 0; width: 50px";
      document.body.append(img);
      showImage(img, src.replace("w=400", "w=399"));
    }""", src)
    page.wait_for_function("() => { const i = document.querySelector('#probe');"
                           " return i.complete && i.naturalWidth > 0; }")
    probe = page.locator("#probe")
    assert probe.get_attribute("src") == src.replace("&w=400", "")
    expect(probe).not_to_have_class(re.compile("broken"))


def test_scrolling_loads_the_next_page_without_duplicates(page, live):
    total = live.http.get("/v1/facets").json()["total"]
    assert PAGE_SIZE < total <= 2 * PAGE_SIZE
    search_for(page, live, "shirt")
    expect(page.locator("#results .card")).to_have_count(PAGE_SIZE)
    page.locator("#sentinel").scroll_into_view_if_needed()
    expect(page.locator("#results .card")).to_have_count(total)
    assert len(set(card_ids(page))) == total
    expect(page.locator("#load-more")).to_be_hidden()  # no further page


def test_colour_filter_narrows_results_and_updates_counts(page, live):
    search_for(page, live, "dress")
    expect(page.locator('fieldset[data-field="colour"] li')).to_have_count(len(COLOURS))
    before = facet_counts(page, "category")
    page.locator('fieldset[data-field="colour"] label').filter(has_text="red").click()
    expect(page.locator('fieldset[data-field="colour"] input[value="red"]')).to_be_checked()
    expected = live.http.get("/v1/facets", params={"colour": "red"}).json()
    expect(page.locator("#results .card")).to_have_count(expected["total"])
    metas = page.locator("#results .card .meta").all_inner_texts()
    assert metas and all("red" in m.lower() for m in metas)
    page.wait_for_function(
        "n => [...document.querySelectorAll('fieldset[data-field=\"category\"] .count')]"
        ".reduce((s, c) => s + parseInt(c.textContent), 0) === n", arg=expected["total"])
    after = facet_counts(page, "category")
    assert after == expected["facets"]["category"] and after != before
    # The other colours stay listed, counted without the colour filter, to add to it.
    assert facet_counts(page, "colour") == live.http.get("/v1/facets").json()["facets"]["colour"]
    assert "colour=red" in page.url


def test_search_by_uploaded_photo_finds_that_product_first(page, live):
    page.goto(live.url + "/")
    photo = catalogue_photo(7)
    page.set_input_files("#photo", files=[{"name": "query.png", "mimeType": "image/png",
                                           "buffer": photo}])
    expect(page.locator("#photo-preview")).to_be_visible()
    first = page.locator("#results .card").first
    expect(first).to_have_attribute("data-product-id", "p7")
    expect(first.locator(".score strong")).to_have_text(re.compile(r"^(1\.000|0\.99\d)$"))
    # Words and a photo together: the weight slider comes alive.
    page.fill("#q", "green jacket")
    expect(page.locator("#alpha")).to_be_enabled()


def test_more_like_this_shows_similar_products_without_the_product(page, live):
    total = live.http.get("/v1/facets").json()["total"]
    search_for(page, live, "jeans")
    first = page.locator("#results .card").first
    product_id = first.get_attribute("data-product-id")
    first.get_by_role("button", name=re.compile("More like")).click()
    expect(page.locator("#similar-banner")).to_be_visible()
    expect(page.locator("#similar-heading")).to_be_focused()
    expect(page.locator("#results .card")).to_have_count(PAGE_SIZE)  # the first page, then scroll
    page.locator("#sentinel").scroll_into_view_if_needed()
    expect(page.locator("#results .card")).to_have_count(total - 1)
    assert product_id not in card_ids(page)
    page.get_by_role("button", name="Back to search").click()
    expect(page.locator("#similar-banner")).to_be_hidden()
    expect(page.locator(f'#results .card[data-product-id="{product_id}"]')).to_have_count(1)


def test_cutoff_gives_a_clear_empty_state_and_api_errors_are_shown(page, live):
    search_for(page, live, "dress")
    page.locator("#min-score").fill("0.99")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#empty")).to_contain_text("No products")
    page.get_by_role("button", name="Remove the relevance cutoff").click()
    expect(page.locator("#results .card")).to_have_count(PAGE_SIZE)
    # A file that is no image: the API's own reason is shown.
    page.set_input_files("#photo", files=[{"name": "notes.png", "mimeType": "image/png",
                                           "buffer": b"not an image at all"}])
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error")).to_contain_text("not an image")


def test_keyboard_only_search(page, live):
    page.goto(live.url + "/")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("blue shirt")
    page.keyboard.press("Enter")
    expect(page.locator("#results .card")).to_have_count(PAGE_SIZE)
    button = page.locator("#results .card .more-like").first
    button.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#similar-banner")).to_be_visible()


def test_phone_layout_collapses_filters(browser, live):
    page = new_page(browser, PHONE)
    try:
        search_for(page, live, "dress")
        expect(page.locator("#filters")).to_be_hidden()
        columns = page.locator("#results").evaluate(
            "g => getComputedStyle(g).gridTemplateColumns.split(' ').length")
        assert columns == 2
        page.get_by_role("button", name="Filters").click()
        expect(page.locator("#filters")).to_be_visible()
        expect(page.get_by_role("button", name="Filters")).to_have_attribute("aria-expanded",
                                                                             "true")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        page.context.close()


# ---------------------------------------------------------------- keys


def test_shopper_page_asks_for_a_key_and_retries(page, keyed_live):
    page.goto(keyed_live.url + "/")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()  # the filters' counts need a key already
    page.fill("#key-input", KEYS["shopper"])
    page.press("#key-input", "Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator('fieldset[data-field="colour"] li')).to_have_count(len(COLOURS))
    page.fill("#q", "dress")
    page.press("#q", "Enter")
    expect(page.locator("#results .card")).to_have_count(PAGE_SIZE)
    assert page.evaluate("localStorage.getItem('vitrine.apiKey')") == KEYS["shopper"]
    # Photos need the key too: fetched with it and shown from blob: URLs.
    assert all(images_loaded(page, "#results .card img"))
    assert page.locator("#results .card img").first.get_attribute("src").startswith("blob:")
