"""Snapshots of an embedded shard, in the layout the engine restores.

qdrant-edge-py 0.9 restores shard snapshots (`EdgeShard.unpack_snapshot`: a tar of a
shard's `edge_config.json`, `segments/` and `wal/`, whose segments it restores in place)
and describes a shard's segments (`snapshot_manifest`: each segment's id, version and
file versions), but it does not create snapshots: a Qdrant server makes them. So the
archive is written here, as a tar of the shard's folder taken once the shard is flushed
and while no write can reach it (`EdgeStore.snapshot` holds the store's write lock); it is
restored by the engine's own `unpack_snapshot`, and the restored shard's manifest and
point count must equal those recorded when the archive was written, so an archive the
engine would read differently is refused rather than served.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import qdrant_edge as qe


def write_snapshot(shard: qe.EdgeShard, folder: Path, archive: Path) -> tuple[dict[str, Any], int]:
    """Flush `shard` (open on `folder`) and write `folder` to the tar `archive`; returns the
    engine's snapshot manifest and the number of points the archive holds. The caller keeps
    writes away until this returns."""
    shard.flush()
    manifest = _plain(shard.snapshot_manifest())
    count = shard.count(qe.CountRequest(exact=True))
    with tarfile.open(archive, "w") as tar:
        tar.add(folder, arcname=".")
    return manifest, count


def restore_snapshot(archive: Path, folder: Path) -> tuple[dict[str, Any], int]:
    """Unpack `archive` into `folder` (which must hold no shard) through the engine, open
    the result, and return its snapshot manifest and point count."""
    qe.EdgeShard.unpack_snapshot(str(archive), str(folder))
    shard = qe.EdgeShard.load(str(folder))
    try:
        return _plain(shard.snapshot_manifest()), shard.count(qe.CountRequest(exact=True))
    finally:
        shard.close()


def _plain(manifest: Any) -> dict[str, Any]:
    """The manifest as JSON reads it back, so a recorded one compares equal to a fresh one."""
    plain: dict[str, Any] = json.loads(json.dumps(manifest))
    return plain
