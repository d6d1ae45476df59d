"""Catalogue import in both formats, with bad rows reported by line number."""

import csv
import io
import json
import zipfile

import pytest

from catalogue.importer import CatalogueFormatError, read_catalogue
from catalogue.styles import read_styles
from demo.generator import generate
from testkit.api import wait_job
from testkit.images import image_bytes


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    """A small generated catalogue in the Kaggle layout, with three rows spoiled."""
    folder = tmp_path_factory.mktemp("kaggle")
    generate(folder, n_products=30, seed=1, image_size=64, n_prohibited=0, progress=False)
    rows = read_styles(folder / "styles.csv")
    (folder / "images" / f"{rows[2]['id']}.jpg").unlink()  # line 4: image missing
    (folder / "images" / f"{rows[5]['id']}.jpg").write_bytes(b"\xff\xd8\xff garbage")  # line 7
    rows[8]["price"] = "cheap"  # line 10: wrong type
    with (folder / "styles.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_kaggle_rows_map_to_products(kaggle):
    rows = list(read_catalogue(kaggle))
    source = read_styles(kaggle / "styles.csv")
    first = rows[0].metadata
    assert first["id"] == source[0]["id"]
    assert first["category"] == source[0]["articleType"]
    assert first["colour"] == source[0]["baseColour"]
    assert first["title"] == source[0]["productDisplayName"]
    assert source[0]["masterCategory"] in first["tags"]
    assert rows[0].line == 2 and rows[0].image.name == f"{source[0]['id']}.jpg"


def test_import_reports_bad_rows_by_line_and_imports_the_rest(client, kaggle):
    from catalogue.importer import import_catalogue

    services = client.app.state.services
    job_id = import_catalogue(services.ingest, kaggle).job_id
    services.dispatch.submit(job_id)
    job = wait_job(client, job_id, timeout=60)
    assert job["state"] == "done" and job["succeeded"] == 27 and job["failed"] == 3
    errors = sorted(e["error"] for e in job["errors"])
    assert errors[0].startswith("line 10:") and "price" in errors[0]
    assert errors[1].startswith("line 4:") and "unreadable" in errors[1]
    assert errors[2].startswith("line 7:") and "image" in errors[2]
    assert client.get("/v1/facets").json()["total"] == 27


def write_jsonl(folder, lines):
    (folder / "img").mkdir(exist_ok=True)
    for name, colour in [("a.png", "red"), ("b.png", "blue")]:
        (folder / "img" / name).write_bytes(image_bytes(colour))
    path = folder / "products.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


JSONL = [
    json.dumps({"id": "j1", "title": "Rotes Kleid mit Punkten", "description": "Sommerkleid",
                "colour": "red", "image": "img/a.png"}),
    "{broken json",
    json.dumps({"id": "j3", "title": "remote", "image": "https://example.com/x.jpg"}),
    json.dumps({"id": "j4", "image": "../outside.png"}),
    json.dumps({"id": "j5", "title": "Blue shirt", "price": 20, "image": "img/b.png"}),
    json.dumps({"id": "j6", "price": -3, "image": "img/b.png"}),
]


def test_jsonl_import(client, tmp_path):
    from catalogue.importer import import_catalogue

    path = write_jsonl(tmp_path, JSONL)
    services = client.app.state.services
    job_id = import_catalogue(services.ingest, path).job_id
    services.dispatch.submit(job_id)
    job = wait_job(client, job_id)
    assert job["succeeded"] == 2 and job["failed"] == 4
    reasons = {e["error"].split(":")[0]: e["error"] for e in job["errors"]}
    assert set(reasons) == {"line 2", "line 3", "line 4", "line 6"}
    assert "JSON" in reasons["line 2"] and "URL" in reasons["line 3"]
    assert "leaves" in reasons["line 4"] and "price" in reasons["line 6"]
    assert client.get("/v1/products/j1").json()["title"] == "Rotes Kleid mit Punkten"


def zipped(folder) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in folder.rglob("*"):
            if path.is_file():
                z.write(path, f"shop/{path.relative_to(folder)}")
    return buf.getvalue()


def test_import_archive_over_http(client, kaggle):
    response = client.post("/v1/imports", files={"archive": ("c.zip", zipped(kaggle),
                                                            "application/zip")})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 27 and response.json()["rejected"] == 3
    job = wait_job(client, response.json()["job_id"], timeout=60)
    assert job["succeeded"] == 27 and job["failed"] == 3


def test_bad_archives_are_refused(client, tmp_path):
    response = client.post("/v1/imports", files={"archive": ("c.zip", b"not a zip", "x")})
    assert response.status_code == 422 and "zip" in response.text
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../../evil.txt", "x")
    response = client.post("/v1/imports", files={"archive": ("c.zip", buf.getvalue(), "x")})
    assert response.status_code == 422 and "outside" in response.text
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "no catalogue here")
    response = client.post("/v1/imports", files={"archive": ("c.zip", buf.getvalue(), "x")})
    assert response.status_code == 422 and "styles.csv" in response.text


def test_a_styles_csv_with_a_byte_order_mark_imports(client, kaggle):
    """Excel's "CSV UTF-8" starts with a byte-order mark, which once hid the id column."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("shop/styles.csv", "\ufeff" + (kaggle / "styles.csv").read_text())
        for path in (kaggle / "images").iterdir():
            z.write(path, f"shop/images/{path.name}")
    response = client.post("/v1/imports", files={"archive": ("c.zip", buf.getvalue(), "x")})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 27


def test_unknown_format_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CatalogueFormatError, match="styles.csv"):
        read_catalogue(tmp_path / "notes.txt")
    (tmp_path / "styles.csv").write_text("a,b\n1,2\n")
    with pytest.raises(CatalogueFormatError, match="lacks the columns"):
        list(read_catalogue(tmp_path))
