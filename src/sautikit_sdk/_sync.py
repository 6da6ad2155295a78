"""The sync client: transport, pagination and every resource.

GENERATED from ``_async.py`` by ``python -m sautikit_sdk._unasync``; do not edit.
"""

# An async generator cannot ``yield from``; its sync twin keeps the same loop.
# ruff: noqa: UP028

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel

from sautikit_sdk._errors import ConnectionFailedError, SautikitError, error_from_response
from sautikit_sdk._models import (
    AvailableNumber,
    Call,
    Conference,
    Delivery,
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
from sautikit_sdk._request import (
    DEFAULT_BASE_URL,
    NOT_GIVEN,
    RETRY_STATUSES,
    ApiRequest,
    NotGiven,
    Page,
    RetryPolicy,
    body,
    patch,
    path,
    query,
)
from sautikit_sdk._version import __version__

__all__ = ["Paginator", "Sautikit", "Transport"]

M = TypeVar("M", bound=BaseModel)
CallMethod = Literal["POST", "GET"]


class Transport:
    """Sends :class:`ApiRequest` values with the key, retrying what is safe to retry."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: float,
        retry: RetryPolicy,
        http_client: httpx.Client | None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._retry = retry
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "User-Agent": f"sautikit-python/{__version__}",
        }

    def send(self, request: ApiRequest) -> httpx.Response:
        """The answer (below 400), or the error it carried raised as an exception."""
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    request.method,
                    self._base_url + request.path,
                    params=request.params,
                    json=request.json,
                    headers={**self._headers, **request.headers()},
                    follow_redirects=False,
                )
            except httpx.TransportError as failure:
                if not request.retryable or attempt >= self._retry.max_retries:
                    raise ConnectionFailedError(
                        f"{request.method} {request.path}: {failure!r}"
                    ) from failure
                retry_after = None
            else:
                if response.status_code < 400:
                    return response
                if (
                    response.status_code not in RETRY_STATUSES
                    or not request.retryable
                    or attempt >= self._retry.max_retries
                ):
                    raise error_from_response(response)
                retry_after = response.headers.get("Retry-After")
            time.sleep(self._retry.delay(attempt, retry_after))
            attempt += 1

    def json(self, request: ApiRequest) -> Any:
        return (self.send(request)).json()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()


class Paginator(Generic[M]):
    """Every item of a list, newest first, fetching pages as iteration reaches them."""

    def __init__(self, transport: Transport, request: ApiRequest, model: type[M]) -> None:
        self._transport = transport
        self._request = request
        self._model = model

    def page(self, cursor: str | None = None) -> Page[M]:
        """One page: the first, or the one ``cursor`` (a ``next_cursor``) names."""
        params = self._request.params | ({"cursor": cursor} if cursor else {})
        answer = self._transport.json(ApiRequest(self._request.method, self._request.path, params))
        return Page(
            [self._model.model_validate(item) for item in answer["data"]], answer["next_cursor"]
        )

    def _items(self) -> Iterator[M]:
        cursor: str | None = None
        while True:
            page = self.page(cursor)
            for item in page.data:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def __iter__(self) -> Iterator[M]:
        return self._items()


class _Resource:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def _one(self, model: type[M], request: ApiRequest) -> M:
        return model.model_validate(self._transport.json(request))

    def _list(self, model: type[M], url: str, params: dict[str, str]) -> Paginator[M]:
        return Paginator(self._transport, ApiRequest("GET", url, params), model)


class Calls(_Resource):
    """``/v1/calls``: place calls, read call records, steer live calls."""

    def create(
        self,
        *,
        to: str,
        from_: str,
        action_url: str,
        method: CallMethod | None = None,
        events_url: str | None = None,
        fallback_url: str | None = None,
        timeout: int | None = None,
        record: bool | None = None,
        max_duration: int | None = None,
        idempotency_key: str | None = None,
    ) -> Call:
        """Place an outbound call; answers at once with the call ``queued``."""
        fields = body(
            to=to,
            from_=from_,
            action_url=action_url,
            method=method,
            events_url=events_url,
            fallback_url=fallback_url,
            timeout=timeout,
            record=record,
            max_duration=max_duration,
        )
        return self._one(
            Call, ApiRequest.post("/v1/calls", fields, idempotency_key=idempotency_key)
        )

    def list(
        self,
        *,
        status: str | None = None,
        direction: Literal["inbound", "outbound"] | None = None,
        from_: str | None = None,
        to: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
    ) -> Paginator[Call]:
        params = query(
            status=status,
            direction=direction,
            from_=from_,
            to=to,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
        )
        return self._list(Call, "/v1/calls", params)

    def get(self, call_id: str) -> Call:
        """The call with its legs, events and recordings."""
        return self._one(Call, ApiRequest("GET", path("/v1/calls/{}", call_id)))

    def update(
        self,
        call_id: str,
        *,
        action_url: str | None = None,
        method: CallMethod | None = None,
        status: Literal["completed"] | None = None,
        recording: Literal["paused", "resumed", "stopped"] | None = None,
        transfer: str | None = None,
        idempotency_key: str | None = None,
    ) -> Call:
        """Change a live call: exactly one of ``action_url``, ``status``, ``recording``,
        ``transfer``."""
        fields = body(
            action_url=action_url,
            method=method,
            status=status,
            recording=recording,
            transfer=transfer,
        )
        request = ApiRequest.post(
            path("/v1/calls/{}", call_id), fields, idempotency_key=idempotency_key
        )
        return self._one(Call, request)

    def redirect(self, call_id: str, action_url: str, *, method: CallMethod | None = None) -> Call:
        """Fetch new actions from ``action_url`` and run them now."""
        return self.update(call_id, action_url=action_url, method=method)

    def hangup(self, call_id: str) -> Call:
        return self.update(call_id, status="completed")

    def transfer(self, call_id: str, to: str) -> Call:
        """Blind transfer to ``to`` (E.164 or ``sip:``): a callee bridged by ``dial`` hands
        its caller on to it; a call running its app dials it instead."""
        return self.update(call_id, transfer=to)

    def set_recording(self, call_id: str, state: Literal["paused", "resumed", "stopped"]) -> Call:
        """Pause, resume or stop the call's active recording."""
        return self.update(call_id, recording=state)

    def recording_url(self, call_id: str) -> str:
        """A presigned URL of the call's latest recording (no API key needed to fetch it)."""
        answer = self._transport.send(ApiRequest("GET", path("/v1/calls/{}/recording", call_id)))
        return answer.headers["Location"]


class Numbers(_Resource):
    """``/v1/numbers``: the inventory, and the workspace's numbers."""

    def available(
        self,
        *,
        prefix: str | None = None,
        capability: Literal["voice", "sms"] | None = None,
        limit: int | None = None,
    ) -> Paginator[AvailableNumber]:
        params = query(prefix=prefix, capability=capability, limit=limit)
        return self._list(AvailableNumber, "/v1/numbers/available", params)

    def claim(self, number_id: str, *, idempotency_key: str | None = None) -> Number:
        """Claim a number from the inventory; pays its first month from the wallet."""
        request = ApiRequest.post(
            path("/v1/numbers/{}/claim", number_id), idempotency_key=idempotency_key
        )
        return self._one(Number, request)

    def list(
        self, *, status: Literal["active", "suspended"] | None = None, limit: int | None = None
    ) -> Paginator[Number]:
        return self._list(Number, "/v1/numbers", query(status=status, limit=limit))

    def get(self, number_id: str) -> Number:
        return self._one(Number, ApiRequest("GET", path("/v1/numbers/{}", number_id)))

    def update_routing(
        self,
        number_id: str,
        *,
        voice_url: str | NotGiven | None = NOT_GIVEN,
        voice_method: CallMethod | NotGiven = NOT_GIVEN,
        fallback_url: str | NotGiven | None = NOT_GIVEN,
        events_url: str | NotGiven | None = NOT_GIVEN,
    ) -> Number:
        """Change only the fields given; ``None`` clears a URL."""
        fields = patch(
            voice_url=voice_url,
            voice_method=voice_method,
            fallback_url=fallback_url,
            events_url=events_url,
        )
        request = ApiRequest("PATCH", path("/v1/numbers/{}/routing", number_id), json=fields)
        return self._one(Number, request)

    def release(self, number_id: str) -> None:
        """Hand the number back to the inventory; its rental stops."""
        self._transport.send(ApiRequest("DELETE", path("/v1/numbers/{}", number_id)))


class SipCredentials(_Resource):
    """``/v1/numbers/{id}/sip-credentials``: device logins bound to a number."""

    def create(
        self,
        number_id: str,
        *,
        username: str | None = None,
        idempotency_key: str | None = None,
    ) -> SipCredentialCreated:
        """A new login; its ``password`` is in this answer only."""
        request = ApiRequest.post(
            path("/v1/numbers/{}/sip-credentials", number_id),
            body(username=username),
            idempotency_key=idempotency_key,
        )
        return self._one(SipCredentialCreated, request)

    def list(self, number_id: str, *, limit: int | None = None) -> Paginator[SipCredential]:
        url = path("/v1/numbers/{}/sip-credentials", number_id)
        return self._list(SipCredential, url, query(limit=limit))

    def get(self, number_id: str, credential_id: str) -> SipCredential:
        url = path("/v1/numbers/{}/sip-credentials/{}", number_id, credential_id)
        return self._one(SipCredential, ApiRequest("GET", url))

    def rotate(
        self, number_id: str, credential_id: str, *, idempotency_key: str | None = None
    ) -> SipCredentialCreated:
        """A new login replacing ``credential_id``, which works until it is deleted."""
        url = path("/v1/numbers/{}/sip-credentials/{}/rotate", number_id, credential_id)
        request = ApiRequest.post(url, idempotency_key=idempotency_key)
        return self._one(SipCredentialCreated, request)

    def delete(self, number_id: str, credential_id: str) -> None:
        url = path("/v1/numbers/{}/sip-credentials/{}", number_id, credential_id)
        self._transport.send(ApiRequest("DELETE", url))


class Recordings(_Resource):
    """``/v1/recordings``: metadata with fresh download URLs, and transcripts."""

    def list(
        self,
        *,
        call_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> Paginator[Recording]:
        params = query(call_id=call_id, status=status, limit=limit)
        return self._list(Recording, "/v1/recordings", params)

    def get(self, recording_id: str) -> Recording:
        url = path("/v1/recordings/{}", recording_id)
        return self._one(Recording, ApiRequest("GET", url))

    def delete(self, recording_id: str) -> Recording:
        """Remove the stored file; the metadata stays with ``status: deleted``."""
        url = path("/v1/recordings/{}", recording_id)
        return self._one(Recording, ApiRequest("DELETE", url))

    def transcription(self, recording_id: str) -> Transcription:
        url = path("/v1/recordings/{}/transcription", recording_id)
        return self._one(Transcription, ApiRequest("GET", url))


class Conferences(_Resource):
    """``/v1/conferences``: the live rooms."""

    def list(self) -> Paginator[Conference]:
        return self._list(Conference, "/v1/conferences", {})

    def get(self, name: str) -> Conference:
        return self._one(Conference, ApiRequest("GET", path("/v1/conferences/{}", name)))

    def mute(
        self, name: str, call_id: str, muted: bool = True, *, idempotency_key: str | None = None
    ) -> Conference:
        """Mute (or with ``muted=False`` unmute) a participant."""
        url = path("/v1/conferences/{}/participants/{}", name, call_id)
        request = ApiRequest.post(url, {"muted": muted}, idempotency_key=idempotency_key)
        return self._one(Conference, request)

    def remove(self, name: str, call_id: str) -> None:
        url = path("/v1/conferences/{}/participants/{}", name, call_id)
        self._transport.send(ApiRequest("DELETE", url))


class Queues(_Resource):
    """``/v1/queues``: call queues and the callers waiting in them."""

    def list(self) -> Paginator[Queue]:
        return self._list(Queue, "/v1/queues", {})

    def get(self, name: str) -> Queue:
        return self._one(Queue, ApiRequest("GET", path("/v1/queues/{}", name)))

    def members(self, name: str) -> Paginator[QueueMember]:
        """The waiting callers, next to be taken first."""
        return self._list(QueueMember, path("/v1/queues/{}/members", name), {})

    def remove(self, name: str, call_id: str) -> None:
        """Take a caller out of the queue (its enqueue's action gets ``removed``)."""
        url = path("/v1/queues/{}/members/{}", name, call_id)
        self._transport.send(ApiRequest("DELETE", url))


class Wallet(_Resource):
    """``/v1/wallet``: the prepaid KES balance and its ledger, in minor units."""

    def balance(self) -> WalletBalance:
        return self._one(WalletBalance, ApiRequest("GET", "/v1/wallet/balance"))

    def transactions(
        self, *, entry_type: str | None = None, limit: int | None = None
    ) -> Paginator[WalletTransaction]:
        params = query(entry_type=entry_type, limit=limit)
        return self._list(WalletTransaction, "/v1/wallet/transactions", params)


class Webhooks(_Resource):
    """``/v1/webhooks``: workspace-level event subscriptions."""

    def create(
        self, *, url: str, events: Sequence[str], idempotency_key: str | None = None
    ) -> WebhookCreated:
        """Subscribe ``url`` to ``events`` (``["*"]`` for all); the ``secret`` is shown once."""
        request = ApiRequest.post(
            "/v1/webhooks", {"url": url, "events": list(events)}, idempotency_key=idempotency_key
        )
        return self._one(WebhookCreated, request)

    def list(self, *, limit: int | None = None) -> Paginator[Webhook]:
        return self._list(Webhook, "/v1/webhooks", query(limit=limit))

    def get(self, webhook_id: str) -> Webhook:
        return self._one(Webhook, ApiRequest("GET", path("/v1/webhooks/{}", webhook_id)))

    def delete(self, webhook_id: str) -> None:
        self._transport.send(ApiRequest("DELETE", path("/v1/webhooks/{}", webhook_id)))


class Events(_Resource):
    """``/v1/events``: the event log and each delivery attempt."""

    def list(
        self, *, kind: str | None = None, call_id: str | None = None, limit: int | None = None
    ) -> Paginator[Event]:
        return self._list(Event, "/v1/events", query(kind=kind, call_id=call_id, limit=limit))

    def get(self, event_id: str) -> Event:
        return self._one(Event, ApiRequest("GET", path("/v1/events/{}", event_id)))

    def deliveries(self, event_id: str, *, limit: int | None = None) -> Paginator[Delivery]:
        url = path("/v1/events/{}/deliveries", event_id)
        return self._list(Delivery, url, query(limit=limit))

    def redeliver(
        self, event_id: str, *, idempotency_key: str | None = None
    ) -> builtins.list[Delivery]:  # ``list`` here is the method above
        """Send the event again; answers the new pending deliveries."""
        url = path("/v1/events/{}/redeliver", event_id)
        answer = self._transport.json(ApiRequest.post(url, idempotency_key=idempotency_key))
        return [Delivery.model_validate(item) for item in answer["data"]]


class SettingsResource(_Resource):
    """``/v1/settings``: allow-lists, call caps, recording storage and retention."""

    def get(self) -> Settings:
        return self._one(Settings, ApiRequest("GET", "/v1/settings"))

    def update(
        self,
        *,
        destination_allowlist: Sequence[str] | NotGiven = NOT_GIVEN,
        sip_host_allowlist: Sequence[str] | NotGiven = NOT_GIVEN,
        play_host_allowlist: Sequence[str] | NotGiven = NOT_GIVEN,
        max_concurrent_calls: int | NotGiven = NOT_GIVEN,
        max_calls_per_second: int | NotGiven = NOT_GIVEN,
        recording_format: Literal["wav", "mp3"] | NotGiven = NOT_GIVEN,
        storage_url: str | NotGiven | None = NOT_GIVEN,
        storage_credentials: dict[str, str] | NotGiven | None = NOT_GIVEN,
        retention_days: int | NotGiven = NOT_GIVEN,
        low_balance_threshold_minor: int | NotGiven = NOT_GIVEN,
    ) -> Settings:
        """Change only the fields given; ``storage_url=None`` returns to Sautikit's store."""
        fields = patch(
            destination_allowlist=destination_allowlist,
            sip_host_allowlist=sip_host_allowlist,
            play_host_allowlist=play_host_allowlist,
            max_concurrent_calls=max_concurrent_calls,
            max_calls_per_second=max_calls_per_second,
            recording_format=recording_format,
            storage_url=storage_url,
            storage_credentials=storage_credentials,
            retention_days=retention_days,
            low_balance_threshold_minor=low_balance_threshold_minor,
        )
        return self._one(Settings, ApiRequest("PATCH", "/v1/settings", json=fields))


class PricingResource(_Resource):
    def get(self) -> Pricing:
        """The public headline rates (needs no key)."""
        return self._one(Pricing, ApiRequest("GET", "/v1/public/pricing"))


class WorkspaceResource(_Resource):
    def get(self) -> Workspace:
        """The workspace the API key belongs to, and the key's scopes."""
        return self._one(Workspace, ApiRequest("GET", "/v1/workspace"))


class Sautikit:
    """The Sautikit API client: ``with Sautikit(key) as client: ...``.

    ``http_client`` replaces the default ``httpx.Client`` (for a proxy, custom TLS,
    or ``httpx.ASGITransport`` in tests); the client then leaves closing it to you.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        max_retries: int = 2,
        retry_backoff: float = 0.5,
        http_client: httpx.Client | None = None,
    ) -> None:
        if not api_key:
            raise SautikitError("an API key is needed: Sautikit(api_key='sk_live_…')")
        self._transport = Transport(
            api_key,
            base_url,
            timeout=timeout,
            retry=RetryPolicy(max_retries, retry_backoff),
            http_client=http_client,
        )
        self.calls = Calls(self._transport)
        self.numbers = Numbers(self._transport)
        self.sip_credentials = SipCredentials(self._transport)
        self.recordings = Recordings(self._transport)
        self.conferences = Conferences(self._transport)
        self.queues = Queues(self._transport)
        self.wallet = Wallet(self._transport)
        self.webhooks = Webhooks(self._transport)
        self.events = Events(self._transport)
        self.settings = SettingsResource(self._transport)
        self.pricing = PricingResource(self._transport)
        self.workspace = WorkspaceResource(self._transport)

    def close(self) -> None:
        """Close the connection pool the client made (not one passed in)."""
        self._transport.close()

    def __enter__(self) -> Sautikit:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
