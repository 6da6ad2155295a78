"""Registered SIP devices (SPEC §6): their digest challenge, calls they make as their
number, and ringing them for a number that has no ``voice_url``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sautikit.billing.sip_credentials import DeviceDirectory, DeviceLogin
from sautikit.calls.admission import (
    Admission,
    CallAsk,
    CallLimitExceeded,
    DestinationError,
    InsufficientFunds,
    NumberNotOwned,
    Origin,
)
from sautikit.calls.bridging import TransferInbox, bridge_until_one_hangs_up
from sautikit.calls.funding import Funding
from sautikit.calls.placement import CANNOT_DIAL, Dialler, Placement
from sautikit.calls.records import CallRecords
from sautikit.calls.recovery import dialog_column
from sautikit.calls.registry import CallRegistry
from sautikit.calls.routing import Trunks
from sautikit.db import Database
from sautikit.logs import bind_call
from sautikit.pbx import InboundLeg, OutboundLeg, Pbx
from sautikit.pbx.registrations import DeviceReach, RegistrationStore, reach
from sautikit.sip import CallFailed, Request
from sautikit.sip.sdp import WIDEBAND_CODECS, SrtpMode
from sautikit.sip.server_auth import Authenticated
from sautikit.sip.teardown import DialogSnapshot
from sautikit.sip.token_auth import ClientClaims, ClientTokens
from sautikit.sip.transport import Peer, is_websocket
from sautikit.voice.live import CallHost, LiveCall

__all__ = ["Devices"]

log = logging.getLogger(__name__)


class Devices:
    def __init__(
        self,
        host: CallHost,
        database: Database,
        pbx: Pbx,
        trunks: Trunks,
        admission: Admission,
        records: CallRecords,
        registry: CallRegistry,
        dialler: Dialler,
        placement: Placement,
        funding: Funding,
        *,
        node: str,
        client_tokens: ClientTokens | None = None,
    ) -> None:
        self.funding = funding
        #: Browser clients' tokens (docs/pbx.md "Browser calling"), accepted over WebSocket.
        self.client_tokens = client_tokens
        #: The claims of each client's latest accepted token, by SIP user: its INVITE was
        #: verified a moment before the call logic asks what number it calls out as.
        self._clients: dict[str, ClientClaims] = {}
        self.host = host
        self.database = database
        self.pbx = pbx
        self.trunks = trunks
        self.admission = admission
        self.records = records
        self.registry = registry
        self.dialler = dialler
        self.placement = placement
        self.node = node
        self.directory = DeviceDirectory()
        #: Registrations in the database: they outlive this process and every process
        #: of the deployment rings the same phones.
        self.registrations = RegistrationStore(database, node=node)

    # --- the digest challenge -------------------------------------------------------------

    def install(self) -> None:
        """Carriers are trusted by address; anyone else (a device) must answer a digest
        challenge with its SIP credential, in the realm of its workspace (SPEC §6), or,
        over WebSocket, carry a browser client's token."""
        self.pbx.user_agent_options.update(
            authenticate_invite=self._needs_digest,
            lookup_ha1=self.directory.lookup_ha1,
            realm_for=self._realm_for,
            digest_algorithms_for=self._algorithms_for,
            persist_bindings=self.registrations.save,
        )
        if self.client_tokens is not None:
            self.pbx.user_agent_options["verify_bearer"] = self._authenticate_client

    async def reload_registrations(self) -> None:
        """Take the database's registrations (other processes', or from before a restart)."""
        agent = self.pbx.started_agent
        service = agent.registrar_service if agent is not None else None
        if service is not None:
            service.reload(await self.registrations.load())

    def _needs_digest(self, request: Request, source: Peer) -> bool:
        """Carriers (by address) and this deployment's own on-net calls (by token) are
        let in; anyone else is a device and must answer the challenge. Nothing over
        WebSocket is a carrier: a browser on a trunk's address still signs in."""
        if is_websocket(source.transport):
            return True
        return not (self.trunks.trusts(source.host) or self.trunks.on_net_caller(request))

    def _authenticate_client(self, token: str) -> Authenticated:
        assert self.client_tokens is not None
        claims = self.client_tokens.verify(token)
        if len(self._clients) > 10_000:  # forget the expired ones
            now = time.time()
            self._clients = {k: v for k, v in self._clients.items() if v.expires_at > now}
        self._clients[claims.sip_user] = claims
        return Authenticated(claims.sip_user, claims.expires_at - time.time())

    def client(self, sip_user: str) -> ClientClaims | None:
        """The latest token claims of a browser client this process let in, if live."""
        claims = self._clients.get(sip_user)
        return claims if claims is not None and claims.expires_at > time.time() else None

    def _realm_for(self, request: Request) -> str:
        return self.directory.realm_for(_claimed_user(request)) or "sautikit"

    def _algorithms_for(self, request: Request) -> tuple[str, ...] | None:
        return self.directory.algorithms_for(_claimed_user(request))

    # --- a device calling out -------------------------------------------------------------

    async def call_out(self, leg: InboundLeg, device: DeviceLogin, destination: str) -> None:
        """A registered device dials out as its number: admitted like an API call, then
        bridged."""
        await self.call_out_as(
            leg, device.workspace_id, device.number, device.username, destination
        )

    async def call_out_as(
        self, leg: InboundLeg, workspace_id: str, number: str, who: str, destination: str
    ) -> None:
        """A device or a browser client (``who``, for the log) of ``workspace_id`` calls
        ``destination`` as ``number``: the one admission path of API calls, then bridged."""
        async with self.database.transaction() as session:
            ask = CallAsk(
                Origin.DEVICE,
                to=destination,
                caller=number,
                workspace_id=workspace_id,
                owner=self.node,
                sip_call_id=leg.call_id,
                sip_dialog=dialog_column([DialogSnapshot.of_call(leg.sip)]),
            )
            try:
                admitted = await self.admission.admit(session, ask)
            except (NumberNotOwned, DestinationError, CallLimitExceeded) as refused:
                log.info("%s may not call %s: %s", who[:80], destination[:40], refused)
                await session.rollback()
                leg.reject(403, "Forbidden")
                return
            except InsufficientFunds:
                await session.rollback()  # nothing of this call is kept
                leg.reject(402, "Payment Required")
                return
        call = admitted.call
        try:
            out = await self.dialler.dial(call, 60)
        except CANNOT_DIAL:
            leg.reject(503, "Service Unavailable")
            await self.records.ended(call.id, "network_error")
            return
        live = self.registry.adopt(self.host, out, call)
        self.registry.hold(call.id, leg)  # the device's own leg is this call's too
        self.placement.report_dialled(live)

        def ringing() -> None:
            with contextlib.suppress(Exception):
                leg.ring()
            self.placement.report_ringing(live)

        out.on_ringing = ringing
        transfers = TransferInbox()
        transfers.accept(leg)  # the phone may transfer its callee as soon as it is up
        try:
            await out.wait_answer()
        except CallFailed as failed:
            transfers.close()
            leg.reject(failed.status if 400 <= failed.status < 700 else 480)
            return
        try:
            await leg.answer()
        except Exception:
            transfers.close()
            await live.hangup("caller_hangup")
            return
        await live.mark_answered()
        limits = self.registry.spawn(
            self.funding.keep_funded(live, admitted.quota), f"funding of {call.id}"
        )
        await bridge_until_one_hangs_up(live, leg, caller_side=leg, transfers=transfers)
        limits.cancel()

    # --- ringing a number's devices -------------------------------------------------------

    def bindings(self, number_id: str) -> list[DeviceReach]:
        """How to reach each registered contact of the number's devices."""
        found = []
        for login in self.directory.for_number(number_id):
            for binding in self.pbx.agent.lookup(f"sip:{login.username}@{self.pbx.sip_host}"):
                found.append(reach(binding))
        return found

    async def ring(
        self, live: LiveCall, bindings: list[DeviceReach], *, srtp: SrtpMode = "optional"
    ) -> None:
        """A number with no ``voice_url`` rings its registered devices; the first to answer
        is bridged to the caller. ``srtp="required"`` (the workspace's setting) offers the
        devices SRTP only."""
        bind_call(live.call_id, live.workspace_id)
        legs = []
        transfers = TransferInbox()
        for device in bindings:
            with contextlib.suppress(OSError, ValueError):
                leg = await self.pbx.dial(
                    device.contact,
                    from_uri=f"sip:{live.from_}@{self.pbx.sip_host}",
                    destination=device.destination,
                    ring_timeout=30,
                    extra_headers=[("Route", hop) for hop in device.route],
                    srtp=srtp,
                    codecs=WIDEBAND_CODECS,  # a phone may speak Opus or G.722; a trunk G.711
                )
                self.registry.hold(live.call_id, leg)  # the caller's call owns its ringing
                transfers.accept(leg)  # its phone may transfer the caller once it answers
                legs.append(leg)
        answered: OutboundLeg | None = None
        waits: dict[asyncio.Future[object], OutboundLeg] = {
            asyncio.ensure_future(leg.wait_answer()): leg for leg in legs
        }
        pending = set(waits)
        gone: asyncio.Future[object] = asyncio.ensure_future(live.leg.wait_ended())
        while pending and answered is None and not gone.done():
            done, pending = await asyncio.wait(pending | {gone}, return_when="FIRST_COMPLETED")
            pending.discard(gone)
            answered = next((waits[f] for f in done if f is not gone and not f.exception()), None)
        gone.cancel()
        for leg in legs:
            if leg is not answered and not leg.ended:
                with contextlib.suppress(Exception):
                    await leg.cancel()
        if answered is None:
            transfers.close()
            await live.hangup("no_answer")
            return
        try:
            await live.answer()
        except BaseException:
            transfers.close()
            raise
        await bridge_until_one_hangs_up(live, answered, caller_side=live.leg, transfers=transfers)


def _claimed_user(request: Request) -> str:
    """The username a request claims before any digest: REGISTER's To, else its From."""
    return (request.to if request.method == "REGISTER" else request.from_).uri.user or ""
