#!/usr/bin/env bash
# Restore a backup made by deploy/backup.sh into an empty cluster:
#
#   deploy/restore.sh BACKUP_DIR [--reindex]
#
# Run it with the API and the workers stopped (`kubectl scale deploy/vitrine-api
# deploy/vitrine-worker --replicas=0`), against the same settings as backup.sh. It checks
# every checksum first; refuses a database that holds jobs or model versions, an existing
# collection of the backed-up version, and a backup of another model than VITRINE_MODEL
# (unless --reindex: then run `vitrine reindex --model "$VITRINE_MODEL"` once restored; the
# API refuses to serve the mismatch meanwhile). For a distributed Qdrant, QDRANT_NODES
# lists the nodes in the order backup.sh saw them; each gets its own node's snapshot.
set -euo pipefail

SRC=${1:?usage: deploy/restore.sh BACKUP_DIR [--reindex]}
REINDEX=${2:-}
: "${VITRINE_JOBS_URL:?VITRINE_JOBS_URL must name the cluster PostgreSQL database}"
QDRANT_URL=${VITRINE_QDRANT_URL:-http://localhost:6333}
QDRANT_NODES=${QDRANT_NODES:-$QDRANT_URL}
ALIAS=${VITRINE_COLLECTION:-products}
MEDIA_URL=${VITRINE_MEDIA_URL:-}

refuse() { echo "restore.sh: $*" >&2; exit 2; }
qdrant() {
  local method=$1 url=$2
  shift 2
  curl --fail-with-body --silent --show-error -X "$method" \
    ${VITRINE_QDRANT_API_KEY:+-H "api-key: $VITRINE_QDRANT_API_KEY"} "$url" "$@"
}
field() {  # a field of the manifest: field model.version
  python3 -c 'import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    value = value[key]
print(value)' "$SRC/manifest.json" "$1"
}

[ -f "$SRC/manifest.json" ] || refuse "$SRC is not a Vitrine cluster backup: no manifest.json"
[ "$(field format)" = "vitrine-cluster-backup/1" ] || refuse "$SRC/manifest.json: unknown format"

# 1. Checksums: SHA256SUMS against the manifest, then every file against SHA256SUMS.
[ "$(sha256sum < "$SRC/SHA256SUMS" | cut -c1-64)" = "$(field SHA256SUMS)" ] \
  || refuse "$SRC/SHA256SUMS does not match its SHA-256 in the manifest: the backup is damaged"
(cd "$SRC" && sha256sum --check --quiet --strict SHA256SUMS) \
  || refuse "files above do not match their SHA-256 in $SRC/SHA256SUMS: the backup is damaged"

# 2. Refusals: a cluster that holds data, another model.
VERSION=$(field model.version)
MODEL=$(field model.model)
COLLECTION=$(field collection)
held=$(psql "$VITRINE_JOBS_URL" -tA -c "SELECT (SELECT count(*) FROM jobs) + \
  (SELECT count(*) FROM model_versions)" 2>/dev/null || echo 0)
[ "$held" = 0 ] || refuse "the jobs database already holds jobs or model versions: restore into an empty one"
if qdrant GET "$QDRANT_URL/collections/$COLLECTION" >/dev/null 2>&1; then
  refuse "collection $COLLECTION already exists on $QDRANT_URL: restore into an empty Qdrant"
fi
if [ -n "${VITRINE_MODEL:-}" ] && [ "$VITRINE_MODEL" != "$MODEL" ] && [ "$REINDEX" != --reindex ]; then
  refuse "the backup's vectors are from model $MODEL ($VERSION); VITRINE_MODEL is $VITRINE_MODEL. \
Restore with VITRINE_MODEL=$MODEL, or pass --reindex and then run \`vitrine reindex --model $VITRINE_MODEL\`"
fi

# 3. The database (its empty tables, if the API ever started, replaced), the collection on
# each node and the alias that makes it live, the originals.
pg_restore --clean --if-exists --no-owner --exit-on-error --dbname="$VITRINE_JOBS_URL" \
  "$SRC/jobs.pgdump"
i=0
for node in $QDRANT_NODES; do
  echo "recovering $COLLECTION on $node"
  qdrant POST "$node/collections/$COLLECTION/snapshots/upload?priority=snapshot&wait=true" \
    -F "snapshot=@$SRC/qdrant/node-$i.snapshot" >/dev/null
  i=$((i + 1))
done
qdrant POST "$QDRANT_URL/collections/aliases" -H 'Content-Type: application/json' \
  --data "{\"actions\": [{\"create_alias\": {\"collection_name\": \"$COLLECTION\", \"alias_name\": \"$ALIAS\"}}]}" \
  >/dev/null
if [[ "$MEDIA_URL" == s3://* ]]; then
  aws s3 sync --only-show-errors ${VITRINE_S3_ENDPOINT_URL:+--endpoint-url "$VITRINE_S3_ENDPOINT_URL"} \
    "$SRC/media" "$MEDIA_URL"
else
  mkdir -p "${VITRINE_DATA_DIR:-data}/media"
  cp -a "$SRC/media/." "${VITRINE_DATA_DIR:-data}/media/"
fi
echo "restored $(field counts.products) products ($MODEL, $VERSION) and $(field counts.originals) originals"
