"""Liveness, readiness and Prometheus metrics; no API key needed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sautikit.api.deps import api_context
from sautikit.api.routing import SautikitRoute

router = APIRouter(route_class=SautikitRoute, tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


READY_CHECK_SECONDS = 2.0
"""How long one readiness check may take before it counts as failed."""

_PROBE_KEY = "sautikit-readyz-probe"


async def _check(probe: Awaitable[object]) -> str:
    try:
        async with asyncio.timeout(READY_CHECK_SECONDS):
            await probe
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # any failure to reach it means not ready
        return type(exc).__name__
    return "ok"


@router.get(
    "/readyz",
    summary="The process takes new work: not draining; the database, the object store and "
    "the SIP listener answer",
)
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    calls = getattr(request.app.state, "calls", None)
    if calls is not None and not calls.accepting:  # draining after SIGTERM: send no more
        checks["calls"] = "draining"
    checks["database"] = await _check(api_context(request).database.ping())
    store = getattr(request.app.state, "store", None)
    if store is not None:  # a HEAD of an absent key: reachable and the credentials work
        checks["storage"] = await _check(store.exists(_PROBE_KEY))
    if calls is not None:
        agent = calls.pbx.started_agent
        checks["sip"] = "ok" if agent is not None and agent.transport.listening else "closed"
    if checks.get("calls") == "draining":
        return JSONResponse({"status": "draining", "checks": checks}, 503)
    if any(result != "ok" for result in checks.values()):
        return JSONResponse({"status": "unavailable", "checks": checks}, 503)
    return JSONResponse({"status": "ready", "checks": checks})


_METRICS_EXAMPLE = (
    "# HELP sautikit_calls_active Calls this process is carrying now.\n"
    "# TYPE sautikit_calls_active gauge\n"
    "sautikit_calls_active 3.0\n"
)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": _METRICS_EXAMPLE}},
        }
    },
)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
