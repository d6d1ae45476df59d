"""Embedded backend: Qdrant's engine in-process through qdrant-edge-py.

The shard lives in a folder under the data directory and survives restarts;
only one process may open it. New points are searched by brute force until
the optimizer builds the HNSW index. The engine's `optimize()` blocks every
search in the process while it runs (minutes at 100k points), so Vitrine
optimizes a copy of the shard in a child process and swaps it in, replaying
the writes that arrived meanwhile: search keeps answering throughout. A shard's files
are read once whenever it is opened, the indexed copy before it takes over
(catalogue.store.edge_warm), so that its first searches do not wait on the disk.

An optimize copies the whole shard, so it starts only once `optimize_threshold`
points arrived since the last one left: the engine leaves segments under its
indexing threshold unindexed, and counting those would rebuild after every batch.
The child (catalogue.store.edge_build) is tied to this one and builds with the
configuration catalogue.store.edge_config makes of the store's `IndexConfig`:
quantised from a size up, HNSW parameters chosen by measurement (BENCHMARKS.md).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from catalogue.store.base import (
    GRAPH_VECTOR,
    SYSTEM_INDEXES,
    TEXT_VECTOR,
    Hit,
    StoredPoint,
    VectorStore,
)
from catalogue.store.edge_build import index_copy
from catalogue.store.edge_config import (
    field_index,
    new_shard,
    search_params,
)
from catalogue.store.edge_engine import (
    CURRENT,
    INDEX_TYPES,
    PHOTOS,
    copy_points,
    engine_filter,
    photo_rows,
    point_vectors,
    scoring,
    sparse_vector,
    text_of,
    unindexed_count,
)
from catalogue.store.edge_snapshot import restore_snapshot, write_snapshot
from catalogue.store.edge_warm import warm
from catalogue.store.filters import Filter
from catalogue.store.index_config import BeamWidth, IndexConfig, linked_fields, payload_indexes
from catalogue.store.query import Sparse, Stage, plan

log = logging.getLogger(__name__)

READ_GRACE_SECONDS = 5.0


def write_marker(folder: Path, name: str, value: int) -> None:
    """A number in the file `name` under `folder`, replaced atomically: a crash leaves
    the old or the new."""
    tmp = folder / f"{name}.tmp"
    tmp.write_text(str(value))
    tmp.replace(folder / name)


class EdgeStore(VectorStore):
    """A Qdrant Edge shard under `folder`, generation-numbered for copy-and-swap."""

    def __init__(self, folder: Path, dim: int, optimize_threshold: int = 10_000,
                 indexing_threshold_kb: int | None = None, hnsw_ef: int | None = None,
                 full_scan_threshold_kb: int | None = None,
                 indexes: Sequence[tuple[str, str]] = (), index: IndexConfig | None = None):
        """`optimize_threshold`: unindexed points that make a background optimize worth it;
        `indexing_threshold_kb`: segments smaller than this get no index (engine default);
        `full_scan_threshold_kb`: indexed segments smaller than this are still searched
        exactly (engine default: 10 MB of vectors). Both thresholds apply when the shard
        is created; an existing shard keeps its own. `indexes`: (payload path, type) of the
        shop's attributes, kept in step on every open (payloads re-indexed, never vectors).
        `index`: quantisation, rescoring and HNSW build parameters (the defaults without)."""
        self.folder = Path(folder)
        self.indexing_threshold_kb = indexing_threshold_kb
        self.full_scan_threshold_kb = full_scan_threshold_kb
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dim, self.hnsw_ef = dim, hnsw_ef
        self.optimize_threshold = optimize_threshold
        self.index = index or IndexConfig()
        self.beam = BeamWidth(self.count)
        # Writes, the copy and the swap take this lock; reads take none and use whichever
        # shard is current, so search keeps answering while an optimization runs.
        self._lock = threading.RLock()
        self._pending: list[qe.UpdateOperation] | None = None  # writes during an optimize
        self._optimizer: threading.Thread | None = None
        # Unindexed points the last optimize left (the engine judged them too few to
        # index); only points beyond these count towards the next one.
        self._left_unindexed = 0
        self._copied_points = 0  # points in the copy being indexed: its build configuration
        self._writes = 0  # with the generation, the store's version (page caches)
        self._generation = self._current_generation()
        self._remove_stale_generations()
        self.indexes = dict(SYSTEM_INDEXES) | dict(indexes)
        self._linked = linked_fields(self.index, indexes)
        self._shard = self._open(self._path(self._generation))
        if self._lacks("vectors", GRAPH_VECTOR):
            self._migrate()
        if self._lacks("sparse_vectors", TEXT_VECTOR):
            self._apply(qe.UpdateOperation.create_sparse_vector(TEXT_VECTOR, qe.Modifier.Idf))
        self._sync_indexes()
        marker = self.folder / PHOTOS
        # Unknown (a restored shard): scored as if products had several.
        self._photos = int(marker.read_text()) if marker.exists() else (
            0 if self.count() == 0 else None)

    # -- generations -----------------------------------------------------------------
    def _path(self, generation: int) -> Path:
        return self.folder / f"shard-{generation}"

    def _current_generation(self) -> int:
        marker = self.folder / CURRENT
        return int(marker.read_text()) if marker.exists() else 0

    def _set_current(self, generation: int) -> None:
        self._write(CURRENT, generation)

    def _write(self, name: str, value: int) -> None:
        write_marker(self.folder, name, value)

    def _remove_stale_generations(self) -> None:
        for path in self.folder.glob("shard-*"):
            if path != self._path(self._generation):
                shutil.rmtree(path, ignore_errors=True)

    def _open(self, path: Path) -> qe.EdgeShard:
        if (path / "edge_config.json").exists() or any(path.glob("segments*")):
            shard = qe.EdgeShard.load(str(path))
            warm(path)
            return shard
        return qe.EdgeShard.create(str(path), new_shard(
            self.dim, self.index, self.indexing_threshold_kb, self.full_scan_threshold_kb))

    def _lacks(self, kind: str, name: str) -> bool:
        """Whether the current shard was made without the vector `name` of `kind`
        ("vectors" or "sparse_vectors"): an earlier layout. A new shard lacks none."""
        config = self._path(self._generation) / "edge_config.json"
        return config.exists() and name not in json.loads(config.read_text()).get(kind, {})

    def _sync_indexes(self) -> None:
        """Payload indexes as declared, with graph links per value where chosen: missing or
        different ones built, undeclared ones dropped."""
        have = payload_indexes(self._shard.info().payload_schema)
        for name, kind in self.indexes.items():
            links = name in self._linked
            if have.get(name) != (INDEX_TYPES[kind], links):
                self._apply(qe.UpdateOperation.create_field_index(name, field_index(kind, links)))
        for name in set(have) - set(self.indexes):
            self._apply(qe.UpdateOperation.delete_field_index(name))

    def _migrate(self) -> None:
        """A shard of an earlier layout copied into this one (photo rows, and the graph over
        their mean) as a new generation, then swapped in: one unnamed vector a point (one
        photo a product), or photo rows with a graph of their own. Payloads and words are
        kept; the copy is indexed by the next optimize, searched exactly until then."""
        log.warning("converting %s to the layout with a graph over each product's photos' "
                    "mean (reading every point once)", self.folder)
        old, target = self._shard, self._path(self._generation + 1)
        shutil.rmtree(target, ignore_errors=True)
        fresh = self._open(target)
        most = copy_points(old, fresh)
        fresh.flush()
        old.close()
        self._write(PHOTOS, most)
        self._shard, self._generation = fresh, self._generation + 1
        self._set_current(self._generation)
        self._remove_stale_generations()

    # -- writes ----------------------------------------------------------------------
    def _apply(self, op: qe.UpdateOperation) -> None:
        with self._lock:
            self._shard.update(op)
            self._writes += 1
            if self._pending is not None:
                self._pending.append(op)

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        if not points:
            return
        rows = [self.rows(p) for p in points]
        most = max(len(r) for r in rows)
        with self._lock:
            if self._photos is not None and most > self._photos:
                self._write(PHOTOS, most)  # before the points: never fewer than they have
                self._photos = most
            self._apply(qe.UpdateOperation.upsert_points(
                [qe.Point(p.id, point_vectors(r, p.text), p.payload)
                 for p, r in zip(points, rows, strict=True)]))

    def set_texts(self, texts: Mapping[str, Sparse]) -> None:
        if texts:
            self._apply(qe.UpdateOperation.update_vectors(
                [qe.PointVectors(id, {TEXT_VECTOR: sparse_vector(t)}) for id, t in texts.items()]))

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        if ids:
            self._apply(qe.UpdateOperation.set_payload(list(ids), payload))

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._apply(qe.UpdateOperation.delete_points(list(ids)))

    # -- reads -----------------------------------------------------------------------
    def _retrieve(self, ids: Sequence[str], with_vectors: bool | list[str]
                  ) -> list[StoredPoint]:
        records = self._shard.retrieve(list(ids), with_payload=True, with_vector=with_vectors)
        by_id = {str(r.id): StoredPoint(str(r.id), r.payload or {}, photo_rows(r.vector),
                                        text_of(r.vector)) for r in records}
        return [by_id[i] for i in ids if i in by_id]

    def count(self, filter: Filter | None = None) -> int:
        return self._shard.count(qe.CountRequest(exact=True, filter=engine_filter(filter)))

    def _nearest(self, query, filter, limit, offset, score_threshold, exact,
                 with_payload=True, loose=None) -> list[Hit]:
        beam = self.beam(self.hnsw_ef, self.index.hnsw_ef_growth)
        whole = exact or self._scanned_whole()
        top = plan(query, offset + limit, score_threshold,
                   None if whole else self.index.pool(offset + limit, beam),
                   graph_alone=not whole and self._photos == 1, loose=loose)
        conditions = engine_filter(filter)
        placed = None if loose else conditions  # a loose filter: in the keep stage alone

        def params(stage: Stage) -> qe.SearchParams:
            return search_params(self.index.for_stage(stage), beam, exact)

        def prefetch(stage: Stage) -> qe.Prefetch:
            return qe.Prefetch(limit=stage.limit, query=scoring(stage, query, conditions),
                               prefetches=[prefetch(s) for s in stage.prefetch] or None,
                               params=params(stage), filter=placed,
                               score_threshold=stage.threshold)

        points = self._shard.query(qe.QueryRequest(
            limit=limit, offset=offset or None, query=scoring(top, query),
            prefetches=[prefetch(s) for s in top.prefetch] or None, filter=placed,
            with_payload=with_payload, score_threshold=top.threshold, params=params(top)))
        return [Hit(str(p.id), float(p.score), p.payload or {}) for p in points]

    def _estimate(self, filter: Filter) -> int:
        return self._shard.count(qe.CountRequest(exact=False, filter=engine_filter(filter)))

    def _ordered(self, key, descending, filter, limit, start_from) -> list[Hit]:
        direction = qe.Direction.Desc if descending else qe.Direction.Asc
        points = self._shard.query(qe.QueryRequest(
            limit=limit, query=qe.OrderBy(key, direction, start_from), filter=engine_filter(filter),
            with_payload=True))
        return [Hit(str(p.id), float(p.order_value or 0), p.payload or {}) for p in points]

    def scroll(self, filter=None, limit=100, offset=None):
        records, next_id = self._shard.scroll(qe.ScrollRequest(
            offset=offset, limit=limit, filter=engine_filter(filter), with_payload=True))
        points = [StoredPoint(str(r.id), r.payload or {}) for r in records]
        return points, (str(next_id) if next_id is not None else None)

    def facet(self, key, filter=None, limit=50) -> dict[str, int]:
        response = self._shard.facet(qe.FacetRequest(key, limit=limit, exact=True,
                                                     filter=engine_filter(filter)))
        return {str(h.value): int(h.count) for h in response.hits}

    # -- indexing ----------------------------------------------------------------------
    def unindexed(self) -> int:
        """Points whose photo vectors are not in the HNSW index yet. The engine counts indexed
        vectors of every name, and a sparse vector counts as indexed at once: those of the
        points that have words are taken off."""
        return unindexed_count(self._shard)

    @property
    def optimizing(self) -> bool:
        """From the copy to the swap: writes meanwhile are kept for replay."""
        return self._pending is not None

    def optimize(self) -> None:
        """Build the HNSW index now, blocking the caller but not searches."""
        with self._lock:
            if self._pending is not None:
                raise RuntimeError("an optimization is already running")
            self._shard.flush()
            target = self._path(self._generation + 1)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(self._path(self._generation), target)
            self._copied_points = self._shard.info().points_count
            self._pending = []
        try:
            self._index_copy(target)
            fresh = self._open(target)  # warmed before it takes over (edge_warm)
        except BaseException:
            with self._lock:
                self._pending = None
            shutil.rmtree(target, ignore_errors=True)
            raise
        with self._lock:
            self._left_unindexed = unindexed_count(fresh)
            for op in self._pending:
                fresh.update(op)
            fresh.flush()
            old, old_path = self._shard, self._path(self._generation)
            self._shard, self._generation, self._pending = fresh, self._generation + 1, None
            self._set_current(self._generation)
        # Reads still running on the old shard finish before it is closed and removed.
        retire = threading.Timer(READ_GRACE_SECONDS, self._retire, (old, old_path))
        retire.daemon = True
        retire.start()

    def _index_copy(self, path: Path) -> None:
        """Index the shard copy at `path` in a child process, so this one keeps searching."""
        index_copy(path, self.dim, self.index, self._copied_points)

    @staticmethod
    def _retire(shard: qe.EdgeShard, path: Path) -> None:
        shard.close()
        shutil.rmtree(path, ignore_errors=True)

    def optimize_in_background(self, force: bool = False) -> bool:
        """Start `optimize()` in a thread once `optimize_threshold` points await indexing
        beyond those the last optimize left unindexed."""
        if self._optimizer and self._optimizer.is_alive():
            return False
        if not force and self.unindexed() - self._left_unindexed < self.optimize_threshold:
            return False

        def run():
            try:
                self.optimize()
            except Exception:
                log.exception("background optimization failed; search stays on brute force")

        self._optimizer = threading.Thread(target=run, name="edge-optimize", daemon=True)
        self._optimizer.start()
        return True

    def wait_for_optimizer(self, timeout: float | None = None) -> None:
        if self._optimizer:
            self._optimizer.join(timeout)

    def version(self) -> tuple[int, int]:
        return self._generation, self._writes

    def snapshot(self, archive: Path) -> tuple[dict[str, Any], int]:
        """The shard as a snapshot archive at `archive` (catalogue.store.edge_snapshot), with
        the engine's manifest and the point count of what it holds. Writes wait meanwhile
        (they would change the files being read); searches go on."""
        with self._lock:
            return write_snapshot(self._shard, self._path(self._generation), archive)

    @property
    def photos(self) -> int | None:
        """The most photos a product brought (never fewer than any has; None: unknown)."""
        return self._photos

    @staticmethod
    def restore(archive: Path, folder: Path, photos: int | None = None
                ) -> tuple[dict[str, Any], int]:
        """A snapshot archive unpacked by the engine as the store at `folder` (which holds
        none), its first generation, with `photos` as the snapshotted store's; returns the
        restored shard's manifest and point count."""
        manifest, count = restore_snapshot(archive, folder / "shard-0")
        if photos is not None:
            write_marker(folder, PHOTOS, photos)
        write_marker(folder, CURRENT, 0)  # last: the shard is whole once it names it
        return manifest, count

    def close(self) -> None:
        self.wait_for_optimizer()
        with self._lock:
            self._shard.flush()
            self._shard.close()
