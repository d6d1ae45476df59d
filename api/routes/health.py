"""Liveness and readiness."""

from fastapi import APIRouter, Request

from api.auth import PUBLIC
from api.errors import error_response, responses

router = APIRouter(tags=["health"])


@router.get("/healthz", dependencies=[PUBLIC])
def healthz():
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", dependencies=[PUBLIC], responses=responses(503))
def readyz(request: Request):
    """The model is loaded and the store answers."""
    services = request.app.state.services
    if services is None:
        return error_response(503, "starting", "starting", headers={"Retry-After": "5"})
    try:
        points = services.store.count()
    except Exception as exc:  # the store is down: not ready
        return error_response(503, f"store unavailable: {exc}", "store_unavailable")
    return {"status": "ready", "model": services.encoder.model_id, "dim": services.encoder.dim,
            "points": points}
