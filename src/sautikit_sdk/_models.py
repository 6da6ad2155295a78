"""The API's answers as typed models: lenient to fields a newer server adds.

Field names are the JSON names, except ``from`` (a Python keyword), which is ``from_``.
Money stays an integer count of minor units (``*_minor``) next to ``currency``; timestamps
are parsed into aware ``datetime`` values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApiModel",
    "AvailableNumber",
    "Call",
    "CallEvent",
    "CallRecording",
    "Conference",
    "ConferenceParticipant",
    "Delivery",
    "DeliveryAttempt",
    "DestinationRate",
    "Event",
    "Number",
    "Pricing",
    "Queue",
    "QueueMember",
    "Recording",
    "Settings",
    "SipCredential",
    "SipCredentialCreated",
    "Transcription",
    "WalletBalance",
    "WalletTransaction",
    "Webhook",
    "WebhookCreated",
    "Workspace",
]


class ApiModel(BaseModel):
    """Unknown fields are kept (``model_extra``), never an error: servers grow."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class CallEvent(ApiModel):
    id: str
    kind: str
    occurred_at: datetime


class CallRecording(ApiModel):
    id: str
    source: str
    status: str
    duration_seconds: int | None = None


class Call(ApiModel):
    id: str
    direction: str
    from_: str = Field(alias="from")
    to: str
    status: str
    number_id: str | None = None
    parent_call_id: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: int | None = None
    hangup_cause: str | None = None
    price_minor: int | None = None
    currency: str = "KES"
    error: dict[str, Any] | None = None
    # Only ``calls.get`` fills these three; lists leave them empty.
    legs: list[Call] = []
    events: list[CallEvent] = []
    recordings: list[CallRecording] = []


class AvailableNumber(ApiModel):
    id: str
    number: str
    capabilities: list[str]
    monthly_price_minor: int
    currency: str = "KES"


class Number(AvailableNumber):
    status: str
    voice_url: str | None = None
    voice_method: str = "POST"
    fallback_url: str | None = None
    events_url: str | None = None
    claimed_at: datetime | None = None
    paid_until: datetime | None = None
    created_at: datetime | None = None


class SipCredential(ApiModel):
    id: str
    number_id: str
    username: str
    realm: str
    status: str
    created_at: datetime
    revoked_at: datetime | None = None


class SipCredentialCreated(SipCredential):
    password: str
    replaces: str | None = None


class Recording(ApiModel):
    id: str
    call_id: str
    source: str
    status: str
    duration_seconds: int | None = None
    channels: int
    format: str
    size_bytes: int | None = None
    sha256: str | None = None
    storage_key: str | None = None
    created_at: datetime
    download_url: str | None = None
    download_url_expires_at: datetime | None = None


class Transcription(ApiModel):
    id: str
    recording_id: str
    status: str
    text: str | None = None
    engine: str | None = None
    error: str | None = None
    created_at: datetime
    completed_at: datetime | None = None


class ConferenceParticipant(ApiModel):
    call_id: str
    muted: bool


class Conference(ApiModel):
    name: str
    status: str
    created_at: datetime
    participants: list[ConferenceParticipant] = []


class Queue(ApiModel):
    id: str
    name: str
    size: int
    max_size: int
    average_wait_seconds: int
    created_at: datetime


class QueueMember(ApiModel):
    call_id: str
    position: int
    wait_seconds: int
    joined_at: datetime


class WalletBalance(ApiModel):
    balance_minor: int
    available_minor: int
    currency: str
    low_balance_threshold_minor: int


class WalletTransaction(ApiModel):
    id: str
    entry_type: str
    amount_minor: int
    balance_after_minor: int
    currency: str
    call_id: str | None = None
    number_id: str | None = None
    reference: str | None = None
    idempotency_key: str
    created_at: datetime


class Webhook(ApiModel):
    id: str
    url: str
    events: list[str]
    created_at: datetime


class WebhookCreated(Webhook):
    secret: str


class Event(ApiModel):
    id: str
    kind: str
    workspace_id: str
    call_id: str | None = None
    occurred_at: datetime
    data: dict[str, Any]
    events_url: str | None = None
    dispatched_at: datetime | None = None


class DeliveryAttempt(ApiModel):
    attempted_at: datetime
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None


class Delivery(ApiModel):
    id: str
    event_id: str
    url: str
    subscription_id: str | None = None
    status: str
    attempt_count: int
    next_attempt_at: datetime | None = None
    created_at: datetime
    delivered_at: datetime | None = None
    attempts: list[DeliveryAttempt] = []


class Settings(ApiModel):
    destination_allowlist: list[str]
    sip_host_allowlist: list[str]
    play_host_allowlist: list[str]
    max_concurrent_calls: int
    max_calls_per_second: int
    recording_format: str
    storage_url: str | None = None
    storage_credentials_set: bool
    retention_days: int
    low_balance_threshold_minor: int
    currency: str = "KES"


class DestinationRate(ApiModel):
    prefix: str
    destination: str
    per_minute_minor: int


class Pricing(ApiModel):
    currency: str
    billing_increment_seconds: int
    number_rental_monthly_minor: int
    inbound_per_minute_minor: int
    outbound: list[DestinationRate]
    transcription_per_minute_minor: int


class Workspace(ApiModel):
    id: str
    name: str
    created_at: datetime
    scopes: list[str]
