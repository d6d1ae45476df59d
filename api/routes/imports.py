"""Catalogue import over HTTP: a product feed, or a zip of a styles.csv folder, a .jsonl
catalogue or a feed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile

from api.auth import API_KEY_HEADER, MANAGER, caller
from api.deps import WRITES, DispatchDep, IngestDep
from api.errors import ApiProblem, responses
from api.ratelimit import IMPORT_LIMIT
from api.routes.products import JobAccepted, submit
from catalogue.archive import ArchiveTooLarge, ImportBusy, ImportSlots, StagingFull
from catalogue.importer import CatalogueFormatError, import_archive

router = APIRouter(prefix="/v1", tags=["imports"])

# Process-wide: in the cluster profile each API replica counts its own imports, so a key
# may run VITRINE_IMPORT_MAX_CONCURRENT imports on each replica.
SLOTS = ImportSlots()
BUSY_RETRY_S, FULL_RETRY_S = 10, 60  # Retry-After: an import takes a while; a disk longer


def import_key(request: Request) -> str:
    """Whose import this is: the API key's digest (never the key), or the client's address
    where the local profile runs without keys."""
    kind, who = caller(request.headers.get(API_KEY_HEADER),
                       request.client.host if request.client else None)
    return f"{kind}:{who}"


@router.post("/imports", status_code=202, response_model=JobAccepted,
             dependencies=[MANAGER, WRITES, IMPORT_LIMIT],
             responses=responses(400, 401, 403, 413, 422, 429, 503))
def create_import(request: Request, ingest: IngestDep, dispatch: DispatchDep,
                  archive: Annotated[UploadFile, File(description=(
                      "a product feed (Google Merchant Center TSV or XML, Shopify product "
                      "CSV), or a zip: styles.csv + images/, a .jsonl with images, a feed"))],
                  prune: Annotated[bool, Form(description=(
                      "Remove the products the catalogue no longer lists"))] = False):
    """Import a catalogue or sync a feed; bad rows are reported by line number in the job,
    which counts products added, updated, unchanged, removed and failed.

    The archive is unpacked under the data folder within VITRINE_IMPORT_MAX_BYTES and
    VITRINE_IMPORT_MAX_FILES (413 over them), while the disk keeps
    VITRINE_IMPORT_MIN_FREE_BYTES free (507 otherwise), and a key runs at most
    VITRINE_IMPORT_MAX_CONCURRENT imports at once (429 with Retry-After past that); the
    cluster profile's replicas each count their own."""
    try:
        with SLOTS.hold(import_key(request), ingest.settings.import_max_concurrent):
            accepted = import_archive(ingest, archive.file, prune=prune)
    except ImportBusy as exc:
        raise ApiProblem(429, str(exc), code="too_many_requests",
                         headers={"Retry-After": str(BUSY_RETRY_S)}) from None
    except StagingFull as exc:
        raise ApiProblem(507, str(exc), code="insufficient_storage",
                         headers={"Retry-After": str(FULL_RETRY_S)}) from None
    except ArchiveTooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    except CatalogueFormatError as exc:
        raise HTTPException(422, str(exc)) from None
    return submit(dispatch, accepted)
