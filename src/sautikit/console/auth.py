"""Who is signed in to the console: members, passwords, sessions, CSRF and throttling.

* Passwords are hashed with argon2id (``argon2-cffi``'s defaults); only the hash is kept.
* A session is a random secret in an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure``
  when the public URL is HTTPS); the database keeps its SHA-256, so a leaked table signs
  no one in. Sessions last ``SESSION_LIFETIME``; signing out deletes the row.
* Every form that changes something carries the session's CSRF token, compared in
  constant time; a request whose ``Origin`` names another site is refused as well.
* Sign-in is throttled per e-mail address and per client address: after
  ``MAX_FAILURES`` failures within ``FAILURE_WINDOW`` further attempts are refused until
  the window has passed, whatever the password. The counts live in the process.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.console.roles import INVITE_LIFETIME, ROLES
from sautikit.db.models import ConsoleInvite, ConsoleSession, ConsoleUser, Workspace
from sautikit.db.types import utcnow

__all__ = [
    "COOKIE_NAME",
    "INVITE_LIFETIME",
    "ROLES",
    "SESSION_LIFETIME",
    "SignInThrottle",
    "Viewer",
    "accept_invite",
    "create_invite",
    "create_member",
    "end_session",
    "find_invite",
    "open_session",
    "resolve_session",
    "verify_member",
]

COOKIE_NAME = "sautikit_console"
SESSION_LIFETIME = timedelta(hours=12)
MAX_FAILURES = 5
FAILURE_WINDOW = 15 * 60.0
_MIN_PASSWORD = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()
# Verifying against this when the e-mail is unknown keeps both answers equally slow.


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the e-mail is unknown (same time as a real miss);
    made on first use, not at import: argon2 takes ~0.4 s, and every CLI command imports
    this module for ``sautikit console``'s help."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Viewer:
    """Whoever a request comes from: a workspace member, or the operator."""

    session_id: str
    csrf_token: str
    operator: bool
    user_id: str | None = None
    workspace_id: str | None = None
    workspace_name: str = ""
    email: str = ""
    role: str = "viewer"

    @property
    def can_change(self) -> bool:
        """Owners and developers change things; viewers only look."""
        return self.operator or self.role in ("owner", "developer")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def create_member(
    session: AsyncSession, workspace_id: str, email: str, password: str, role: str
) -> ConsoleUser:
    """A new member of ``workspace_id``; ``ValueError`` names what is wrong."""
    email = normalise_email(email)
    if not _EMAIL.match(email):
        raise ValueError(f"{email!r} is not an e-mail address")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < _MIN_PASSWORD:
        raise ValueError(f"the password must have at least {_MIN_PASSWORD} characters")
    if await session.get(Workspace, workspace_id) is None:
        raise LookupError(f"no workspace {workspace_id}")
    if await session.scalar(select(ConsoleUser.id).where(ConsoleUser.email == email)):
        raise ValueError(f"{email} is a member already")
    user = ConsoleUser(
        workspace_id=workspace_id, email=email, password_hash=_hasher.hash(password), role=role
    )
    session.add(user)
    await session.flush()
    return user


async def create_invite(session: AsyncSession, workspace_id: str, email: str, role: str) -> str:
    """An invite for ``email`` to join as ``role``; answers the link's secret (shown once).

    The invitee chooses a password at ``/console/invite/<secret>`` within
    ``INVITE_LIFETIME``; the link works once.
    """
    email = normalise_email(email)
    if not _EMAIL.match(email):
        raise ValueError(f"{email!r} is not an e-mail address")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if await session.get(Workspace, workspace_id) is None:
        raise LookupError(f"no workspace {workspace_id}")
    if await session.scalar(select(ConsoleUser.id).where(ConsoleUser.email == email)):
        raise ValueError(f"{email} is a member already")
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleInvite(
            workspace_id=workspace_id,
            token_hash=_digest(token),
            email=email,
            role=role,
            expires_at=utcnow() + INVITE_LIFETIME,
        )
    )
    await session.flush()
    return token


async def find_invite(session: AsyncSession, token: str) -> ConsoleInvite | None:
    """The invite behind a link, if it is unused and unexpired."""
    invite = await session.scalar(
        select(ConsoleInvite).where(ConsoleInvite.token_hash == _digest(token))
    )
    if invite is None or invite.used_at is not None or invite.expires_at <= utcnow():
        return None
    return invite


async def accept_invite(session: AsyncSession, token: str, password: str) -> ConsoleUser:
    """Make the invited member with ``password``; ``LookupError`` for a dead link."""
    invite = await session.scalar(
        select(ConsoleInvite).where(ConsoleInvite.token_hash == _digest(token)).with_for_update()
    )
    if invite is None or invite.used_at is not None or invite.expires_at <= utcnow():
        raise LookupError("this invite link has expired or was used already")
    user = await create_member(session, invite.workspace_id, invite.email, password, invite.role)
    invite.used_at = utcnow()
    await session.flush()
    return user


async def verify_member(session: AsyncSession, email: str, password: str) -> ConsoleUser | None:
    """The member these credentials belong to, or None."""
    user = await session.scalar(
        select(ConsoleUser).where(ConsoleUser.email == normalise_email(email))
    )
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled_at is not None:
        return None
    return user


async def open_session(
    session: AsyncSession, *, user_id: str | None = None, operator: bool = False
) -> str:
    """Start a session and answer the cookie's secret (shown only here)."""
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            token_hash=_digest(token),
            user_id=user_id,
            operator=operator,
            csrf_token=secrets.token_urlsafe(24),
            expires_at=utcnow() + SESSION_LIFETIME,
        )
    )
    await session.flush()
    return token


async def resolve_session(session: AsyncSession, token: str | None) -> Viewer | None:
    """The viewer behind a cookie, or None for a missing, unknown or expired one."""
    if not token:
        return None
    row = await session.scalar(
        select(ConsoleSession).where(ConsoleSession.token_hash == _digest(token))
    )
    if row is None or row.expires_at <= utcnow():
        return None
    if row.operator:
        return Viewer(session_id=row.id, csrf_token=row.csrf_token, operator=True)
    user = await session.get(ConsoleUser, row.user_id) if row.user_id else None
    if user is None or user.disabled_at is not None:
        return None
    workspace = await session.get(Workspace, user.workspace_id)
    return Viewer(
        session_id=row.id,
        csrf_token=row.csrf_token,
        operator=False,
        user_id=user.id,
        workspace_id=user.workspace_id,
        workspace_name=workspace.name if workspace else "",
        email=user.email,
        role=user.role,
    )


async def end_session(session: AsyncSession, token: str | None) -> None:
    if token:
        await session.execute(
            delete(ConsoleSession).where(ConsoleSession.token_hash == _digest(token))
        )


def csrf_matches(viewer: Viewer, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(viewer.csrf_token, presented)


class SignInThrottle:
    """Failed sign-ins per key (an e-mail address, a client address) in a sliding window."""

    def __init__(
        self, max_failures: int = MAX_FAILURES, window_seconds: float = FAILURE_WINDOW
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]  # no memory kept for keys that stopped failing
            return deque()
        return failures

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        return any(len(self._recent(key, now)) >= self.max_failures for key in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            self._recent(key, now)
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
