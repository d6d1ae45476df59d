"""The domain's Prometheus metrics, counted where the work happens (ingest, the job store,
moderation, the vector store) and served by whichever process does it: the API in the
local profile, each Celery worker in a cluster (workers.metrics).

The metrics are made on first use, not at import: a Celery worker switches
prometheus_client to its multiprocess mode at start (its prefork children count, the
parent serves), and a metric made before that switch would count in a process nobody
scrapes. Queue depth, store points and the model are read at scrape time instead
(api.metrics).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache

from prometheus_client import Counter, Histogram

from catalogue.tracing import child_span

# Seconds, from a cached query page (0.5 ms) to a cold batch (minutes).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                   30, 60, 120, 300)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class DomainMetrics:
    ingest_items: Counter
    ingest_failures: Counter
    ingest_batch_size: Histogram
    ingest_batch_seconds: Histogram
    moderation_flags: Counter
    store_seconds: Histogram


@lru_cache(maxsize=1)
def domain() -> DomainMetrics:
    """The metrics, registered in prometheus_client's default registry on first use."""
    return DomainMetrics(
        Counter("vitrine_ingest_items", "Uploads whose processing ended, by outcome (added, "
                "updated, unchanged, failed)", ["outcome"]),
        Counter("vitrine_ingest_failures", "Uploads that ended failed, by reason", ["reason"]),
        Histogram("vitrine_ingest_batch_size", "Uploads claimed per ingest batch",
                  buckets=BATCH_BUCKETS),
        Histogram("vitrine_ingest_batch_seconds", "Time to process one ingest batch (fetch, "
                  "decode, encode, upsert)", buckets=LATENCY_BUCKETS),
        Counter("vitrine_moderation_flags", "Uploads zero-shot moderation flagged, by "
                "category", ["category"]),
        Histogram("vitrine_store_seconds", "Time in the vector store's engine per call, by "
                  "operation (search: nearest neighbours, order: by a payload value, "
                  "retrieve: points by id)", ["operation"], buckets=LATENCY_BUCKETS),
    )


# An item's error, first words -> its reason (bounded, unlike the messages themselves).
REASONS = (("invalid metadata", "invalid_metadata"), ("no image was sent", "no_image"),
           ("duplicate id", "duplicate"), ("encoding failed", "encoding"),
           ("rejected by moderation", "moderation"), ("gave up after", "worker_died"))
WHERE = re.compile(r"^line \d+: ")  # an import row's place, before its reason


def failure_reason(error: str) -> str:
    """A failed item's reason as a label: one of REASONS' values, `fetch` (a photo URL),
    `image` (an undecodable or refused image) or `other`."""
    error = WHERE.sub("", error)
    for start, reason in REASONS:
        if error.startswith(start):
            return reason
    if "://" in error:
        return "fetch"
    return "image" if "image" in error else "other"


def count_outcomes(outcomes: Sequence[str | None], errors: Sequence[str | None]) -> None:
    """Items that ended: each with its change (added, updated, unchanged) or its error."""
    m = domain()
    for change, error in zip(outcomes, errors, strict=True):
        if error is not None:
            m.ingest_items.labels("failed").inc()
            m.ingest_failures.labels(failure_reason(error)).inc()
        else:
            m.ingest_items.labels(change or "done").inc()


def count_gave_up(count: int) -> None:
    """Items that ended failed because their worker died on them too often."""
    if count:
        domain().ingest_items.labels("failed").inc(count)
        domain().ingest_failures.labels("worker_died").inc(count)


def count_flag(category: str) -> None:
    domain().moderation_flags.labels(category).inc()


@contextmanager
def ingest_batch(size: int) -> Iterator[None]:
    """Times one batch of `size` claimed uploads."""
    m = domain()
    m.ingest_batch_size.observe(size)
    start = time.perf_counter()
    try:
        yield
    finally:
        m.ingest_batch_seconds.observe(time.perf_counter() - start)


# Seconds spent in the store during the current request, for splitting a search's time.
_store_time: ContextVar[list[float] | None] = ContextVar("vitrine_store_time", default=None)


@contextmanager
def store_call(operation: str) -> Iterator[None]:
    """Times one call into the store's engine (and adds it to the request's store time);
    a span `store.<operation>` in a traced request or task."""
    start = time.perf_counter()
    try:
        with child_span(f"store.{operation}", **{"vitrine.store.operation": operation}):
            yield
    finally:
        spent = time.perf_counter() - start
        domain().store_seconds.labels(operation).observe(spent)
        if (total := _store_time.get()) is not None:
            total[0] += spent


@contextmanager
def measuring_store_time() -> Iterator[list[float]]:
    """Within it, `[seconds]` grows by the time store calls take (in this context)."""
    total = [0.0]
    token = _store_time.set(total)
    try:
        yield total
    finally:
        _store_time.reset(token)
