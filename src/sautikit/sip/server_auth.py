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
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence

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
from sautikit.sip.transport import Peer
from sautikit.sip.uri import SipUri

__all__ = ["AlgorithmResolver", "InvitePolicy", "RealmResolver", "ServerAuth", "default_realm"]

logger = logging.getLogger(__name__)

#: Verification failures that mean a wrong guess (others are only challenged again).
_GUESSES = frozenset({"wrong response", "unknown user"})

#: ``(request, source) -> True`` when this INVITE must carry digest credentials.
InvitePolicy = Callable[[Request, Peer], bool]
#: The digest realm a request is authenticated in (e.g. the tenant's SIP domain).
RealmResolver = Callable[[Request], str]
#: The algorithms to challenge a request with (its user's own), or None for the default.
AlgorithmResolver = Callable[[Request], Sequence[str] | None]


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
    ) -> None:
        self.lookup_ha1 = lookup_ha1
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
        """The verified digest username, or None once the request was answered 401/407
        (no, wrong or stale credentials, an unknown user, or a nonce from before a
        restart), or 403 when there is no user database."""
        request = transaction.request
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
            if result.ok:
                return result.username
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
