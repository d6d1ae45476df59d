"""The vector store contract, through qdrant-client over HTTP to the Qdrant stand-in.

The store contract's tests are imported and run again with `store` bound to a
`ServerStore` on a real HTTP URL (see testkit/qdrant_standin.py for what that
does and does not prove).
"""

from __future__ import annotations

import pytest

from catalogue.store.server import ServerStore
from testkit.qdrant_standin import make_app
from testkit.threaded import serve_in_thread
from tests.test_store_contract import *  # noqa: F403 - the same tests, on this fixture
from tests.test_store_contract import DIM


@pytest.fixture(scope="module")
def standin_url():
    url, stop = serve_in_thread(make_app(), timeout=20)
    yield url
    stop()


@pytest.fixture
def store(standin_url, request):
    # A collection per test: the stand-in keeps its data for the module.
    s = ServerStore.connect(standin_url, f"c{abs(hash(request.node.name))}", DIM)
    yield s
    s.client.delete_collection(s.collection)
    s.close()


def test_reconnecting_finds_the_collection(standin_url):
    a = ServerStore.connect(standin_url, "shared", DIM)
    b = ServerStore.connect(standin_url, "shared", DIM)  # another process would do the same
    assert a.count() == b.count() == 0
    with pytest.raises(ValueError, match="size"):
        ServerStore.connect(standin_url, "shared", DIM + 1)
    a.close()
    b.close()
