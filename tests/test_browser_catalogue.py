"""The pages over a catalogue of the new shape, in a real browser: a product with variants
in two colours and a photo each, the sort control, a facet the shop declares itself (a
catalogue schema file), and managers editing, deleting and confirming predictions
(testkit/browser.py serves the app and drives Chromium)."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogue.attributes import DEFAULT_SCHEMA
from testkit.browser import (
    Live,
    card_ids,
    expect,
    facet_counts,
    images_loaded,
    search_for,
    start_live,
)
from testkit.images import image_bytes

pytest_plugins = ["testkit.browser_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
# The default attributes and one of the shop's own.
SCHEMA = {"attributes": [a.model_dump(mode="json", exclude_none=True)
                         for a in DEFAULT_SCHEMA.attributes]
          + [{"name": "material", "facetable": True, "label": "Material"}]}
MATERIALS = {"linen-1": "linen", "linen-2": "linen", "wool-1": "wool"}
DUO = {"id": "duo", "title": "Two-colour dress", "category": "Dresses", "variants": [
    {"sku": "duo-red", "colour": "red", "size": "M", "price": 80, "image": 0},
    {"sku": "duo-blue", "colour": "blue", "size": "M", "price": 60, "compare_at_price": 75,
     "image": 1}]}


def demo_dress(demo_model, colour: str) -> bytes:
    """A plain dress of this colour from the catalogue the page's model learnt from, so
    that "blue dress" tells its photos apart for certain."""
    with open(demo_model.catalogue, newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["articleType"] == "Dresses"
                   and r["baseColour"] == colour and r["pattern"] == "plain")
    return (demo_model.catalogue.parent / "images" / f"{row['id']}.jpg").read_bytes()


def accepted(live: Live, response) -> dict:
    assert response.status_code == 202, response.text
    job = live.wait_job(response.json()["job_id"])
    assert job["state"] == "done" and not job["errors"], job
    return job


@pytest.fixture(scope="module")
def shop(tmp_path_factory, page_encoder, demo_model) -> Iterator[Live]:
    """The app with `catalogue()`, a catalogue schema that adds `material`, the two-colour
    dress and three products of known materials."""
    folder = tmp_path_factory.mktemp("catalogue")
    (folder / "schema.json").write_text(json.dumps(SCHEMA))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VITRINE_CATALOGUE_SCHEMA", str(folder / "schema.json"))
        live, stop = start_live(folder / "data", page_encoder)
    accepted(live, live.http.post(
        "/v1/products", data={"metadata": json.dumps(DUO)},
        files=[("images", (f"{c}.jpg", demo_dress(demo_model, c), "image/jpeg"))
               for c in ("Red", "Blue")]))
    items = [{"id": pid, "title": f"{material.title()} shirt", "category": "Shirts",
              "colour": "white", "price": 40.0 + i, "attributes": {"material": material}}
             for i, (pid, material) in enumerate(MATERIALS.items())]
    accepted(live, live.http.post(
        "/v1/products/batch", data={"metadata": json.dumps(items)},
        files=[("images", (f"{i}.png", image_bytes("white", seed=600 + i), "image/png"))
               for i in range(len(items))]))
    yield live
    stop()


def shown_prices(page) -> list[float]:
    texts = page.locator("#results .card .price").all_inner_texts()
    return [float(re.sub(r"[^\d.]", "", t)) for t in texts]


# ---------------------------------------------------------------- the shop


def test_variant_matching_the_query_shows_its_photo_and_sale_price(page, shop):
    duo = shop.http.get("/v1/products/duo").json()
    assert len(duo["images"]) == 2
    search_for(page, shop, "blue dress")
    page.locator("#sentinel").scroll_into_view_if_needed()  # wherever it ranks
    card = page.locator('#results .card[data-product-id="duo"]')
    expect(card).to_have_attribute("data-sku", "duo-blue")
    expect(card).to_have_attribute("data-image", "1")
    photo = duo["images"][1]
    src = f"/v1/products/duo/images/1?v={photo['display_sha256'] or photo['sha256']}&w=400"
    assert card.locator("img").get_attribute("src") == src
    card.scroll_into_view_if_needed()  # photos load lazily
    assert images_loaded(page, '#results .card[data-product-id="duo"] img', 1) == [True]
    expect(card.locator(".meta")).to_contain_text("blue")
    expect(card.locator(".meta")).to_contain_text("M")
    expect(card.locator(".price")).to_contain_text("60.00")
    expect(card.locator(".was")).to_contain_text("75.00")  # the regular price, struck through
    assert card.locator(".was").evaluate("s => s.tagName") == "S"
    # The red dress shows the other photo, at its own price.
    search_for(page, shop, "red dress")
    page.locator("#sentinel").scroll_into_view_if_needed()
    card = page.locator('#results .card[data-product-id="duo"]')
    expect(card).to_have_attribute("data-sku", "duo-red")
    expect(card.locator(".price")).to_contain_text("80.00")
    expect(card.locator(".was")).to_have_count(0)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    search_for(page, shop, "blue dress")
    images_loaded(page, "#results .card img")
    page.screenshot(path=SCREENSHOTS / "shop-variants.png")


def test_sort_control_orders_by_price_both_ways(page, shop):
    search_for(page, shop, "shirt")
    labels = page.locator("#sort option").all_inner_texts()
    assert labels == ["Relevance", "Newest", "Price: low to high", "Price: high to low"]
    expect(page.locator("#sort")).to_have_value("relevance")
    page.locator('fieldset[data-field="category"] label').filter(has_text="Shirts").click()
    shirts = shop.http.get("/v1/facets", params={"category": "Shirts"}).json()["total"]
    expect(page.locator("#results .card")).to_have_count(shirts)
    relevance = card_ids(page)
    for order, descending in [("price_asc", False), ("price_desc", True)]:
        page.select_option("#sort", order)
        expect(page.locator("#results")).to_have_attribute("aria-busy", "false")
        expect(page.locator("#results .card")).to_have_count(shirts)
        prices = shown_prices(page)
        assert prices == sorted(prices, reverse=descending) and len(set(prices)) > 1, prices
        assert f"sort={order}" in page.url
        expect(page.locator("#results .card .score")).to_have_count(0)  # a price, no match
    assert set(card_ids(page)) == set(relevance) and card_ids(page) != relevance


def test_shops_own_facet_has_counts_and_filters(page, shop):
    page.goto(shop.url + "/")  # no query: the page browses the catalogue, newest first
    expect(page.locator("#sort")).to_have_value("newest")
    assert "Relevance" not in page.locator("#sort option").all_inner_texts()
    group = page.locator('fieldset[data-field="material"]')
    expect(group.locator("legend")).to_have_text("Material")
    expect(group.locator("li")).to_have_count(2)
    assert facet_counts(page, "material") == {"linen": 2, "wool": 1}
    assert facet_counts(page, "size") == {"M": 1}  # products, not variants
    expect(page.locator('fieldset[data-field="availability"]')).to_contain_text("In stock")
    group.locator("label").filter(has_text="wool").click()
    expect(page.locator("#results .card")).to_have_count(1)
    expect(page.locator("#results .card")).to_have_attribute("data-product-id", "wool-1")
    assert "material=wool" in page.url
    # The address keeps the filter: a reload shows the same.
    page.reload()
    expect(group.locator('input[value="wool"]')).to_be_checked()
    expect(page.locator("#results .card")).to_have_count(1)


# ---------------------------------------------------------------- the managers' page


def test_manager_edits_and_deletes_products(page, shop):
    page.goto(shop.url + "/admin")
    row = page.locator('#products .product-row[data-product-id="p5"]')
    row.get_by_role("button", name="Edit p5", exact=True).click()
    title = row.get_by_label("Title")
    expect(title).to_be_focused()
    title.fill("Renamed jeans")
    row.get_by_label("Price").fill("12.5")
    row.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "admin-edit.png")
    row.get_by_role("button", name="Save changes").click()
    expect(row.locator(".title")).to_contain_text("Renamed jeans")
    product = shop.http.get("/v1/products/p5").json()
    assert product["title"] == "Renamed jeans" and product["price"] == 12.5
    assert product["category"] == "Jeans"  # fields left alone stay

    gone = page.locator('#products .product-row[data-product-id="p8"]')
    gone.get_by_role("button", name="Delete p8", exact=True).click()
    gone.get_by_role("button", name="Delete p8 for good").click()
    expect(gone).to_have_count(0)
    expect(page.locator("#products-status")).to_contain_text("p8 deleted")
    assert shop.http.get("/v1/products/p8").status_code == 404


def test_manager_confirms_and_corrects_predictions(page, shop):
    """An upload without a category or colour: the tagger predicts both; confirming one
    and correcting the other sets the fields and leaves nothing to review."""
    accepted(shop, shop.http.post(
        "/v1/products", data={"metadata": json.dumps({"id": "bare-2", "title": "Bare"})},
        files={"image": ("b.png", image_bytes("blue", seed=121), "image/png")}))
    predicted = shop.http.get("/v1/products/bare-2").json()["predicted"]
    assert set(predicted) == {"category", "colour"}, predicted
    page.goto(shop.url + "/admin")
    row = page.locator('#predicted .predicted[data-product-id="bare-2"]')
    expect(row.locator(".chip")).to_have_count(2)

    colour = predicted["colour"]["value"]
    row.get_by_role("button", name=f"Confirm colour {colour} for bare-2").click()
    expect(row.locator('.chip[data-field="colour"]')).to_have_count(0)
    expect(row.locator(".chip")).to_have_count(1)
    product = shop.http.get("/v1/products/bare-2").json()
    assert product["colour"] == colour and set(product["predicted"]) == {"category"}

    row.get_by_role("button", name="Correct category of bare-2").click()
    row.get_by_label("The right category of bare-2").fill("Scarves")
    row.get_by_role("button", name="Save category of bare-2").click()
    expect(row).to_have_count(0)  # nothing left to review
    product = shop.http.get("/v1/products/bare-2").json()
    assert product["category"] == "Scarves" and product["predicted"] == {}
    # The catalogue list shows the product as it is now.
    listed = page.locator('#products .product-row[data-product-id="bare-2"]')
    expect(listed.locator(".facts")).to_contain_text("Scarves")


def styles_zip(rows: list[list[str]]) -> bytes:
    """A catalogue archive: styles.csv and a photo per row."""
    header = ["id", "gender", "masterCategory", "subCategory", "articleType", "baseColour",
              "season", "year", "usage", "productDisplayName"]
    styles = io.StringIO()
    csv.writer(styles).writerows([header, *rows])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("styles.csv", styles.getvalue())
        for row in rows:
            z.writestr(f"images/{row[0]}.jpg", image_bytes("pink", fmt="JPEG", seed=int(row[0])))
    return archive.getvalue()


def import_on_page(page, archive: bytes, prune: bool = False):
    page.set_input_files("#i-archive", files=[{"name": "feed.zip", "mimeType": "application/zip",
                                               "buffer": archive}])
    if prune:
        page.check("#i-prune")
    page.get_by_role("button", name="Import").click()
    job = page.locator(".job").first
    expect(job).to_have_attribute("data-state", "done")
    return job


def test_reimport_with_prune_shows_what_changed(page, shop):
    """Last in this module: pruning leaves only what the archive lists."""
    rows = [["9101", "Women", "Apparel", "Topwear", "Tops", "Pink", "Summer", "2024", "Casual",
             "Pink top"],
            ["9102", "Men", "Apparel", "Topwear", "Tops", "Grey", "Fall", "2024", "Casual",
             "Grey top"]]
    page.goto(shop.url + "/admin")
    job = import_on_page(page, styles_zip(rows))
    expect(job.locator(".job-counts")).to_have_text("2 of 2 processed · 2 added · 0 failed")
    before = len(shop.http.get("/v1/products", params={"limit": 200}).json()["data"])
    rows[1][-1] = "Grey top, renamed"
    job = import_on_page(page, styles_zip(rows), prune=True)
    expect(job).to_contain_text("removing what it no longer lists")
    expect(job.locator(".job-counts")).to_have_text(
        f"2 of 2 processed · 0 added · 1 updated · 1 unchanged · {before - 2} removed · 0 failed")
    assert shop.http.get("/v1/products/p0").status_code == 404
    assert shop.http.get("/v1/products/9102").json()["title"] == "Grey top, renamed"
    expect(page.locator("#products .product-row")).to_have_count(2)  # the list follows
