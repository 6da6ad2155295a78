"""Calls arriving from the network: to a workspace's number (its app, or its registered
devices), or from a registered device calling out."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.billing.numbers import active_number
from sautikit.calls.admission import (
    Admission,
    Admitted,
    CallAsk,
    InsufficientFunds,
    NumberNotOwned,
    Origin,
)
from sautikit.calls.application import AppRunner
from sautikit.calls.devices import Devices
from sautikit.calls.records import mark_ringing
from sautikit.calls.recovery import dialog_column
from sautikit.calls.registry import CallRegistry
from sautikit.calls.routing import normalise_number
from sautikit.db import Database
from sautikit.db.models import Workspace
from sautikit.logs import bind_call
from sautikit.pbx import InboundLeg
from sautikit.sip.sdp import SrtpMode
from sautikit.sip.teardown import DialogSnapshot
from sautikit.sip.token_auth import parse_client_user
from sautikit.voice.live import CallHost

__all__ = ["Inbound"]


log = logging.getLogger(__name__)

#: RFC 3261 §20.43: a 399 warning says why, in words an operator can act on.
_SRTP_WARNING = '399 sautikit "SRTP (SDES a=crypto) is required here"'


class Inbound:
    def __init__(
        self,
        host: CallHost,
        database: Database,
        admission: Admission,
        registry: CallRegistry,
        devices: Devices,
        runner: AppRunner,
        *,
        node: str,
        accepting: Callable[[], bool],
    ) -> None:
        self.host = host
        self.database = database
        self.admission = admission
        self.registry = registry
        self.devices = devices
        self.runner = runner
        self.node = node
        self.accepting = accepting

    async def _client_calls_out(self, leg: InboundLeg, user: str, called: str) -> None:
        """A browser client (its token checked a moment ago) calls out as the number its
        token names; without one it may not (403)."""
        claims = self.devices.client(user)
        if claims is None or claims.caller_id is None:
            log.info("browser client %r has no caller id: call to %s refused", user[:80], called)
            leg.reject(403, "Forbidden")
            return
        if await self._plain_refused(leg, claims.workspace_id):
            return
        await self.devices.call_out_as(
            leg, claims.workspace_id, claims.caller_id, f"client {claims.identity}", called
        )

    async def on_inbound(self, leg: InboundLeg) -> None:
        if not self.accepting():
            leg.reject(503, "Service Unavailable")
            return
        called = normalise_number(leg.called)
        client = parse_client_user(leg.sip.authenticated_user or "")
        if leg.sip.authenticated_user is not None and client is not None:
            await self._client_calls_out(leg, leg.sip.authenticated_user, called)
            return
        if leg.sip.authenticated_user is not None:
            device = self.devices.directory.login(leg.sip.authenticated_user)
            if device is None:
                # Authenticated a moment ago, gone now: revoked, or its number released.
                log.info(
                    "SIP user %r has no device login any more: call to %s refused (403)",
                    leg.sip.authenticated_user[:64],
                    called[:40],
                )
                leg.reject(403, "Forbidden")
                return
            if await self._plain_refused(leg, device.workspace_id):
                return
            # A device calling out (SPEC §6), to a carrier or, on-net, to a number of this
            # deployment — its own workspace's too: routed and billed as its call.
            await self.devices.call_out(leg, device, called)
            return
        async with self.database.sessions() as session:
            number = await active_number(session, called)
        if await self._plain_refused(leg, number.workspace_id if number is not None else None):
            return
        ringing_devices = []
        if number is not None and not number.voice_url:
            ringing_devices = self.devices.bindings(number.id)
            if not ringing_devices:
                # Registered through another node since this one last read them.
                await self.devices.reload_registrations()
                ringing_devices = self.devices.bindings(number.id)
            if not ringing_devices:
                leg.reject(480, "Temporarily Unavailable")
                return
        caller = normalise_number(leg.caller)
        ask = CallAsk(
            Origin.INBOUND,
            to=called,
            caller=caller,
            owner=self.node,
            sip_call_id=leg.call_id,
            sip_dialog=dialog_column([DialogSnapshot.of_call(leg.sip)]),
        )

        async def admit(session: AsyncSession) -> Admitted:
            admitted = await self.admission.admit(session, ask)
            await mark_ringing(session, admitted.call)
            return admitted

        try:
            admitted = await self.database.write(admit, what=f"admit inbound {leg.call_id}")
        except NumberNotOwned:
            leg.reject(404, "Not Found")
            return
        except InsufficientFunds:  # the transaction rolled back: no call was recorded
            leg.reject(402, "Payment Required")
            return
        call = admitted.call
        bind_call(call.id, call.workspace_id)  # this task runs the one INVITE
        # A trunk may challenge our BYE (or re-INVITE) of a call it brought in: answer it
        # with the trunk's own login, as for the calls we send it.
        leg.sip.answer_challenges_with(self.devices.trunks.credentials_for(leg.sip.source.host))
        live = self.registry.adopt(self.host, leg, call)
        leg.ring()
        if ringing_devices:
            srtp: SrtpMode = "required" if admitted.workspace.srtp == "required" else "optional"
            self.registry.spawn(
                self.devices.ring(live, ringing_devices, srtp=srtp), f"call {call.id}"
            )
        else:
            self.registry.spawn(
                self.runner.run(live, call, admitted.workspace, admitted.quota),
                f"call {call.id}",
            )

    async def _plain_refused(self, leg: InboundLeg, workspace_id: str | None) -> bool:
        """Refuse (488) a call whose media is plain RTP where SRTP is required: by the trunk
        it came from, or by the workspace whose number it calls (or whose device places it).
        True when refused."""
        if leg.media is None or leg.media.srtp is not None:
            return False
        if self.devices.trunks.on_net_caller(leg.sip.request):
            return False  # our own hop of an on-net call: its outer legs were checked
        required = self.devices.trunks.requires_srtp_from(leg.sip.source.host)
        if not required and workspace_id is not None:
            async with self.database.sessions() as session:
                workspace = await session.get(Workspace, workspace_id)
            required = workspace is not None and workspace.srtp == "required"
        if required:
            log.info("refusing plain RTP on call %s: SRTP is required", leg.call_id)
            leg.reject(488, "Not Acceptable Here", headers=[("Warning", _SRTP_WARNING)])
        return required
