"""Audio for ``play`` (and ``conference.waitUrl``): allow-listed, fetched, decoded, cached.

SPEC §3 and §8: a play URL's host must be on the workspace's play-URL allow-list, and the
fetch goes through :func:`sautikit.net.outbound_client`. The body (WAV or MP3) is decoded
by :func:`sautikit.media.audio.load_audio` into 8 kHz int16 samples, off the event loop.

Decoded audio is cached by URL, shared by every call of the process: up to ``max_bytes``
of samples, least recently used first out, each entry for ``ttl`` seconds so that an app
that replaces the file behind a URL is heard within minutes. The allow-list is checked on
every use, cached or not, because workspaces share the cache but not their lists.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import numpy as np
import numpy.typing as npt

from sautikit.media.audio import AudioFormatError, load_audio
from sautikit.net import OutboundAddressRefused
from sautikit.voice.callbacks import USER_AGENT

__all__ = ["HostAllowed", "PromptCache", "PromptError"]

Int16Array = npt.NDArray[np.int16]

HostAllowed = Callable[[str], bool]
"""The workspace's play-URL allow-list, asked with the URL's lower-case host name."""


class PromptError(Exception):
    """A play URL that cannot be played; ``code`` is what the call records as its error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class _Entry:
    audio: Int16Array
    expires: float


class PromptCache:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_file_bytes: int = 8 * 1024 * 1024,
        ttl: float = 600.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.max_bytes = max_bytes
        self.max_file_bytes = max_file_bytes
        self.ttl = ttl
        self.timeout = timeout
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._size = 0

    @property
    def size(self) -> int:
        """Bytes of decoded audio held."""
        return self._size

    def __contains__(self, url: str) -> bool:
        entry = self._entries.get(url)
        return entry is not None and entry.expires > self._clock()

    async def load(self, url: str, *, allowed: HostAllowed) -> Int16Array:
        """The audio at ``url``; raises PromptError (``play.not_allowed``,
        ``play.fetch_failed`` or ``play.bad_audio``)."""
        host = (urlsplit(url).hostname or "").lower()
        if not host or not allowed(host):
            raise PromptError(
                "play.not_allowed", f"{url}: host {host!r} is not on the play-URL allow-list"
            )
        entry = self._entries.get(url)
        if entry is not None:
            if entry.expires > self._clock():
                self._entries.move_to_end(url)
                return entry.audio
            self._forget(url)
        body, content_type = await self._download(url)
        try:
            audio = await asyncio.to_thread(load_audio, body, content_type)
        except AudioFormatError as exc:
            raise PromptError("play.bad_audio", f"{url}: {exc}") from None
        audio.flags.writeable = False
        self._keep(url, audio)
        return audio

    async def _download(self, url: str) -> tuple[bytes, str | None]:
        try:
            async with asyncio.timeout(self.timeout):
                request = self.http.build_request("GET", url, headers={"User-Agent": USER_AGENT})
                response = await self.http.send(request, stream=True)
                try:
                    if not response.is_success:
                        raise PromptError(
                            "play.fetch_failed", f"{url} answered HTTP {response.status_code}"
                        )
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self.max_file_bytes:
                            raise PromptError(
                                "play.fetch_failed",
                                f"{url} is over the limit of {self.max_file_bytes} bytes",
                            )
                    return bytes(body), response.headers.get("Content-Type")
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise PromptError(
                "play.fetch_failed", f"{url} did not answer within {self.timeout:g} s"
            ) from None
        except OutboundAddressRefused as exc:
            raise PromptError("play.fetch_failed", f"{url} refused: {exc}") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            reason = str(exc) or type(exc).__name__
            raise PromptError(
                "play.fetch_failed", f"{url} could not be reached: {reason}"
            ) from None

    def _keep(self, url: str, audio: Int16Array) -> None:
        if audio.nbytes > self.max_bytes:
            return
        if url in self._entries:  # two calls fetched the same URL at once
            self._forget(url)
        self._entries[url] = _Entry(audio, self._clock() + self.ttl)
        self._size += audio.nbytes
        while self._size > self.max_bytes:
            self._forget(next(iter(self._entries)))

    def _forget(self, url: str) -> None:
        entry = self._entries.pop(url)
        self._size -= entry.audio.nbytes
