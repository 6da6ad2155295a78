"""Server digest authentication: challenging requests and checking the answers.

The server half of digest (RFC 3261 §22, RFC 7616/8760), as pjsip's ``sip_auth_server``:
a request without valid credentials is challenged (401 with WWW-Authenticate for a
registrar, 407 with Proxy-Authenticate for a proxy-style INVITE), with the configured
algorithms in order. A wrong password, an unknown user and a nonce from before a restart
all get the same fresh challenge, so the answers never tell a guesser which usernames
exist; a right answer to an expired nonce is challenged ``stale=true`` so the phone
retries without asking its user. The client half is :mod:`sautikit.sip.client_auth`.

Every checked and wrong answer is logged once (source, username, method; never a secret)
and counted by an :class:`~sautikit.sip.auth_throttle.AuthThrottle`, which refuses a
guessing address with 403 (no challenge, no digest work) for a cool-down.

Over WebSocket (RFC 7118) a request may carry ``Authorization: Bearer <token>`` instead
(a browser client's token, :mod:`sautikit.sip.token_auth`): ``verify_bearer`` checks it,
and a refused token (expired, forged) is answered 401 with ``WWW-Authenticate: Bearer
…, error="invalid_token"`` (RFC 6750 §3, as RFC 8898 uses it), never a digest challenge.
A forged one counts as a guess. Tokens over UDP, TCP or TLS are ignored (digest applies).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sautikit.sip.auth_throttle import AuthThrottle, ThrottlePolicy
from sautikit.sip.dialog import new_tag
from sautikit.sip.digest import (
    DEFAULT_CHALLENGE_ALGORITHMS,
    DigestAuthenticator,
    DigestParseError,
    Ha1Lookup,
    VerifyStatus,
    parse_credentials,
)
from sautikit.sip.errors import SipParseError
from sautikit.sip.message import Request
from sautikit.sip.session import respond
from sautikit.sip.transaction import ServerTransaction
from sautikit.sip.transport import Peer, is_websocket
from sautikit.sip.uri import SipUri

__all__ = [
    "AlgorithmResolver",
    "Authenticated",
    "BearerRefused",
    "BearerVerifier",
    "InvitePolicy",
    "RealmResolver",
    "ServerAuth",
    "default_realm",
]

logger = logging.getLogger(__name__)

#: Verification failures that mean a wrong guess (others are only challenged again).
_GUESSES = frozenset({"wrong response", "unknown user"})

#: ``(request, source) -> True`` when this INVITE must carry digest credentials.
InvitePolicy = Callable[[Request, Peer], bool]
#: The digest realm a request is authenticated in (e.g. the tenant's SIP domain).
RealmResolver = Callable[[Request], str]
#: The algorithms to challenge a request with (its user's own), or None for the default.
AlgorithmResolver = Callable[[Request], Sequence[str] | None]


class BearerRefused(ValueError):
    """A bearer token that is not accepted; ``forged`` when it counts as a guess."""

    def __init__(self, reason: str, *, forged: bool = False) -> None:
        super().__init__(reason)
        self.forged = forged


@dataclass(frozen=True)
class Authenticated:
    """Who a request was authenticated as, and for how long (a token's remaining
    seconds; None for digest, whose login has no end)."""

    username: str
    valid_for: float | None = None


#: ``token -> Authenticated``; raises :class:`BearerRefused`.
BearerVerifier = Callable[[str], Authenticated]


def default_realm(request: Request) -> str:
    """The To host for REGISTER, the From host otherwise."""
    uri = request.to.uri if request.method == "REGISTER" else request.from_.uri
    return uri.host


class ServerAuth:
    """Digest authentication of requests against ``lookup_ha1`` (``(username, realm,
    algorithm) -> HA1``), one :class:`DigestAuthenticator` per realm. Processes sharing
    ``nonce_secret`` accept each other's nonces. ``throttle`` (default: the default
    :class:`ThrottlePolicy`) refuses guessers."""

    def __init__(
        self,
        lookup_ha1: Ha1Lookup | None,
        *,
        realm_for: RealmResolver | None = None,
        algorithms: Sequence[str] = DEFAULT_CHALLENGE_ALGORITHMS,
        algorithms_for: AlgorithmResolver | None = None,
        nonce_secret: bytes | None = None,
        throttle: ThrottlePolicy | None = None,
        clock: Callable[[], float] | None = None,
        verify_bearer: BearerVerifier | None = None,
    ) -> None:
        self.lookup_ha1 = lookup_ha1
        self.verify_bearer = verify_bearer
        self.throttle = AuthThrottle(throttle) if clock is None else AuthThrottle(throttle, clock)
        self.realm_for = realm_for or default_realm
        self.algorithms = tuple(algorithms)
        self.algorithms_for = algorithms_for
        self._nonce_secret = nonce_secret or secrets.token_bytes(32)
        self._authenticators: dict[str, DigestAuthenticator] = {}

    def authenticator(self, realm: str) -> DigestAuthenticator:
        authenticator = self._authenticators.get(realm)
        if authenticator is None:
            authenticator = DigestAuthenticator(realm, self._nonce_secret)
            self._authenticators[realm] = authenticator
        return authenticator

    def authenticate(self, transaction: ServerTransaction, *, proxy: bool) -> str | None:
        """The verified username, or None once the request was answered (see
        :meth:`authenticate_request`)."""
        authenticated = self.authenticate_request(transaction, proxy=proxy)
        return authenticated.username if authenticated is not None else None

    def authenticate_request(
        self, transaction: ServerTransaction, *, proxy: bool
    ) -> Authenticated | None:
        """Who sent the request: a browser's bearer token over WebSocket, else the
        verified digest username; None once the request was answered 401/407 (no, wrong
        or stale credentials, an unknown user, a nonce from before a restart, a refused
        token), or 403 when there is no user database."""
        request = transaction.request
        token = self._bearer(transaction)
        if token is not None:
            return self._check_bearer(transaction, token)
        lookup = self.lookup_ha1
        if lookup is None:
            respond(transaction, request.create_response(403, "Forbidden (no user database)"))
            return None
        source = transaction.peer.host
        throttle = self.throttle
        if throttle.source_blocked(source):
            throttle.refused()
            respond(transaction, request.create_response(403))
            return None
        realm = self.realm_for(request)
        authenticator = self.authenticator(realm)
        offered = self.offered(request)
        stale = False
        for value in request.headers.get_all("Proxy-Authorization" if proxy else "Authorization"):
            try:
                credentials = parse_credentials(value)
                same_uri = SipUri.parse(credentials.uri) == request.uri
            except (DigestParseError, SipParseError):
                continue
            if credentials.realm != realm:
                continue
            if not same_uri:
                break
            if throttle.username_blocked(credentials.username, source):
                throttle.refused()
                respond(transaction, request.create_response(403))
                return None
            if credentials.algorithm.removesuffix("-sess") not in _bases(offered):
                break  # not one this user is offered (a downgrade): challenged again
            result = authenticator.verify(credentials, request.method, lookup, body=request.body)
            if result.ok and result.username is not None:
                return Authenticated(result.username)
            if result.status is VerifyStatus.STALE:
                stale = True
                break
            if result.reason in _GUESSES:
                self._failed(transaction, credentials.username, result.reason)
            # An unknown user is challenged again exactly like a wrong password, so the
            # answers never tell a guesser which usernames exist.
            break
        status = 407 if proxy else 401
        response = request.create_response(status, to_tag=new_tag())
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        for challenge in authenticator.challenge(offered, stale=stale):
            response.headers.add(header, challenge)
        respond(transaction, response)
        return None

    def _bearer(self, transaction: ServerTransaction) -> str | None:
        """The bearer token of a request that came over WebSocket, if it has one."""
        if self.verify_bearer is None or not is_websocket(transaction.peer.transport):
            return None
        for value in transaction.request.headers.get_all("Authorization"):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        return None

    def _check_bearer(self, transaction: ServerTransaction, token: str) -> Authenticated | None:
        assert self.verify_bearer is not None
        request = transaction.request
        throttle = self.throttle
        if throttle.source_blocked(transaction.peer.host):
            throttle.refused()
            respond(transaction, request.create_response(403))
            return None
        try:
            return self.verify_bearer(token)
        except BearerRefused as refused:
            if refused.forged:
                self._failed(transaction, "(bearer token)", str(refused))
            else:
                peer = transaction.peer
                logger.info(
                    "SIP bearer token refused from %s:%d: %s", peer.host, peer.port, refused
                )
            response = request.create_response(401, to_tag=new_tag())
            realm = self.realm_for(request)
            response.headers.add(
                "WWW-Authenticate",
                f'Bearer realm="{realm}", error="invalid_token", '
                f'error_description="{str(refused)[:80]}"',
            )
            respond(transaction, response)
            return None

    def offered(self, request: Request) -> tuple[str, ...]:
        """The algorithms ``request`` is challenged with: its user's own, else the
        default. (A user with their own list is challenged differently from an unknown
        one: an operator choosing a list per credential accepts that.)"""
        own = self.algorithms_for(request) if self.algorithms_for is not None else None
        return tuple(own) if own else self.algorithms

    def _failed(self, transaction: ServerTransaction, username: str, reason: str) -> None:
        peer = transaction.peer
        # The username is the peer's text: repr() and a length cap keep the line one line.
        logger.warning(
            "SIP digest authentication failed: user %r from %s:%d over %s (%s %s)",
            username[:64],
            peer.host,
            peer.port,
            peer.transport,
            transaction.request.method,
            reason,
        )
        for what in self.throttle.record_failure(peer.host, username):
            policy = self.throttle.policy
            logger.warning(
                "SIP authentication refused for %.0f s: %s (too many failures in %.0f s)",
                policy.block_seconds,
                what,
                policy.window,
            )


def _bases(algorithms: Sequence[str]) -> set[str]:
    return {algorithm.removesuffix("-sess") for algorithm in algorithms}
