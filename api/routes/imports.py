"""Catalogue import over HTTP: a zip of a styles.csv folder or a .jsonl catalogue."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, UploadFile

from api.auth import MANAGER
from api.deps import DispatchDep, IngestDep
from api.routes.products import JobAccepted, submit
from catalogue.importer import CatalogueFormatError, extract_archive, import_catalogue

router = APIRouter(prefix="/v1", tags=["imports"])


@router.post("/imports", status_code=202, response_model=JobAccepted, dependencies=[MANAGER])
def create_import(ingest: IngestDep, dispatch: DispatchDep,
                  archive: Annotated[UploadFile, File(description="zip: styles.csv + images/, "
                                                                  "or a .jsonl with images")]):
    """Import a catalogue archive; bad rows are reported by line number in the job."""
    workdir = Path(tempfile.mkdtemp(prefix="vitrine-import-"))
    try:
        zip_path = workdir / "upload.zip"
        with zip_path.open("wb") as out:
            shutil.copyfileobj(archive.file, out)
        try:
            folder = extract_archive(zip_path, workdir / "catalogue")
            accepted = import_catalogue(ingest, folder)
        except CatalogueFormatError as exc:
            raise HTTPException(422, str(exc)) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return submit(dispatch, accepted)
