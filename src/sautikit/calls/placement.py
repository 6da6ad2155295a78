"""Outbound calls: an API call once it is queued, and a ``dial`` action's child legs.

An API call was admitted (and its ``call.started`` written) by the request that made it;
the process that wins the queued row dials it. A child leg is admitted here, in its own
transaction, then dialled while its parent listens to ringback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.billing.quota import Quota
from sautikit.calls.admission import (
    Admission,
    Admitted,
    CallAsk,
    CallLimitExceeded,
    DestinationError,
    InsufficientFunds,
    NumberNotOwned,
    Origin,
    ParentCall,
)
from sautikit.calls.application import AppRunner
from sautikit.calls.funding import Funding
from sautikit.calls.recording import RECORD_FROM_ANSWER, CallRecording
from sautikit.calls.records import CallRecords, end_call
from sautikit.calls.recovery import QUEUE_EXPIRED, QUEUED_UNFUNDED
from sautikit.calls.registry import CallRegistry
from sautikit.calls.routing import NoRoute, PlatformAddress, Trunks
from sautikit.calls.status import CallStatus
from sautikit.db import Database
from sautikit.db.models import Call, Workspace
from sautikit.db.types import rows_changed, utcnow
from sautikit.logs import bind_call
from sautikit.media import PortsExhausted
from sautikit.pbx import OutboundLeg, Pbx
from sautikit.recordings.pipeline import RecordingPipeline
from sautikit.sip.sdp import DEFAULT_CODECS, WIDEBAND_CODECS
from sautikit.voice.control import CallEnded, DialTarget
from sautikit.voice.failure import CallErrorDetail, not_sent_error
from sautikit.voice.live import CallHost, DialRefused, LiveCall

__all__ = ["Dialler", "Placement"]

log = logging.getLogger(__name__)

CANNOT_DIAL = (NoRoute, OSError, ValueError, PortsExhausted)
"""Why a leg cannot be sent: no route, a socket or address error, no RTP port left."""


def _not_sent(error: Exception) -> CallErrorDetail:
    if isinstance(error, NoRoute):
        return not_sent_error(
            "call.no_route",
            f"{error}: add a trunk whose prefix matches (sautikit trunks add --prefix …)",
        )
    if isinstance(error, OSError):
        return not_sent_error("call.trunk_unreachable", f"the call could not be sent: {error}")
    if isinstance(error, PortsExhausted):
        return not_sent_error("call.overloaded", f"the call could not be sent: {error}")
    return not_sent_error("call.invalid_destination", f"the call could not be sent: {error}")


class Dialler:
    """Sends an admitted call's leg where its route says (:mod:`sautikit.calls.routing`):
    this platform for an on-net call, else a trunk, or a SIP URI's own host."""

    def __init__(self, pbx: Pbx, trunks: Trunks) -> None:
        self.pbx = pbx
        self.trunks = trunks

    async def dial(self, call: Call, ring_timeout: float) -> OutboundLeg:
        """Raises one of :data:`CANNOT_DIAL` when it cannot be sent."""
        platform = None
        if call.on_net:
            platform = PlatformAddress(self.pbx.listen_host, self.pbx.port, self.pbx.sip_host)
        route = self.trunks.route(call.to_number, caller=call.from_number, on_net=platform)
        peers = await self.trunks.peers(route)
        return await self.pbx.dial(
            route.target,
            from_uri=f"sip:{call.from_number}@{self.pbx.sip_host}",
            destination=peers[0] if peers else route.destination,
            alternates=peers[1:],
            credentials=route.credentials,
            ring_timeout=ring_timeout,
            extra_headers=route.headers,
            srtp=route.srtp,
            # A trunk (and our own on-net hop) gets G.711; a SIP URI dialled directly is
            # usually a phone, offered Opus and G.722 first.
            codecs=DEFAULT_CODECS if route.trunk or call.on_net else WIDEBAND_CODECS,
        )


class Placement:
    def __init__(
        self,
        host: CallHost,
        database: Database,
        admission: Admission,
        records: CallRecords,
        registry: CallRegistry,
        dialler: Dialler,
        runner: AppRunner,
        funding: Funding,
        recordings: RecordingPipeline,
        *,
        node: str,
        accepting: Callable[[], bool],
    ) -> None:
        self.accepting = accepting
        self.host = host
        self.database = database
        self.admission = admission
        self.records = records
        self.registry = registry
        self.dialler = dialler
        self.runner = runner
        self.funding = funding
        self.recordings = recordings
        self.node = node

    def report_dialled(self, live: LiveCall) -> None:
        """The leg's INVITE went out: store its dialog before any answer comes back."""
        self.records.dialled(live.call_id, live.leg.call_id, self.registry.dialogs(live))

    def report_ringing(self, live: LiveCall) -> None:
        """A leg's 180/183: record ``ringing`` in the order of the call's other changes."""

        self.records.ringing(live.call_id, self.registry.dialogs(live))

    async def place(self, call_id: str) -> None:
        """Dial a queued API call, if this process wins it (a draining one leaves it to
        the others)."""
        if not self.accepting():
            return
        bind_call(call_id)

        async def claim(session: AsyncSession) -> tuple[Call, Workspace, Quota] | None:
            claimed = await session.execute(
                update(Call)
                .where(Call.id == call_id, Call.status == CallStatus.QUEUED, Call.owner.is_(None))
                .values(owner=self.node)
            )
            if rows_changed(claimed) != 1:
                return None
            call = await session.get(Call, call_id)
            assert call is not None
            age = (utcnow() - call.created_at).total_seconds()
            if age > self.admission.settings.queued_call_expiry_seconds:
                # Too late to ring anyone: fail it with its reason rather than dial late.
                await end_call(
                    session,
                    call,
                    "network_error",
                    settings=self.admission.settings,
                    error=QUEUE_EXPIRED,
                )
                return None
            workspace = await session.get(Workspace, call.workspace_id)
            assert workspace is not None
            try:
                # Admitted by its request, maybe long ago and by another process (a crash,
                # a missed notice): the wallet must still pay its first slice today.
                quota = await self.admission.fund(session, workspace, call)
            except InsufficientFunds as short:
                log.info("call %s: no longer funded, not dialled: %s", call.id, short)
                await end_call(
                    session,
                    call,
                    "insufficient_funds",
                    settings=self.admission.settings,
                    error=QUEUED_UNFUNDED,
                )
                return None
            return call, workspace, quota

        claimed = await self.database.write(claim, what=f"claim call {call_id}", key=call_id)
        if claimed is None:
            return
        call, workspace, quota = claimed
        try:
            leg = await self.dialler.dial(call, call.ring_timeout_seconds)
        except CANNOT_DIAL as error:
            log.info("call %s: cannot be placed: %s", call.id, error)
            await self.records.ended(call.id, "network_error", error=_not_sent(error))
            return
        except BaseException:
            await self.records.ended(call.id, "network_error")  # never left queued
            raise
        live = self.registry.adopt(self.host, leg, call)
        self.report_dialled(live)
        leg.on_ringing = lambda: self.report_ringing(live)
        try:
            await leg.wait_answer()
        except Exception:
            return  # LiveCall's watcher records how it ended
        await live.mark_answered()
        recording = None
        if call.record == RECORD_FROM_ANSWER:
            recording = await CallRecording.start(self.host, self.recordings, live)
        try:
            await self.runner.run(live, call, workspace, quota)
        finally:
            if recording is not None:
                await recording.finish_shielded()

    async def place_child(
        self, parent: LiveCall, target: DialTarget, caller_id: str | None, ring_timeout: float
    ) -> LiveCall:
        """Admit and dial a ``dial`` action's leg; raises :class:`DialRefused`, or
        ``CallEnded`` when the parent hung up meanwhile."""

        async def admit(session: AsyncSession) -> Admitted:
            parent_record = await session.get(Call, parent.call_id)
            ask = CallAsk(
                Origin.CHILD,
                to=target.address,
                caller=caller_id,
                workspace_id=parent.workspace_id,
                parent=ParentCall(
                    parent.call_id,
                    parent.from_,
                    parent.to,
                    parent_record.events_url if parent_record else None,
                ),
                ring_timeout_seconds=int(ring_timeout),
                owner=self.node,
            )
            return await self.admission.admit(session, ask)

        try:
            admitted = await self.database.write(admit, what=f"admit a dial of {parent.call_id}")
        except NumberNotOwned as refused:
            raise DialRefused(str(refused), "numbers.not_owned") from None
        except DestinationError as refused:
            raise DialRefused(str(refused), "destinations.not_allowed") from None
        except CallLimitExceeded as refused:
            raise DialRefused(str(refused), "calls.limit_exceeded") from None
        except InsufficientFunds as refused:
            raise DialRefused(str(refused), "wallet.insufficient_funds") from None
        child = admitted.call
        if parent.ended:
            # The caller hung up while the leg was admitted (the writer is busy under
            # load): ring nobody for a caller who is gone.
            await self.records.ended(child.id, "normal_clearing")
            raise CallEnded
        try:
            leg = await self.dialler.dial(child, ring_timeout)
        except CANNOT_DIAL as error:
            not_sent = _not_sent(error)
            await self.records.ended(child.id, "network_error", error=not_sent)
            raise DialRefused(str(error), not_sent["code"]) from None
        except BaseException:
            await self.records.ended(child.id, "network_error")  # never left queued
            raise
        live = self.registry.adopt(self.host, leg, child)
        self.report_dialled(live)
        leg.on_ringing = lambda: self.report_ringing(live)
        self.registry.spawn(
            self.funding.keep_funded(live, admitted.quota), f"funding of {child.id}"
        )
        return live
