"""Build the FastAPI application from the settings and the database."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

import sautikit
from sautikit.api import routers
from sautikit.api.deps import ApiContext
from sautikit.api.docs import install_docs
from sautikit.api.errors import install_error_handlers
from sautikit.api.middleware import HttpMetrics, RequestContextMiddleware
from sautikit.api.openapi import install_openapi
from sautikit.api.routers import health
from sautikit.billing.mpesa import TopUpService
from sautikit.calls.admission import Admission
from sautikit.calls.manager import CallManager
from sautikit.cluster.buckets import KeyRateLimit
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.media.metrics import MediaCollector
from sautikit.pbx.metrics import SipMetrics
from sautikit.storage import ObjectStore
from sautikit.voice.commands import CommandBus, open_bus

__all__ = ["create_api"]


def create_api(
    settings: Settings,
    database: Database,
    store: ObjectStore | None = None,
    *,
    bus: CommandBus | None = None,
    calls: CallManager | None = None,
    topups: TopUpService | None = None,
    operations_only: bool = False,
) -> FastAPI:
    """The API; ``bus`` carries work to the PBX (by default one that suits the database),
    ``calls`` is this process's call manager where it runs a PBX too, ``topups`` the
    M-Pesa service where Daraja is configured (its owner closes it). ``operations_only``
    serves only ``/healthz``, ``/readyz`` and ``/metrics`` (a node without the api role)."""
    app = FastAPI(
        docs_url=None,  # api.docs serves offline ones
        redoc_url=None,
        title="Sautikit",
        version=sautikit.__version__,
        description=(
            "Programmable voice: numbers, calls steered by JSON voice actions, recordings, "
            "transcripts and a prepaid KES wallet. Authenticate with `Authorization: Bearer "
            'sk_live_…`. Errors share one envelope: `{"error": {"code", "message", '
            '"request_id"}}`.'
        ),
    )
    registry = CollectorRegistry()
    if calls is not None:
        registry.register(MediaCollector(calls.pbx.media))
    app.state.store = store
    app.state.bus = bus or open_bus(settings.effective_database_url)
    app.state.calls = calls
    app.state.topups = topups
    app.state.recording_url_lifetime = timedelta(seconds=settings.recording_url_lifetime_seconds)
    app.state.admission = calls.admission if calls is not None else Admission(settings)
    app.state.registry = registry
    if calls is not None:
        registry.register(SipMetrics(calls.pbx))
    app.state.context = ApiContext(
        settings=settings,
        database=database,
        limiter=KeyRateLimit(database, settings.rate_limit_per_second, settings.rate_limit_burst),
    )
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    for router in [health.router] if operations_only else routers.all_routers():
        app.include_router(router)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        metrics=HttpMetrics(registry),
    )
    return app
