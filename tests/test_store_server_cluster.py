"""The server backend in a cluster: the collection's shards and replicas come from the
settings and reach the server, and a Qdrant server of a version qdrant-client does not
support is refused at start (over HTTP, against the Qdrant stand-in)."""

from __future__ import annotations

import logging
from importlib.metadata import version

import pytest
from pydantic import ValidationError

import catalogue.store.server as server
from catalogue.settings import CatalogueSettings
from catalogue.store.server import IncompatibleServer, ServerStore
from testkit.qdrant_standin import make_app
from testkit.threaded import serve_in_thread
from vitrine.wiring import open_store

DIM = 8
MAJOR, MINOR = (int(p) for p in version("qdrant-client").split(".")[:2])


@pytest.fixture
def standin():
    """Start a stand-in reporting a given server version; stop them all after the test."""
    stops = []

    def start(server_version: str | None = None):
        app = make_app(version=server_version or f"{MAJOR}.{MINOR}.0")
        url, stop = serve_in_thread(app, timeout=20)
        stops.append(stop)
        return app, url

    yield start
    for stop in stops:
        stop()


def test_settings_shards_and_replicas_reach_the_server(standin):
    app, url = standin()
    settings = CatalogueSettings(store="server", qdrant_url=url, collection="spread",
                                 qdrant_shard_number=6, qdrant_replication_factor=3,
                                 qdrant_write_consistency_factor=2)
    store = open_store(settings, DIM)
    try:
        sent = app.state.created["spread"]
        assert (sent.shard_number, sent.replication_factor, sent.write_consistency_factor) \
            == (6, 3, 2)
    finally:
        store.close()


def test_the_defaults_fit_three_nodes(standin):
    app, url = standin()
    store = open_store(CatalogueSettings(store="server", qdrant_url=url), DIM)
    store.close()
    sent = app.state.created["products"]
    # A majority of three copies: one node lost leaves every shard writable.
    assert (sent.shard_number, sent.replication_factor, sent.write_consistency_factor) \
        == (3, 3, 2)


def test_writes_cannot_need_more_copies_than_there_are():
    with pytest.raises(ValidationError, match="WRITE_CONSISTENCY_FACTOR"):
        CatalogueSettings(qdrant_replication_factor=2, qdrant_write_consistency_factor=3)


def test_a_server_of_the_same_minor_version_is_accepted_and_logged(standin, caplog):
    _, url = standin(f"{MAJOR}.{MINOR}.7")
    with caplog.at_level(logging.INFO, logger=server.__name__):
        ServerStore.connect(url, "same", DIM).close()
    assert f"Qdrant server {MAJOR}.{MINOR}.7" in caplog.text
    assert version("qdrant-client") in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("offset", [-1, 1])
def test_one_minor_version_apart_is_accepted_with_a_warning(standin, caplog, offset):
    if MINOR + offset < 0:
        pytest.skip("no minor version below 0")
    _, url = standin(f"{MAJOR}.{MINOR + offset}.2")
    with caplog.at_level(logging.INFO, logger=server.__name__):
        ServerStore.connect(url, "near", DIM).close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "one minor version apart" in warnings[0]


@pytest.mark.parametrize("server_version", [f"{MAJOR}.{MINOR + 2}.0", f"{MAJOR}.{MINOR - 2}.3",
                                            f"{MAJOR + 1}.{MINOR}.0", "dev"])
def test_a_server_further_apart_is_refused_naming_both_versions(standin, server_version):
    app, url = standin(server_version)
    with pytest.raises(IncompatibleServer) as refused:
        ServerStore.connect(url, "far", DIM)
    assert server_version in str(refused.value)
    assert version("qdrant-client") in str(refused.value)
    assert app.state.created == {}  # refused before touching any collection


def test_local_mode_skips_the_version_check(monkeypatch, tmp_path):
    def must_not_run(*args):
        raise AssertionError("local mode has no server to ask")

    monkeypatch.setattr(server, "check_server_version", must_not_run)
    ServerStore.connect(":memory:", "local", DIM).close()
    ServerStore.connect(str(tmp_path / "qdrant"), "local", DIM).close()


def test_an_existing_collection_made_otherwise_is_reported(caplog):
    from catalogue.store.server import Replication, client_for

    client = client_for(":memory:")
    ServerStore(client, "old", DIM)
    real = client.get_collection

    def as_a_server_reports(name):  # local mode reports no shards or replicas
        info = real(name)
        info.config.params.shard_number = 1
        info.config.params.replication_factor = 1
        info.config.params.write_consistency_factor = 1
        return info

    client.get_collection = as_a_server_reports  # type: ignore[method-assign,assignment]
    with caplog.at_level(logging.WARNING, logger=server.__name__):
        ServerStore(client, "old", DIM, replication=Replication(3, 3, 2))
    assert "(1, 1, 1)" in caplog.text and "(3, 3, 2)" in caplog.text
    caplog.clear()
    ServerStore(client, "old", DIM)  # as made: nothing to say
    assert not caplog.records
    client.close()


def test_replicas_starting_together_both_open_the_collection_one_of_them_made(standin):
    """Two API replicas on a new cluster each find the collection missing; the second
    to make it is told by the server that it exists and goes on with it, where it
    failed to start."""
    from catalogue.store.server import client_for

    _, url = standin()
    first = ServerStore(client_for(url), "products", DIM)
    late, looks = client_for(url), []
    exists = late.collection_exists

    def looked_before_the_first_made_it(name: str) -> bool:
        looks.append(name)
        return len(looks) > 1 and exists(name)

    late.collection_exists = looked_before_the_first_made_it
    second = ServerStore(late, "products", DIM)
    assert looks  # it did look, and found nothing
    assert second.count() == first.count() == 0
    first.close()
    second.close()
