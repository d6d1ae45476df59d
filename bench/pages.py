"""Shopper page benchmark: page weight and time to first results, in a real browser.

    .venv/bin/python -m bench.pages                                  # tiny random CLIP
    .venv/bin/python -m bench.pages --model data/models/try1 --catalogue data/demo/catalogue

The app runs as the local profile does (embedded store, ingest in-process) under
uvicorn on 127.0.0.1, over a temp data folder with a catalogue imported first: a
generated demo catalogue unless --catalogue names a styles.csv folder. Debian's
Chromium (/usr/bin/chromium) loads the page through Playwright, a fresh browser
context (empty cache) per cold run. Figures:

- page weight: bytes of the HTML, CSS and JavaScript of `/`, as files and as sent over
  the wire (the response body's size in the browser: gzipped where the app gzips);
- cold time to first results: from navigation start to the first page of results
  rendered, for `/?q=...` (HTML, CSS, JS, the facets and the search call together);
- warm time to results: on a loaded page, from the search form's submit to the
  results rendered, for a different query each run.

The page sets User Timing marks (`vitrine:search`, `vitrine:results`); the times are
read from them, so no polling delay of the test driver is counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote_plus

from bench.common import RESULTS_DIR, machine_info, markdown_table
from testkit.threaded import serve_in_thread

log = logging.getLogger("bench.pages")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
QUERIES = ["red dress", "black leather boots", "blue denim jeans", "white sneakers",
           "green jacket", "striped shirt", "summer skirt", "wool coat", "leather handbag",
           "running shoes", "floral blouse"]
# Vocabulary for the random test tokenizer when no model is given.
CORPUS = ["a red dress with white dots", "black trousers for men", "blue striped shirt",
          "green jacket", "white sneakers", "leather boots", "summer skirt"] * 20
PAGE_TYPES = ("document", "stylesheet", "script")


def catalogue_services(data_dir: Path, model: str | None, catalogue: Path | None,
                       products: int):
    from catalogue.importer import import_catalogue
    from catalogue.settings import CatalogueSettings
    from demo.generator import generate
    from embedding.encoder import Encoder
    from vitrine.wiring import build_services

    if model is None:
        from embedding.architecture import Architecture
        from testkit.models import make_random_model

        model = str(make_random_model(data_dir / "tiny-clip", Architecture.tiny("clip"), CORPUS))
    if catalogue is None:
        catalogue = data_dir / "catalogue"
        generate(catalogue, n_products=products, seed=0, image_size=128, n_prohibited=0,
                 progress=False)
    services = build_services(CatalogueSettings(data_dir=data_dir / "data"),
                              encoder=Encoder(model=model))
    started = time.perf_counter()
    job_id = import_catalogue(services.ingest, catalogue).job_id
    services.ingest.run_pending()
    job = services.jobs.get(job_id)
    log.info("imported %d products (%d failed) in %.1f s", job.succeeded, job.failed,
             time.perf_counter() - started)
    return services


def page_weight(browser, url: str) -> dict:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    responses = []
    page.on("response", lambda r: responses.append(r))
    page.goto(url + "/", wait_until="networkidle")
    files = []
    for r in responses:
        if r.request.resource_type in PAGE_TYPES and r.ok:
            files.append({"path": r.url.removeprefix(url), "type": r.request.resource_type,
                          "bytes": len(r.body()),
                          "sent_bytes": r.request.sizes()["responseBodySize"],
                          "content_encoding": r.headers.get("content-encoding") or "none"})
    context.close()
    return {"files": files, "bytes": sum(f["bytes"] for f in files),
            "sent_bytes": sum(f["sent_bytes"] for f in files), "requests": len(files)}


def wait_for_mark(page, name: str, count: int) -> None:
    page.wait_for_function("([name, n]) => performance.getEntriesByName(name).length >= n",
                           arg=[name, count], timeout=60_000)


def cold_runs(browser, url: str, query: str, runs: int) -> list[dict]:
    out = []
    for _ in range(runs):
        context = browser.new_context(viewport=VIEWPORT)  # empty cache each time
        page = context.new_page()
        page.goto(f"{url}/?q={quote_plus(query)}")
        wait_for_mark(page, "vitrine:results", 1)
        out.append(page.evaluate("""() => ({
            results_ms: performance.getEntriesByName('vitrine:results')[0].startTime,
            dom_content_loaded_ms: performance.getEntriesByType('navigation')[0]
                .domContentLoadedEventEnd,
            search_api_ms: performance.getEntriesByType('resource')
                .filter(e => e.name.includes('/v1/search'))[0]?.duration ?? null,
            cards: document.querySelectorAll('#results .card').length,
        })"""))
        context.close()
    return out


def warm_runs(browser, url: str, queries: list[str]) -> list[dict]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(url + "/", wait_until="networkidle")
    out = []
    for i, query in enumerate(queries, start=1):
        page.fill("#q", query)
        page.press("#q", "Enter")
        wait_for_mark(page, "vitrine:results", i)
        out.append(page.evaluate("""() => {
            const last = (name) => performance.getEntriesByName(name).at(-1).startTime;
            const calls = performance.getEntriesByType('resource')
                .filter(e => e.name.includes('/v1/search'));
            return {results_ms: last('vitrine:results') - last('vitrine:search'),
                    search_api_ms: calls.at(-1)?.duration ?? null,
                    cards: document.querySelectorAll('#results .card').length};
        }"""))
    context.close()
    return out


def median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 1) if values else None


def chromium_version() -> str:
    try:
        return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except OSError:
        return "unknown"


def write_markdown(result: dict, path: Path) -> None:
    m, w = result["machine"], result["page_weight"]
    cold, warm = result["cold"], result["warm"]
    lines = [
        "# Shopper page benchmark", "",
        f"Machine: {m['cpu_model']}, {m['usable_cores']} cores, {m['memory_gib']} GiB RAM; "
        f"Python {m['python']}; {result['browser']}; {m['date']}.", "",
        f"Command: `{result['command']}`", "",
        f"App: local profile (embedded store, in-process ingest) under uvicorn on 127.0.0.1; "
        f"model `{result['model']}` ({result['dim']}-d); {result['products']} products; "
        f"viewport {VIEWPORT['width']}x{VIEWPORT['height']}.", "",
        "## Page weight of `/` (HTML + CSS + JS)", "",
        markdown_table(["file", "type", "bytes", "sent bytes", "encoding"],
                       [(f["path"], f["type"], f"{f['bytes']:,}", f"{f['sent_bytes']:,}",
                         f["content_encoding"]) for f in w["files"]]
                       + [("**total**", f"{w['requests']} requests", f"{w['bytes']:,}",
                           f"**{w['sent_bytes']:,}**", "")]),
        "",
        "No third-party requests, no fonts, no framework.", "",
        "## Time to first results", "",
        markdown_table(["measure", "runs", "median ms", "min ms", "max ms",
                        "median search API ms"],
                       [(name, len(rows), median(rows, "results_ms"),
                         round(min(r["results_ms"] for r in rows), 1),
                         round(max(r["results_ms"] for r in rows), 1),
                         median(rows, "search_api_ms"))
                        for name, rows in [
                            (f"cold: load `/?q={result['query']}` -> results rendered", cold),
                            ("warm: submit a query on the loaded page -> results rendered",
                             warm)]]),
        "",
        "Cold runs use a fresh browser context (empty cache) each; they include the HTML, "
        "CSS and JS, the facet counts and the search call. Warm runs submit a different "
        "query each. Times come from the page's User Timing marks. The search API time "
        "is the browser's Resource Timing duration of the `/v1/search` call (text "
        "encoding + vector search + JSON).", "",
    ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model folder or hub id (default: a tiny random CLIP)")
    parser.add_argument("--catalogue", type=Path,
                        help="folder with styles.csv and images/ (default: generated)")
    parser.add_argument("--products", type=int, default=300,
                        help="size of the generated catalogue")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--query", default="red dress")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from playwright.sync_api import sync_playwright

    from vitrine.wiring import create_api


    with tempfile.TemporaryDirectory(prefix="vitrine-bench-pages-") as tmp:
        services = catalogue_services(Path(tmp), args.model, args.catalogue, args.products)
        products = services.store.count()
        app = create_api(services=services)
        url, stop = serve_in_thread(app, timeout=120)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
                cold_runs(browser, url, args.query, 1)  # warm the server up (model, store)
                weight = page_weight(browser, url)
                cold = cold_runs(browser, url, args.query, args.runs)
                warm = warm_runs(browser, url, (QUERIES * 3)[:args.runs])
                browser.close()
        finally:
            stop()
        result = {
            "machine": machine_info(), "browser": chromium_version(),
            "command": "python -m bench.pages" + "".join(
                f" --{k} {v}" for k, v in [("model", args.model), ("catalogue", args.catalogue)]
                if v) + f" --runs {args.runs}",
            "model": args.model or "tiny random CLIP (tests' size)",
            "dim": services.encoder.dim, "products": products, "query": args.query,
            "page_weight": weight, "cold": cold, "warm": warm,
            "summary": {"page_bytes": weight["bytes"], "page_sent_bytes": weight["sent_bytes"],
                        "cold_results_ms_median": median(cold, "results_ms"),
                        "warm_results_ms_median": median(warm, "results_ms"),
                        "search_api_ms_median": median(warm, "search_api_ms")},
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pages.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, args.out / "pages.md")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
