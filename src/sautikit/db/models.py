"""Tables of the control plane. Ids are UUIDv7 strings; money is integer minor units."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sautikit.db.types import UtcDateTime, utcnow
from sautikit.ids import new_id

__all__ = [
    "ApiKey",
    "Base",
    "Call",
    "ConsoleInvite",
    "ConsoleSession",
    "ConsoleUser",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "IdempotencyRecord",
    "MpesaPayment",
    "Node",
    "Number",
    "Queue",
    "QueueMember",
    "Rate",
    "RateBucket",
    "Recording",
    "SipCredential",
    "SipRegistration",
    "TopUp",
    "Transcription",
    "Trunk",
    "Wallet",
    "WalletEntry",
    "WalletReservation",
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
    """A tenant, with the settings of SPEC §2 (``/v1/settings``) and §8."""

    __tablename__ = "workspaces"

    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # E.164 prefixes this workspace may dial; SPEC §8 makes Kenya the only default.
    destination_allowlist: Mapped[list[str]] = mapped_column(default=lambda: ["+254"])
    sip_host_allowlist: Mapped[list[str]] = mapped_column(default=list)
    play_host_allowlist: Mapped[list[str]] = mapped_column(default=list)
    # Defaults a small campaign fits (docs/calls.md); migration 0015.
    max_concurrent_calls: Mapped[int] = mapped_column(Integer, default=50)
    max_calls_per_second: Mapped[int] = mapped_column(Integer, default=10)
    recording_format: Mapped[str] = mapped_column(String(8), default="wav")  # wav | mp3
    # The workspace's own bucket (``s3://bucket?endpoint=…``); credentials encrypted at rest.
    storage_url: Mapped[str | None] = mapped_column(String(2048))
    storage_credentials: Mapped[str | None] = mapped_column(Text)
    retention_days: Mapped[int] = mapped_column(Integer, default=30)
    low_balance_threshold_minor: Mapped[int] = mapped_column(BigInteger, default=10_000)
    # Signs events_url deliveries and voice callbacks; made on first use.
    signing_secret: Mapped[str | None] = mapped_column(String(100))
    # The account number a customer types to pay this workspace by M-Pesa Paybill.
    mpesa_account_ref: Mapped[str | None] = mapped_column(String(12), unique=True)
    # How POSTs to the app carry their fields (SPEC §3): "form" (strings) or "json".
    callback_encoding: Mapped[str] = mapped_column(String(8), default="form", server_default="form")
    # "optional" or "required": whether its numbers' and devices' calls must be SRTP.
    srtp: Mapped[str] = mapped_column(String(8), default="optional", server_default="optional")


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


class Trunk(Base):
    """An operator's carrier trunk: where outbound calls go and whose INVITEs are trusted."""

    __tablename__ = "trunks"

    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(100), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=5060)
    transport: Mapped[str] = mapped_column(String(8), default="udp")  # udp | tcp | tls
    username: Mapped[str | None] = mapped_column(String(255))
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    # E.164 prefixes routed through this trunk; the longest match across trunks wins.
    prefixes: Mapped[list[str]] = mapped_column(default=list)
    # Source addresses (IPs or CIDRs) whose INVITEs are accepted without digest auth.
    inbound_addresses: Mapped[list[str]] = mapped_column(default=list)
    # Digits put before the E.164 number (without '+') in the Request-URI.
    dial_prefix: Mapped[str] = mapped_column(String(32), default="")
    # Digest algorithms its challenges are answered with, best first; NULL: any we support.
    digest_algorithms: Mapped[list[str] | None]
    # "optional" or "required": SRTP offered to it, plain RTP from or to it refused (488).
    srtp: Mapped[str] = mapped_column(String(8), default="optional", server_default="optional")
    # What the OPTIONS pings last found (sautikit.pbx.trunk_health): up, down, unknown.
    health: Mapped[str] = mapped_column(String(8), default="unknown", server_default="unknown")
    health_changed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Number(Base):
    """A DID from the operator's inventory; ``workspace_id`` is set while claimed."""

    __tablename__ = "numbers"

    id: Mapped[str] = _id_column()
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    monthly_price_minor: Mapped[int] = mapped_column(BigInteger)
    capabilities: Mapped[list[str]] = mapped_column(default=lambda: ["voice"])
    status: Mapped[str] = mapped_column(String(16), default="available", index=True)
    workspace_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="SET NULL"), index=True
    )
    voice_url: Mapped[str | None] = mapped_column(String(2048))
    voice_method: Mapped[str] = mapped_column(String(8), default="POST")
    fallback_url: Mapped[str | None] = mapped_column(String(2048))
    events_url: Mapped[str | None] = mapped_column(String(2048))
    # "form" or "json" for this number's calls; None: the workspace's callback_encoding.
    callback_encoding: Mapped[str | None] = mapped_column(String(8))
    claimed_at: Mapped[datetime | None]
    paid_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SipCredential(Base):
    """A device login bound to a number; only digest HA1 values are kept (realm = workspace)."""

    __tablename__ = "sip_credentials"

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    number_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("numbers.id", ondelete="CASCADE"), index=True
    )
    username: Mapped[str] = mapped_column(String(100), unique=True)
    ha1_md5: Mapped[str] = mapped_column(String(32))
    ha1_sha256: Mapped[str] = mapped_column(String(64))
    # The digest algorithms its challenge offers, in order; NULL: the deployment's setting.
    digest_algorithms: Mapped[list[str] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class SipRegistration(Base):
    """A device's registered contact (RFC 3261 §10.3), shared by every process and kept
    across restarts. ``aor`` is the registrar's key (``sip:<username>``); ``source_*`` is
    where the REGISTER came from (behind NAT, the only address that reaches the device)."""

    __tablename__ = "sip_registrations"
    __table_args__ = (UniqueConstraint("aor", "contact"),)

    id: Mapped[str] = _id_column()
    aor: Mapped[str] = mapped_column(String(200), index=True)
    contact: Mapped[str] = mapped_column(String(1024))
    source_host: Mapped[str | None] = mapped_column(String(255))
    source_port: Mapped[int | None]
    source_transport: Mapped[str | None] = mapped_column(String(8))
    call_id: Mapped[str] = mapped_column(String(255))
    cseq: Mapped[int] = mapped_column(BigInteger)
    q: Mapped[float]
    registered_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    node: Mapped[str] = mapped_column(String(100))
    # The Path (RFC 3327) proxies in front added to the REGISTER, nearest first: calls to
    # the device go back through them. NULL: registered directly.
    path: Mapped[list[str] | None]


class Node(Base):
    """A ``sautikit serve`` process sharing the database, and its lease (cluster.lease).

    The node renews ``lease_expires_at`` while it runs; once it has passed, another node
    claims the recovery (``recovered_by``) and closes the calls it left live."""

    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    started_at: Mapped[datetime]
    renewed_at: Mapped[datetime]
    lease_expires_at: Mapped[datetime] = mapped_column(index=True)
    sip_address: Mapped[str | None] = mapped_column(String(300))
    recovered_by: Mapped[str | None] = mapped_column(String(100))
    recovered_at: Mapped[datetime | None]


class RateBucket(Base):
    """A token bucket shared by every node (cluster.buckets): ``tokens`` as of
    ``updated_at`` (Unix seconds); ``allowed`` says whether the last take got one."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float]
    updated_at: Mapped[float]
    allowed: Mapped[bool]


class ConferenceRoom(Base):
    """The node holding a live conference room's media (voice.rooms); callers reaching
    another node are relayed to it. The row goes when the room ends."""

    __tablename__ = "conference_rooms"

    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    node: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Call(Base):
    """One call leg (SPEC §4); a dial's callee leg points at its caller's leg."""

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_live", "status", "owner"),)

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    direction: Mapped[str] = mapped_column(String(10))  # inbound | outbound
    # An outbound call to a number this deployment holds: it stays on the platform and is
    # rated at the on-net rate (calls.routing.is_on_net, decided at admission).
    on_net: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    from_number: Mapped[str] = mapped_column(String(255))
    to_number: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    number_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("numbers.id", ondelete="SET NULL")
    )
    parent_call_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("calls.id", ondelete="SET NULL"), index=True
    )
    action_url: Mapped[str | None] = mapped_column(String(2048))
    method: Mapped[str] = mapped_column(String(8), default="POST")
    events_url: Mapped[str | None] = mapped_column(String(2048))
    fallback_url: Mapped[str | None] = mapped_column(String(2048))
    ring_timeout_seconds: Mapped[int] = mapped_column(Integer, default=30)
    record: Mapped[str | None] = mapped_column(String(32))
    max_duration_seconds: Mapped[int | None] = mapped_column(Integer)
    hangup_cause: Mapped[str | None] = mapped_column(String(32))
    price_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="KES")
    error: Mapped[dict[str, Any] | None]
    # The process holding the call's media, so commands reach it (SPEC: several processes).
    owner: Mapped[str | None] = mapped_column(String(100))
    # The owner stamps live calls every few seconds: after a crash, how long they lasted.
    last_seen_at: Mapped[datetime | None]
    # The sequence number of the call's latest event (SPEC §7): incremented under the row's
    # lock, so two transactions never hand out the same number.
    event_sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sip_call_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # The SIP dialog as the owner last stored it (a sip.teardown.DialogSnapshot as JSON):
    # after a crash, what the next process needs to end the call at the far end.
    sip_dialog: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    # The leg's audio at hangup (media.quality.LegQuality.as_record): packets, lost,
    # jitter_ms, mos_estimate, one_way_audio.
    quality: Mapped[dict[str, Any] | None]
    # An API call's answering-machine detection, as asked for: mode, async, callback,
    # timings (the verdict goes to the app, in AnsweredBy).
    machine_detection: Mapped[dict[str, Any] | None]
    # Its verdict (human, machine_start, machine_end_beep, … unknown), once known.
    answered_by: Mapped[str | None] = mapped_column(String(32))


class Queue(Base):
    """A workspace's call queue (the ``enqueue`` verb), made by the first caller to join."""

    __tablename__ = "queues"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    name: Mapped[str] = mapped_column(String(128))
    # Callers waiting at most; the latest enqueue's maxSize sets it.
    max_size: Mapped[int] = mapped_column(Integer, default=100)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QueueMember(Base):
    """One stay of a call in a queue. ``seq`` is handed out by the database in the order
    callers joined (joins of one queue take turns on its row's lock), so FIFO holds
    across processes; agents claim the lowest waiting ``seq`` with SKIP LOCKED."""

    __tablename__ = "queue_members"
    __table_args__ = (Index("ix_queue_members_waiting", "queue_id", "status", "seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    queue_id: Mapped[str] = mapped_column(String(36), ForeignKey("queues.id", ondelete="CASCADE"))
    workspace_id: Mapped[str] = _workspace_column()
    call_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    # The process holding the caller's media (calls.owner): only it can bridge them.
    node: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting|bridging|left
    # QueueResult once left: bridged, hangup, leave, removed, error, redirected.
    result: Mapped[str | None] = mapped_column(String(16))
    agent_call_id: Mapped[str | None] = mapped_column(String(36))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    left_at: Mapped[datetime | None]
    wait_seconds: Mapped[int | None] = mapped_column(Integer)


class Event(Base):
    """The durable outbox (SPEC §7): written in the transaction of the change it reports."""

    __tablename__ = "events"

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    kind: Mapped[str] = mapped_column(String(64), index=True)
    call_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("calls.id", ondelete="SET NULL"), index=True
    )
    # The call's or number's events_url at the time of the event.
    target_url: Mapped[str | None] = mapped_column(String(2048))
    data: Mapped[dict[str, Any]]
    # 1, 2, 3 … among the events of one call (also data["sequence"]); NULL for others.
    sequence: Mapped[int | None] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    # NULL until the delivery worker has fanned the event out into deliveries.
    dispatched_at: Mapped[datetime | None] = mapped_column(index=True)


class Delivery(Base):
    """One event to one URL, retried on SPEC §7's schedule until 2xx or dead_letter."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = _id_column()
    event_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    subscription_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("webhook_subscriptions.id", ondelete="SET NULL")
    )
    url: Mapped[str] = mapped_column(String(2048))
    # A voice callback carried on the event's retries (``transcribeCallback``):
    # {"method", "encoding", "fields"}; NULL: the event's JSON envelope.
    callback: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[str] = _id_column()
    delivery_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class Recording(Base):
    """SPEC §5's recording row; ``spool_path`` lets a restart finish what a crash left."""

    __tablename__ = "recordings"

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    call_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(16))  # record | dial | conference | api
    # recording → finalising → uploading → ready | empty | failed; deleted; expired
    status: Mapped[str] = mapped_column(String(16), default="recording", index=True)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer, default=1)
    format: Mapped[str] = mapped_column(String(8), default="wav")
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(1024))
    spool_path: Mapped[str | None] = mapped_column(String(1024))
    trim_silence: Mapped[bool] = mapped_column(Boolean, default=False)
    # The record verb's callback and transcription wishes, kept for recovery after a crash.
    action_url: Mapped[str | None] = mapped_column(String(2048))
    action_method: Mapped[str] = mapped_column(String(8), default="POST")
    transcribe: Mapped[bool] = mapped_column(Boolean, default=False)
    transcribe_callback: Mapped[str | None] = mapped_column(String(2048))
    callback_sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ready_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    """Why a ``failed`` recording failed (e.g. its node died with the spool)."""


class Transcription(Base):
    __tablename__ = "transcriptions"

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    recording_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("recordings.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    engine: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    # ISO 639-1 code of the language transcribed; null until completed.
    language: Mapped[str | None] = mapped_column(String(8))
    # Per channel of the recording: {"channel", "speaker", "text", "words": [{"word",
    # "start", "end", "confidence"}]}; a dual recording has the caller first, the callee next.
    channels: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A worker's claim; a claim older than the job timeout is taken over, so none is stuck.
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]


class Wallet(Base):
    """The balance of a workspace's prepaid KES wallet; always the sum of its entries."""

    __tablename__ = "wallets"

    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="KES")
    # Set when the balance fell below the threshold; cleared when it rises above it again.
    below_threshold: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WalletEntry(Base):
    """An append-only ledger line; debits are negative."""

    __tablename__ = "wallet_entries"
    __table_args__ = (UniqueConstraint("workspace_id", "idempotency_key"),)

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    entry_type: Mapped[str] = mapped_column(String(32))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    balance_after_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="KES")
    call_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("calls.id", ondelete="SET NULL")
    )
    number_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("numbers.id", ondelete="SET NULL")
    )
    idempotency_key: Mapped[str] = mapped_column(String(255))
    reference: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WalletReservation(Base):
    """Money held for a live call, so concurrent calls cannot spend the same shillings."""

    __tablename__ = "wallet_reservations"

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    call_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("calls.id", ondelete="CASCADE"), unique=True
    )
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TopUp(Base):
    """A payment into the wallet (issue 18): an M-Pesa STK push or a Paybill payment.

    ``pending`` until M-Pesa answers, then ``confirmed`` (one ledger credit, ``entry_id``)
    or ``failed`` (``failure_reason``). ``provider_reference`` is the M-Pesa receipt.
    """

    __tablename__ = "topups"

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    provider: Mapped[str] = mapped_column(String(16), default="mpesa")
    method: Mapped[str] = mapped_column(String(16))  # stk_push | paybill
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="KES")
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    account_reference: Mapped[str | None] = mapped_column(String(20))
    checkout_request_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    merchant_request_id: Mapped[str | None] = mapped_column(String(64))
    provider_reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    result_code: Mapped[str | None] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(String(255))
    entry_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("wallet_entries.id", ondelete="SET NULL")
    )
    # Set just before the push is sent: a push never sent is sent by the sweep after a crash.
    push_sent_at: Mapped[datetime | None]
    query_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None]


class MpesaPayment(Base):
    """Money M-Pesa reported that matches no workspace or push: kept for the operator to
    assign (``sautikit mpesa assign``), never dropped."""

    __tablename__ = "mpesa_payments"

    id: Mapped[str] = _id_column()
    source: Mapped[str] = mapped_column(String(8))  # c2b | stk
    trans_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    msisdn: Mapped[str | None] = mapped_column(String(100))
    account_reference: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="unmatched", index=True)
    topup_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("topups.id", ondelete="SET NULL")
    )
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    assigned_at: Mapped[datetime | None]


class ConsoleUser(Base):
    """A workspace member who signs in to the web console (``/console``)."""

    __tablename__ = "console_users"

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # argon2id, with its parameters and salt in the string.
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # owner | developer | viewer
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A signed-in browser: the cookie holds a secret, the row only its SHA-256."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = _id_column()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # NULL with ``operator`` set: the operator signed in with the operator token.
    user_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("console_users.id", ondelete="CASCADE"), index=True
    )
    operator: Mapped[bool] = mapped_column(Boolean, default=False)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ConsoleInvite(Base):
    """A link that lets someone become a member by choosing a password (used once)."""

    __tablename__ = "console_invites"

    id: Mapped[str] = _id_column()
    workspace_id: Mapped[str] = _workspace_column()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
