"""`GET /metrics`: Prometheus' scrape of this API process (what it holds: api.metrics)."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import Metric

from api.auth import PUBLIC
from api.metrics import services_metrics
from catalogue.services import Services


class Scrape:
    """What one scrape reads: the process's registry and the live services (swapped by a
    reindex, so looked up each time)."""

    def __init__(self, request: Request):
        self.services: Services | None = request.app.state.services

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
        if self.services is not None:
            yield from services_metrics(self.services)


router = APIRouter(tags=["health"])


@router.get("/metrics", dependencies=[PUBLIC], response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}},
                             "description": "Prometheus text format"}})
def read_metrics(request: Request) -> Response:
    """Metrics in Prometheus' text format (off with VITRINE_METRICS_ENABLED=false)."""
    return Response(generate_latest(Scrape(request)),
                    media_type=CONTENT_TYPE_LATEST)
