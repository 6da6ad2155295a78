"""SIP device credentials bound to a number (SPEC §2, §6).

A device (softphone, IP phone, PBX) registers with Digest auth, realm = the workspace id.
Sautikit never keeps the password: a credential stores ``H(username:realm:password)`` for
MD5 and for SHA-256 (see :func:`sautikit.sip.digest.compute_ha1`), and the password is
handed out once, in :class:`CreatedCredential`.

A credential may name the digest algorithms its device's challenge offers
(``digest_algorithms``, e.g. SHA-256 first for a phone that speaks RFC 8760); without them
the deployment's ``SAUTIKIT_SIP_DIGEST_ALGORITHMS`` apply, whose default (MD5) every phone
answers.

Rotation is two-phase, like cloud access keys: :func:`rotate_credential` makes a *new*
credential (new username and password) while the old one keeps working, so devices can be
moved over one by one; the old one stops when it is revoked (:func:`revoke_credential`).
A username is unique across the whole installation, so the registrar finds its credential
with the username alone and then checks that the realm is that credential's workspace.

:func:`lookup_ha1` and :class:`DeviceDirectory` are the registrar's seams: they answer
only for a credential that is not revoked, in the realm of its workspace, on a number that
workspace holds as ``active`` (a suspended number's devices cannot register).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.db.models import Number, SipCredential
from sautikit.sip.digest import DigestError, challenge_algorithms, compute_ha1

__all__ = [
    "CreatedCredential",
    "DeviceDirectory",
    "DeviceLogin",
    "InvalidDigestAlgorithms",
    "InvalidUsername",
    "UsernameTaken",
    "create_credential",
    "lookup_ha1",
    "revoke_credential",
    "revoke_number_credentials",
    "rotate_credential",
]

# Characters a SIP URI's user part carries unescaped and a device's settings page accepts.
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,63}")
_PASSWORD_BYTES = 18  # 24 URL-safe characters: easy to paste, beyond guessing
# HA1 column per digest algorithm; the -sess variants derive their key from the same HA1.
_HA1_COLUMNS = {
    "md5": "ha1_md5",
    "md5-sess": "ha1_md5",
    "sha-256": "ha1_sha256",
    "sha-256-sess": "ha1_sha256",
}


class InvalidUsername(ValueError):
    """A chosen username is not 3–64 letters, digits, '.', '_' or '-'."""


class InvalidDigestAlgorithms(ValueError):
    """A credential's digest algorithms are empty or one cannot be offered."""


class UsernameTaken(Exception):
    """Another credential (in any workspace) already uses this username."""


@dataclass(frozen=True)
class CreatedCredential:
    """A new credential; ``password`` exists only here and is never stored."""

    record: SipCredential
    password: str


def _generated_username(number: Number) -> str:
    return f"{number.e164.lstrip('+')}.{secrets.token_hex(3)}"


async def create_credential(
    session: AsyncSession,
    number: Number,
    username: str | None = None,
    digest_algorithms: list[str] | None = None,
) -> CreatedCredential:
    """A credential for a number the workspace holds; the username is generated if not given,
    ``digest_algorithms`` None means the deployment's.

    Raises :class:`InvalidUsername`, :class:`InvalidDigestAlgorithms` or
    :class:`UsernameTaken`.
    """
    algorithms = None
    if digest_algorithms is not None:
        try:
            algorithms = list(challenge_algorithms(digest_algorithms))
        except DigestError as error:
            raise InvalidDigestAlgorithms(str(error)) from None
    assert number.workspace_id is not None, "credentials belong to a held number"
    if username is not None and not _USERNAME.fullmatch(username):
        raise InvalidUsername(
            "a username is 3–64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    chosen = username or _generated_username(number)
    taken = await session.scalar(select(SipCredential.id).where(SipCredential.username == chosen))
    if taken is not None:
        raise UsernameTaken(f"the SIP username {chosen!r} is taken")
    password = secrets.token_urlsafe(_PASSWORD_BYTES)
    realm = number.workspace_id
    record = SipCredential(
        workspace_id=number.workspace_id,
        number_id=number.id,
        username=chosen,
        ha1_md5=compute_ha1(chosen, realm, password, "MD5"),
        ha1_sha256=compute_ha1(chosen, realm, password, "SHA-256"),
        digest_algorithms=algorithms,
    )
    session.add(record)
    await session.flush()
    return CreatedCredential(record, password)


async def rotate_credential(
    session: AsyncSession, number: Number, old: SipCredential
) -> CreatedCredential:
    """Phase one of a rotation: a new credential for the same number; ``old`` keeps working
    until :func:`revoke_credential` ends it (phase two)."""
    assert old.number_id == number.id and old.revoked_at is None
    return await create_credential(session, number, digest_algorithms=old.digest_algorithms)


async def revoke_credential(
    session: AsyncSession, credential: SipCredential, *, now: datetime
) -> None:
    """Stop ``credential`` at once; revoking twice keeps the first time."""
    if credential.revoked_at is None:
        credential.revoked_at = now
        await session.flush()


async def revoke_number_credentials(
    session: AsyncSession, number_id: str, *, now: datetime
) -> None:
    """Revoke every live credential of a number (it is being released)."""
    await session.execute(
        update(SipCredential)
        .where(SipCredential.number_id == number_id, SipCredential.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session="fetch")
    )


def _live_logins() -> Select[tuple[SipCredential, str]]:
    """Credentials that may register: not revoked, on a number their workspace holds active."""
    return (
        select(SipCredential, Number.e164)
        .join(Number, Number.id == SipCredential.number_id)
        .where(
            SipCredential.revoked_at.is_(None),
            Number.workspace_id == SipCredential.workspace_id,
            Number.status == "active",  # billing.numbers.ACTIVE, which imports this module
        )
    )


async def lookup_ha1(
    session: AsyncSession, realm: str, username: str, algorithm: str
) -> tuple[str, SipCredential] | None:
    """The stored HA1 for ``username`` in ``realm`` with ``algorithm`` (``MD5``, ``SHA-256``
    or their ``-sess`` forms), and its credential; ``None`` when the registrar must refuse.

    The credential's ``number_id`` is the number the device receives calls for and may
    call as. Code that cannot await (the SIP user agent's digest check) uses a
    :class:`DeviceDirectory` instead.
    """
    column = _HA1_COLUMNS.get(algorithm.lower())
    if column is None:
        return None
    row = (
        await session.execute(
            _live_logins().where(
                SipCredential.username == username, SipCredential.workspace_id == realm
            )
        )
    ).first()
    if row is None:
        return None
    credential = row[0]
    return getattr(credential, column), credential


@dataclass(frozen=True)
class DeviceLogin:
    """What the PBX needs about a device that may register."""

    credential_id: str
    username: str
    workspace_id: str
    number_id: str
    number: str
    ha1_md5: str = field(repr=False)
    ha1_sha256: str = field(repr=False)
    digest_algorithms: tuple[str, ...] | None = None
    """What its challenge offers; None: the deployment's setting."""


class DeviceDirectory:
    """A snapshot of the logins that may register, for synchronous lookups.

    :class:`sautikit.sip.useragent.UserAgent` checks digests synchronously, inside SIP
    transaction handling, where the database cannot be awaited. The PBX calls
    :meth:`reload` at start, on a short timer and after this process changes credentials;
    a login revoked elsewhere stops at the next reload. :meth:`lookup_ha1` has the
    ``Ha1Lookup`` signature and :meth:`realm_for` names the realm to challenge a
    username with.
    """

    def __init__(self) -> None:
        self._logins: dict[str, DeviceLogin] = {}

    async def reload(self, session: AsyncSession) -> None:
        rows = (await session.execute(_live_logins())).all()
        self._logins = {
            credential.username: DeviceLogin(
                credential_id=credential.id,
                username=credential.username,
                workspace_id=credential.workspace_id,
                number_id=credential.number_id,
                number=e164,
                ha1_md5=credential.ha1_md5,
                ha1_sha256=credential.ha1_sha256,
                digest_algorithms=(
                    tuple(credential.digest_algorithms) if credential.digest_algorithms else None
                ),
            )
            for credential, e164 in rows
        }

    def login(self, username: str) -> DeviceLogin | None:
        return self._logins.get(username)

    def for_number(self, number_id: str) -> list[DeviceLogin]:
        """The logins of a number's devices: who rings when it has no ``voice_url``."""
        return [login for login in self._logins.values() if login.number_id == number_id]

    def realm_for(self, username: str) -> str | None:
        """The workspace id of ``username``'s login: the realm its device must answer."""
        login = self._logins.get(username)
        return None if login is None else login.workspace_id

    def algorithms_for(self, username: str) -> tuple[str, ...] | None:
        """The digest algorithms ``username``'s challenge offers; None: the default."""
        login = self._logins.get(username)
        return None if login is None else login.digest_algorithms

    def lookup_ha1(self, username: str, realm: str, algorithm: str) -> str | None:
        login = self._logins.get(username)
        column = _HA1_COLUMNS.get(algorithm.lower())
        if login is None or column is None or login.workspace_id != realm:
            return None
        return str(getattr(login, column))
