"""The async client: transport, pagination and every resource.

This module is the one definition of the resources. ``_sync.py`` is generated from it by
``python -m sautikit_sdk._unasync`` (``async``/``await`` removed, ``AsyncX`` renamed
``X``); a test fails when the two drift apart, so edit this file and regenerate.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Sequence
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

__all__ = ["AsyncPaginator", "AsyncSautikit", "AsyncTransport"]

M = TypeVar("M", bound=BaseModel)
CallMethod = Literal["POST", "GET"]


class AsyncTransport:
    """Sends :class:`ApiRequest` values with the key, retrying what is safe to retry."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: float,
        retry: RetryPolicy,
        http_client: httpx.AsyncClient | None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._retry = retry
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "User-Agent": f"sautikit-python/{__version__}",
        }

    async def send(self, request: ApiRequest) -> httpx.Response:
        """The answer (below 400), or the error it carried raised as an exception."""
        attempt = 0
        while True:
            try:
                response = await self._http.request(
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
            await asyncio.sleep(self._retry.delay(attempt, retry_after))
            attempt += 1

    async def json(self, request: ApiRequest) -> Any:
        return (await self.send(request)).json()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


class AsyncPaginator(Generic[M]):
    """Every item of a list, newest first, fetching pages as iteration reaches them."""

    def __init__(self, transport: AsyncTransport, request: ApiRequest, model: type[M]) -> None:
        self._transport = transport
        self._request = request
        self._model = model

    async def page(self, cursor: str | None = None) -> Page[M]:
        """One page: the first, or the one ``cursor`` (a ``next_cursor``) names."""
        params = self._request.params | ({"cursor": cursor} if cursor else {})
        answer = await self._transport.json(
            ApiRequest(self._request.method, self._request.path, params)
        )
        return Page(
            [self._model.model_validate(item) for item in answer["data"]], answer["next_cursor"]
        )

    async def _items(self) -> AsyncIterator[M]:
        cursor: str | None = None
        while True:
            page = await self.page(cursor)
            for item in page.data:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def __aiter__(self) -> AsyncIterator[M]:
        return self._items()


class _AsyncResource:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def _one(self, model: type[M], request: ApiRequest) -> M:
        return model.model_validate(await self._transport.json(request))

    def _list(self, model: type[M], url: str, params: dict[str, str]) -> AsyncPaginator[M]:
        return AsyncPaginator(self._transport, ApiRequest("GET", url, params), model)


class AsyncCalls(_AsyncResource):
    """``/v1/calls``: place calls, read call records, steer live calls."""

    async def create(
        self,
        *,
        to: str,
        from_: str,
        action_url: str,
        method: CallMethod | None = None,
        events_url: str | None = None,
        fallback_url: str | None = None,
        timeout: int | None = None,  # noqa: ASYNC109 - the ring time, sent to the API
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
        return await self._one(
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
    ) -> AsyncPaginator[Call]:
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

    async def get(self, call_id: str) -> Call:
        """The call with its legs, events and recordings."""
        return await self._one(Call, ApiRequest("GET", path("/v1/calls/{}", call_id)))

    async def update(
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
        return await self._one(Call, request)

    async def redirect(
        self, call_id: str, action_url: str, *, method: CallMethod | None = None
    ) -> Call:
        """Fetch new actions from ``action_url`` and run them now."""
        return await self.update(call_id, action_url=action_url, method=method)

    async def hangup(self, call_id: str) -> Call:
        return await self.update(call_id, status="completed")

    async def transfer(self, call_id: str, to: str) -> Call:
        """Blind transfer to ``to`` (E.164 or ``sip:``): a callee bridged by ``dial`` hands
        its caller on to it; a call running its app dials it instead."""
        return await self.update(call_id, transfer=to)

    async def set_recording(
        self, call_id: str, state: Literal["paused", "resumed", "stopped"]
    ) -> Call:
        """Pause, resume or stop the call's active recording."""
        return await self.update(call_id, recording=state)

    async def recording_url(self, call_id: str) -> str:
        """A presigned URL of the call's latest recording (no API key needed to fetch it)."""
        answer = await self._transport.send(
            ApiRequest("GET", path("/v1/calls/{}/recording", call_id))
        )
        return answer.headers["Location"]


class AsyncNumbers(_AsyncResource):
    """``/v1/numbers``: the inventory, and the workspace's numbers."""

    def available(
        self,
        *,
        prefix: str | None = None,
        capability: Literal["voice", "sms"] | None = None,
        limit: int | None = None,
    ) -> AsyncPaginator[AvailableNumber]:
        params = query(prefix=prefix, capability=capability, limit=limit)
        return self._list(AvailableNumber, "/v1/numbers/available", params)

    async def claim(self, number_id: str, *, idempotency_key: str | None = None) -> Number:
        """Claim a number from the inventory; pays its first month from the wallet."""
        request = ApiRequest.post(
            path("/v1/numbers/{}/claim", number_id), idempotency_key=idempotency_key
        )
        return await self._one(Number, request)

    def list(
        self, *, status: Literal["active", "suspended"] | None = None, limit: int | None = None
    ) -> AsyncPaginator[Number]:
        return self._list(Number, "/v1/numbers", query(status=status, limit=limit))

    async def get(self, number_id: str) -> Number:
        return await self._one(Number, ApiRequest("GET", path("/v1/numbers/{}", number_id)))

    async def update_routing(
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
        return await self._one(Number, request)

    async def release(self, number_id: str) -> None:
        """Hand the number back to the inventory; its rental stops."""
        await self._transport.send(ApiRequest("DELETE", path("/v1/numbers/{}", number_id)))


class AsyncSipCredentials(_AsyncResource):
    """``/v1/numbers/{id}/sip-credentials``: device logins bound to a number."""

    async def create(
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
        return await self._one(SipCredentialCreated, request)

    def list(self, number_id: str, *, limit: int | None = None) -> AsyncPaginator[SipCredential]:
        url = path("/v1/numbers/{}/sip-credentials", number_id)
        return self._list(SipCredential, url, query(limit=limit))

    async def get(self, number_id: str, credential_id: str) -> SipCredential:
        url = path("/v1/numbers/{}/sip-credentials/{}", number_id, credential_id)
        return await self._one(SipCredential, ApiRequest("GET", url))

    async def rotate(
        self, number_id: str, credential_id: str, *, idempotency_key: str | None = None
    ) -> SipCredentialCreated:
        """A new login replacing ``credential_id``, which works until it is deleted."""
        url = path("/v1/numbers/{}/sip-credentials/{}/rotate", number_id, credential_id)
        request = ApiRequest.post(url, idempotency_key=idempotency_key)
        return await self._one(SipCredentialCreated, request)

    async def delete(self, number_id: str, credential_id: str) -> None:
        url = path("/v1/numbers/{}/sip-credentials/{}", number_id, credential_id)
        await self._transport.send(ApiRequest("DELETE", url))


class AsyncRecordings(_AsyncResource):
    """``/v1/recordings``: metadata with fresh download URLs, and transcripts."""

    def list(
        self,
        *,
        call_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> AsyncPaginator[Recording]:
        params = query(call_id=call_id, status=status, limit=limit)
        return self._list(Recording, "/v1/recordings", params)

    async def get(self, recording_id: str) -> Recording:
        url = path("/v1/recordings/{}", recording_id)
        return await self._one(Recording, ApiRequest("GET", url))

    async def delete(self, recording_id: str) -> Recording:
        """Remove the stored file; the metadata stays with ``status: deleted``."""
        url = path("/v1/recordings/{}", recording_id)
        return await self._one(Recording, ApiRequest("DELETE", url))

    async def transcription(self, recording_id: str) -> Transcription:
        url = path("/v1/recordings/{}/transcription", recording_id)
        return await self._one(Transcription, ApiRequest("GET", url))


class AsyncConferences(_AsyncResource):
    """``/v1/conferences``: the live rooms."""

    def list(self) -> AsyncPaginator[Conference]:
        return self._list(Conference, "/v1/conferences", {})

    async def get(self, name: str) -> Conference:
        return await self._one(Conference, ApiRequest("GET", path("/v1/conferences/{}", name)))

    async def mute(
        self, name: str, call_id: str, muted: bool = True, *, idempotency_key: str | None = None
    ) -> Conference:
        """Mute (or with ``muted=False`` unmute) a participant."""
        url = path("/v1/conferences/{}/participants/{}", name, call_id)
        request = ApiRequest.post(url, {"muted": muted}, idempotency_key=idempotency_key)
        return await self._one(Conference, request)

    async def remove(self, name: str, call_id: str) -> None:
        url = path("/v1/conferences/{}/participants/{}", name, call_id)
        await self._transport.send(ApiRequest("DELETE", url))


class AsyncQueues(_AsyncResource):
    """``/v1/queues``: call queues and the callers waiting in them."""

    def list(self) -> AsyncPaginator[Queue]:
        return self._list(Queue, "/v1/queues", {})

    async def get(self, name: str) -> Queue:
        return await self._one(Queue, ApiRequest("GET", path("/v1/queues/{}", name)))

    def members(self, name: str) -> AsyncPaginator[QueueMember]:
        """The waiting callers, next to be taken first."""
        return self._list(QueueMember, path("/v1/queues/{}/members", name), {})

    async def remove(self, name: str, call_id: str) -> None:
        """Take a caller out of the queue (its enqueue's action gets ``removed``)."""
        url = path("/v1/queues/{}/members/{}", name, call_id)
        await self._transport.send(ApiRequest("DELETE", url))


class AsyncWallet(_AsyncResource):
    """``/v1/wallet``: the prepaid KES balance and its ledger, in minor units."""

    async def balance(self) -> WalletBalance:
        return await self._one(WalletBalance, ApiRequest("GET", "/v1/wallet/balance"))

    def transactions(
        self, *, entry_type: str | None = None, limit: int | None = None
    ) -> AsyncPaginator[WalletTransaction]:
        params = query(entry_type=entry_type, limit=limit)
        return self._list(WalletTransaction, "/v1/wallet/transactions", params)


class AsyncWebhooks(_AsyncResource):
    """``/v1/webhooks``: workspace-level event subscriptions."""

    async def create(
        self, *, url: str, events: Sequence[str], idempotency_key: str | None = None
    ) -> WebhookCreated:
        """Subscribe ``url`` to ``events`` (``["*"]`` for all); the ``secret`` is shown once."""
        request = ApiRequest.post(
            "/v1/webhooks", {"url": url, "events": list(events)}, idempotency_key=idempotency_key
        )
        return await self._one(WebhookCreated, request)

    def list(self, *, limit: int | None = None) -> AsyncPaginator[Webhook]:
        return self._list(Webhook, "/v1/webhooks", query(limit=limit))

    async def get(self, webhook_id: str) -> Webhook:
        return await self._one(Webhook, ApiRequest("GET", path("/v1/webhooks/{}", webhook_id)))

    async def delete(self, webhook_id: str) -> None:
        await self._transport.send(ApiRequest("DELETE", path("/v1/webhooks/{}", webhook_id)))


class AsyncEvents(_AsyncResource):
    """``/v1/events``: the event log and each delivery attempt."""

    def list(
        self, *, kind: str | None = None, call_id: str | None = None, limit: int | None = None
    ) -> AsyncPaginator[Event]:
        return self._list(Event, "/v1/events", query(kind=kind, call_id=call_id, limit=limit))

    async def get(self, event_id: str) -> Event:
        return await self._one(Event, ApiRequest("GET", path("/v1/events/{}", event_id)))

    def deliveries(self, event_id: str, *, limit: int | None = None) -> AsyncPaginator[Delivery]:
        url = path("/v1/events/{}/deliveries", event_id)
        return self._list(Delivery, url, query(limit=limit))

    async def redeliver(
        self, event_id: str, *, idempotency_key: str | None = None
    ) -> builtins.list[Delivery]:  # ``list`` here is the method above
        """Send the event again; answers the new pending deliveries."""
        url = path("/v1/events/{}/redeliver", event_id)
        answer = await self._transport.json(ApiRequest.post(url, idempotency_key=idempotency_key))
        return [Delivery.model_validate(item) for item in answer["data"]]


class AsyncSettingsResource(_AsyncResource):
    """``/v1/settings``: allow-lists, call caps, recording storage and retention."""

    async def get(self) -> Settings:
        return await self._one(Settings, ApiRequest("GET", "/v1/settings"))

    async def update(
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
        return await self._one(Settings, ApiRequest("PATCH", "/v1/settings", json=fields))


class AsyncPricingResource(_AsyncResource):
    async def get(self) -> Pricing:
        """The public headline rates (needs no key)."""
        return await self._one(Pricing, ApiRequest("GET", "/v1/public/pricing"))


class AsyncWorkspaceResource(_AsyncResource):
    async def get(self) -> Workspace:
        """The workspace the API key belongs to, and the key's scopes."""
        return await self._one(Workspace, ApiRequest("GET", "/v1/workspace"))


class AsyncSautikit:
    """The Sautikit API client: ``async with AsyncSautikit(key) as client: ...``.

    ``http_client`` replaces the default ``httpx.AsyncClient`` (for a proxy, custom TLS,
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
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if not api_key:
            raise SautikitError("an API key is needed: Sautikit(api_key='sk_live_…')")
        self._transport = AsyncTransport(
            api_key,
            base_url,
            timeout=timeout,
            retry=RetryPolicy(max_retries, retry_backoff),
            http_client=http_client,
        )
        self.calls = AsyncCalls(self._transport)
        self.numbers = AsyncNumbers(self._transport)
        self.sip_credentials = AsyncSipCredentials(self._transport)
        self.recordings = AsyncRecordings(self._transport)
        self.conferences = AsyncConferences(self._transport)
        self.queues = AsyncQueues(self._transport)
        self.wallet = AsyncWallet(self._transport)
        self.webhooks = AsyncWebhooks(self._transport)
        self.events = AsyncEvents(self._transport)
        self.settings = AsyncSettingsResource(self._transport)
        self.pricing = AsyncPricingResource(self._transport)
        self.workspace = AsyncWorkspaceResource(self._transport)

    async def aclose(self) -> None:
        """Close the connection pool the client made (not one passed in)."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncSautikit:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
