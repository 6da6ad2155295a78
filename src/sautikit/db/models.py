"""Tables of the control plane. Ids are UUIDv7 strings; money is integer minor units."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sautikit.db.types import UtcDateTime, utcnow
from sautikit.ids import new_id

__all__ = [
    "ApiKey",
    "Base",
    "IdempotencyRecord",
    "Rate",
    "WebhookSubscription",
    "Workspace",
]


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON, list[str]: JSON}


def _id_column() -> Mapped[str]:
    return mapped_column(String(36), primary_key=True, default=new_id)


def _workspace_column() -> Mapped[str]:
    return mapped_column(String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    name: Mapped[str] = mapped_column(String(200), default="")
    # The first characters of the key, so an operator can tell keys apart in a listing.
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class IdempotencyRecord(Base):
    """A POST's answer, kept so that a retry with the same Idempotency-Key replays it."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2048))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Rate(Base):
    """One line of the rate deck: the longest matching prefix sets the per-minute price."""

    __tablename__ = "rates"
    __table_args__ = (Index("ix_rates_lookup", "direction", "prefix"),)

    id: Mapped[str] = _id_column()
    # NULL for the operator's deck; a workspace id for that workspace's own rates.
    workspace_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    direction: Mapped[str] = mapped_column(String(10))  # outbound | inbound
    prefix: Mapped[str] = mapped_column(String(32))
    destination: Mapped[str] = mapped_column(String(200), default="")
    rate_per_minute_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]]
    # Kept to sign deliveries; shown to the app once, when the subscription is made.
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
