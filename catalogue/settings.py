"""Settings of the catalogue core (store, media, ingest), from VITRINE_* variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from catalogue.store.index_config import IndexConfig, Quantization


def json_or_comma_list(value: Any) -> Any:
    """A list setting from the environment: a JSON list, or items separated by commas."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [item.strip() for item in text.split(",") if item.strip()]


class CatalogueSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_", extra="ignore")

    data_dir: Path = Path("data")
    """Everything the local profile keeps: shard, originals, job database."""
    backup_dir: Path | None = None
    """Where a running `vitrine serve` writes backups (POST /v1/admin/backup, and `vitrine
    backup` while it holds the data folder); empty: data_dir/backups. Best on another disk."""
    store: Literal["edge", "server"] = "edge"
    qdrant_url: str = "http://localhost:6333"
    """Server backend: http(s)://host:port, ':memory:' or a folder (qdrant-client local mode)."""
    qdrant_api_key: str | None = None
    qdrant_shard_number: int = Field(3, ge=1)
    """Shards of a collection the server backend creates: a multiple of the Qdrant nodes
    (three), since the count is fixed at creation and added nodes take whole shards."""
    qdrant_replication_factor: int = Field(3, ge=1)
    """Copies of each shard on a distributed Qdrant: 3 on three nodes, so one node lost
    leaves two (a majority) of every shard and reads and writes carry on."""
    qdrant_write_consistency_factor: int = Field(2, ge=1)
    """Copies that must apply a write before Qdrant acknowledges it: a majority of
    qdrant_replication_factor, so an acknowledged write outlives any one node."""
    collection: str = "products"
    search_mode: Literal["hybrid", "semantic", "keyword"] = "hybrid"
    """How a query with text searches by default: photo vectors and keywords fused, or one."""
    text_language: str = "english"
    """Keyword search's stemmer and stop words (Snowball: english, german, french...); after
    a change, the next start rewrites the stored keyword vectors (vitrine.wiring)."""
    synonyms: str = ""
    """A shop's synonyms for keyword search: groups of single words, `;` between groups
    ("sneakers trainers; hoodie sweatshirt"), each one word to keyword search (stored and
    searched alike; a change rewrites the stored keyword vectors at the next start). A
    pattern's words (floral, flowers, geblümt, Blumen; and so on) are always a group."""
    fusion: Literal["rrf", "dbsf"] = "dbsf"
    """How hybrid search fuses the two sides: distribution-based score fusion (measured
    best on the demo catalogue: bench/search_quality.py) or reciprocal rank."""
    keyword_weight: float = Field(0.5, ge=0, le=1)
    """The keyword side's weight in reciprocal rank fusion (the photo side has the rest)."""
    hybrid_words_first: bool = True
    """Hybrid mode ranks the products the words find above those only the photos find
    (measured on the demo catalogue: bench/search_quality.py); false: one fused list."""
    hybrid_candidates: int = Field(200, ge=10, le=10_000)
    """Hits each side of a fused search contributes."""
    query_cache_size: int = Field(10_000, ge=0)
    """Query texts whose vectors are kept (least recently used out)."""
    page_cache_size: int = Field(1000, ge=0)
    """Result pages of repeated queries kept while the catalogue is unchanged (embedded
    store only; 0: none)."""
    query_batch_window_ms: float = Field(2.0, ge=0, le=100)
    """How long a query text waits for others to share one text-tower pass."""
    suggest_refresh_seconds: float = Field(60.0, ge=0)
    """How old typeahead's index of titles, brands and categories may grow before a rebuild."""
    on_model_change: Literal["refuse", "reindex"] = "refuse"
    """Starting the local profile with a VITRINE_MODEL other than the live version's:
    refuse (naming `vitrine reindex`), or serve the live version with its own model and
    reindex into the configured one in the background."""
    catalogue_schema: Path | None = None
    """JSON file declaring the shop's attributes (catalogue.attributes); empty: the default."""
    optimize_threshold: int = 10_000
    """Unindexed points after which the embedded store builds its HNSW index in the background."""
    hnsw_ef: int | None = 256
    """Search-time HNSW beam width up to 100k points, growing beyond with hnsw_ef_growth
    (both backends; empty for the engine's default, 100). Measured on 512-d CLIP-like
    vectors: recall@10 0.997 at 100k (unquantised and int8); at 1M int8, 0.980 at 256,
    0.990 at 384, 0.995 at 512, where the engine default gave 0.908 (BENCHMARKS.md)."""
    hnsw_ef_growth: int = Field(128, ge=0)
    """Beam added per tenfold of points beyond 100k (1M: 256 + 128 = 384), so recall holds
    as the catalogue grows; 0 keeps hnsw_ef fixed (catalogue.store.index_config)."""
    quantization: Quantization = "auto"
    """Photo vectors compressed for the graph search, originals kept for rescoring (both
    stores; catalogue.store.index_config): auto (int8 scalar from quantization_threshold
    points up), none, int8, binary, binary-2bit."""
    quantization_threshold: int = Field(100_000, ge=0)
    """Points from which `auto` quantises, decided at each index build."""
    quantization_rescore: bool = True
    """Rescore the candidates found on the quantised vectors with the originals."""
    graph_pool: int = Field(256, ge=0)
    """Candidates of the embedded store's graph over each product's photos' mean that
    are scored by MaxSim over its photos, at least (catalogue.store.index_config)."""
    quantization_oversampling: float = Field(2.0, ge=1.0, le=16.0)
    """Candidates rescored per hit asked for."""
    original_vectors_on_disk: bool = True
    """A quantised index reads its original vectors from disk (the page cache) to rescore;
    false keeps them in memory too."""
    hnsw_m: int = Field(16, ge=4, le=128)
    """Graph links per point of the HNSW index (built at the next index build)."""
    hnsw_ef_construct: int = Field(100, ge=8, le=1000)
    """Beam width while building the HNSW index."""
    hnsw_filter_links: bool = True
    """Extra graph links per value of the catalogue schema's filterable fields."""
    hnsw_acorn: bool = False
    """Filtered searches look past the neighbours a filter excludes (ACORN)."""
    loose_filter_oversampling: float = Field(6.0, ge=0.0, le=64.0)
    """A search by a query vector under a filter keeping more points than the engine links
    per value applies it among this many x limit / its share of the best found without it."""
    optimizer_memory_mb: int = Field(0, ge=0)
    """Private memory the embedded store's index-building process may take; 0: no limit."""
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_decoded_bytes: int = 128 * 1024 * 1024
    """Largest image once decoded (width x height x bytes per pixel, from the header, before
    decoding): a 5 KB one-bit PNG can hold 40 Mpx. 128 MiB is a 32 Mpx RGB PNG; JPEGs are
    decoded scaled down (draft), so far larger JPEG photos pass."""
    decode_budget_bytes: int = 512 * 1024 * 1024
    """Decoded pixels the whole process may hold at once (uploads, photo searches, ingest);
    at least max_decoded_bytes, so any accepted image can decode alone."""
    decode_wait_seconds: float = 2.0
    """How long a request waits for room in the decode budget before a 503."""
    min_image_side: int = 32
    """Smallest accepted width and height of a photo, in pixels."""
    photo_widths: Annotated[list[Annotated[int, Field(ge=16, le=4096)]], NoDecode] = [
        160, 400, 1000]
    """Widths a product photo is served at besides its display copy (`?w=`: thumbnail,
    grid, detail), as a JSON list or comma list; each made once, on first request."""
    ingest_batch_size: int = 32
    ingest_yield_chunk: int = 8
    """Photos encoded between two looks at the shoppers' requests: while one is answered,
    background ingest waits (0: a batch in one forward pass, never waiting)."""
    ingest_yield_max_ms: int = 250
    """Longest a chunk of background ingest waits for shoppers' requests to finish."""
    ingest_read_ahead: bool | None = None
    """Claim, read and decode the next batch on CPU threads while this one is encoded
    (catalogue.ahead). Default: on where the model runs on an accelerator; on the CPU
    decoding would take the cores the model needs."""
    max_attempts: int = 3
    """Times an upload is tried before it ends failed instead of looping."""
    jobs_url: str = ""
    """Job store: empty for SQLite under data_dir; postgresql://... for the cluster profile."""
    media_url: str = ""
    """Uploaded originals: empty for data_dir/media (a shared volume in a cluster), or
    s3://bucket/prefix for an S3-compatible store (the `s3` extra)."""
    s3_endpoint_url: str | None = None
    """S3-compatible endpoint (MinIO, Ceph...); empty for AWS. Credentials: boto3's usual chain."""
    import_max_bytes: int = 4 * 1024**3
    """Bytes an uploaded archive may unpack to, counted as written (not as the zip declares)."""
    import_max_files: int = 100_000
    """Entries an uploaded archive may hold (the full Kaggle set has about 44,000 images)."""
    import_min_free_bytes: int = 1024**3
    """Free space an import leaves on the data folder's disk; checked before and while unpacking."""
    import_max_concurrent: int = 1
    """Imports at once per API key (per client without keys), counted by each API process."""
    import_max_field_chars: int = 128 * 1024
    """Longest field and line of a styles.csv or .jsonl, in characters (csv's own default);
    a longer one is that line's error, and the rest of the file is read."""
    fetch_connect_timeout: float = 5.0
    """Seconds to connect to a shop's server when fetching a product photo given as a URL."""
    fetch_read_timeout: float = 15.0
    """Seconds a photo's server may stay silent; one URL's fetch, retries and redirects
    included, ends after fetch_connect_timeout + 3 x fetch_read_timeout (50 s by default)."""
    fetch_max_redirects: int = 5
    """Redirects followed per photo URL, each hop checked by the address guard."""
    fetch_retries: int = 2
    """Retries of a photo URL after a timeout, a connection error, a 5xx or a 429."""
    fetch_backoff: float = 0.5
    """Seconds before the first retry, doubled for each one after (plus a little jitter)."""
    fetch_allow_private: bool = False
    """Fetch from hosts that resolve to private, loopback, link-local or other non-public
    addresses. Off, so a feed cannot make the workers reach internal services; tests on
    127.0.0.1 turn it on."""
    fetch_user_agent: str = "Vitrine/0.1 (+product photo fetcher)"
    """User-Agent header sent when fetching photos."""
    fetch_concurrency: int = 8
    """Photo URLs one ingest batch fetches at once (threads of one worker process, sharing
    its connections); the rest of the batch waits for a free slot."""

    @field_validator("photo_widths", mode="before")
    @classmethod
    def parse_widths(cls, value: Any) -> Any:
        return json_or_comma_list(value)

    @field_validator("photo_widths")
    @classmethod
    def sort_widths(cls, widths: list[int]) -> list[int]:
        return sorted(set(widths))

    @model_validator(mode="after")
    def budget_fits_one_image(self) -> CatalogueSettings:
        if self.decode_budget_bytes < self.max_decoded_bytes:
            raise ValueError(f"VITRINE_DECODE_BUDGET_BYTES ({self.decode_budget_bytes}) must be "
                             f"at least VITRINE_MAX_DECODED_BYTES ({self.max_decoded_bytes})")
        return self

    @model_validator(mode="after")
    def writes_fit_the_replicas(self) -> CatalogueSettings:
        if self.qdrant_write_consistency_factor > self.qdrant_replication_factor:
            raise ValueError(
                f"VITRINE_QDRANT_WRITE_CONSISTENCY_FACTOR ({self.qdrant_write_consistency_factor})"
                " must be at most VITRINE_QDRANT_REPLICATION_FACTOR "
                f"({self.qdrant_replication_factor}): no write could be acknowledged")
        return self

    @property
    def index_config(self) -> IndexConfig:
        return IndexConfig(
            quantization=self.quantization, quantization_threshold=self.quantization_threshold,
            rescore=self.quantization_rescore, oversampling=self.quantization_oversampling,
            graph_pool=self.graph_pool,
            originals_on_disk=self.original_vectors_on_disk, hnsw_m=self.hnsw_m,
            hnsw_ef_construct=self.hnsw_ef_construct, hnsw_ef_growth=self.hnsw_ef_growth,
            filter_links=self.hnsw_filter_links,
            acorn=self.hnsw_acorn, loose_oversampling=self.loose_filter_oversampling,
            optimizer_memory_mb=self.optimizer_memory_mb)

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def backups_dir(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"

    @property
    def shard_dir(self) -> Path:
        return self.data_dir / "qdrant"

    @property
    def jobs_db(self) -> Path:
        return self.data_dir / "jobs.sqlite3"
