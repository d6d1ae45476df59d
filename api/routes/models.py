"""Model versions for catalogue managers: list them, and reindex into another model as a
job in the background (catalogue.lifecycle; `vitrine reindex` does the same from the
command line)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from api.auth import MANAGER
from api.deps import LifecycleDep
from api.errors import ApiProblem, responses
from catalogue.lifecycle import (
    AlreadyLive,
    ModelRefused,
    ModelVersionsPublic,
    ReindexBusy,
    ReindexJobPublic,
)

router = APIRouter(prefix="/v1/models", tags=["models"])


class ReindexRequest(BaseModel):
    model: str = Field(min_length=1, max_length=1000,
                       description="A Hugging Face hub id or a local folder of a CLIP-family "
                                   "model (as VITRINE_MODEL takes)")


@router.get("", response_model=ModelVersionsPublic, dependencies=[MANAGER],
            responses=responses(401, 403, 503))
def read_models(lifecycle: LifecycleDep):
    """Model versions (the live one flagged, with product counts and any recorded
    evaluation) and the running or last reindex."""
    return lifecycle.versions()


@router.post("/reindex", status_code=202, response_model=ReindexJobPublic,
             dependencies=[MANAGER], responses=responses(400, 401, 403, 409, 413, 422, 503))
def start_reindex(body: ReindexRequest, lifecycle: LifecycleDep):
    """Re-encode the catalogue with another model into its own version, in the background;
    it goes live (and is served, in the local profile) once complete and checked. 422 for a
    model that does not load, 409 while a reindex runs or for the live model itself."""
    try:
        return lifecycle.start_reindex(body.model.strip())
    except ModelRefused as exc:
        raise ApiProblem(422, str(exc), code="model_unloadable", field="model") from None
    except ReindexBusy as exc:
        raise ApiProblem(409, str(exc), code="reindex_running") from None
    except AlreadyLive as exc:
        raise ApiProblem(409, str(exc), code="already_live", field="model") from None


@router.get("/reindex/{job_id}", response_model=ReindexJobPublic, dependencies=[MANAGER],
            responses=responses(401, 403, 404, 422, 503))
def read_reindex(job_id: str, lifecycle: LifecycleDep):
    """A reindex's state (queued, running, done, failed), products done of total, and how it
    ended or why it failed."""
    job = lifecycle.job(job_id)
    if job is None:
        raise HTTPException(404, f"unknown reindex job {job_id!r}")
    return job
