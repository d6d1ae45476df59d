"""Imports against hostile and sloppy input: zip bombs, too many files, a full disk,
concurrent imports, text in the wrong encoding, over-long fields, ids that are paths, deep
JSON; and no server path in any message."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import struct
import tempfile
import threading
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import api.routes.imports as imports_route
import catalogue.importer as importer
from testkit.api import make_app, wait_job
from testkit.images import image_bytes

MiB = 1024 * 1024
HEADER = "id,articleType,baseColour,productDisplayName,description\n"


@pytest.fixture
def tight(tmp_path, tiny_encoder):
    """An app with small import budgets, so a bomb need not be big to go over them."""
    app = make_app(tmp_path / "data", tiny_encoder, import_max_bytes=5 * MiB,
                   import_max_files=20)
    with TestClient(app) as c:
        yield c


def styles(*rows: tuple[str, str], description: str = "") -> str:
    return HEADER + "".join(f"{pid},Dresses,Red,{title},{description}\n" for pid, title in rows)


def catalogue_zip(csv: str | bytes, ids=("p1", "p2"), extra: dict[str, bytes] | None = None,
                  compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip holding shop/styles.csv, an image per id, and any `extra` members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as z:
        z.writestr("shop/styles.csv", csv)
        for i, pid in enumerate(ids):
            z.writestr(f"shop/images/{pid}.jpg", image_bytes(seed=i))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def post(client, data: bytes, **headers):
    return client.post("/v1/imports", files={"archive": ("c.zip", data, "application/zip")},
                       headers=headers)


def data_dir(client) -> Path:
    return Path(client.app.state.services.settings.data_dir)


def assert_nothing_left(client):
    """Nothing staged, no job recorded, no original stored."""
    staging = data_dir(client) / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    with sqlite3.connect(data_dir(client) / "jobs.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
    media = data_dir(client) / "media"
    assert not media.exists() or [p for p in media.rglob("*") if p.is_file()] == []


def assert_no_server_path(text: str, client):
    for path in (str(data_dir(client)), str(data_dir(client).resolve()), tempfile.gettempdir(),
                 os.getcwd(), "staging"):
        assert path not in text, (path, text)


def job_text(client, job_id) -> str:
    return json.dumps(wait_job(client, job_id, timeout=60)["errors"])


# ---------------------------------------------------------------------------- budgets


def lie_about_size(data: bytes, name: str, declared: int) -> bytes:
    """The zip with `name`'s uncompressed size patched to `declared` in both its local
    header and its central directory entry (the CRC still that of the real contents)."""
    data = bytearray(data)
    encoded = name.encode()
    local = data.find(b"PK\x03\x04")
    while data[local + 30:local + 30 + len(encoded)] != encoded:
        local = data.find(b"PK\x03\x04", local + 4)
    struct.pack_into("<I", data, local + 22, declared)
    central = data.find(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(encoded)] != encoded:
        central = data.find(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", data, central + 24, declared)
    return bytes(data)


def test_zip_bomb_is_refused_with_nothing_left(tight):
    zeros = b"\0" * (20 * MiB)  # about 20 KB once deflated; the budget is 5 MiB
    bomb = catalogue_zip(styles(("p1", "Red dress"), ("p2", "Blue dress")),
                         extra={"shop/padding.bin": zeros})
    assert len(bomb) < 100_000
    response = post(tight, bomb)
    assert response.status_code == 413, response.text
    assert "VITRINE_IMPORT_MAX_BYTES" in response.text
    assert_no_server_path(response.text, tight)
    assert_nothing_left(tight)
    # A header that says 1000 bytes: zipfile stops there and the CRC then fails, so the
    # lie costs no more than it declares, and is refused as a damaged member.
    liar = lie_about_size(bomb, "shop/padding.bin", 1000)
    response = post(tight, liar)
    assert response.status_code == 422, response.text
    assert "shop/padding.bin" in response.text and "CRC" in response.text
    assert_no_server_path(response.text, tight)
    assert_nothing_left(tight)


def test_too_many_files_are_refused(tight):
    extra = {f"shop/notes/{i}.txt": b"x" for i in range(30)}  # the budget is 20 entries
    response = post(tight, catalogue_zip(styles(("p1", "Red dress"), ("p2", "Blue")),
                                         extra=extra))
    assert response.status_code == 413, response.text
    assert "VITRINE_IMPORT_MAX_FILES" in response.text
    assert_nothing_left(tight)


@pytest.mark.parametrize("calls_with_room", [0, 1], ids=["before", "while unpacking"])
def test_a_disk_short_of_space_refuses_the_import(client, monkeypatch, calls_with_room):
    real = shutil.disk_usage
    calls = []

    def disk_usage(path):
        calls.append(path)
        usage = real(path)
        return usage._replace(free=usage.free if len(calls) <= calls_with_room else 10 * MiB)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    response = post(client, catalogue_zip(styles(("p1", "Red dress"), ("p2", "Blue"))))
    assert response.status_code == 507, response.text
    assert response.headers["Retry-After"]
    assert_no_server_path(response.text, client)
    assert_nothing_left(client)


def test_concurrent_imports_over_the_limit_get_429(client, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    real = importer.import_catalogue
    calls = []

    def slow_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            entered.set()
            release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(importer, "import_catalogue", slow_first)
    monkeypatch.setattr(imports_route, "import_catalogue", slow_first, raising=False)
    archive = catalogue_zip(styles(("p1", "Red dress"), ("p2", "Blue dress")))
    first: list = []
    thread = threading.Thread(target=lambda: first.append(post(client, archive)))
    thread.start()
    try:
        assert entered.wait(30)
        response = post(client, archive)
        assert response.status_code == 429, response.text
        assert int(response.headers["Retry-After"]) > 0
        # Another key has its own slot (keys aren't checked: the local profile is open).
        assert post(client, archive, **{"X-API-Key": "another"}).status_code == 202
    finally:
        release.set()
        thread.join(60)
    assert first[0].status_code == 202, first[0].text
    assert post(client, archive).status_code == 202  # the slot was given back


# ---------------------------------------------------------------------- sloppy text


def test_latin1_and_cp1252_styles_csv_import(client):
    latin1 = "Robe d'été à pois"
    cp1252 = "Écharpe – laine, 20 €"  # the dash and the euro sign are cp1252's, not latin-1's
    utf8 = "Jupe plissée"
    raw = (HEADER.encode() + f"p1,Dresses,Red,{latin1},\n".encode("latin-1")
           + f'p2,Scarves,Grey,"{cp1252}",\n'.encode("cp1252")
           + f"p3,Skirts,Blue,{utf8},\n".encode())  # two exports pasted into one file
    response = post(client, catalogue_zip(raw, ids=("p1", "p2", "p3")))
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["job_id"], timeout=60)
    assert job["succeeded"] == 3, job
    titles = {pid: client.get(f"/v1/products/{pid}").json()["title"] for pid in ("p1", "p2", "p3")}
    assert titles == {"p1": latin1, "p2": cp1252, "p3": utf8}


def test_a_utf16_styles_csv_is_refused_with_a_hint(client):
    response = post(client, catalogue_zip(styles(("p1", "Red dress")).encode("utf-16")))
    assert response.status_code == 422 and "UTF-16" in response.text, response.text
    assert "shop/styles.csv" in response.text
    assert_nothing_left(client)


@pytest.mark.parametrize("end", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_an_overlong_field_is_that_lines_error(client, end):
    csv = (HEADER + "p1,Dresses,Red,Red dress," + end
           + "p2,Dresses,Blue,Blue dress," + "x" * 200_000 + end
           + "p3,Dresses,Green,Green dress," + end + "p4,Dresses,Red,Short," + end)
    response = post(client, catalogue_zip(csv, ids=("p1", "p2", "p3", "p4")))
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3 and response.json()["rejected"] == 1
    job = wait_job(client, response.json()["job_id"], timeout=60)
    assert job["succeeded"] == 3
    [error] = job["errors"]
    assert error["error"].startswith("line 3:") and "characters" in error["error"]


def test_a_runaway_quote_is_the_files_error(client):
    lines = "".join(f"p{i},Dresses,Red,Dress {i},\n" for i in range(3, 40_000))
    csv = HEADER + "p1,Dresses,Red,Red dress,\n" + 'p2,Dresses,Red,"Open quote,\n' + lines
    response = post(client, catalogue_zip(csv))
    assert response.status_code == 422, response.text
    assert "line 3" in response.text and "quote" in response.text
    assert_nothing_left(client)


def import_jsonl(client, path: Path, lines: list[bytes]) -> dict:
    (path.parent / "a.png").write_bytes(image_bytes("red"))
    path.write_bytes(b"\n".join(lines) + b"\n")
    services = client.app.state.services
    job_id = importer.import_catalogue(services.ingest, path).job_id
    services.dispatch.submit(job_id)
    return wait_job(client, job_id, timeout=60)


def jsonl_line(pid: str, title: str = "ok") -> bytes:
    return json.dumps({"id": pid, "title": title, "image": "a.png"}).encode()


def test_jsonl_nested_too_deep_is_that_lines_error(client, tmp_path):
    deep = '{"id": "j2", "image": "a.png", "tags": ' + "[" * 10_000 + "]" * 10_000 + "}"
    job = import_jsonl(client, tmp_path / "products.jsonl",
                       [jsonl_line("j1"), deep.encode(), jsonl_line("j3")])
    assert job["succeeded"] == 2, job
    [error] = job["errors"]
    assert error["error"].startswith("line 2:") and "nested" in error["error"]


def test_a_jsonl_line_not_in_utf8_is_that_lines_error(client, tmp_path):
    latin1 = json.dumps({"id": "j2", "title": "Robe d'été", "image": "a.png"},
                        ensure_ascii=False).encode("latin-1")
    job = import_jsonl(client, tmp_path / "products.jsonl",
                       [jsonl_line("j1"), latin1, jsonl_line("j3")])
    assert job["succeeded"] == 2, job
    [error] = job["errors"]
    assert error["error"].startswith("line 2:") and "UTF-8" in error["error"]


# ------------------------------------------------------------------ ids and server paths


def test_an_id_that_is_a_path_is_a_bad_id_and_its_file_is_never_opened(client, tmp_path,
                                                                          monkeypatch):
    outside = tmp_path / "x.jpg"  # where images/../../x.jpg of the catalogue points
    outside.write_bytes(image_bytes("blue"))
    folder = tmp_path / "cat"
    (folder / "images").mkdir(parents=True)
    (folder / "styles.csv").write_text(styles(("p1", "Red dress"), ("../../x", "Sneaky")))
    (folder / "images" / "p1.jpg").write_bytes(image_bytes("red"))
    touched: list[str] = []
    for method in ("open", "read_bytes", "stat"):
        real = getattr(Path, method)

        def spy(self, *args, _real=real, **kwargs):
            touched.append(os.path.normpath(os.path.abspath(self)))
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Path, method, spy)
    services = client.app.state.services
    job_id = importer.import_catalogue(services.ingest, folder).job_id
    monkeypatch.undo()
    assert str(outside) not in touched
    services.dispatch.submit(job_id)
    job = wait_job(client, job_id, timeout=60)
    assert job["succeeded"] == 1
    [error] = job["errors"]
    assert error["error"].startswith("line 3: bad id '../../x'")


def test_no_server_path_in_any_message(client):
    cases = {
        "no products": catalogue_zip(HEADER, ids=()),
        "a column missing": catalogue_zip("id,title\np1,Red dress\n"),
        "two catalogues": catalogue_zip(styles(("p1", "Red")),
                                        extra={"other/styles.csv": styles(("p2", "Blue"))}),
        "a name too long to write": catalogue_zip(styles(("p1", "Red")),
                                                  extra={"shop/" + "n" * 300: b"x"}),
    }
    for case, archive in cases.items():
        response = post(client, archive)
        assert response.status_code == 422, (case, response.text)
        assert_no_server_path(response.text, client)
    assert_nothing_left(client)
    # Row errors in the job: a bad id, a missing image.
    response = post(client, catalogue_zip(styles(("p1", "Red"), ("../../x", "Sneaky"),
                                                 ("p3", "No image")), ids=("p1",)))
    assert response.status_code == 202, response.text
    text = job_text(client, response.json()["job_id"])
    assert "bad id" in text and "shop/images/p3.jpg" in text
    assert_no_server_path(text, client)
