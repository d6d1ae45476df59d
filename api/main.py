"""The FastAPI gateway. Importing this module loads no model and opens no store: the
composition root (vitrine.wiring) hands `create_app` a way to build the parts, the
lifespan builds them once, and routes get them through api.deps."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware

from api.cors import allow_origins
from api.errors import install_handlers
from api.limits import EarlyRefusal, form_limit_handler
from api.live import LiveServices
from api.metrics import start_counting
from api.observe import Observe, telemetry_config
from api.ratelimit import RateLimit, build_limits
from api.routes import (
    admin,
    classify,
    health,
    imports,
    media,
    metrics,
    models,
    moderation,
    pages,
    products,
    recommend,
    search,
)
from api.settings import ApiSettings
from catalogue.lifecycle import Lifecycle
from catalogue.services import Services
from embedding.runtime import frozen_heap

log = logging.getLogger("vitrine")


def create_app(settings: ApiSettings, start: Callable[[], Services],
               owns_services: bool = True,
               lifecycle: Callable[[LiveServices], Lifecycle] | None = None) -> FastAPI:
    """The gateway. `start` builds (or hands over) the parts; the lifespan calls it once,
    starts their dispatch, and closes them at shutdown when `owns_services` (or when a
    reindex replaced them: then they are its). `lifecycle` makes what runs a reindex
    for the model routes (vitrine.lifecycle)."""
    if settings.profile == "cluster" and not settings.api_keys:
        raise RuntimeError("the cluster profile needs API keys: set VITRINE_API_KEYS to a JSON "
                           "object of SHA-256 key digests -> role (vitrine hash-key KEY)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = start()
        services.dispatch.start()
        app.state.services = services
        if app.state.lifecycle is not None:
            app.state.lifecycle.serving()
        log.info("Vitrine ready: model %s (%d-d), %d products", services.encoder.model_id,
                 services.encoder.dim, services.store.count())
        try:
            with frozen_heap():
                yield
        finally:
            if app.state.lifecycle is not None:
                app.state.lifecycle.close()
            current, app.state.services = app.state.services, None
            if owns_services or current is not services:
                current.close()
            else:
                current.dispatch.stop()

    app = FastAPI(title="Vitrine", version="1.0",
                  description="Fashion product search: text, image and combined queries "
                              "over a CLIP-family model and Qdrant.",
                  lifespan=lifespan, telemetry=telemetry_config(),
                  form_limits={"max_part_size": settings.max_part_bytes,
                               "max_files": settings.max_files,
                               "max_fields": settings.max_fields})
    app.state.api_settings = settings
    app.state.services = None
    app.state.live = LiveServices(app.state)
    app.state.lifecycle = lifecycle(app.state.live) if lifecycle else None
    app.include_router(health.router)
    app.include_router(products.router)
    app.include_router(search.router)
    app.include_router(recommend.router)
    app.include_router(moderation.router)
    app.include_router(classify.router)
    app.include_router(imports.router)
    app.include_router(models.router)
    app.include_router(media.router)
    app.include_router(admin.router)
    app.include_router(pages.router)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
        start_counting()
    # Rate limits (api.ratelimit) inside the role check: a wrong key is a 401, counted nowhere.
    app.add_middleware(RateLimit, limits=build_limits(settings))
    # Refusals from the headers (role, Content-Length) come before any body byte is read.
    app.add_middleware(EarlyRefusal, max_bytes=settings.max_body_bytes)
    # Pages, scripts and JSON shrink about 3x; Starlette leaves images (already compressed) be.
    # Level 1, nginx's default: a search page shrinks 5.7x instead of 6.7x at level 9
    # (Starlette's), in under half the time: level 9 took a seventh of the event loop's
    # time in a profile of the search bench (BENCHMARKS.md).
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=1)
    # Preflights are answered before any key is asked for; refusals carry CORS headers too.
    allow_origins(app, settings.cors_origins)
    # Outermost: every answer, refusals included, gets a request id and is counted (and is
    # traced by FastAPI itself, around all of them).
    app.add_middleware(Observe, metrics=settings.metrics_enabled)

    install_handlers(app)
    # Starlette answers 400 for a form over its caps: a 413 naming the setting instead.
    app.add_exception_handler(400, form_limit_handler)
    return app
