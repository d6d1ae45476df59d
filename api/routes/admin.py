"""Operations on the running local profile: a consistent backup of its data folder, made by
the process that holds it (catalogue.backup says why)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import MANAGER
from api.deps import WRITES, SettingsDep, StoreDep
from api.errors import ApiProblem, responses
from catalogue.backup import BackupError, BackupSummary, backup_name, create_backup

router = APIRouter(prefix="/v1/admin", tags=["admin"])

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class BackupRequest(BaseModel):
    name: str | None = Field(None, pattern=NAME_PATTERN, description=(
        "The backup's folder under VITRINE_BACKUP_DIR (letters, digits, '.', '_', '-'); "
        "default: the time, e.g. vitrine-20261205-134501"))


@router.post("/backup", status_code=201, response_model=BackupSummary,
             dependencies=[MANAGER, WRITES], responses=responses(400, 401, 403, 409, 413, 422, 503))
def create_data_backup(settings: SettingsDep, store: StoreDep,
                       body: BackupRequest | None = None):
    """Back up the catalogue into a new folder under VITRINE_BACKUP_DIR while it serves and
    ingests: the live version's shard, jobs, moderation decisions, model versions and
    originals, with a manifest of SHA-256 checksums (`vitrine restore` reads it). 409 if
    the folder exists; 503 on the cluster profile (deploy/backup.sh backs it up)."""
    name = (body.name if body else None) or backup_name()
    target = settings.backups_dir / name
    try:
        return create_backup(settings, store, target)
    except FileExistsError as exc:
        raise ApiProblem(409, str(exc), code="backup_exists", field="name") from None
    except BackupError as exc:
        raise ApiProblem(503, str(exc), code="unavailable") from None
