"""The catalogue manager's page in a real browser: uploads, batches and archive imports
with their jobs, the moderation queue, predicted tags and asking for a manager key; and
screenshots of both pages (testkit/browser.py serves the app and drives Chromium)."""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from pathlib import Path

import pytest

from catalogue.store.base import point_id
from testkit.browser import (
    DESKTOP,
    KEYS,
    PAGE_SIZE,
    PHONE,
    Live,
    expect,
    images_loaded,
    new_page,
    search_for,
    start_live,
)
from testkit.images import image_bytes

pytest_plugins = ["testkit.browser_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"


def test_manager_uploads_a_product_watches_its_job_and_finds_it(page, live):
    page.goto(live.url + "/admin")
    page.set_input_files("#p-image", files=[{"name": "gown.png", "mimeType": "image/png",
                                             "buffer": image_bytes("purple", seed=99)}])
    page.fill("#p-id", "gown-1")
    page.fill("#p-title", "Purple evening gown")
    page.fill("#p-category", "Gowns")
    page.fill("#p-colour", "purple")
    page.fill("#p-gender", "Women")
    page.fill("#p-brand", "Nova")
    page.fill("#p-price", "99.5")
    page.fill("#p-tags", "evening, silk")
    page.get_by_role("button", name="Upload product").click()
    job = page.locator(".job").first
    expect(job).to_have_attribute("data-state", "done")
    expect(job.locator(".job-counts")).to_contain_text("1 added · 0 failed")
    assert job.locator("progress").evaluate("p => p.value === p.max")
    expect(page.locator("#p-id")).to_have_value("")  # the form is ready for the next one
    product = live.http.get("/v1/products/gown-1").json()
    assert product["tags"] == ["evening", "silk"] and product["price"] == 99.5

    search_for(page, live, "purple evening gown")
    page.locator('fieldset[data-field="colour"] label').filter(has_text="purple").click()
    expect(page.locator("#results .card")).to_have_count(1)
    expect(page.locator("#results .card")).to_have_attribute("data-product-id", "gown-1")
    assert images_loaded(page, "#results .card img") == [True]


def test_manager_batch_reports_item_errors(page, live):
    page.goto(live.url + "/admin")
    page.set_input_files("#b-images", files=[
        {"name": "a.png", "mimeType": "image/png", "buffer": image_bytes("white", seed=201)},
        {"name": "b.png", "mimeType": "image/png", "buffer": image_bytes("white", seed=202)}])
    page.fill("#b-metadata", json.dumps([
        {"id": "batch-a", "title": "White tee", "colour": "white", "category": "Shirts",
         "image": "a.png"},
        {"id": "batch-b", "price": "free", "image": "b.png"}]))
    page.get_by_role("button", name="Upload batch").click()
    job = page.locator(".job").first
    expect(job).to_have_attribute("data-state", "done")
    expect(job.locator(".job-counts")).to_contain_text("1 added · 1 failed")
    expect(job.locator(".job-errors")).to_contain_text("batch-b")
    expect(job.locator(".job-errors")).to_contain_text("price")
    # A list that does not pair with the photos is refused before upload, with the reason.
    page.set_input_files("#b-images", files=[
        {"name": "c.png", "mimeType": "image/png", "buffer": image_bytes("white", seed=203)}])
    page.fill("#b-metadata", json.dumps([{"id": "x", "image": "missing.png"}]))
    page.get_by_role("button", name="Upload batch").click()
    expect(page.locator("#batch-form .form-error")).to_contain_text("missing.png")


def test_manager_imports_a_catalogue_archive(page, live):
    header = ["id", "gender", "masterCategory", "subCategory", "articleType", "baseColour",
              "season", "year", "usage", "productDisplayName"]
    rows = [["9001", "Women", "Apparel", "Topwear", "Tops", "Pink", "Summer", "2024", "Casual",
             "Pink summer top"],
            ["9002", "Men", "Footwear", "Shoes", "Sneakers", "White", "Fall", "2024", "Casual",
             "White sneakers"],
            ["9003", "Men", "Apparel", "Topwear", "Shirts", "Grey", "Fall", "2024", "Formal",
             "Grey shirt without a photo"]]
    styles = io.StringIO()
    csv.writer(styles).writerows([header, *rows])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("styles.csv", styles.getvalue())
        z.writestr("images/9001.jpg", image_bytes("pink", fmt="JPEG", seed=301))
        z.writestr("images/9002.jpg", image_bytes("white", fmt="JPEG", seed=302))
    page.goto(live.url + "/admin")
    page.set_input_files("#i-archive", files=[{"name": "mini.zip", "mimeType": "application/zip",
                                               "buffer": archive.getvalue()}])
    page.get_by_role("button", name="Import").click()
    job = page.locator(".job").first
    expect(job).to_have_attribute("data-state", "done")
    expect(job.locator(".job-counts")).to_contain_text("2 added · 1 failed")
    expect(job.locator(".job-errors")).to_contain_text("line 4")


def flag(live: Live, product_id: str, category: str, score: float, prompts: list[str]):
    """Put a product in the moderation queue as the moderator would (a random test model
    cannot be relied on to flag anything)."""
    live.services.store.set_payload([point_id(product_id)], {
        "moderation_status": "flagged",
        "moderation": {"category": category, "score": score, "prompts": prompts}})


def test_moderation_queue_approve(page, live):
    flag(live, "p3", "test-category", 0.91, ["a test prompt"])
    assert "p3" not in [r["product_id"] for r in live.http.get(
        "/v1/search", params={"q": "x", "limit": 100}).json()["results"]]
    page.goto(live.url + "/admin")
    item = page.locator('#moderation .review[data-product-id="p3"]')
    expect(item).to_be_visible()
    expect(item).to_contain_text("test-category")
    expect(item).to_contain_text("a test prompt")
    assert images_loaded(page, '#moderation .review[data-product-id="p3"] img') == [True]
    item.get_by_role("button", name="Approve p3").click()
    expect(item).to_have_count(0)
    expect(page.locator("#moderation-status")).to_contain_text("p3 approved")
    assert live.http.get("/v1/products/p3").json()["moderation_status"] == "approved"


def test_predicted_tags_section_lists_what_the_tagger_filled_in(page, live):
    """An upload without a category or colour: the tagger predicts both, and the
    section lists the product with its predictions."""
    page.goto(live.url + "/admin")
    expect(page.locator("#predicted-status")).not_to_have_text("Loading…")
    page.set_input_files("#p-image", files=[{"name": "bare.png", "mimeType": "image/png",
                                             "buffer": image_bytes("blue", seed=120)}])
    page.fill("#p-id", "bare-1")
    page.fill("#p-title", "A product described by its photo alone")
    page.get_by_role("button", name="Upload product").click()
    expect(page.locator(".job").first).to_have_attribute("data-state", "done")
    predicted = live.http.get("/v1/products/bare-1").json()["predicted"]
    assert set(predicted) == {"category", "colour"}, predicted
    row = page.locator('#predicted .predicted[data-product-id="bare-1"]')
    expect(row).to_be_visible()  # the list reloads once the job is done
    chips = row.locator(".chip")
    expect(chips).to_have_count(2)
    for field, guess in predicted.items():
        percent = math.floor(guess["confidence"] * 100 + 0.5)  # as the page's Math.round
        expect(chips.filter(has_text=f"{field}: ")).to_contain_text(
            f"{guess['value']} ({percent}%")
    expect(page.locator("#predicted-status")).to_contain_text("with predicted attributes")


def test_manager_page_asks_for_a_manager_key(page, keyed_live):
    page.goto(keyed_live.url + "/admin")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    page.fill("#key-input", KEYS["shopper"])  # not enough for a manager's route
    page.press("#key-input", "Enter")
    # The moderation queue, a manager's route, is read on load: asked again, with the reason.
    expect(dialog).to_be_visible()
    expect(page.locator("#key-message")).to_contain_text("needs a catalogue manager key")
    expect(page.locator("#key-message")).to_contain_text("the key is a shopper's")
    page.fill("#key-input", KEYS["manager"])
    page.press("#key-input", "Enter")
    expect(dialog).to_be_hidden()
    page.wait_for_function("k => localStorage.getItem('vitrine.apiKey') === k",
                           arg=KEYS["manager"])
    expect(page.locator("#moderation-status")).to_have_text("Nothing waiting for review.")


# ---------------------------------------------------------------- screenshots


def test_manager_reindexes_into_another_model_and_sees_it_live(page, page_encoder,
                                                                 tiny_clip_dir, tmp_path):
    """The "Model versions" panel: a reindex into a tiny model folder, its progress polled
    to done, and the list then showing that model's version live; the server serves it."""
    server, stop = start_live(tmp_path / "data", page_encoder)
    try:
        page.goto(server.url + "/admin")
        rows = page.locator("#models tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-live", "true")
        expect(rows.first.locator(".model")).to_have_text(page_encoder.model_id)
        page.fill("#m-model", str(tmp_path / "no-such-model"))
        page.get_by_role("button", name="Start reindex").click()
        expect(page.locator("#reindex-form .form-error")).to_contain_text("does not load")
        page.fill("#m-model", str(tiny_clip_dir))
        page.get_by_role("button", name="Start reindex").click()
        job = page.locator("#reindex-job")
        expect(job).to_have_attribute("data-state", "done", timeout=120_000)
        expect(job.locator(".job-counts")).to_contain_text("30 of 30 products")
        assert job.locator("progress").evaluate("p => p.value === p.max")
        live_row = page.locator('#models tbody tr[data-live="true"]')
        expect(live_row).to_have_count(1)
        expect(live_row.locator(".model")).to_have_text(str(tiny_clip_dir))
        expect(rows).to_have_count(2)
        expect(live_row.locator("td.num").nth(1)).to_have_text("30")
        assert server.services.encoder.model_id == str(tiny_clip_dir)
        assert len(server.http.get("/v1/search", params={"q": "dress"}).json()["results"])
    finally:
        stop()


def test_screenshots_of_both_pages(browser, live):
    """For people to look at: desktop and phone widths, pages with content on them."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, viewport in [("desktop", DESKTOP), ("phone", PHONE)]:
        page = new_page(browser, viewport)
        try:
            search_for(page, live, "summer dress")
            expect(page.locator("#results .card")).to_have_count(PAGE_SIZE)
            images_loaded(page, "#results .card img")
            page.screenshot(path=SCREENSHOTS / f"shop-{name}.png")
            if name == "phone":
                page.get_by_role("button", name="Filters").click()
                page.screenshot(path=SCREENSHOTS / "shop-phone-filters.png")
            flag(live, "p11", "weapon", 0.62, ["a photo of a knife", "a photo of a gun"])
            page.goto(live.url + "/admin")
            # Category and colour left out: the tagger predicts them.
            page.fill("#b-metadata", json.dumps([{"id": f"shot-{name}", "title": "Orange scarf"},
                                                 {"id": f"shot-{name}-bad", "price": -1}]))
            page.set_input_files("#b-images", files=[
                {"name": f"{i}.png", "mimeType": "image/png",
                 "buffer": image_bytes("orange", seed=400 + i)} for i in range(2)])
            page.get_by_role("button", name="Upload batch").click()
            expect(page.locator(".job").first).to_have_attribute("data-state", "done")
            page.locator("#predicted-refresh").click()
            for status in ("#moderation-status", "#predicted-status"):
                expect(page.locator(status)).not_to_have_text("Loading…")
            images_loaded(page, "main img")
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=SCREENSHOTS / f"admin-{name}.png", full_page=True)
        finally:
            page.context.close()
    assert len(list(SCREENSHOTS.glob("*.png"))) >= 5
