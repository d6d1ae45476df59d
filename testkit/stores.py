"""What a store hands its engine, recorded: the search parameters of each request, on the
embedded engine and on qdrant-client alike (the contract and quantisation tests read them)."""

from __future__ import annotations

from catalogue.store.edge import EdgeStore


def sent_search_params(store, monkeypatch) -> list:
    """The search parameters of each request `store` hands its engine from now on."""
    sent = []
    if isinstance(store, EdgeStore):
        shard = store._shard

        class RecordingShard:
            def __getattr__(self, name):
                return getattr(shard, name)

            def query(self, request):
                sent.append(request.params)
                return shard.query(request)

        monkeypatch.setattr(store, "_shard", RecordingShard())
    else:
        query_points = store.client.query_points

        def recording_query_points(*args, **kwargs):
            sent.append(kwargs["search_params"])
            return query_points(*args, **kwargs)

        monkeypatch.setattr(store.client, "query_points", recording_query_points)
    return sent
