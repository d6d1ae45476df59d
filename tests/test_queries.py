"""Query texts: a repeated one skips the text tower; ones arriving together share a pass."""

import threading

import numpy as np
import pytest

from catalogue.queries import TextQueries
from embedding.encoder import Encoder


class CountingEncoder:
    model_id = "m"
    texts_share_passes = True  # a float32 text tower: company is worth waiting for

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


def test_a_lone_query_waits_for_nobody_when_each_text_runs_alone(tiny_encoder):
    """An int8 text tower encodes text by text (embedding.fast_text): the batching window
    would only add to every lone query's latency, so it is not waited out."""
    assert Encoder(model=tiny_encoder.model_id, text_tower="onnx-int8").load() \
        .texts_share_passes is False
    assert Encoder(model=tiny_encoder.model_id, text_tower="float32").load().texts_share_passes
    encoder = CountingEncoder(tiny_encoder)
    encoder.texts_share_passes = False
    queries = TextQueries(encoder, window_s=60)  # waited out, this would hold for a minute
    asked = threading.Thread(target=queries.vector, args=("red dress",))
    asked.start()
    asked.join(timeout=20)
    assert not asked.is_alive() and encoder.calls == [["red dress"]]
    queries.close()


class GatedEncoder(CountingEncoder):
    """Its first pass waits for `release`: what arrives meanwhile queues for the next."""

    def __init__(self, real):
        super().__init__(real)
        self.started, self.release = threading.Event(), threading.Event()

    def encode_texts(self, texts):
        if not self.calls:
            self.started.set()
            self.release.wait(5)
        return super().encode_texts(texts)


def test_texts_arriving_during_a_pass_share_the_next_one(tiny_encoder):
    encoder = GatedEncoder(tiny_encoder)
    queries = TextQueries(encoder, window_s=0)
    first = threading.Thread(target=queries.vector, args=("first",))
    first.start()
    assert encoder.started.wait(5)
    later = [threading.Thread(target=queries.vector, args=(f"later {i}",)) for i in range(5)]
    for t in later:
        t.start()
    while len(queries._queued) < 5:  # all five wait behind the busy encoder
        threading.Event().wait(0.01)
    encoder.release.set()
    for t in [first, *later]:
        t.join(5)
    assert encoder.calls[0] == ["first"]
    assert sorted(encoder.calls[1]) == [f"later {i}" for i in range(5)]
    assert len(encoder.calls) == 2 and queries.passes == 2


class FailingOnce(CountingEncoder):
    def encode_texts(self, texts):
        if not self.calls:
            self.calls.append(list(texts))
            raise RuntimeError("the text tower fell over")
        return super().encode_texts(texts)


def test_a_failed_pass_reaches_its_callers_and_the_next_query_works(tiny_encoder):
    queries = TextQueries(FailingOnce(tiny_encoder), window_s=0)
    with pytest.raises(RuntimeError, match="fell over"):
        queries.vector("red dress")
    assert np.allclose(queries.vector("red dress"),
                       tiny_encoder.encode_texts(["red dress"])[0], atol=1e-6)


def test_closing_stops_the_encoding_thread(tiny_encoder):
    queries = TextQueries(CountingEncoder(tiny_encoder), window_s=0)
    queries.vector("red dress")
    thread = queries._thread
    queries.close()
    assert thread is not None and not thread.is_alive()
    assert np.array_equal(queries.vector("red dress"), queries.vector("red dress"))  # cached
    with pytest.raises(RuntimeError, match="closed"):
        queries.vector("blue jeans")
