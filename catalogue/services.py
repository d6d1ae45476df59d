"""The assembled domain: the parts a process works with, built once by `vitrine.wiring`.

This module only names them; how each is chosen from settings (which store,
which media backend, which dispatch) is the composition root's business.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalogue.datalock import DataLock
from catalogue.dispatch import Dispatch
from catalogue.ingest import Ingest
from catalogue.jobs import JobStore
from catalogue.media import MediaStore
from catalogue.moderation import Moderator
from catalogue.products import ProductRepository
from catalogue.search import Search
from catalogue.settings import CatalogueSettings
from catalogue.store.base import VectorStore
from catalogue.suggest import Suggester
from catalogue.tagging import Tagger
from embedding.encoder import Encoder


@dataclass
class Services:
    settings: CatalogueSettings
    encoder: Encoder
    store: VectorStore
    media: MediaStore
    jobs: JobStore
    products: ProductRepository
    search: Search
    moderation: Moderator
    tagger: Tagger
    ingest: Ingest
    dispatch: Dispatch
    suggester: Suggester
    data_lock: DataLock | None = None  # the local data folder, held while these are open

    def close(self) -> None:
        self.dispatch.stop()
        self.search.close()
        self.store.close()
        self.jobs.close()
        self.moderation.close()
        if self.data_lock:
            self.data_lock.release()
