#!/usr/bin/env bash
# Back up a Vitrine cluster (the cluster profile) while it serves and ingests:
#
#   deploy/backup.sh OUT_DIR
#
# Reads the cluster's own settings from the environment (run it where the API runs, e.g.
# `kubectl exec deploy/vitrine-api -- deploy/backup.sh /backups/nightly`, or export them):
#   VITRINE_JOBS_URL       postgresql://... (jobs, items, model versions, moderation decisions)
#   VITRINE_QDRANT_URL     the Qdrant server (QDRANT_NODES: every node's URL, space-separated,
#                          for a distributed Qdrant: a collection snapshot is per node)
#   VITRINE_QDRANT_API_KEY optional
#   VITRINE_COLLECTION     the alias naming the live version's collection (default products)
#   VITRINE_MEDIA_URL      s3://bucket/prefix (synced with the aws CLI; VITRINE_S3_ENDPOINT_URL
#                          for MinIO and the like), or empty: VITRINE_DATA_DIR/media, a volume
#
# Order, as in catalogue/backup.py: the database first (pg_dump reads one snapshot), then
# the live collection (every item done in the dump was upserted before it), then the
# originals (never deleted, so every one the dump or the collection names is there).
# Writes: OUT_DIR/jobs.pgdump, OUT_DIR/qdrant/node-<i>.snapshot, OUT_DIR/media/,
# OUT_DIR/SHA256SUMS and OUT_DIR/manifest.json. Needs curl, pg_dump, psql, sha256sum,
# python3, and the aws CLI for S3. Restore with deploy/restore.sh.
set -euo pipefail

OUT=${1:?usage: deploy/backup.sh OUT_DIR (a new folder)}
: "${VITRINE_JOBS_URL:?VITRINE_JOBS_URL must name the cluster PostgreSQL database}"
QDRANT_URL=${VITRINE_QDRANT_URL:-http://localhost:6333}
QDRANT_NODES=${QDRANT_NODES:-$QDRANT_URL}
ALIAS=${VITRINE_COLLECTION:-products}
MEDIA_URL=${VITRINE_MEDIA_URL:-}

if [ -e "$OUT" ]; then
  echo "backup.sh: $OUT already exists: a backup goes into a new folder" >&2
  exit 2
fi
PARTIAL="$(dirname "$OUT")/.$(basename "$OUT").partial"
rm -rf "$PARTIAL"
mkdir -p "$PARTIAL/qdrant"
trap 'rm -rf "$PARTIAL"' EXIT

qdrant() {  # METHOD URL [curl args...]
  local method=$1 url=$2
  shift 2
  curl --fail-with-body --silent --show-error -X "$method" \
    ${VITRINE_QDRANT_API_KEY:+-H "api-key: $VITRINE_QDRANT_API_KEY"} "$url" "$@"
}
json() {  # read a field of the JSON on stdin: json result.name
  python3 -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[key]
print(value)' "$1"
}

# 1. The database: jobs and items, the model versions registry, moderation decisions.
echo "dumping the jobs database"
pg_dump --format=custom --no-owner --file="$PARTIAL/jobs.pgdump" "$VITRINE_JOBS_URL"
read -r VERSION MODEL DIM < <(psql "$VITRINE_JOBS_URL" -tA -F ' ' -c \
  "SELECT id, model, dim FROM model_versions WHERE state = 'live'")
: "${VERSION:?no live model version in the registry: nothing to back up}"

# 2. The live version's collection (the alias names it), one snapshot per node.
COLLECTION=$(qdrant GET "$QDRANT_URL/aliases" | python3 -c 'import json, sys
aliases = json.load(sys.stdin)["result"]["aliases"]
print(next((a["collection_name"] for a in aliases if a["alias_name"] == sys.argv[1]),
           sys.argv[1]))' "$ALIAS")
POINTS=$(qdrant GET "$QDRANT_URL/collections/$COLLECTION" | json result.points_count)
i=0
for node in $QDRANT_NODES; do
  echo "snapshotting $COLLECTION on $node"
  name=$(qdrant POST "$node/collections/$COLLECTION/snapshots?wait=true" | json result.name)
  qdrant GET "$node/collections/$COLLECTION/snapshots/$name" \
    --output "$PARTIAL/qdrant/node-$i.snapshot"
  qdrant DELETE "$node/collections/$COLLECTION/snapshots/$name?wait=true" >/dev/null
  i=$((i + 1))
done

# 3. The originals, after both.
echo "copying the originals"
if [[ "$MEDIA_URL" == s3://* ]]; then
  aws s3 sync --only-show-errors ${VITRINE_S3_ENDPOINT_URL:+--endpoint-url "$VITRINE_S3_ENDPOINT_URL"} \
    "$MEDIA_URL" "$PARTIAL/media"
else
  mkdir -p "$PARTIAL/media"
  cp -a "${VITRINE_DATA_DIR:-data}/media/." "$PARTIAL/media/"
fi
# An original's name is its SHA-256: only complete ones (an upload being written is .upload-*).
find "$PARTIAL/media" -type f -name '.upload-*' -delete
ORIGINALS=$(find "$PARTIAL/media" -type f | wc -l)

(cd "$PARTIAL" && find . -type f ! -name SHA256SUMS ! -name manifest.json -print0 \
  | sort -z | xargs -0 -r sha256sum > SHA256SUMS)
python3 - "$PARTIAL" "$VERSION" "$MODEL" "$DIM" "$COLLECTION" "$POINTS" "$ORIGINALS" <<'EOF'
import datetime, hashlib, json, pathlib, sys
out, version, model, dim, collection, points, originals = sys.argv[1:]
sums = (pathlib.Path(out) / "SHA256SUMS").read_text().splitlines()
files = {line[66:].removeprefix("./"): line[:64] for line in sums
         if not line[66:].startswith("./media/")}
manifest = {
    "format": "vitrine-cluster-backup/1",
    "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "model": {"version": version, "model": model, "dim": int(dim)},
    "collection": collection,
    "counts": {"products": int(points), "originals": int(originals)},
    "files": {name: {"sha256": digest} for name, digest in files.items()},
    "SHA256SUMS": hashlib.sha256((pathlib.Path(out) / "SHA256SUMS").read_bytes()).hexdigest(),
}
(pathlib.Path(out) / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
EOF
mv "$PARTIAL" "$OUT"
trap - EXIT
echo "backup of $POINTS products ($MODEL, $VERSION) and $ORIGINALS originals in $OUT"
