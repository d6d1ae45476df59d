"""Typed dependencies: the parts live on app.state.services, built once in the lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from api.settings import ApiSettings
from catalogue.dispatch import Dispatch
from catalogue.ingest import Ingest
from catalogue.jobs import JobStore
from catalogue.media import MediaStore
from catalogue.moderation import Moderator
from catalogue.products import ProductRepository
from catalogue.search import Search
from catalogue.services import Services
from catalogue.settings import CatalogueSettings
from catalogue.store.base import VectorStore
from embedding.encoder import Encoder


def get_services(request: Request) -> Services:
    services: Services | None = request.app.state.services
    if services is None:  # between start and the end of the lifespan's start-up
        raise HTTPException(503, "starting", headers={"Retry-After": "5"})
    return services


def get_api_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.api_settings
    return settings


_Services = Annotated[Services, Depends(get_services)]


def get_settings(services: _Services) -> CatalogueSettings:
    return services.settings


def get_encoder(services: _Services) -> Encoder:
    return services.encoder


def get_store(services: _Services) -> VectorStore:
    return services.store


def get_media(services: _Services) -> MediaStore:
    return services.media


def get_jobs(services: _Services) -> JobStore:
    return services.jobs


def get_products(services: _Services) -> ProductRepository:
    return services.products


def get_search(services: _Services) -> Search:
    return services.search


def get_ingest(services: _Services) -> Ingest:
    return services.ingest


def get_dispatch(services: _Services) -> Dispatch:
    return services.dispatch


def get_moderation(services: _Services) -> Moderator:
    return services.moderation


ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
SettingsDep = Annotated[CatalogueSettings, Depends(get_settings)]
EncoderDep = Annotated[Encoder, Depends(get_encoder)]
StoreDep = Annotated[VectorStore, Depends(get_store)]
MediaDep = Annotated[MediaStore, Depends(get_media)]
JobsDep = Annotated[JobStore, Depends(get_jobs)]
ProductsDep = Annotated[ProductRepository, Depends(get_products)]
SearchDep = Annotated[Search, Depends(get_search)]
IngestDep = Annotated[Ingest, Depends(get_ingest)]
DispatchDep = Annotated[Dispatch, Depends(get_dispatch)]
ModerationDep = Annotated[Moderator, Depends(get_moderation)]
