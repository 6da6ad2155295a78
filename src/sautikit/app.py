"""The composition root: builds every service from the settings, starts and stops them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import timedelta
from typing import Any

import httpx
import uvicorn

from sautikit.api import create_api
from sautikit.billing.mpesa import TopUpService
from sautikit.billing.numbers import renew_numbers
from sautikit.calls.manager import CallManager
from sautikit.calls.metrics import CallMetrics
from sautikit.cluster.identity import with_node_id
from sautikit.cluster.lease import NodeLease
from sautikit.cluster.rooms import SharedRooms
from sautikit.cluster.sampler import Sampler
from sautikit.config import ConfigError, Settings
from sautikit.crypto import derive_key
from sautikit.db import Database
from sautikit.db.lifecycle import open_database, require_current_schema
from sautikit.db.types import utcnow
from sautikit.events.delivery import DeliveryWorker
from sautikit.logs import set_node_id
from sautikit.loopwatch import LoopWatch
from sautikit.media import TextToSpeech
from sautikit.metrics import OperationsCollector
from sautikit.net import outbound_client
from sautikit.overload import OverloadController, OverloadLimits, Refusal
from sautikit.pbx import Pbx
from sautikit.pbx.service import Answer, Screen
from sautikit.recordings.pipeline import RecordingPipeline, signed_app_clients
from sautikit.recordings.recovery import recover_recordings
from sautikit.recordings.retention import sweep_retention
from sautikit.recordings.stores import WorkspaceStores
from sautikit.recordings.worker import TranscriptionWorker
from sautikit.runtime import settle_heap
from sautikit.sip import tls
from sautikit.sip.auth_throttle import ThrottlePolicy
from sautikit.sip.websocket import WebSocketListeners
from sautikit.storage import open_store
from sautikit.voice.commands import open_bus

__all__ = ["open_database", "raise_to_realtime_priority", "require_current_schema", "serve"]

log = logging.getLogger(__name__)


def websocket_listeners(settings: Settings) -> WebSocketListeners | None:
    """SIP over WebSocket as set (docs/pbx.md "Browser calling"), or None when off."""
    if not settings.sip_ws_port and not settings.sip_wss_port:
        return None
    return WebSocketListeners(
        ws_port=settings.sip_ws_port or None,
        wss_port=settings.sip_wss_port or None,
        host=settings.sip_ws_host or None,
    )


def sip_tls_contexts(settings: Settings) -> tuple[ssl.SSLContext | None, ssl.SSLContext]:
    """The SIP TLS server context (None while no certificate is set) and the client
    context that verifies trunks; a file that cannot be loaded is a :class:`ConfigError`."""
    try:
        server = (
            tls.server_context(settings.sip_tls_cert, settings.sip_tls_key)
            if settings.sip_tls_enabled
            else None
        )
        return server, tls.client_context(settings.sip_tls_ca_file or None)
    except tls.TlsConfigError as error:
        raise ConfigError(str(error)) from None


def raise_to_realtime_priority() -> bool:
    """Schedule this process SCHED_RR, so other work on the core cannot delay the 20 ms
    media tick (benchmarks/README.md measures the difference); needs CAP_SYS_NICE."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))
    except (OSError, AttributeError) as refused:
        log.warning("could not raise to real-time priority: %s", refused)
        return False
    return True


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: Sautikit's shutdown decides the order."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Run this node's roles (cluster.roles: the API, the PBX, the workers; all three by
    default) in one process until SIGINT or SIGTERM.

    ``on_ready`` receives the HTTP base URL once it listens (useful with port 0).
    SIGTERM (or SIGINT) drains: new calls are refused (SIP 503, API 503), ``/readyz``
    answers 503, the API keeps serving the live calls for ``shutdown_grace_seconds``;
    then the calls still up are ended and written, and the rest stops. A second signal
    ends the grace at once.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = with_node_id(settings)
    set_node_id(settings.node_id)
    roles = settings.role_set
    if settings.realtime_priority:
        raise_to_realtime_priority()
    store = open_store(settings)
    async with open_database(settings) as database, AsyncExitStack() as stack:
        if not database.is_sqlite and not settings.storage_url:
            log.warning(
                "recordings and files are kept under this node's data_dir: with several "
                "nodes, set SAUTIKIT_STORAGE_URL to an S3 bucket they share"
            )
        stack.push_async_callback(store.close)
        loop_watch = LoopWatch()
        _run_in_background(stack, loop_watch.run())
        http = outbound_client(
            allow_private=settings.allow_private_http, timeout=settings.app_timeout_seconds
        )
        stack.push_async_callback(http.aclose)
        bus = open_bus(settings.effective_database_url)
        stack.push_async_callback(bus.close)
        stores = WorkspaceStores(settings, store)
        stack.push_async_callback(stores.close)
        app_clients = signed_app_clients(database, http, timeout=settings.app_timeout_seconds)
        transcriber = TranscriptionWorker(
            database,
            settings,
            stores,
            engine=settings.transcription_engine,
            model_path=settings.transcription_model_path or None,
            concurrency=settings.transcription_concurrency,
        )
        recordings = RecordingPipeline(
            database,
            settings,
            stores,
            app_clients,
            url_lifetime=timedelta(seconds=settings.recording_url_lifetime_seconds),
            on_transcription_queued=transcriber.wake,
        )
        manager: CallManager | None = None
        if "pbx" in roles:
            manager, overload = await _start_pbx(
                stack, settings, database, recordings, http, loop_watch
            )
        else:
            overload = _api_overload(settings, database, loop_watch)
        lease = NodeLease(
            database,
            node=settings.node_id,
            lease_seconds=settings.node_lease_seconds,
            # Only a node that speaks SIP closes a dead node's calls (it sends the BYEs).
            recover_calls=manager.recover_node if manager is not None else None,
            recordings=recordings,
            sip_address=f"{manager.pbx.sip_host}:{manager.pbx.port}" if manager else None,
            on_fenced=(lambda: _hang_up_all(manager)) if manager is not None else None,
        )
        await lease.register()
        stack.push_async_callback(lease.release)  # once the calls below have ended (LIFO)
        if manager is not None:
            await manager.start()
            # On the way out after an error: nothing drained, so end the calls at once.
            stack.push_async_callback(manager.shutdown, 0)
        await lease.recover_dead()  # nodes that died while none was running
        _run_in_background(stack, lease.run())
        if manager is not None:
            bus.subscribe(manager.handle)
            manager.queues.bus = bus  # queue callers held by other processes are bridged over it
            if not database.is_sqlite:  # one room wherever its callers land (cluster.rooms)
                shared_rooms = SharedRooms(
                    manager.rooms,
                    database,
                    bus,
                    node=settings.node_id,
                    media=manager.pbx.media,
                    media_address=manager.pbx.media_address,
                )
                manager.rooms.across_nodes = shared_rooms
                manager.reaper.relays.append(shared_rooms.relay_channels)
                bus.subscribe(shared_rooms.on_message)
                stack.push_async_callback(shared_rooms.close)
            await bus.start()

        topups = None
        if "worker" in roles:
            worker = DeliveryWorker(database, settings)
            _run_in_background(stack, worker.run(), worker.stop, worker.aclose)
            _run_in_background(stack, transcriber.run())
            _run_in_background(stack, _housekeeping(database, stores, settings))
            topups = TopUpService(settings, database) if settings.daraja_enabled else None
            if topups is not None:
                _run_in_background(stack, topups.run(), topups.stop, topups.aclose)

        api = create_api(
            settings,
            database,
            store,
            bus=bus,
            calls=manager,
            topups=topups,
            operations_only="api" not in roles,
        )
        loop_watch.register(api.state.registry)
        overload.register(api.state.registry)
        api.state.overload = overload
        if manager is not None:
            api.state.registry.register(
                CallMetrics(manager.pbx, lambda: len(manager.live), lambda: manager.reaped)
            )
        sampler = Sampler(database)
        _run_in_background(stack, sampler.run())
        api.state.registry.register(
            OperationsCollector(
                sampler=sampler,
                live_calls=lambda: (
                    []
                    if manager is None
                    else [(call.direction, call.status) for call in manager.live.values()]
                ),
                spool=recordings.spool_dir,
                node_id=settings.node_id,
            )
        )
        server = _ApiServer(
            uvicorn.Config(
                api,
                host=settings.http_host,
                port=settings.http_port,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=API_CLOSE_SECONDS,
            )
        )
        stop = _StopSignals()
        stop.install(asyncio.get_running_loop())
        serving = asyncio.create_task(server.serve())
        # uvicorn offers no start-up event to await; its flag flips within milliseconds.
        while not server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if server.started:
            host, port = server.servers[0].sockets[0].getsockname()[:2]
            base_url = f"http://{host}:{port}"
            where = f"SIP on {manager.pbx.sip_host}:{manager.pbx.port}" if manager else "no SIP"
            log.info("Sautikit API listening on %s, %s; roles %s", base_url, where, settings.roles)
            settle_heap()
            if on_ready is not None:
                on_ready(base_url)
        stopping = asyncio.ensure_future(stop.requested.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not serving.done():
            if manager is not None:
                # Drain with the API still up: /readyz answers 503 so a balancer moves on,
                # while apps can still list, redirect and hang up the calls that remain.
                log.info(
                    "shutting down: draining live calls for %g s", settings.shutdown_grace_seconds
                )
                await manager.shutdown(settings.shutdown_grace_seconds, hurry=stop.hurry)
            server.should_exit = True
        await serving


async def _start_pbx(
    stack: AsyncExitStack,
    settings: Settings,
    database: Database,
    recordings: RecordingPipeline,
    http: httpx.AsyncClient,
    loop_watch: LoopWatch,
) -> tuple[CallManager, OverloadController]:
    """The ``pbx`` role: SIP and RTP bound, and the call manager (not started yet)."""
    # Spools a crash left behind are stored, and their callbacks sent, before new calls.
    await recover_recordings(recordings)
    tls_server, tls_client = sip_tls_contexts(settings)
    pbx = Pbx(
        sip_host=settings.sip_host,
        sip_port=settings.sip_port,
        sip_advertised_host=settings.sip_advertised_host or None,
        sip_tcp_host=settings.sip_tcp_host or None,
        sip_tls=tls_server,
        sip_tls_host=settings.sip_tls_host or None,
        sip_tls_port=settings.sip_tls_port,
        sip_tls_client=tls_client,
        sip_websocket=websocket_listeners(settings),
        media_host=settings.media_host or None,
        media_advertised_address=settings.media_advertised_address or None,
        rtp_ports=settings.rtp_port_range,
        tts=TextToSpeech(settings.data_dir / "tts"),
        digest_algorithms=settings.sip_digest_algorithm_list,
        one_way_audio_after=settings.one_way_audio_seconds,
        session_timers=settings.session_timers,
        # Every node signs and checks digest nonces with the same key, so a phone
        # challenged by one node is let in by any other (a balancer in front).
        nonce_secret=derive_key(settings.signing_key(), "sip digest nonces"),
        auth_throttle=ThrottlePolicy(
            max_failures_per_source=settings.sip_auth_max_failures,
            max_failures_per_username=settings.sip_auth_max_failures_per_user,
            window=settings.sip_auth_failure_window_seconds,
            block_seconds=settings.sip_auth_block_seconds,
        ),
    )
    manager = CallManager(
        settings,
        database,
        pbx,
        recordings=recordings,
        http=http,
        node=settings.node_id,
        app_timeout=settings.app_timeout_seconds,
    )
    overload = OverloadController(
        OverloadLimits.from_settings(settings),
        loop_watch=loop_watch,
        setups=lambda: pbx.calls_in_setup,
        write_queue=lambda: database.writer.pending,
        write_wait=lambda: database.writer.oldest_wait,
        free_rtp_ports=lambda: pbx.free_rtp_ports,
    )
    pbx.screen = _screen_for(overload)
    pbx.out_of_ports = lambda detail: _sip_answer(overload.refuse("rtp_ports", detail))
    await pbx.start()
    stack.push_async_callback(pbx.close)
    pbx.agent.refusing_new_calls = lambda: not manager.accepting  # balancers' probes
    return manager, overload


def _api_overload(
    settings: Settings, database: Database, loop_watch: LoopWatch
) -> OverloadController:
    """An api or worker node's overload checks: its event loop and its database writes
    (no calls in setup, no RTP ports: it holds none)."""
    return OverloadController(
        OverloadLimits.from_settings(settings),
        loop_watch=loop_watch,
        write_queue=lambda: database.writer.pending,
        write_wait=lambda: database.writer.oldest_wait,
    )


async def _hang_up_all(manager: CallManager) -> None:
    """End every call of this node: another node declared it dead and closed them."""
    for call in list(manager.live.values()):
        await call.hangup("network_error")


API_CLOSE_SECONDS = 1
"""After the drain, how long requests still in flight may take before the API closes."""


class _StopSignals:
    """SIGTERM or SIGINT asks for a drain; a second one cuts the grace short."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.hurry = asyncio.Event()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._received)

    def _received(self) -> None:
        if self.requested.is_set():
            self.hurry.set()
        self.requested.set()


def _screen_for(overload: OverloadController) -> Screen:
    """The PBX's door: a new INVITE gets 503 with Retry-After while overloaded."""

    def screen() -> Answer | None:
        refusal = overload.check()
        return None if refusal is None else _sip_answer(refusal)

    return screen


def _sip_answer(refusal: Refusal) -> Answer:
    """How SIP refuses a call the process cannot take (RFC 3261 §21.5.4)."""
    return 503, "Service Unavailable", [refusal.retry_after_header]


def _run_in_background(
    stack: AsyncExitStack,
    work: Coroutine[Any, Any, None],
    stop: Callable[[], None] | None = None,
    close: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run ``work`` until shutdown: then ``stop`` it (or cancel it) and ``close`` it."""
    task = asyncio.create_task(work)

    async def finish() -> None:
        if stop is not None:
            stop()
        else:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if close is not None:
            await close()

    stack.push_async_callback(finish)


async def _housekeeping(database: Database, stores: WorkspaceStores, settings: Settings) -> None:
    """Every so often: remove recordings past their workspace's retention, and charge the
    number rentals that fell due (suspending numbers the wallet cannot pay for)."""
    while True:
        try:
            removed = await sweep_retention(database, stores, utcnow())
            async with database.transaction() as session:
                renewals = await renew_numbers(session, utcnow())
            if removed or renewals.suspended:
                log.info(
                    "housekeeping: %d recordings past retention removed, %d numbers suspended",
                    removed,
                    len(renewals.suspended),
                )
        except Exception:
            log.exception("housekeeping failed")
        await asyncio.sleep(settings.housekeeping_seconds)
