"""The API process's metrics, served at `GET /metrics` (api.routes.metrics).

Counted as requests are answered (api.observe): requests by route template,
method and status, latency per route, a search's time by stage, requests a rate
limit refused (api.ratelimit). Read at each
scrape from the live services: the ingest queue (depth and the oldest upload's
wait), the store's points and those not yet indexed, the model. With them the
domain's counters (catalogue.metrics: ingest, failures, moderation, store
calls; ingest runs here in the local profile) and prometheus_client's process
metrics (memory, CPU, open files).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric

from catalogue import metrics as domain_metrics
from catalogue.metrics import LATENCY_BUCKETS, measuring_store_time
from catalogue.services import Services

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("vitrine_http_requests", "HTTP requests answered, by route template, "
                        "method and status", ["route", "method", "status"])
HTTP_SECONDS = Histogram("vitrine_http_request_seconds", "Time to answer an HTTP request, by "
                         "route template and method", ["route", "method"],
                         buckets=LATENCY_BUCKETS)
SEARCH_SECONDS = Histogram("vitrine_search_seconds", "A search's time by stage: encode (the "
                           "query's vector), store (the engine's searches), other (the rest: "
                           "filters, pages, results)", ["stage"], buckets=LATENCY_BUCKETS)
RATE_LIMITED = Counter("vitrine_rate_limited_requests", "Requests refused (429) by a rate "
                       "limit (api.ratelimit), by route group and limit kind (key, address)",
                       ["group", "limit"])
UNMATCHED = "unmatched"  # no route: one label for every unknown path a scanner tries


def record_request(route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_SECONDS.labels(route, method).observe(seconds)


class SearchTimer:
    def __init__(self) -> None:
        self.encode = 0.0

    @contextmanager
    def encoding(self) -> Iterator[None]:
        """Around making the query (its vector, from the text tower or a photo)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.encode += time.perf_counter() - start


@contextmanager
def timing_search() -> Iterator[SearchTimer]:
    """Around a search route's work: a search that answers is timed by stage (one that
    fails, a 4xx, is not): encode, store (the engine's calls, catalogue.metrics), other."""
    timer = SearchTimer()
    start = time.perf_counter()
    with measuring_store_time() as store:
        yield timer
    total = time.perf_counter() - start
    SEARCH_SECONDS.labels("encode").observe(timer.encode)
    SEARCH_SECONDS.labels("store").observe(store[0])
    SEARCH_SECONDS.labels("other").observe(max(0.0, total - timer.encode - store[0]))


def services_metrics(services: Services) -> Iterator[Metric]:
    """What the live services say at this scrape; a part that fails to answer leaves its
    metrics out (and is logged), the rest still come."""
    try:
        stats = services.jobs.queue_stats()
        depth = GaugeMetricFamily("vitrine_queue_items", "Uploads waiting (queued) or being "
                                  "processed (running)", labels=["state"])
        depth.add_metric(["queued"], stats.queued)
        depth.add_metric(["running"], stats.running)
        yield depth
        yield GaugeMetricFamily(
            "vitrine_queue_oldest_age_seconds", "How long the longest-waiting queued upload "
            "has waited (0: none queued)",
            value=time.time() - stats.oldest_queued_at if stats.oldest_queued_at else 0)
    except Exception:
        log.warning("metrics: the job store did not answer", exc_info=True)
    try:
        points, unindexed = services.store.count(), services.store.unindexed()
        yield GaugeMetricFamily("vitrine_store_points", "Products (points) in the live store",
                                value=points)
        yield GaugeMetricFamily("vitrine_store_unindexed_points", "Points not yet in the "
                                "vector index (searched by brute force until they are)",
                                value=unindexed)
    except Exception:
        log.warning("metrics: the store did not answer", exc_info=True)
    info = InfoMetricFamily("vitrine_model", "The model encoding queries and photos")
    info.add_metric([], {"model": services.encoder.model_id, "dim": str(services.encoder.dim)})
    yield info


def start_counting() -> None:
    """Make the domain's metrics now, so the first scrape shows them at zero."""
    domain_metrics.domain()
