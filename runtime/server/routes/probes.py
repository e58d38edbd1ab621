"""Probes and metadata: ``/health``, ``/ready``, ``/metrics``, ``/v1/models``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from runtime.server.deps import ERRORS, Authorized, Core
from runtime.server.schemas import ModelCard, ModelList

router = APIRouter()


@router.get("/health", tags=["probes"])
async def health() -> dict[str, str]:
    """Alive (the process serves HTTP), whether or not the model is loaded."""
    return {"status": "ok"}


@router.get("/ready", tags=["probes"], responses={503: {"description": "Not ready"}})
async def ready(core: Core) -> JSONResponse:
    """Ready to generate: the model is loaded and the server is not shutting down."""
    if core.ready and not core.draining:
        return JSONResponse(
            {"status": "ready", "model": core.model_id, "slots": core.settings.parallel}
        )
    state = "draining" if core.draining else "failed" if core.load_error else "loading"
    body: dict[str, Any] = {"status": state}
    if core.load_error:
        body["error"] = core.load_error
    return JSONResponse(body, status_code=503, headers={"Retry-After": "2"})


@router.get(
    "/metrics",
    tags=["probes"],
    dependencies=Authorized,
    response_class=Response,
    responses={401: ERRORS[401]},
)
async def metrics(core: Core) -> Response:
    """Prometheus metrics."""
    return Response(core.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get(
    "/v1/models", response_model=ModelList, dependencies=Authorized, responses={401: ERRORS[401]}
)
async def list_models(core: Core) -> ModelList:
    return ModelList(data=[ModelCard(id=core.model_id, created=core.created)])


@router.get(
    "/v1/models/{model}",
    response_model=ModelCard,
    dependencies=Authorized,
    responses={401: ERRORS[401], 404: ERRORS[404]},
)
async def get_model(model: str, core: Core) -> ModelCard:
    core.check_model(model)
    return ModelCard(id=core.model_id, created=core.created)
