"""Workspaces and API keys: the operator's side of access control (SPEC §1)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.db.models import ApiKey, Workspace
from sautikit.db.types import utcnow

__all__ = [
    "KEY_PREFIX",
    "SCOPES",
    "CreatedKey",
    "UnknownScopeError",
    "create_api_key",
    "create_workspace",
    "hash_api_key",
    "list_api_keys",
    "revoke_api_key",
]

KEY_PREFIX = "sk_live_"

SCOPES: frozenset[str] = frozenset(
    {
        "calls.read",
        "calls.write",
        "numbers.read",
        "numbers.write",
        "recordings.read",
        "recordings.write",
        "wallet.read",
        "wallet.write",
        "webhooks.manage",
        "sip.manage",
        # Beyond SPEC §1's list: reading the workspace's settings (allow-lists, bucket,
        # retention) and managing its keys over HTTP (/v1/keys).
        "settings.read",
        "keys.manage",
    }
)


class UnknownScopeError(ValueError):
    def __init__(self, unknown: list[str]) -> None:
        super().__init__(
            f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(sorted(SCOPES))}"
        )


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``secret`` exists only here, at creation, and is never stored."""

    record: ApiKey
    secret: str


def hash_api_key(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash cannot be brute-forced and keeps the
    # lookup on every request cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_workspace(session: AsyncSession, name: str) -> Workspace:
    workspace = Workspace(name=name)
    session.add(workspace)
    await session.flush()
    return workspace


async def create_api_key(
    session: AsyncSession, workspace_id: str, scopes: list[str], name: str = ""
) -> CreatedKey:
    """Make a key for a workspace; scopes outside SPEC §1's list are refused."""
    unknown = sorted(set(scopes) - SCOPES)
    if unknown:
        raise UnknownScopeError(unknown)
    if await session.get(Workspace, workspace_id) is None:
        raise LookupError(f"no workspace {workspace_id}")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(
        workspace_id=workspace_id,
        name=name,
        prefix=secret[: len(KEY_PREFIX) + 6],
        key_hash=hash_api_key(secret),
        scopes=sorted(set(scopes)),
    )
    session.add(record)
    await session.flush()
    return CreatedKey(record=record, secret=secret)


async def revoke_api_key(session: AsyncSession, key_id: str) -> ApiKey:
    record = await session.get(ApiKey, key_id)
    if record is None:
        raise LookupError(f"no API key {key_id}")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    return record


async def list_api_keys(session: AsyncSession, workspace_id: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    if workspace_id:
        query = query.where(ApiKey.workspace_id == workspace_id)
    return list((await session.scalars(query)).all())
