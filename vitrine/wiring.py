"""Wiring: build the heavy parts once, from settings, for the API or a worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from catalogue.ingest import Ingest
from catalogue.jobs import JobStore
from catalogue.media import MediaStore, open_media
from catalogue.moderation import ModerationSettings, Moderator
from catalogue.search import Search
from catalogue.settings import CatalogueSettings
from catalogue.store.base import VectorStore
from catalogue.tagging import Tagger, TaggingSettings
from embedding.encoder import Encoder
from embedding.settings import EmbeddingSettings


def open_store(settings: CatalogueSettings, dim: int) -> VectorStore:
    if settings.store == "edge":
        from catalogue.store.edge import EdgeStore

        return EdgeStore(settings.shard_dir, dim, settings.optimize_threshold,
                         hnsw_ef=settings.hnsw_ef)
    from catalogue.store.server import ServerStore

    return ServerStore.connect(settings.qdrant_url, settings.collection, dim,
                               settings.qdrant_api_key, hnsw_ef=settings.hnsw_ef)


@dataclass
class Services:
    settings: CatalogueSettings
    encoder: Encoder
    store: VectorStore
    media: MediaStore
    jobs: JobStore
    ingest: Ingest = field(init=False)
    search: Search = field(init=False)
    moderation: Moderator = field(init=False)
    tagger: Tagger = field(init=False)

    def __post_init__(self):
        moderation, tagging = ModerationSettings(), TaggingSettings()
        # Decisions live with the job state: PostgreSQL in a cluster, a file under data_dir.
        self.moderation = Moderator.build(moderation, self.settings.data_dir, self.encoder,
                                          self.settings.jobs_url or None)
        self.tagger = Tagger(tagging, self.encoder, self.store)
        # Moderation first: a refused image needs no tags.
        enrichers = [e for e, on in ((self.moderation, moderation.enabled),
                                     (self.tagger, tagging.enabled)) if on]
        self.ingest = Ingest(self.settings, self.encoder, self.store, self.media, self.jobs,
                             enrichers)
        self.search = Search(self.encoder, self.store)

    @classmethod
    def build(cls, settings: CatalogueSettings | None = None,
              embedding: EmbeddingSettings | None = None,
              encoder: Encoder | None = None) -> Services:
        settings = settings or CatalogueSettings()
        encoder = encoder or Encoder(embedding or EmbeddingSettings())
        store = open_store(settings, encoder.dim)
        return cls(settings, encoder, store, open_media(settings),
                   JobStore(settings.jobs_url or settings.jobs_db))

    def close(self) -> None:
        self.store.close()
        self.jobs.close()
        self.moderation.close()
