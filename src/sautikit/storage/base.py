"""The object store interface every backend implements, its errors, and key rules.

A store holds immutable blobs (recordings) under keys like ``recordings/ws_1/rec_2.wav``
and hands out expiring download URLs an app can fetch without an API key. Backends differ
only in where the bytes live; callers see this interface alone.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

__all__ = [
    "MAX_URL_LIFETIME",
    "InvalidKey",
    "ObjectNotFound",
    "ObjectStore",
    "PresignedUrl",
    "StorageError",
    "content_disposition",
    "url_deadline",
    "validate_key",
]

# SigV4 presigned URLs cannot outlive seven days; the local store keeps the same bound so
# a caller's choice behaves alike on every backend.
MAX_URL_LIFETIME = timedelta(days=7)

_MAX_KEY_LENGTH = 1024
_MAX_FILENAME_LENGTH = 255
# A segment starts with a letter or digit: no "." or "..", no hidden files, which leaves
# names beginning with "." free for the local store's own bookkeeping.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class StorageError(Exception):
    """The store could not do what was asked; the message names the object, never a secret."""


class ObjectNotFound(StorageError):
    """No object is stored under ``key``."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object is stored under {key!r}")
        self.key = key


class InvalidKey(StorageError, ValueError):
    """``key`` is not a safe object key (see ``validate_key``)."""


class PresignedUrl(NamedTuple):
    url: str
    expires_at: datetime


def validate_key(key: str) -> str:
    """Answer ``key`` if it is safe on every backend, else raise ``InvalidKey``.

    A key is one or more ``/``-separated segments of ASCII letters, digits, ``.``, ``_``
    and ``-``, each starting with a letter or digit, at most 1024 characters in all. So no
    absolute path, no ``..``, no empty segment and nothing a URL or a shell must escape.
    """
    if not key or len(key) > _MAX_KEY_LENGTH:
        raise InvalidKey(f"an object key must be 1–{_MAX_KEY_LENGTH} characters long")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidKey(
                f"invalid object key {key[:80]!r}: each '/'-separated part must start with a "
                "letter or digit and hold only letters, digits, '.', '_' and '-'"
            )
    return key


def url_deadline(expires_in: timedelta, now: datetime | None = None) -> tuple[int, datetime]:
    """Whole seconds of ``expires_in`` and the moment the URL stops working.

    Raises ``ValueError`` unless the lifetime is between one second and ``MAX_URL_LIFETIME``.
    """
    seconds = int(expires_in.total_seconds())
    if not 1 <= seconds <= MAX_URL_LIFETIME.total_seconds():
        raise ValueError(f"a URL lifetime must be 1 s to {MAX_URL_LIFETIME}, not {expires_in}")
    start = (now or datetime.now(UTC)).replace(microsecond=0)
    return seconds, start + timedelta(seconds=seconds)


def content_disposition(filename: str) -> str:
    """A ``Content-Disposition`` value that makes a browser save the download as ``filename``.

    Non-ASCII names travel in RFC 6266's ``filename*`` with an ASCII fallback. Raises
    ``ValueError`` for an empty name, one over 255 characters, or control characters.
    """
    if not filename or len(filename) > _MAX_FILENAME_LENGTH or not filename.isprintable():
        raise ValueError(
            f"a download filename must be 1–{_MAX_FILENAME_LENGTH} printable characters"
        )
    fallback = "".join(char if char.isascii() and char not in '"\\' else "_" for char in filename)
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


class ObjectStore(ABC):
    """Where recordings live. Every method is safe to call from several tasks at once."""

    @abstractmethod
    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file at ``path`` under ``key``, streaming it rather than loading it."""

    @abstractmethod
    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key``, replacing what was there."""

    @abstractmethod
    async def get_bytes(self, key: str) -> bytes:
        """The object's content; ``ObjectNotFound`` if there is none."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; removing one that is not there is not an error."""

    @abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abstractmethod
    async def size(self, key: str) -> int:
        """The object's length in bytes; ``ObjectNotFound`` if there is none."""

    @abstractmethod
    async def presigned_url(
        self, key: str, expires_in: timedelta, filename: str | None = None
    ) -> PresignedUrl:
        """A URL that downloads the object without an API key until ``expires_at``.

        With ``filename`` the download carries a ``Content-Disposition`` naming it. The
        object's existence is not checked: a URL to a missing object answers 404.
        """

    async def close(self) -> None:  # noqa: B027 — a store without connections has nothing to do
        """Release connections; the store is not used afterwards."""
