"""The composition root: builds every part from settings, once, for the process at hand.

Each entry point starts here: the API (`uvicorn --factory vitrine.wiring:create_api`,
or `vitrine serve`), a Celery worker (`celery -A vitrine.worker worker`) and
the CLI's commands. Below this package nothing knows how the process was
started: the API gets a `Services` through its lifespan, the worker tasks get
one through `workers.tasks.ServicesTask.build`, and the profile decides only
which parts fill which role (embedded or server store, folder or S3 media, a
local runner or Celery for dispatch).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fastapi import FastAPI

from api.main import create_app
from api.settings import ApiSettings
from catalogue.attributes import CatalogueSchema
from catalogue.datalock import DataLock
from catalogue.dispatch import Dispatch
from catalogue.foreground import Foreground
from catalogue.ingest import Ingest
from catalogue.jobs import JobStore
from catalogue.keywords import Keywords
from catalogue.logs import configure_logging
from catalogue.media import FolderMediaStore, MediaStore
from catalogue.moderation import ModerationSettings, Moderator
from catalogue.products import ProductRepository
from catalogue.runner import LocalRunner
from catalogue.search import Search
from catalogue.services import Services
from catalogue.settings import CatalogueSettings
from catalogue.store.base import VectorStore
from catalogue.suggest import Suggester
from catalogue.tagging import Tagger, TaggingSettings
from catalogue.tracing import configure_tracing
from catalogue.versions import ModelMismatch, ModelVersion, Versions, choose_live
from embedding.encoder import Encoder
from embedding.runtime import configure_threads
from embedding.settings import EmbeddingSettings

log = logging.getLogger(__name__)


def open_store(settings: CatalogueSettings, dim: int, schema: CatalogueSchema | None = None,
               version: ModelVersion | None = None) -> VectorStore:
    """The store of a model version (its own shard folder or collection; without one, the
    settings' own), with payload indexes for the catalogue schema's attributes (the one
    in VITRINE_CATALOGUE_SCHEMA unless given)."""
    indexes = [(path, kind.value) for path, kind in
               (schema or CatalogueSchema.load(settings.catalogue_schema)).indexes()]
    location = version and (version.location or version.id)
    if settings.store == "edge":
        from catalogue.store.edge import EdgeStore

        folder = settings.shard_dir / location if location else settings.shard_dir
        return EdgeStore(folder, dim, settings.optimize_threshold, hnsw_ef=settings.hnsw_ef,
                         indexes=indexes, index=settings.index_config)
    from catalogue.store.server import Replication, ServerStore

    collection = (version.location or f"{settings.collection}-{version.id}") if version \
        else settings.collection
    replication = Replication(settings.qdrant_shard_number, settings.qdrant_replication_factor,
                              settings.qdrant_write_consistency_factor)
    return ServerStore.connect(settings.qdrant_url, collection, dim, settings.qdrant_api_key,
                               hnsw_ef=settings.hnsw_ef, indexes=indexes,
                               replication=replication, index=settings.index_config)


def legacy_version(settings: CatalogueSettings, configured: ModelVersion
                   ) -> ModelVersion | None:
    """A store from before model versions, as a version: the configured model's when its
    points say so (an embedded shard is moved into that version's folder), else one of
    its own, which the configured model must then be reindexed from."""
    if settings.store == "edge":
        from catalogue.store.edge_engine import CURRENT, legacy_model, move_shard

        folder = settings.shard_dir
        if not (folder / CURRENT).exists() and not any(folder.glob("shard-*")):
            return None
        model = legacy_model(folder)
        if model in (None, configured.model):
            move_shard(folder, folder / configured.id)
            return configured
        location = "."
    else:
        from catalogue.store.server import legacy_model as server_legacy_model

        model = server_legacy_model(settings.qdrant_url, settings.collection,
                                    settings.qdrant_api_key)
        if model is None:
            return None
        location = settings.collection
        if model == configured.model:
            return ModelVersion(configured.id, configured.model, configured.dim,
                                configured.preprocess, location=location)
    slug = "".join(c if c.isalnum() else "-" for c in Path(model).name.lower())[:40]
    return ModelVersion(f"legacy-{slug}", model, configured.dim, "?", location=location)


def open_media(settings: CatalogueSettings) -> MediaStore:
    """The originals store the settings name: a folder (shared volume) or s3://bucket/prefix."""
    if settings.media_url.startswith("s3://"):
        from catalogue.media_s3 import S3MediaStore

        return S3MediaStore.from_url(settings.media_url, settings.s3_endpoint_url)
    return FolderMediaStore(settings.media_dir)


def open_jobs(settings: CatalogueSettings) -> JobStore:
    return JobStore(settings.jobs_url or settings.jobs_db)


def choose_dispatch(profile: str, ingest: Ingest, settings: CatalogueSettings) -> Dispatch:
    """Local: a thread of this process. Cluster: Celery tasks on the broker (imported only
    here, so the local profile never loads Celery)."""
    if profile == "cluster":
        from workers.dispatch import CeleryDispatch

        return CeleryDispatch(ingest.jobs)
    return LocalRunner(ingest, settings.max_attempts)


def build_services(settings: CatalogueSettings | None = None,
                   embedding: EmbeddingSettings | None = None,
                   encoder: Encoder | None = None, profile: str | None = None) -> Services:
    """Every part, from settings (or the ones given). The model is loaded here, so a
    wrong VITRINE_MODEL stops the process at start with ModelLoadError; and the process's
    thread settings are made here, once, before any work."""
    configure_threads()
    settings = settings or CatalogueSettings()
    profile = profile or ApiSettings().profile
    # The embedded shard, and the local runner's SQLite job store, are one process's: a
    # second one is told who holds them (DataFolderInUse) before it loads a model.
    local = settings.store == "edge" or (not settings.jobs_url and profile == "local")
    lock = DataLock.acquire(settings.data_dir) if local else None
    try:
        return _build(settings, embedding, encoder, profile, lock)
    except BaseException:
        if lock:
            lock.release()
        raise


def successor(services: Services, encoder: Encoder, store: VectorStore,
              profile: str) -> Services:
    """The parts for a new live version in this process (a reindex's): its model, and the
    store the reindex filled, still open. The data folder's lock passes from `services`,
    which are then closed like any others (their dispatch not yet started)."""
    built = _build(services.settings, None, encoder, profile, services.data_lock, store)
    services.data_lock = None
    return built


def refresh_keywords(versions: Versions, live: ModelVersion,
                     products: ProductRepository) -> int:
    """Keyword vectors written with other word rules or another language (a store from an
    older Vitrine, or VITRINE_TEXT_LANGUAGE changed) are rewritten from the stored products
    before the process serves, and the scheme recorded; how many products were rewritten.
    In a cluster every process starting at once may rewrite: the same words, written twice."""
    recorded, scheme = versions.keyword_scheme(live.id), products.keywords.scheme
    if recorded == scheme:
        return 0
    started = time.perf_counter()
    rewritten = products.rewrite_keywords()
    versions.set_keyword_scheme(live.id, scheme)
    if rewritten:
        log.warning("keyword vectors of %d products rewritten in %.1f s: word rules %r, were %r",
                    rewritten, time.perf_counter() - started, scheme, recorded)
    return rewritten


def _build(settings: CatalogueSettings, embedding: EmbeddingSettings | None,
           encoder: Encoder | None, profile: str, lock: DataLock | None,
           store: VectorStore | None = None) -> Services:
    encoder = (encoder or Encoder(embedding or EmbeddingSettings())).load()
    schema = CatalogueSchema.load(settings.catalogue_schema)
    versions = Versions(settings.jobs_url or settings.jobs_db)
    configured = ModelVersion.of(encoder)
    keywords = Keywords.configured(schema, settings)
    try:
        live = choose_live(versions, configured, legacy_version(settings, configured))
        store = store or open_store(settings, encoder.dim, schema, live)
        products = ProductRepository(store, keywords)
        refresh_keywords(versions, live, products)
    finally:
        versions.close()
    store.publish(settings.collection)  # on a server, the alias names the live collection
    jobs = open_jobs(settings)
    media = open_media(settings)
    moderation_settings, tagging_settings = ModerationSettings(), TaggingSettings()
    # Decisions live with the job state: PostgreSQL in a cluster, a file under data_dir.
    moderation = Moderator.build(moderation_settings, settings.data_dir, encoder,
                                 settings.jobs_url or None)
    tagger = Tagger(tagging_settings, encoder, store)
    # Moderation first: a refused image needs no tags.
    enrichers = [e for e, on in ((moderation, moderation_settings.enabled),
                                 (tagger, tagging_settings.enabled)) if on]
    foreground = Foreground()  # shoppers' requests, which this process's ingest yields to
    ingest = Ingest(settings, encoder, store, media, jobs, enrichers,
                    foreground=foreground if profile == "local" else None, keywords=keywords)
    dispatch = choose_dispatch(profile, ingest, settings)
    suggester = Suggester(store, settings.suggest_refresh_seconds)
    return Services(settings=settings, encoder=encoder, store=store, media=media, jobs=jobs,
                    products=products,
                    search=Search(encoder, store, products, schema, foreground, settings,
                                  spelling=suggester.spell),
                    moderation=moderation, tagger=tagger, ingest=ingest, dispatch=dispatch,
                    suggester=suggester,
                    data_lock=lock)


UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def create_api(settings: ApiSettings | None = None, services: Services | None = None,
               owns_services: bool = True) -> FastAPI:
    """The API app; the parts are built in its lifespan (importing loads nothing), or
    `services` are used as given (tests, `vitrine serve` after an import)."""
    from vitrine.lifecycle import Reindexing

    settings = settings or ApiSettings()
    profile = settings.profile
    if profile == "cluster" and settings.rate_limit_redis_url is None:
        from workers.settings import WorkerSettings  # the cluster's Redis: the broker's

        settings = settings.model_copy(
            update={"rate_limit_redis_url": WorkerSettings().broker_url})
    if services is None:  # a server process (uvicorn --factory): its log lines, uvicorn's too
        configure_logging(loggers=UVICORN_LOGGERS)
        configure_tracing()  # VITRINE_TRACING_ENABLED, OTEL_EXPORTER_OTLP_ENDPOINT

    reindexing: list[Reindexing] = []

    def lifecycle(live) -> Reindexing:
        reindexing.append(Reindexing(live, profile))
        return reindexing[0]

    def start() -> Services:
        if services is not None:
            return services
        try:
            return build_services(profile=profile)
        except ModelMismatch as mismatch:
            if profile != "local" or CatalogueSettings().on_model_change != "reindex":
                raise
            # Serve the live version with its own model, and reindex into the configured
            # one in the background (swapped in when complete and checked).
            log.warning("%s; VITRINE_ON_MODEL_CHANGE=reindex: serving the live model and "
                        "reindexing", mismatch)
            reindexing[0].pending = mismatch.configured.model
            return build_services(encoder=Encoder(model=mismatch.live.model), profile=profile)

    return create_app(settings, start, owns_services=owns_services, lifecycle=lifecycle)
