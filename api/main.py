"""The FastAPI gateway. Importing this module loads no model and opens no store:
the lifespan does, once, and routes get them through api.deps."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse

from api.limits import BodySizeLimit
from api.routes import classify, health, imports, media, moderation, pages, products, search
from api.settings import ApiSettings
from catalogue.images import ImageError
from catalogue.ingest import StoreUnavailable
from catalogue.search import UnknownProduct
from workers.dispatch import BrokerUnavailable

log = logging.getLogger("vitrine")


def local_dispatch(services):
    """Local profile: ingest runs in a thread of this process."""
    from catalogue.runner import LocalRunner

    runner = LocalRunner(services.ingest, services.settings.max_attempts)
    runner.start()
    return runner, (lambda job_id: runner.notify())


@asynccontextmanager
async def lifespan(app: FastAPI):
    from vitrine.wiring import Services

    if getattr(app.state, "services", None) is None:  # tests may inject their own
        app.state.services = Services.build()
    services = app.state.services
    if app.state.api_settings.profile == "cluster":  # uploads go to Celery workers
        from workers.dispatch import cluster_dispatch

        runner, app.state.dispatch = cluster_dispatch(services)
    else:
        runner, app.state.dispatch = local_dispatch(services)
    log.info("Vitrine ready: model %s (%d-d), %d products", services.encoder.model_id,
             services.encoder.dim, services.store.count())
    try:
        yield
    finally:
        runner.stop()
        if getattr(app.state, "owns_services", True):
            services.close()


def create_app(settings: ApiSettings | None = None, services=None) -> FastAPI:
    settings = settings or ApiSettings()
    if settings.profile == "cluster" and not settings.api_keys:
        raise RuntimeError("the cluster profile needs API keys: set VITRINE_API_KEYS to a JSON "
                           "object of SHA-256 key digests -> role (vitrine hash-key KEY)")
    app = FastAPI(title="Vitrine", version="1.0",
                  description="Fashion product search: text, image and combined queries "
                              "over a CLIP-family model and Qdrant.",
                  lifespan=lifespan)
    app.state.api_settings = settings
    app.state.services = services
    app.state.owns_services = services is None
    app.include_router(health.router)
    app.include_router(products.router)
    app.include_router(search.router)
    app.include_router(moderation.router)
    app.include_router(classify.router)
    app.include_router(imports.router)
    app.include_router(media.router)
    app.include_router(pages.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Pages, scripts and JSON shrink about 3x; Starlette leaves images (already compressed) be.
    app.add_middleware(GZipMiddleware, minimum_size=1024)

    @app.exception_handler(UnknownProduct)
    async def unknown_product(request: Request, exc: UnknownProduct):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ImageError)
    async def bad_image(request: Request, exc: ImageError):
        return JSONResponse({"detail": f"bad image: {exc}"}, status_code=422)

    @app.exception_handler(BrokerUnavailable)
    async def broker_down(request: Request, exc: BrokerUnavailable):
        return JSONResponse({"detail": f"{exc}; nothing was accepted, try again"},
                            status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: StoreUnavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503)

    return app
