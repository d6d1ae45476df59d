"""Typed dependencies: the parts live on app.state.services, built once in the lifespan
(and replaced in place by a reindex: api.live counts the requests using each)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request

from api.errors import ApiProblem
from api.live import LiveServices
from api.settings import ApiSettings
from catalogue.dispatch import Dispatch
from catalogue.ingest import Ingest
from catalogue.jobs import JobStore
from catalogue.lifecycle import Lifecycle
from catalogue.media import MediaStore
from catalogue.moderation import Moderator
from catalogue.products import ProductRepository
from catalogue.search import Search
from catalogue.services import Services
from catalogue.settings import CatalogueSettings
from catalogue.store.base import VectorStore
from catalogue.suggest import Suggester
from embedding.encoder import Encoder


async def get_services(request: Request) -> AsyncIterator[Services]:
    """The services of the live version, held for the request (async: no thread hop)."""
    services: Services | None = request.app.state.services
    if services is None:  # between start and the end of the lifespan's start-up
        raise ApiProblem(503, "starting", code="starting", headers={"Retry-After": "5"})
    live: LiveServices = request.app.state.live
    live.use(services)
    try:
        yield services
    finally:
        live.done(services)


def hold_for_writes(request: Request) -> Iterator[None]:
    """For routes that write to the store directly: wait while a reindex switches versions
    (listed before the parts, so they come from the new services)."""
    live: LiveServices = request.app.state.live
    with live.writing():
        yield


WRITES = Depends(hold_for_writes)


async def get_lifecycle(request: Request) -> Lifecycle:
    lifecycle: Lifecycle | None = request.app.state.lifecycle
    if lifecycle is None:
        raise ApiProblem(503, "this process does not manage model versions",
                         code="unavailable")
    return lifecycle


async def get_api_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.api_settings
    return settings


def part(name: str) -> Callable[[Services], object]:
    """A dependency that hands a route one part of the services, by attribute name (checked
    here, at import, so a wrong name fails every test rather than one request). Cheap
    dependencies like this one are `async def`: FastAPI runs a plain `def` one in its
    thread pool, a hop that cost more than the work (BENCHMARKS.md)."""
    if name not in Services.__dataclass_fields__:
        raise AttributeError(f"Services has no part {name!r}")

    async def get_part(services: Annotated[Services, Depends(get_services)]) -> object:
        return getattr(services, name)

    get_part.__name__ = f"get_{name}"
    return get_part


ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
SettingsDep = Annotated[CatalogueSettings, Depends(part("settings"))]
EncoderDep = Annotated[Encoder, Depends(part("encoder"))]
StoreDep = Annotated[VectorStore, Depends(part("store"))]
MediaDep = Annotated[MediaStore, Depends(part("media"))]
JobsDep = Annotated[JobStore, Depends(part("jobs"))]
ProductsDep = Annotated[ProductRepository, Depends(part("products"))]
SearchDep = Annotated[Search, Depends(part("search"))]
IngestDep = Annotated[Ingest, Depends(part("ingest"))]
DispatchDep = Annotated[Dispatch, Depends(part("dispatch"))]
ModerationDep = Annotated[Moderator, Depends(part("moderation"))]
SuggesterDep = Annotated[Suggester, Depends(part("suggester"))]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
