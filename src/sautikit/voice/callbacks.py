"""Requests to the app's URLs: fetch the next action document, or notify and move on.

SPEC §3: Sautikit sends the call's fields in PascalCase (``CallId``, ``From``, ``Digits`` …).
A ``POST`` carries them as an ``application/x-www-form-urlencoded`` body, every value a
string, the way Twilio and Africa's Talking send them (:attr:`CallbackEncoding.FORM`, the
default): an app copies ``RecordingDuration`` straight into S3 object metadata, which must
be a string. A number or a workspace may choose :attr:`CallbackEncoding.JSON` instead: a
JSON object whose whole-second counts (``RecordingDuration``, ``RecordingChannels``,
``DialCallDuration``) are integers. A ``GET`` sends the same fields, as strings, in the
query string, whichever encoding is chosen. The app answers within 10 s (configurable)
with an action document.

Every request goes through :func:`sautikit.net.outbound_client` (so app URLs cannot reach
the operator's network), carries ``User-Agent: Sautikit/<version>``, and is signed like
events (SPEC §7) with the workspace's secret:
``X-Sautikit-Signature: t=<unix>,v1=<HMAC-SHA256(secret, raw + "." + t)>`` where ``raw`` is
the body of a POST exactly as sent and, for a GET, the URL's query string exactly as sent
(the part after ``?``) — a GET has no body, and signing nothing would prove nothing.

Decisions where SPEC §3 is silent: a 2xx answer with an empty body (a ``204`` included)
means "no more actions", so the call hangs up normally — an app that ignores a callback
does not make its caller hear an apology. Redirects (3xx) are not followed: they count as a
non-2xx answer.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Mapping
from urllib.parse import urlencode

import httpx

from sautikit import __version__
from sautikit.events.signing import SIGNATURE_HEADER, sign
from sautikit.net import OutboundAddressRefused
from sautikit.voice.actions import (
    MAX_DOCUMENT_BYTES,
    Action,
    ActionDocumentError,
    NotJsonError,
    parse_action_document,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "USER_AGENT",
    "AppClient",
    "AppErrorKind",
    "AppRequestError",
    "CallbackEncoding",
    "Fields",
    "build_app_request",
    "encode_fields",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
USER_AGENT = f"Sautikit/{__version__}"

Fields = Mapping[str, str | int]
"""Request fields, PascalCase as SPEC §3 names them."""


class CallbackEncoding(enum.StrEnum):
    """How a POST to the app carries its fields; a workspace setting that a number may
    override (``callback_encoding``)."""

    FORM = "form"
    """``application/x-www-form-urlencoded``, every value a string (the default)."""
    JSON = "json"
    """``application/json``, counts as integers."""


def encode_fields(fields: Fields, encoding: CallbackEncoding) -> tuple[bytes, str]:
    """The body of a POST carrying ``fields``, and its ``Content-Type``."""
    if encoding is CallbackEncoding.JSON:
        raw = json.dumps(dict(fields), separators=(",", ":"), ensure_ascii=False).encode()
        return raw, "application/json"
    form = urlencode([(name, str(value)) for name, value in fields.items()])
    return form.encode("ascii"), "application/x-www-form-urlencoded"


class AppErrorKind(enum.StrEnum):
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    NOT_JSON = "not_json"
    INVALID_DOCUMENT = "invalid_document"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    """The URL resolves to an address apps may not reach (SPEC §8)."""


class AppRequestError(Exception):
    """The app's URL gave no usable action document. ``code`` and ``message`` are what the
    call records as its ``error``."""

    def __init__(
        self, kind: AppErrorKind, url: str, message: str, *, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.url = url
        self.message = message
        self.status = status

    @property
    def code(self) -> str:
        return f"application.{self.kind}"


def build_app_request(
    http: httpx.AsyncClient,
    secret: str,
    url: str,
    method: str,
    fields: Fields,
    encoding: CallbackEncoding,
    *,
    timestamp: int | None = None,
) -> httpx.Request:
    """The signed request that carries ``fields`` to an app's ``url`` (see the module
    docstring); the delivery worker sends retried callbacks with it too."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if method == "GET":
        query = {name: str(value) for name, value in fields.items()}
        request = http.build_request("GET", httpx.URL(url).copy_merge_params(query))
        raw = request.url.query
    else:
        raw, headers["Content-Type"] = encode_fields(fields, encoding)
        request = http.build_request("POST", url, content=raw)
    request.headers.update(headers)
    request.headers[SIGNATURE_HEADER] = sign(secret, raw, timestamp)
    return request


class AppClient:
    """Talks to one workspace's app; ``http`` comes from :func:`sautikit.net.outbound_client`
    and may be shared by many calls."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        secret: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        encoding: CallbackEncoding = CallbackEncoding.FORM,
    ) -> None:
        self.http = http
        self.secret = secret
        self.timeout = timeout
        self.encoding = encoding

    def _request(self, url: str, method: str, fields: Fields) -> httpx.Request:
        return build_app_request(self.http, self.secret, url, method, fields, self.encoding)

    async def _exchange(self, url: str, method: str, fields: Fields) -> bytes:
        """Send the request; answer the 2xx body, read up to just past the document limit."""
        what = f"{method} {url}"
        try:
            request = self._request(url, method, fields)
            async with asyncio.timeout(self.timeout):
                response = await self.http.send(request, stream=True)
                try:
                    if not response.is_success:
                        raise AppRequestError(
                            AppErrorKind.HTTP_STATUS,
                            url,
                            f"{what} answered HTTP {response.status_code}",
                            status=response.status_code,
                        )
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_DOCUMENT_BYTES:
                            break
                    return bytes(body)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise AppRequestError(
                AppErrorKind.TIMEOUT, url, f"{what} did not answer within {self.timeout:g} s"
            ) from None
        except OutboundAddressRefused as exc:
            raise AppRequestError(AppErrorKind.REFUSED, url, f"{what} refused: {exc}") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            reason = str(exc) or type(exc).__name__
            raise AppRequestError(
                AppErrorKind.UNREACHABLE, url, f"{what} could not be reached: {reason}"
            ) from None

    async def fetch_actions(self, url: str, method: str, fields: Fields) -> list[Action]:
        """Request ``url`` and answer its validated actions; raises AppRequestError."""
        body = await self._exchange(url, method, fields)
        if len(body) <= MAX_DOCUMENT_BYTES and not body.strip():
            return []
        try:
            return parse_action_document(body)
        except NotJsonError as exc:
            raise AppRequestError(
                AppErrorKind.NOT_JSON, url, f"{method} {url} answered a body that is not JSON"
            ) from exc
        except ActionDocumentError as exc:
            raise AppRequestError(
                AppErrorKind.INVALID_DOCUMENT,
                url,
                f"{method} {url} answered an invalid action document: {exc}",
            ) from exc

    async def notify(self, url: str, fields: Fields, method: str = "POST") -> bool:
        """Send fields whose answer is ignored (status events, ``transcribeCallback``);
        answers whether the app took them with a 2xx. Never raises."""
        try:
            await self._exchange(url, method, fields)
        except AppRequestError as exc:
            log.warning("app notification failed: %s", exc.message)
            return False
        return True
