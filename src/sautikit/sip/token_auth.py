"""Short-lived client tokens: how a browser signs in over SIP on WebSocket.

``POST /v1/sip/token`` (:mod:`sautikit.api.routers.sip_tokens`) issues an HS256 JWT
(RFC 7519) for one **client identity** of a workspace; the browser puts it in the
``Authorization`` header of its REGISTER and INVITE (``Authorization: Bearer <jwt>``, what
JsSIP's ``authorization_jwt`` sends and SIP.js sends as an extra header, RFC 8898 style),
and :class:`~sautikit.sip.server_auth.ServerAuth` takes it in place of a digest answer
over WS and WSS only.

Claims: ``iss`` ``"sautikit-sip"``, ``sub`` the identity, ``wid`` the workspace id,
``cid`` the number to present as caller id (optional), ``iat``, ``exp`` (at most
:data:`MAX_TTL` seconds after ``iat``) and a random ``jti``. Every node derives the same
key from the operator's secret, so a token issued by one is accepted by any other.

A client's SIP user is :func:`client_sip_user` — ``client~<workspace id>~<identity>`` —
which no digest username can be (those are letters, digits, ``.``, ``_`` and ``-``), so a
browser identity never shadows a phone's login, and two workspaces' ``alice`` are two
users.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from sautikit.sip.server_auth import Authenticated, BearerRefused

__all__ = [
    "IDENTITY_PATTERN",
    "ISSUER",
    "MAX_TTL",
    "ClientClaims",
    "ClientTokens",
    "TokenError",
    "client_sip_user",
    "parse_client_user",
]

ISSUER = "sautikit-sip"
#: The longest a token lives, in seconds.
MAX_TTL = 300
_ALGORITHM = "HS256"
#: What an identity may be: 1–64 letters, digits, '.', '_' or '-', starting with a letter
#: or digit (SIP user-safe, URL-safe).
IDENTITY_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_IDENTITY = re.compile(IDENTITY_PATTERN)
_CLIENT_USER = re.compile(rf"client~([0-9a-fA-F-]{{1,64}})~({IDENTITY_PATTERN})")


class TokenError(BearerRefused):
    """A token that cannot be accepted; the message says why (expired, bad signature…)
    and names no secret; ``forged`` when its signature is not ours."""


@dataclass(frozen=True)
class ClientClaims:
    """What a verified token says."""

    workspace_id: str
    identity: str
    caller_id: str | None
    expires_at: float
    """Seconds since the epoch."""

    @property
    def sip_user(self) -> str:
        return client_sip_user(self.workspace_id, self.identity)


def client_sip_user(workspace_id: str, identity: str) -> str:
    """The SIP user (and registrar key) of a workspace's client identity."""
    return f"client~{workspace_id}~{identity}"


def parse_client_user(user: str) -> tuple[str, str] | None:
    """``(workspace id, identity)`` of a client's SIP user, or None for any other user."""
    match = _CLIENT_USER.fullmatch(user)
    return (match.group(1), match.group(2)) if match else None


class ClientTokens:
    """Issues and verifies client tokens with one HS256 ``key``; ``clock`` is wall time."""

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        if len(key) < 32:
            raise ValueError("an HS256 key of at least 32 bytes is needed")
        self._key = key
        self._clock = clock

    def issue(
        self, workspace_id: str, identity: str, *, caller_id: str | None = None, ttl: int = MAX_TTL
    ) -> tuple[str, ClientClaims]:
        """A signed token and its claims; ``ttl`` is 1 to :data:`MAX_TTL` seconds."""
        if not _IDENTITY.fullmatch(identity):
            raise TokenError("an identity is 1-64 letters, digits, '.', '_' or '-'")
        if not 1 <= ttl <= MAX_TTL:
            raise TokenError(f"a token lives 1 to {MAX_TTL} seconds")
        now = int(self._clock())
        claims = ClientClaims(workspace_id, identity, caller_id, float(now + ttl))
        payload: dict[str, object] = {
            "iss": ISSUER,
            "sub": identity,
            "wid": workspace_id,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(12),
        }
        if caller_id:
            payload["cid"] = caller_id
        return jwt.encode(payload, self._key, algorithm=_ALGORITHM), claims

    def authenticate(self, token: str) -> Authenticated:
        """:class:`~sautikit.sip.server_auth.ServerAuth`'s ``verify_bearer``: the client's
        SIP user, valid until the token ends."""
        claims = self.verify(token)
        return Authenticated(claims.sip_user, claims.expires_at - self._clock())

    def verify(self, token: str) -> ClientClaims:
        """The claims of a token this key signed and that has not expired.

        :raises TokenError: forged, expired, from another issuer, or malformed.
        """
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "iss", "sub", "wid"]},
                # The clock is ours (tests move it); PyJWT's own check uses time.time.
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("the token has expired") from None
        except jwt.InvalidSignatureError:
            raise TokenError("the token's signature is not ours", forged=True) from None
        except jwt.PyJWTError as error:
            raise TokenError(f"the token is not valid: {type(error).__name__}") from None
        identity, workspace_id = payload["sub"], payload["wid"]
        expires_at, issued_at = payload["exp"], payload["iat"]
        if not isinstance(identity, str) or not _IDENTITY.fullmatch(identity):
            raise TokenError("the token names no valid identity")
        if not isinstance(workspace_id, str) or not isinstance(expires_at, int | float):
            raise TokenError("the token names no workspace")
        if not isinstance(issued_at, int | float) or expires_at - issued_at > MAX_TTL:
            raise TokenError(f"the token lives longer than {MAX_TTL} seconds")
        if expires_at <= self._clock():
            raise TokenError("the token has expired")
        caller_id = payload.get("cid")
        return ClientClaims(
            workspace_id,
            identity,
            caller_id if isinstance(caller_id, str) else None,
            float(expires_at),
        )
