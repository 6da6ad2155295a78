"""Ending the dialogs of a process that died, from what it stored of them.

A process that crashes mid-call leaves its far ends up: the carrier keeps billing a leg
nobody hears, a caller keeps listening to silence. The live :class:`~sautikit.sip.Call`
objects died with the process, so the owner stores a :class:`DialogSnapshot` of each
call (the INVITE and, once answered, the dialog of §12) and the next process ends them
with a :class:`Teardown`, built on the transaction layer alone:

* an answered call, either side of it — ``BYE`` in the stored dialog (§15.1.1), with a
  CSeq well past the last one stored so a re-INVITE sent after the snapshot cannot make
  it look out of order (§12.2.1.1 asks only for a higher number); a 401/407 to it is
  answered once with the login ``credentials_for`` gives for the far end's host (a
  carrier trunk's: the snapshot itself holds no credentials);
* a call we placed that was not answered yet — ``CANCEL`` of the stored INVITE (§9.1).
  The INVITE's client transaction died with the process, so the 487 that follows is
  ACKed here (§17.1.1.3); a 2xx that crossed the CANCEL is ACKed and ended with BYE
  (§13.2.2.4), as a live call would do;
* a call we received that was not answered yet — a final ``480`` to the stored INVITE
  (§13.3.1.3; a UAS may not send BYE in an early dialog, §15).

Snapshots are plain JSON (:meth:`DialogSnapshot.to_json`) so they can live in a database
column; they hold no credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from sautikit.sip.client_auth import answer_challenge
from sautikit.sip.dialog import Dialog, DialogState
from sautikit.sip.errors import SipParseError
from sautikit.sip.message import Request, Response, parse_message
from sautikit.sip.transaction import _ack_for_failure, new_branch
from sautikit.sip.transport import Peer, SipTransportError, TransportName
from sautikit.sip.uri import NameAddress, SipUri
from sautikit.sip.useragent import CallState, IncomingCall, OutgoingCall, UserAgent

__all__ = ["CSEQ_MARGIN", "DialogSnapshot", "Teardown", "TeardownOutcome"]

logger = logging.getLogger(__name__)

CSEQ_MARGIN = 1000
"""Added to the stored local CSeq before the BYE: in-dialog requests sent after the
snapshot (a hold re-INVITE) used numbers the snapshot never saw."""

Role = Literal["uac", "uas"]
TeardownOutcome = Literal["bye", "cancel", "rejected", "nothing"]


def _peer(value: Any) -> Peer:
    transport, host, port = value
    return Peer(cast(TransportName, str(transport)), str(host), int(port))


def _dialog_json(dialog: Dialog) -> dict[str, Any]:
    return {
        "call_id": dialog.call_id,
        "local_tag": dialog.local_tag,
        "remote_tag": dialog.remote_tag,
        "local_uri": str(dialog.local_uri),
        "remote_uri": str(dialog.remote_uri),
        "remote_target": str(dialog.remote_target),
        "local_contact": str(dialog.local_contact),
        "local_cseq": dialog.local_cseq,
        "route_set": [str(route) for route in dialog.route_set],
        "is_uac": dialog.is_uac,
        "transport": dialog.transport,
        "remote_peer": list(dialog.remote_peer) if dialog.remote_peer else None,
    }


def _dialog_of(data: dict[str, Any]) -> Dialog:
    return Dialog(
        call_id=str(data["call_id"]),
        local_tag=str(data["local_tag"]),
        remote_tag=str(data["remote_tag"]),
        local_uri=NameAddress.parse(data["local_uri"]),
        remote_uri=NameAddress.parse(data["remote_uri"]),
        remote_target=SipUri.parse(data["remote_target"]),
        local_contact=NameAddress.parse(data["local_contact"]),
        local_cseq=int(data["local_cseq"]),
        remote_cseq=None,
        route_set=[NameAddress.parse(route) for route in data["route_set"]],
        state=DialogState.CONFIRMED,
        is_uac=bool(data["is_uac"]),
        transport=cast(TransportName, data["transport"]),
        remote_peer=_peer(data["remote_peer"]) if data.get("remote_peer") else None,
    )


@dataclass(frozen=True)
class DialogSnapshot:
    """What it takes to end one call without its live object.

    ``invite`` is the INVITE as sent (``uac``) or as received (``uas``, with the
    ``received``/``rport`` the transport stamped on its Via); ``peer`` is where it went or
    came from; ``local_tag`` is our To tag on a received call; ``dialog`` is the
    confirmed dialog once the call was answered (``None`` before).
    """

    role: Role
    invite: Request
    peer: Peer
    local_tag: str | None = None
    dialog: Dialog | None = None

    @property
    def answered(self) -> bool:
        return self.dialog is not None

    @classmethod
    def of_call(cls, call: IncomingCall | OutgoingCall) -> DialogSnapshot:
        """The snapshot of a live call as it stands now."""
        answered = call.state in (CallState.ANSWERED, CallState.CONNECTING)
        dialog = call.dialog if answered and call.dialog is not None else None
        if isinstance(call, IncomingCall):
            return cls("uas", call.request, call.source, call.local_tag, dialog)
        return cls("uac", call.invite, call.destination, None, dialog)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "role": self.role,
            "invite": self.invite.encode().decode("utf-8", "replace"),
            "peer": list(self.peer),
            "local_tag": self.local_tag,
            "dialog": _dialog_json(self.dialog) if self.dialog is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DialogSnapshot:
        """Raises ValueError (or SipParseError) for a snapshot that cannot be read."""
        if data.get("version") != 1 or data.get("role") not in ("uac", "uas"):
            raise ValueError(f"not a dialog snapshot: {str(data)[:80]}")
        invite = parse_message(str(data["invite"]).encode())
        if not isinstance(invite, Request) or invite.method != "INVITE":
            raise ValueError("the snapshot's INVITE is not an INVITE request")
        dialog = data.get("dialog")
        return cls(
            role=cast(Role, data["role"]),
            invite=invite,
            peer=_peer(data["peer"]),
            local_tag=data.get("local_tag"),
            dialog=_dialog_of(dialog) if dialog else None,
        )


class Teardown:
    """Ends stored dialogs through ``agent``'s transaction layer (see the module doc).

    Install it once per user agent; it takes the agent's ``on_orphan_response`` to see the
    answers to INVITEs whose transactions died with the process that sent them.
    """

    def __init__(
        self,
        agent: UserAgent,
        *,
        credentials_for: Callable[[str], tuple[str, str] | None] | None = None,
    ) -> None:
        self._agent = agent
        #: The login for a host that challenges our BYE (a carrier trunk's), if any.
        self._credentials_for = credentials_for
        self._layer = agent._layer
        #: Cancelled INVITEs by (Call-ID, CSeq number), whose final answer we must ACK.
        self._cancelled: dict[tuple[str, int], tuple[Request, Peer]] = {}
        agent.on_orphan_response = self._on_orphan_response

    async def end(self, snapshot: DialogSnapshot) -> TeardownOutcome:
        """Send what ends ``snapshot``'s call and wait for the answer to it (up to the
        transaction's own timeout). Answers what was sent."""
        if snapshot.dialog is not None:
            await self._bye(snapshot.dialog)
            return "bye"
        if snapshot.role == "uac":
            await self._cancel(snapshot.invite, snapshot.peer)
            return "cancel"
        await self._reject(snapshot)
        return "rejected"

    async def _bye(self, dialog: Dialog) -> None:
        dialog.local_cseq += CSEQ_MARGIN
        bye = dialog.create_request("BYE")
        bye.headers.add("Reason", 'SIP;cause=500;text="the call\'s process restarted"')
        hop = dialog.next_hop()
        response = await self._layer.send_request(bye, hop).final_response
        credentials = self._credentials_for(hop.host) if self._credentials_for else None
        if response.status in (401, 407) and credentials is not None:
            # §22.2: a carrier challenging the BYE gets it again with the trunk's login.
            retry = answer_challenge(bye, response, credentials, dialog.local_cseq + 1)
            if retry is not None:
                dialog.local_cseq += 1
                response = await self._layer.send_request(retry, hop).final_response
        logger.info("BYE for stored dialog %s: %d", dialog.call_id, response.status)

    async def _cancel(self, invite: Request, peer: Peer) -> None:
        key = (invite.call_id, invite.cseq.number)
        self._cancelled[key] = (invite, peer)
        try:
            response = await self._layer.send_request(invite.create_cancel(), peer).final_response
            logger.info("CANCEL of stored INVITE %s: %d", invite.call_id, response.status)
            # The INVITE's final answer follows the CANCEL's; give it time to be ACKed.
            await asyncio.sleep(self._agent.timers.t1 * 4)
        finally:
            self._cancelled.pop(key, None)

    async def _reject(self, snapshot: DialogSnapshot) -> None:
        response = snapshot.invite.create_response(480, to_tag=snapshot.local_tag)
        await self._layer.transport.send_response(response, snapshot.peer)
        logger.info("480 to stored INVITE %s", snapshot.invite.call_id)

    def _on_orphan_response(self, response: Response, source: Peer) -> None:
        try:
            cseq = response.cseq
            found = self._cancelled.get((response.call_id, cseq.number))
        except SipParseError:
            return
        if found is None or cseq.method != "INVITE" or response.is_provisional:
            return
        invite, peer = found
        if response.is_success:  # answered as the CANCEL crossed it: ACK, then BYE
            dialog = Dialog.from_uac(invite, response, peer.transport)
            ack = dialog.create_ack(invite)
            ack.headers.prepend(
                "Via", str(self._layer.transport.make_via(peer.transport, new_branch()))
            )
            self._send_stateless(ack, dialog.next_hop())
            self._agent._spawn(self._bye(dialog), "BYE to a stored dialog answered late")
            return
        self._send_stateless(_ack_for_failure(invite, response), peer)

    def _send_stateless(self, message: Request, destination: Peer) -> None:
        async def send() -> None:
            with contextlib.suppress(SipTransportError):
                await self._layer.send_stateless(message, destination)

        self._agent._spawn(send(), f"{message.method} of a stored dialog")
