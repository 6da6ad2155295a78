"""Liveness, readiness and Prometheus metrics; no API key needed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sautikit.api.deps import api_context
from sautikit.api.routing import SautikitRoute

router = APIRouter(route_class=SautikitRoute, tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", summary="The process takes new work: not shutting down, the database answers"
)
async def readyz(request: Request) -> JSONResponse:
    calls = getattr(request.app.state, "calls", None)
    if calls is not None and not calls.accepting:  # draining after SIGTERM: send no more
        return JSONResponse({"status": "draining", "checks": {"calls": "draining"}}, 503)
    try:
        await api_context(request).database.ping()
    except Exception as exc:  # any failure to reach the database means not ready
        return JSONResponse(
            {"status": "unavailable", "checks": {"database": type(exc).__name__}}, 503
        )
    return JSONResponse({"status": "ready", "checks": {"database": "ok"}})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
