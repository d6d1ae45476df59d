"""Liveness and readiness."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.auth import PUBLIC

router = APIRouter(tags=["health"])


@router.get("/healthz", dependencies=[PUBLIC])
def healthz():
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", dependencies=[PUBLIC])
def readyz(request: Request):
    """The model is loaded and the store answers."""
    services = request.app.state.services
    if services is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    try:
        points = services.store.count()
    except Exception as exc:  # the store is down: not ready
        return JSONResponse({"status": "store unavailable", "detail": str(exc)}, status_code=503)
    return {"status": "ready", "model": services.encoder.model_id, "dim": services.encoder.dim,
            "points": points}
