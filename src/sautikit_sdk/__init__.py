"""The Python SDK for Sautikit: ``pip install sautikit-sdk``, ``import sautikit_sdk``.

It needs only httpx and pydantic, so an app's webhook installs it without the server::

    from sautikit_sdk import Sautikit

    client = Sautikit("sk_live_…", base_url="http://127.0.0.1:8080")
    call = client.calls.create(
        to="+254722999000", from_="+254700000001", action_url="https://app.example.com/answer"
    )
    for call in client.calls.list(status="completed"):
        print(call.id, call.price_minor, call.currency)

Both clients (``Sautikit`` and ``AsyncSautikit``) have the same resources (``calls``,
``numbers``, ``sip_credentials``, ``recordings``, ``conferences``, ``queues``, ``wallet``,
``webhooks``, ``events``, ``settings``, ``pricing``, ``workspace``), answer typed
models, follow ``next_cursor`` when iterated, send an ``Idempotency-Key`` with every POST,
and raise :class:`SautikitError` subclasses. Voice-action builders are in
:mod:`sautikit_sdk.actions`; webhook signatures are checked with
:func:`sautikit_sdk.webhooks.verify`, which the server's signing shares
(:mod:`sautikit_sdk.signing`). See docs/sdk.md.
"""

from sautikit_sdk._async import AsyncPaginator, AsyncSautikit
from sautikit_sdk._errors import (
    AuthenticationError,
    ConflictError,
    ConnectionFailedError,
    InsufficientFundsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    SautikitError,
    ValidationError,
)
from sautikit_sdk._models import (
    AvailableNumber,
    Call,
    CallEvent,
    CallRecording,
    Conference,
    ConferenceParticipant,
    Delivery,
    DeliveryAttempt,
    DestinationRate,
    Event,
    Number,
    Pricing,
    Queue,
    QueueMember,
    Recording,
    Settings,
    SipCredential,
    SipCredentialCreated,
    Transcription,
    WalletBalance,
    WalletTransaction,
    Webhook,
    WebhookCreated,
    Workspace,
)
from sautikit_sdk._request import NOT_GIVEN, Page
from sautikit_sdk._sync import Paginator, Sautikit
from sautikit_sdk._version import __version__
from sautikit_sdk.webhooks import WebhookVerificationError, verify

__all__ = [
    "NOT_GIVEN",
    "AsyncPaginator",
    "AsyncSautikit",
    "AuthenticationError",
    "AvailableNumber",
    "Call",
    "CallEvent",
    "CallRecording",
    "Conference",
    "ConferenceParticipant",
    "ConflictError",
    "ConnectionFailedError",
    "Delivery",
    "DeliveryAttempt",
    "DestinationRate",
    "Event",
    "InsufficientFundsError",
    "NotFoundError",
    "Number",
    "Page",
    "Paginator",
    "PermissionDeniedError",
    "Pricing",
    "Queue",
    "QueueMember",
    "RateLimitedError",
    "Recording",
    "Sautikit",
    "SautikitError",
    "Settings",
    "SipCredential",
    "SipCredentialCreated",
    "Transcription",
    "ValidationError",
    "WalletBalance",
    "WalletTransaction",
    "Webhook",
    "WebhookCreated",
    "WebhookVerificationError",
    "Workspace",
    "__version__",
    "verify",
]
