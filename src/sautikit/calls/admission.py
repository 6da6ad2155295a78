"""Admission: the one path every new call takes before it exists (SPEC §6, §8).

An inbound call, a registered device calling out, a ``dial`` action's child leg and a
``POST /v1/calls`` all pass :meth:`Admission.admit`, in the transaction that inserts the
call, and in this order:

1. **number owner** — whose call it is: the called number's workspace (inbound), a number
   the workspace holds as ``from`` (API, device), or a caller id the workspace may show
   (a child leg: a workspace number or the parent's From or To, SPEC §3);
2. **destination authorisation** (every call going out): the workspace's allow-lists;
   and whether it stays **on-net** (:func:`~sautikit.calls.routing.is_on_net`: a number
   of this deployment), which its route and its rate follow;
3. **limits**: live calls and calls per second (:class:`CallRateGuard`), for a call that
   starts a conversation (API, device); a ``dial`` leg is part of its parent's call, which
   counts once (SPEC §6);
4. **funding**: the wallet holds the call's first slice of credit
   (:mod:`sautikit.billing.quota`), or it is refused.

**Lock order**, here and only here: after the reads of step 1, the first lock an admission
takes is the workspace's wallet row (the ledger's own first lock, see
:mod:`sautikit.billing.ledger`); the limits are counted and the hold placed under it. So
concurrent admissions of one workspace queue on that one row, and never wait on each
other in opposite orders: on PostgreSQL a burst of ``POST /v1/calls`` answers 201, 402 or
429, never a deadlock.

Each refusal is its own exception, so each entry point answers in its own protocol (a SIP
status, an HTTP error, a ``dial`` failure) while the rules stay here, once. Nothing is
written unless every step passes: the caller's transaction rolls back on a refusal.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.billing.authorisation import DestinationError, authorise_destination
from sautikit.billing.ledger import InsufficientFunds, WalletState, lock_wallet
from sautikit.billing.numbers import active_number
from sautikit.billing.quota import Quota, open_quota
from sautikit.billing.rating import call_rate_direction, rate_for
from sautikit.calls.limits import CallLimitExceeded, CallRateGuard
from sautikit.calls.records import record_started
from sautikit.calls.routing import (
    MAX_ON_NET_HOPS,
    OnNetLoop,
    is_on_net,
    normalise_number,
    on_net_hops,
)
from sautikit.config import Settings
from sautikit.db.models import Call, Number, Workspace
from sautikit.ids import new_id

__all__ = [
    "Admission",
    "Admitted",
    "CallAsk",
    "CallLimitExceeded",
    "DestinationError",
    "InsufficientFunds",
    "NumberNotOwned",
    "Origin",
    "ParentCall",
]


class Origin(enum.StrEnum):
    """Where a new call comes from."""

    INBOUND = "inbound"
    DEVICE = "device"
    CHILD = "child"
    API = "api"


class NumberNotOwned(LookupError):
    """The number the call would be made as (or to, inbound) is not the workspace's."""


@dataclass(frozen=True)
class ParentCall:
    """The live call a child leg is dialled from."""

    call_id: str
    from_: str
    to: str
    events_url: str | None


@dataclass(frozen=True)
class CallAsk:
    """A call asked for, before admission. ``to`` is the destination (the called number,
    inbound); ``caller`` the number it is made as (inbound: the caller's number; a child
    leg: the caller id asked for, or None for the parent's From)."""

    origin: Origin
    to: str
    caller: str | None
    workspace_id: str | None = None
    """None only inbound: the called number says whose call it is."""
    parent: ParentCall | None = None
    action_url: str | None = None
    method: str = "POST"
    events_url: str | None = None
    fallback_url: str | None = None
    ring_timeout_seconds: int = 30
    record: str | None = None
    max_duration_seconds: int | None = None
    owner: str | None = None
    sip_call_id: str | None = None
    sip_dialog: dict[str, Any] | None = None
    """The leg's SIP dialog as crash recovery needs it (``calls.recovery.dialog_column``)."""


@dataclass(frozen=True)
class Admitted:
    """An admitted call: its row (``queued``, with ``call.started`` written), its
    workspace, the workspace number it belongs to, and the quota its hold pays for."""

    call: Call
    workspace: Workspace
    number: Number | None
    quota: Quota


class Admission:
    def __init__(self, settings: Settings, rate_guard: CallRateGuard | None = None) -> None:
        self.settings = settings
        self.rate_guard = rate_guard or CallRateGuard()

    async def admit(self, session: AsyncSession, ask: CallAsk) -> Admitted:
        """Admit ``ask`` in ``session``'s transaction, or raise :class:`NumberNotOwned`,
        :class:`DestinationError`, :class:`CallLimitExceeded` or
        :class:`InsufficientFunds` (then the caller must roll back)."""
        workspace, number, call = await self._owner(session, ask)
        if ask.origin is not Origin.INBOUND:
            destination = authorise_destination(
                workspace, ask.to, allow_private_hosts=self.settings.allow_private_http
            )
            call.to_number = destination.address
            call.on_net = await is_on_net(session, call.to_number)
            if call.on_net and ask.parent is not None:
                hops = await on_net_hops(session, ask.parent.call_id)
                if hops >= MAX_ON_NET_HOPS:
                    raise OnNetLoop(
                        f"{call.to_number} is reached through this platform {hops} times "
                        "already: a dial loop"
                    )
        wallet = await lock_wallet(session, workspace.id)  # the lock order: module notes
        if ask.origin in (Origin.API, Origin.DEVICE):
            await self.rate_guard.admit(session, workspace)
        quota = await self.fund(session, workspace, call, wallet=wallet)
        await record_started(session, call)
        return Admitted(call, workspace, number, quota)

    async def _owner(
        self, session: AsyncSession, ask: CallAsk
    ) -> tuple[Workspace, Number | None, Call]:
        """Step 1: whose call this is, and the row it will be."""
        call = Call(
            id=new_id(),
            direction="inbound" if ask.origin is Origin.INBOUND else "outbound",
            to_number=ask.to,
            action_url=ask.action_url,
            method=ask.method,
            events_url=ask.events_url,
            fallback_url=ask.fallback_url,
            ring_timeout_seconds=ask.ring_timeout_seconds,
            record=ask.record,
            max_duration_seconds=ask.max_duration_seconds,
            owner=ask.owner,
            sip_call_id=ask.sip_call_id,
            sip_dialog=ask.sip_dialog,
        )
        number: Number | None
        if ask.origin is Origin.INBOUND:
            number = await active_number(session, ask.to)
            if number is None or number.workspace_id is None:
                raise NumberNotOwned(f"{ask.to} is not a number of this platform")
            call.from_number = ask.caller or ""
            call.action_url = number.voice_url
            call.method = number.voice_method
            call.events_url = number.events_url
            call.fallback_url = number.fallback_url
            workspace_id = number.workspace_id
        else:
            assert ask.workspace_id is not None
            workspace_id = ask.workspace_id
            if ask.origin is Origin.CHILD:
                assert ask.parent is not None
                number = None
                call.from_number = await self._caller_id(session, workspace_id, ask)
                call.parent_call_id = ask.parent.call_id
                call.events_url = ask.parent.events_url
            else:
                number = await active_number(session, ask.caller or "", workspace_id=workspace_id)
                if number is None:
                    raise NumberNotOwned(f"{ask.caller} is not an active number of this workspace")
                call.from_number = number.e164
                call.events_url = ask.events_url or number.events_url
        if number is not None:
            call.number_id = number.id
        call.workspace_id = workspace_id
        workspace = await session.get(Workspace, workspace_id)
        if workspace is None:
            raise NumberNotOwned(f"no workspace {workspace_id}")
        return workspace, number, call

    async def _caller_id(self, session: AsyncSession, workspace_id: str, ask: CallAsk) -> str:
        """SPEC §3: a workspace number, or the From or To of the call being bridged."""
        assert ask.parent is not None
        if ask.caller is None:
            return ask.parent.from_
        wanted = normalise_number(ask.caller)
        if wanted in (ask.parent.from_, ask.parent.to):
            return wanted
        if await active_number(session, wanted, workspace_id=workspace_id) is not None:
            return wanted
        raise NumberNotOwned(f"caller id {ask.caller} is not a number of this workspace")

    async def fund(
        self,
        session: AsyncSession,
        workspace: Workspace,
        call: Call,
        *,
        wallet: WalletState | None = None,
    ) -> Quota:
        """Step 4: hold the call's first slice (the minimum funding) at its rate. With
        ``wallet`` (locked by :meth:`admit`) the call is new: it has no hold yet."""
        direction = call_rate_direction(call.direction, call.on_net)
        rate = await rate_for(
            session, workspace.id, direction, call.to_number, settings=self.settings
        )
        session.add(call)
        await session.flush()
        return await open_quota(
            session,
            workspace.id,
            call.id,
            rate.rate_per_minute_minor,
            seconds=self.settings.min_call_funding_seconds,
            wallet=wallet,
            new_call=wallet is not None,
        )
