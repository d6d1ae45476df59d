"""What a store hands its engine, recorded: each request, on the embedded engine and on
qdrant-client alike (the contract, quantisation and loose-filter tests read them)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from catalogue.store.edge import EdgeStore


def sent_requests(store, monkeypatch, record: Callable[[Any], Any]) -> list:
    """`record(request)` of each query `store` hands its engine from now on: the engine's
    QueryRequest, or qdrant-client's query_points arguments under the same names
    (`limit`, `query`, `prefetches`, `filter`, `params`)."""
    sent: list = []
    if isinstance(store, EdgeStore):
        shard = store._shard

        class RecordingShard:
            def __getattr__(self, name):
                return getattr(shard, name)

            def query(self, request):
                sent.append(record(request))
                return shard.query(request)

        monkeypatch.setattr(store, "_shard", RecordingShard())
    else:
        query_points = store.client.query_points

        def recording_query_points(*args, **kwargs):
            sent.append(record(SimpleNamespace(
                limit=kwargs["limit"], query=kwargs["query"], prefetches=kwargs["prefetch"],
                filter=kwargs["query_filter"], params=kwargs["search_params"])))
            return query_points(*args, **kwargs)

        monkeypatch.setattr(store.client, "query_points", recording_query_points)
    return sent


def sent_search_params(store, monkeypatch) -> list:
    """The search parameters of each request `store` hands its engine from now on."""
    return sent_requests(store, monkeypatch, lambda request: request.params)
