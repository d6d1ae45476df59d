"""Query texts: a repeated one skips the text tower; ones arriving together share a pass."""

import threading

import numpy as np

from catalogue.queries import TextQueries


class CountingEncoder:
    model_id = "m"

    def __init__(self, real):
        self.real, self.calls = real, []

    def encode_texts(self, texts):
        self.calls.append(list(texts))
        return self.real.encode_texts(texts)


def test_a_repeated_query_is_answered_from_the_cache(tiny_encoder):
    encoder = CountingEncoder(tiny_encoder)
    queries = TextQueries(encoder, cache_size=2, window_s=0)
    first = queries.vector("red dress")
    assert np.array_equal(queries.vector("red dress"), first)
    assert encoder.calls == [["red dress"]]
    assert np.allclose(first, tiny_encoder.encode_texts(["red dress"])[0], atol=1e-6)
    queries.vector("blue jeans")
    queries.vector("green top")  # the least recently used, red dress, goes
    queries.vector("red dress")
    assert encoder.calls[-1] == ["red dress"] and len(encoder.calls) == 4


def test_queries_arriving_together_share_one_pass(tiny_encoder):
    encoder = CountingEncoder(tiny_encoder)
    queries = TextQueries(encoder, window_s=0.3)
    texts = [f"query {i}" for i in range(8)]
    results: dict[str, np.ndarray] = {}
    start = threading.Barrier(len(texts))

    def ask(text):
        start.wait()
        results[text] = queries.vector(text)

    threads = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(encoder.calls) < len(texts)  # fewer passes than queries
    assert sorted(t for call in encoder.calls for t in call) == sorted(texts)
    for text in texts:  # each caller got its own row
        assert np.allclose(results[text], tiny_encoder.encode_texts([text])[0], atol=1e-5)
