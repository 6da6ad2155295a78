"""SIP transactions (RFC 3261 §17, with the RFC 6026 "Accepted" state) over the transports.

The four state machines of §17, driven by ``loop.call_later`` timers from a
:class:`TimerConfig` (shrink ``t1`` in tests):

* :class:`InviteClientTransaction` — Calling → Proceeding → Completed / Accepted; timer A
  retransmits over UDP, B times out (a synthetic 408 reaches the TU, §8.1.3.1), D absorbs
  retransmitted failures; the ACK for a 300–699 answer is built and sent here (§17.1.1.3).
* :class:`NonInviteClientTransaction` — Trying → Proceeding → Completed; timers E, F, K.
* :class:`InviteServerTransaction` — Proceeding → Completed → Confirmed, or Accepted; sends
  100 Trying at once, before the TU sees the INVITE (§17.2.1 allows it; it stops the
  caller's retransmissions even when the TU is slow, e.g. on an overloaded loop), answers
  a retransmitted INVITE with the last response (the final one too, 2xx included),
  retransmits failures on timer G until the ACK (absorbed here) or timer H; timer I, then
  L for 2xx.
* :class:`NonInviteServerTransaction` — Trying → Proceeding → Completed; timer J.

Following RFC 6026, a 2xx ends an INVITE transaction in *Accepted* instead of at once: the
client passes 2xx retransmissions to the TU until timer M, and the server absorbs INVITE
retransmissions until timer L (answering each with the 2xx again), so a repeated INVITE
never looks like a new call. Sending the
2xx again until its ACK arrives, and sending the ACK for a 2xx, belong to the dialog layer
(§13.3.1.4, §13.2.2.4): the seam is :meth:`InviteServerTransaction.respond` (still accepted
in Accepted), :meth:`TransactionLayer.send_stateless`, and the :class:`TransactionUser`
callbacks for ACKs and responses that match no transaction.

Matching follows §17.1.3 (branch + CSeq method) and §17.2.3 (branch + sent-by + method,
ACK matching its INVITE; RFC 2543 peers without the ``z9hG4bK`` cookie by Request-URI, From
tag, Call-ID, CSeq and top Via). A CANCEL gets its own server transaction and
:attr:`ServerTransaction.matched_invite` points at the INVITE transaction it cancels (§9.2).
"""

from __future__ import annotations

import abc
import asyncio
import enum
import ipaddress
import logging
import secrets
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

from sautikit.metrics import COUNTERS, response_class
from sautikit.sip.message import Request, Response
from sautikit.sip.transport import Peer, SipTransportError, SipTransportLayer, is_stream
from sautikit.sip.uri import BRANCH_MAGIC_COOKIE

__all__ = [
    "LOCAL_FAILURE_REASONS",
    "NO_RESPONSE_REASON",
    "UNREACHABLE_REASON",
    "ClientTransaction",
    "InviteClientTransaction",
    "InviteServerTransaction",
    "NonInviteClientTransaction",
    "NonInviteServerTransaction",
    "ResponseCallback",
    "ServerFailureCallback",
    "ServerTransaction",
    "TimerConfig",
    "TransactionLayer",
    "TransactionState",
    "TransactionStateError",
    "TransactionUser",
    "new_branch",
]

logger = logging.getLogger(__name__)

NO_RESPONSE_REASON = "No Response"
"""The reason phrase of the 408 this side makes up when nothing answered a request
(timer B or F): the far end is down, or nothing listens where the request went."""
UNREACHABLE_REASON = "Unreachable"
"""The reason phrase of the 503 this side makes up when a request could not be sent (a
refused connection, an unresolvable host, ICMP unreachable)."""
LOCAL_FAILURE_REASONS = frozenset({NO_RESPONSE_REASON, UNREACHABLE_REASON})


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """Timer base values (§17.1.1.1, Table 4); every other timer derives from them."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def transaction_timeout(self) -> float:
        """64*T1: timers B, F, H, J, L and M, and D (32 s at the default T1, §17.1.1.2)."""
        return 64 * self.t1


class TransactionState(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class TransactionStateError(RuntimeError):
    """The TU asked a transaction for something its state does not allow."""


class TransactionUser(Protocol):
    """What the layer above (UA core, dialogs) receives from the transaction layer."""

    def on_request(self, transaction: ServerTransaction) -> None:
        """A new request (never an ACK) in its fresh server transaction; answer with
        ``transaction.respond``."""

    def on_ack(self, ack: Request, source: Peer) -> None:
        """An ACK matching no INVITE server transaction in Completed: the ACK for a 2xx."""

    def on_stray_response(self, response: Response, source: Peer) -> None:
        """A response matching no client transaction, e.g. a 2xx repeated after timer M."""


ResponseCallback = Callable[[Response], None]
ServerFailureCallback = Callable[["ServerTransaction", str], None]
_Key = tuple[Hashable, ...]


def new_branch() -> str:
    """A fresh, globally unique RFC 3261 branch (§8.1.1.7)."""
    return BRANCH_MAGIC_COOKIE + secrets.token_hex(10)


def _server_key(request: Request, method: str) -> _Key:
    via = request.top_via
    branch = via.branch
    if branch is not None and branch.startswith(BRANCH_MAGIC_COOKIE):
        return ("3261", branch, via.host.lower(), via.port, method)
    # RFC 2543 matching (§17.2.3): the To tag is left out so the ACK finds its INVITE.
    return (
        "2543",
        str(request.uri),
        request.from_.tag,
        request.call_id,
        request.cseq.number,
        via.host.lower(),
        via.port,
        branch,
        method,
    )


def _client_key(branch: str, method: str) -> _Key:
    return (branch, method)


def _ack_for_failure(invite: Request, response: Response) -> Request:
    """The ACK for a 300-699 answer (§17.1.1.3): same Request-URI, Call-ID, From, top Via
    and Route as the INVITE, the response's To, and CSeq with method ACK."""
    ack = Request(method="ACK", uri=invite.uri)
    ack.headers.add("Via", invite.headers.get("Via") or "")
    for name in ("Route", "From"):
        for value in invite.headers.get_all(name):
            ack.headers.add(name, value)
    ack.headers.add("To", response.headers.get("To") or "")
    ack.headers.add("Call-ID", invite.call_id)
    ack.headers.add("CSeq", f"{invite.cseq.number} ACK")
    ack.headers.add("Max-Forwards", "70")
    return ack


class _Transaction(abc.ABC):
    """State, timers and sending shared by the four machines."""

    def __init__(self, layer: TransactionLayer, key: _Key, peer: Peer, state: TransactionState):
        self._layer = layer
        self.key = key
        self.peer = peer
        self.state = state
        self._timers: dict[str, asyncio.TimerHandle] = {}

    @property
    def reliable(self) -> bool:
        return is_stream(self.peer.transport)

    def _start_timer(self, name: str, delay: float, action: Callable[[], None]) -> None:
        self._stop_timer(name)
        self._timers[name] = self._layer.loop.call_later(delay, action)

    def _stop_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _terminate(self) -> None:
        self.state = TransactionState.TERMINATED
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._layer._forget(self)

    @abc.abstractmethod
    def _start(self) -> None:
        """Arm the timers of the initial state (and send, for a client transaction)."""

    @abc.abstractmethod
    def _on_transport_error(self, error: SipTransportError) -> None:
        """A send of this transaction failed (§17.1.4, §17.2.4)."""


class ClientTransaction(_Transaction):
    """A request we sent and the responses it gets (§17.1).

    Every response the TU should see goes to ``on_response``; the first final one (real or
    synthetic 408/503) also resolves :attr:`final_response`.
    """

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        destination: Peer,
        on_response: ResponseCallback | None,
        state: TransactionState,
    ) -> None:
        branch = request.top_via.branch
        if not branch:
            raise ValueError("the top Via of a request we send needs a branch")
        super().__init__(layer, _client_key(branch, request.method), destination, state)
        self.request = request
        self.final_response: asyncio.Future[Response] = layer.loop.create_future()
        self._on_response = on_response

    def _deliver(self, response: Response) -> None:
        if not response.is_provisional and not self.final_response.done():
            self.final_response.set_result(response)
        if self._on_response is not None:
            self._layer._call_user(self._on_response, response)

    def _send_request(self) -> None:
        self._layer._send(self.request, self.peer, self)

    def _fail(self, status: int, reason: str) -> None:
        """Give the TU a locally generated final response (§8.1.3.1) and stop; its
        ``reason`` is one of :data:`LOCAL_FAILURE_REASONS`, so the TU can tell it from a
        peer's answer."""
        if self.state is TransactionState.TERMINATED:
            return
        self._terminate()
        self._deliver(self.request.create_response(status, reason))

    def _on_transport_error(self, error: SipTransportError) -> None:
        logger.info("transport error on %s to %s: %s", self.request.method, self.peer, error)
        self._fail(503, UNREACHABLE_REASON)

    @abc.abstractmethod
    def receive_response(self, response: Response) -> None:
        """A response matched to this transaction (§17.1.3)."""


class InviteClientTransaction(ClientTransaction):
    """§17.1.1 with RFC 6026 §7.2: Calling, Proceeding, Completed, Accepted, Terminated."""

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        destination: Peer,
        on_response: ResponseCallback | None,
    ) -> None:
        super().__init__(layer, request, destination, on_response, TransactionState.CALLING)
        self._interval = layer.timers.t1
        self._ack: Request | None = None

    def _start(self) -> None:
        self._send_request()
        if not self.reliable:
            self._start_timer("A", self._interval, self._timer_a)
        self._start_timer("B", self._layer.timers.transaction_timeout, self._timer_b)

    def _timer_a(self) -> None:
        if self.state is TransactionState.CALLING:
            self._send_request()
            COUNTERS.sip_retransmissions["request_sent"] += 1
            self._interval *= 2  # timer A is not capped at T2 (§17.1.1.2)
            self._start_timer("A", self._interval, self._timer_a)

    def _timer_b(self) -> None:
        if self.state is TransactionState.CALLING:
            COUNTERS.sip_timeouts["client"] += 1
            self._fail(408, NO_RESPONSE_REASON)

    def receive_response(self, response: Response) -> None:
        state = self.state
        if response.is_provisional:
            if state in (TransactionState.CALLING, TransactionState.PROCEEDING):
                self.state = TransactionState.PROCEEDING
                self._stop_timer("A")
                self._stop_timer("B")
                self._deliver(response)
        elif response.is_success:
            if state in (TransactionState.CALLING, TransactionState.PROCEEDING):
                self.state = TransactionState.ACCEPTED
                self._stop_timer("A")
                self._stop_timer("B")
                timeout = self._layer.timers.transaction_timeout
                self._start_timer("M", timeout, self._terminate)
                self._deliver(response)
            elif state is TransactionState.ACCEPTED:
                self._deliver(response)  # a 2xx retransmission: the dialog layer re-ACKs
        elif state in (TransactionState.CALLING, TransactionState.PROCEEDING):
            self.state = TransactionState.COMPLETED
            self._stop_timer("A")
            self._stop_timer("B")
            self._ack = _ack_for_failure(self.request, response)
            self._layer._send(self._ack, self.peer, self)
            delay = 0.0 if self.reliable else self._layer.timers.transaction_timeout
            self._start_timer("D", delay, self._terminate)
            self._deliver(response)
        elif state is TransactionState.COMPLETED and self._ack is not None:
            self._layer._send(self._ack, self.peer, self)  # our ACK was lost: send it again

    def _on_transport_error(self, error: SipTransportError) -> None:
        if self.state is TransactionState.COMPLETED:
            self._terminate()  # the ACK could not go out; nothing left to report
        else:
            super()._on_transport_error(error)


class NonInviteClientTransaction(ClientTransaction):
    """§17.1.2: Trying, Proceeding, Completed, Terminated."""

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        destination: Peer,
        on_response: ResponseCallback | None,
    ) -> None:
        super().__init__(layer, request, destination, on_response, TransactionState.TRYING)
        self._interval = layer.timers.t1

    def _start(self) -> None:
        self._send_request()
        if not self.reliable:
            self._start_timer("E", self._interval, self._timer_e)
        self._start_timer("F", self._layer.timers.transaction_timeout, self._timer_f)

    def _timer_e(self) -> None:
        if self.state is TransactionState.TRYING:
            self._interval = min(2 * self._interval, self._layer.timers.t2)
        elif self.state is TransactionState.PROCEEDING:
            self._interval = self._layer.timers.t2
        else:
            return
        self._send_request()
        COUNTERS.sip_retransmissions["request_sent"] += 1
        self._start_timer("E", self._interval, self._timer_e)

    def _timer_f(self) -> None:
        if self.state in (TransactionState.TRYING, TransactionState.PROCEEDING):
            COUNTERS.sip_timeouts["client"] += 1
            self._fail(408, NO_RESPONSE_REASON)

    def receive_response(self, response: Response) -> None:
        if self.state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            return  # Completed absorbs retransmitted finals
        if response.is_provisional:
            self.state = TransactionState.PROCEEDING
            self._deliver(response)
            return
        self.state = TransactionState.COMPLETED
        self._stop_timer("E")
        self._stop_timer("F")
        delay = 0.0 if self.reliable else self._layer.timers.t4
        self._start_timer("K", delay, self._terminate)
        self._deliver(response)


class ServerTransaction(_Transaction):
    """A request we received and the responses we give it (§17.2).

    ``peer`` is where the request came from. The TU answers with :meth:`respond`.
    ``on_failure`` (optional, set by the TU) hears of a transport error or of an ACK that
    never came (timer H), per §17.2.4 / §17.2.1.
    """

    def __init__(
        self,
        layer: TransactionLayer,
        key: _Key,
        request: Request,
        source: Peer,
        state: TransactionState,
    ) -> None:
        super().__init__(layer, key, source, state)
        self.request = request
        self.last_response: Response | None = None
        self.on_failure: ServerFailureCallback | None = None
        #: For a CANCEL: the INVITE server transaction it matches, if any (§9.2).
        self.matched_invite: InviteServerTransaction | None = None

    @abc.abstractmethod
    def respond(self, response: Response) -> None:
        """Send the TU's response and move the state machine accordingly.

        :raises TransactionStateError: when the state admits no such response.
        """

    @abc.abstractmethod
    def receive_request(self, request: Request) -> None:
        """A retransmission of the request (or, for INVITE, its ACK)."""

    def _send_response(self, response: Response) -> None:
        self.last_response = response
        self._layer._send(response, self.peer, self)

    def _fail(self, reason: str) -> None:
        if self.state is TransactionState.TERMINATED:
            return
        self._terminate()
        if self.on_failure is not None:
            self._layer._call_user(self.on_failure, self, reason)

    def _on_transport_error(self, error: SipTransportError) -> None:
        self._fail(f"transport error: {error}")


class InviteServerTransaction(ServerTransaction):
    """§17.2.1 with RFC 6026 §7.1: Proceeding, Completed, Confirmed, Accepted, Terminated."""

    def __init__(self, layer: TransactionLayer, key: _Key, request: Request, source: Peer):
        super().__init__(layer, key, request, source, TransactionState.PROCEEDING)
        self._interval = layer.timers.t1

    def _start(self) -> None:
        """Nothing to arm: the 100 Trying went out before the TU saw the INVITE."""

    def send_trying(self) -> None:
        """100 Trying, sent by the layer as soon as the INVITE is new (§17.2.1)."""
        if self.last_response is None and self.state is TransactionState.PROCEEDING:
            self._send_response(self.request.create_response(100))

    def respond(self, response: Response) -> None:
        state = self.state
        if state is TransactionState.ACCEPTED and response.is_success:
            self._send_response(response)  # the TU's own 2xx retransmission
            return
        if state is not TransactionState.PROCEEDING:
            raise TransactionStateError(f"cannot send {response.status} in state {state.value}")
        self._send_response(response)
        timeout = self._layer.timers.transaction_timeout
        if response.is_provisional:
            return
        if response.is_success:
            self.state = TransactionState.ACCEPTED
            self._start_timer("L", timeout, self._terminate)
            return
        self.state = TransactionState.COMPLETED
        if not self.reliable:
            self._start_timer("G", self._interval, self._timer_g)
        self._start_timer("H", timeout, self._timer_h)

    def _timer_g(self) -> None:
        if self.state is TransactionState.COMPLETED and self.last_response is not None:
            self._send_response(self.last_response)
            COUNTERS.sip_retransmissions["response_sent"] += 1
            self._interval = min(2 * self._interval, self._layer.timers.t2)
            self._start_timer("G", self._interval, self._timer_g)

    def _timer_h(self) -> None:
        if self.state is TransactionState.COMPLETED:
            COUNTERS.sip_timeouts["server"] += 1
            self._fail("timer H: no ACK for the final response")

    def receive_request(self, request: Request) -> None:
        state = self.state
        if request.method == "ACK":
            if state is TransactionState.COMPLETED:
                self.state = TransactionState.CONFIRMED
                self._stop_timer("G")
                self._stop_timer("H")
                delay = 0.0 if self.reliable else self._layer.timers.t4
                self._start_timer("I", delay, self._terminate)
            elif state is TransactionState.ACCEPTED:
                self._layer._ack_to_user(request, self.peer)
            return
        if state is TransactionState.PROCEEDING:
            self._send_response(self.last_response or self.request.create_response(100))
        elif (
            state in (TransactionState.COMPLETED, TransactionState.ACCEPTED)
            and self.last_response is not None
        ):
            # The caller missed our final answer: it gets the same one again, never a
            # second call. In Accepted that is the 2xx (RFC 6026 lets the UAS resend it).
            self._send_response(self.last_response)
        # Confirmed absorbs retransmissions: the ACK came, so they are stale.


class NonInviteServerTransaction(ServerTransaction):
    """§17.2.2: Trying, Proceeding, Completed, Terminated."""

    def __init__(self, layer: TransactionLayer, key: _Key, request: Request, source: Peer):
        super().__init__(layer, key, request, source, TransactionState.TRYING)

    def _start(self) -> None:
        """Nothing to arm: a non-INVITE waits for the TU (§17.2.2)."""

    def respond(self, response: Response) -> None:
        if self.state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            raise TransactionStateError(
                f"cannot send {response.status} in state {self.state.value}"
            )
        self._send_response(response)
        if response.is_provisional:
            self.state = TransactionState.PROCEEDING
            return
        self.state = TransactionState.COMPLETED
        delay = 0.0 if self.reliable else self._layer.timers.transaction_timeout
        self._start_timer("J", delay, self._terminate)

    def receive_request(self, request: Request) -> None:
        if self.state is not TransactionState.TRYING and self.last_response is not None:
            self._send_response(self.last_response)


def _same_host(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a.strip("[]")) == ipaddress.ip_address(b.strip("[]"))
    except ValueError:
        return a.lower() == b.lower()


class TransactionLayer:
    """Creates and matches transactions on top of a :class:`SipTransportLayer`.

    It takes over the transport's handler. Requests that start a transaction reach
    ``user.on_request``; ACKs and responses that match nothing reach ``user.on_ack`` and
    ``user.on_stray_response``.
    """

    def __init__(
        self,
        transport: SipTransportLayer,
        user: TransactionUser,
        timers: TimerConfig | None = None,
    ) -> None:
        self.transport = transport
        self.user = user
        self.timers = timers or TimerConfig()
        self.loop = asyncio.get_running_loop()
        self._client: dict[_Key, ClientTransaction] = {}
        self._server: dict[_Key, ServerTransaction] = {}
        #: ``(request, source) -> True`` drops a new request unanswered, before any
        #: transaction exists (a scanner gets silence and costs no state).
        self.ignore: Callable[[Request, Peer], bool] | None = None
        transport.handler = self._on_message
        transport.on_unreachable = self._peer_unreachable

    def _peer_unreachable(self, peer: Peer) -> None:
        """ICMP unreachable for ``peer``: requests to it that no response has reached yet
        fail now with the transport's 503 (§17.1.4), as a refused send does."""
        for transaction in list(self._client.values()):
            if (
                transaction.peer.transport == "udp"
                and transaction.peer.port == peer.port
                and _same_host(transaction.peer.host, peer.host)
                and transaction.state in (TransactionState.CALLING, TransactionState.TRYING)
            ):
                transaction._on_transport_error(
                    SipTransportError(f"{peer.host}:{peer.port} is unreachable (ICMP)")
                )

    @property
    def active_transactions(self) -> int:
        """How many transactions have not terminated yet."""
        return len(self._client) + len(self._server)

    def send_request(
        self,
        request: Request,
        destination: Peer,
        on_response: ResponseCallback | None = None,
    ) -> ClientTransaction:
        """Start a client transaction for ``request`` towards ``destination``.

        A request without a Via gets ours with a new branch (§8.1.1.7); one with a Via (a
        CANCEL copying its INVITE's, §9.1) is sent as is. Max-Forwards defaults to 70.
        Must not be used for ACK: see :meth:`send_stateless`.
        """
        if request.method == "ACK":
            raise ValueError("an ACK is not a transaction: use send_stateless")
        if "Via" not in request.headers:
            via = self.transport.make_via(destination.transport, new_branch())
            request.headers.prepend("Via", str(via))
        if "Max-Forwards" not in request.headers:
            request.headers.add("Max-Forwards", "70")
        transaction: InviteClientTransaction | NonInviteClientTransaction
        COUNTERS.sip_transactions["client", request.method] += 1
        if request.method == "INVITE":
            transaction = InviteClientTransaction(self, request, destination, on_response)
        else:
            transaction = NonInviteClientTransaction(self, request, destination, on_response)
        if transaction.key in self._client:
            raise ValueError(f"a client transaction with branch {transaction.key[0]} exists")
        self._client[transaction.key] = transaction
        transaction._start()
        return transaction

    async def send_stateless(self, message: Request | Response, destination: Peer) -> None:
        """Send without a transaction: the ACK for a 2xx, or a 2xx retransmission by a
        dialog whose transaction has ended. Raises ``SipTransportError`` on failure."""
        if isinstance(message, Response):
            COUNTERS.sip_responses["sent", response_class(message.status)] += 1
            await self.transport.send_response(message, destination)
        else:
            await self.transport.send(
                message, (destination.host, destination.port), destination.transport
            )

    def close(self) -> None:
        """Stop every transaction (on shutdown). Nothing is reported to the TU; a pending
        :attr:`ClientTransaction.final_response` is cancelled so no one waits forever."""
        for transaction in [*self._client.values(), *self._server.values()]:
            transaction._terminate()
            if isinstance(transaction, ClientTransaction):
                transaction.final_response.cancel()

    def _on_message(self, message: Request | Response, source: Peer) -> None:
        if isinstance(message, Response):
            self._on_response(message, source)
        else:
            self._on_request(message, source)

    def _on_response(self, response: Response, source: Peer) -> None:
        COUNTERS.sip_responses["received", response_class(response.status)] += 1
        branch = response.top_via.branch
        transaction = None
        if branch is not None:
            transaction = self._client.get(_client_key(branch, response.cseq.method))
        if transaction is None:
            self._call_user(self.user.on_stray_response, response, source)
        else:
            transaction.receive_response(response)

    def _on_request(self, request: Request, source: Peer) -> None:
        method = "INVITE" if request.method == "ACK" else request.method
        key = _server_key(request, method)
        existing = self._server.get(key)
        if existing is not None:
            if request.method != "ACK":
                COUNTERS.sip_retransmissions["request_received"] += 1
            existing.receive_request(request)
            return
        if request.method == "ACK":
            self._ack_to_user(request, source)
            return
        if self.ignore is not None and self.ignore(request, source):
            return
        transaction: InviteServerTransaction | NonInviteServerTransaction
        COUNTERS.sip_transactions["server", request.method] += 1
        if request.method == "INVITE":
            transaction = InviteServerTransaction(self, key, request, source)
        else:
            transaction = NonInviteServerTransaction(self, key, request, source)
            if request.method == "CANCEL":
                invite = self._server.get(_server_key(request, "INVITE"))
                if isinstance(invite, InviteServerTransaction):
                    transaction.matched_invite = invite
        self._server[key] = transaction
        if isinstance(transaction, InviteServerTransaction):
            transaction.send_trying()
        if not self._call_user(self.user.on_request, transaction) and transaction.state in (
            TransactionState.TRYING,
            TransactionState.PROCEEDING,
        ):
            # A TU that crashed will never answer: say so rather than leave the peer hanging.
            transaction.respond(request.create_response(500))
        transaction._start()

    def _ack_to_user(self, ack: Request, source: Peer) -> None:
        self._call_user(self.user.on_ack, ack, source)

    def _send(self, message: Request | Response, peer: Peer, transaction: _Transaction) -> None:
        async def send() -> None:
            try:
                if isinstance(message, Response):
                    await self.transport.send_response(message, peer)
                else:
                    await self.transport.send(message, (peer.host, peer.port), peer.transport)
            except SipTransportError as error:
                transaction._on_transport_error(error)

        if isinstance(message, Response):
            COUNTERS.sip_responses["sent", response_class(message.status)] += 1
        what = f"{message.method}" if isinstance(message, Request) else f"{message.status}"
        self.transport.spawn(send(), what)

    def _forget(self, transaction: _Transaction) -> None:
        table: dict[_Key, ClientTransaction] | dict[_Key, ServerTransaction]
        table = self._client if isinstance(transaction, ClientTransaction) else self._server
        if table.get(transaction.key) is transaction:
            del table[transaction.key]

    def _call_user(self, callback: Callable[..., None], *args: object) -> bool:
        """Run a TU callback; its exception is logged, never raised into the transport."""
        try:
            callback(*args)
        except Exception:
            logger.exception("transaction user callback %s failed", callback)
            return False
        return True
