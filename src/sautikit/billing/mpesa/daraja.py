"""A small client for Safaricom's Daraja API: OAuth, STK push, STK query, C2B URLs.

Only what top-ups need. Every call carries a bearer token from ``/oauth/v1/generate``
(HTTP Basic with the consumer key and secret), kept until shortly before it expires.
Daraja answers errors as ``{"requestId", "errorCode", "errorMessage"}``; they become
``DarajaError`` with Safaricom's own message, and nothing secret is logged.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from sautikit.config import Settings

__all__ = [
    "STK_STILL_PROCESSING",
    "C2bRegistration",
    "DarajaClient",
    "DarajaError",
    "StkPushAccepted",
    "StkQueryResult",
    "daraja_timestamp",
    "stk_password",
]

log = logging.getLogger(__name__)

# Daraja stamps requests in Kenya's time, UTC+3 all year.
_NAIROBI = timezone(timedelta(hours=3))
# The errorCode Daraja answers to a query about a push the customer has not yet answered.
STK_STILL_PROCESSING = "500.001.1001"
# A token is renewed this long before Daraja says it expires.
_TOKEN_MARGIN_SECONDS = 60.0


class DarajaError(Exception):
    """Daraja refused a request or could not be reached; ``code`` is Daraja's errorCode."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StkPushAccepted:
    checkout_request_id: str
    merchant_request_id: str
    customer_message: str


@dataclass(frozen=True)
class StkQueryResult:
    """What Daraja knows of a push: ``result_code`` 0 is paid; anything else is not."""

    result_code: int
    result_desc: str


@dataclass(frozen=True)
class C2bRegistration:
    response_code: str
    description: str


def daraja_timestamp(now: datetime | None = None) -> str:
    """``YYYYMMDDHHMMSS`` in Nairobi time, as the STK push and query expect."""
    return (now or datetime.now(_NAIROBI)).astimezone(_NAIROBI).strftime("%Y%m%d%H%M%S")


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """Daraja's STK password: base64 of shortcode + passkey + timestamp."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode()


class DarajaClient:
    """One deployment's Daraja credentials and an HTTP client; close it with ``aclose``."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._base = settings.effective_daraja_base_url
        self._http = http or httpx.AsyncClient(timeout=settings.daraja_timeout_seconds)
        self._owns_http = http is None
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _access_token(self) -> str:
        async with self._token_lock:
            if self._token is not None and time.monotonic() < self._token_expires:
                return self._token
            key = self._settings.daraja_consumer_key.get_secret_value()
            secret = self._settings.daraja_consumer_secret.get_secret_value()
            try:
                response = await self._http.get(
                    f"{self._base}/oauth/v1/generate",
                    params={"grant_type": "client_credentials"},
                    auth=(key, secret),
                )
            except httpx.HTTPError as exc:
                raise DarajaError(f"Daraja could not be reached: {type(exc).__name__}") from None
            body = _json(response)
            token = body.get("access_token")
            if response.status_code != 200 or not isinstance(token, str) or not token:
                raise DarajaError(
                    f"Daraja refused the consumer key and secret (HTTP {response.status_code})",
                    code=str(body.get("errorCode") or response.status_code),
                )
            try:
                lifetime = float(body.get("expires_in", 3599))
            except (TypeError, ValueError):
                lifetime = 3599.0
            self._token = token
            self._token_expires = time.monotonic() + max(0.0, lifetime - _TOKEN_MARGIN_SECONDS)
            return token

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        token = await self._access_token()
        try:
            response = await self._http.post(
                f"{self._base}{path}", json=payload, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            raise DarajaError(f"Daraja could not be reached: {type(exc).__name__}") from None
        body = _json(response)
        if response.status_code == 401:
            self._token = None  # revoked early: the next request fetches a new one
        if response.status_code >= 400 or "errorCode" in body:
            message = body.get("errorMessage") or f"HTTP {response.status_code}"
            raise DarajaError(str(message), code=str(body.get("errorCode") or ""))
        return body

    def _password(self) -> tuple[str, str]:
        timestamp = daraja_timestamp()
        shortcode = self._settings.daraja_shortcode
        return timestamp, stk_password(
            shortcode, self._settings.daraja_passkey.get_secret_value(), timestamp
        )

    async def stk_push(
        self,
        *,
        phone_digits: str,
        amount_kes: int,
        account_reference: str,
        description: str,
        callback_url: str,
    ) -> StkPushAccepted:
        """Ask M-Pesa to prompt the phone ``2547…`` to pay ``amount_kes`` to the Paybill."""
        timestamp, password = self._password()
        shortcode = self._settings.daraja_shortcode
        body = await self._post(
            "/mpesa/stkpush/v1/processrequest",
            {
                "BusinessShortCode": shortcode,
                "Password": password,
                "Timestamp": timestamp,
                "TransactionType": "CustomerPayBillOnline",
                "Amount": amount_kes,
                "PartyA": phone_digits,
                "PartyB": shortcode,
                "PhoneNumber": phone_digits,
                "CallBackURL": callback_url,
                "AccountReference": account_reference,
                "TransactionDesc": description,
            },
        )
        if str(body.get("ResponseCode")) != "0" or not body.get("CheckoutRequestID"):
            raise DarajaError(
                str(body.get("ResponseDescription") or "Daraja did not accept the push"),
                code=str(body.get("ResponseCode") or ""),
            )
        return StkPushAccepted(
            checkout_request_id=str(body["CheckoutRequestID"]),
            merchant_request_id=str(body.get("MerchantRequestID") or ""),
            customer_message=str(body.get("CustomerMessage") or ""),
        )

    async def stk_query(self, checkout_request_id: str) -> StkQueryResult | None:
        """The push's outcome, or None while the customer has not answered yet."""
        timestamp, password = self._password()
        try:
            body = await self._post(
                "/mpesa/stkpushquery/v1/query",
                {
                    "BusinessShortCode": self._settings.daraja_shortcode,
                    "Password": password,
                    "Timestamp": timestamp,
                    "CheckoutRequestID": checkout_request_id,
                },
            )
        except DarajaError as exc:
            if exc.code == STK_STILL_PROCESSING:
                return None
            raise
        try:
            code = int(str(body.get("ResultCode")))
        except ValueError:
            raise DarajaError("Daraja's query answer has no ResultCode") from None
        return StkQueryResult(result_code=code, result_desc=str(body.get("ResultDesc") or ""))

    async def register_c2b_urls(
        self, *, confirmation_url: str, validation_url: str
    ) -> C2bRegistration:
        """Register where Paybill payments are validated and confirmed (``registerurl``).

        ``ResponseType: Completed``: should validation be unreachable, M-Pesa completes
        the payment, and the confirmation (or the operator's unmatched list) accounts for it.
        """
        body = await self._post(
            "/mpesa/c2b/v1/registerurl",
            {
                "ShortCode": self._settings.daraja_shortcode,
                "ResponseType": "Completed",
                "ConfirmationURL": confirmation_url,
                "ValidationURL": validation_url,
            },
        )
        return C2bRegistration(
            response_code=str(body.get("ResponseCode") or ""),
            description=str(body.get("ResponseDescription") or ""),
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
