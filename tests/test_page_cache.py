"""Repeated queries: the same page from the page cache until the catalogue changes."""

from fastapi.testclient import TestClient

from testkit.api import ingest, make_app


def test_a_repeated_query_is_answered_from_the_cache_until_the_catalogue_changes(
        tmp_path, tiny_encoder):
    with TestClient(make_app(tmp_path / "data", tiny_encoder)) as client:
        ingest(client, "p1", title="Red summer dress")
        search = client.app.state.services.search

        def ids(**params):
            response = client.get("/v1/search", params={"q": "red dress", **params})
            assert response.status_code == 200, response.text
            return [r["product_id"] for r in response.json()["results"]]

        assert ids() == ["p1"] and search.pages.hits == 0
        first = client.get("/v1/search", params={"q": "red dress"}).json()
        assert search.pages.hits == 1
        assert client.get("/v1/search", params={"q": "red dress"}).json() == first  # exactly
        assert search.pages.hits == 2
        kept = search.search(search.ask("red dress"), limit=7)
        kept.results.clear()  # a caller changing its page changes no one else's
        again = search.search(search.ask("red dress"), limit=7)
        assert [r.product_id for r in again.results] == ["p1"] and search.pages.hits == 3
        assert ids(limit=5) == ["p1"] and search.pages.hits == 3  # another page: its own key
        ingest(client, "p2", title="Red evening dress")  # a write: every page is stale
        assert sorted(ids()) == ["p1", "p2"] and search.pages.hits == 3
        assert sorted(ids()) == ["p1", "p2"] and search.pages.hits == 4
        client.delete("/v1/products/p2")
        assert ids() == ["p1"]


def test_a_server_store_keeps_no_pages(tmp_path, tiny_encoder):
    app = make_app(tmp_path / "data", tiny_encoder, store="server", qdrant_url=":memory:")
    with TestClient(app) as client:
        ingest(client, "p1", title="Red summer dress")
        for _ in range(2):
            assert client.get("/v1/search", params={"q": "red"}).status_code == 200
        assert client.app.state.services.search.pages.hits == 0  # others may write there
