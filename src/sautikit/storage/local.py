"""The embedded default store: a directory on this machine, served by Sautikit itself.

Layout under the root: each object is the file at its key's path, and its content type is
a small file at the same path under ``.meta/`` (keys never start a part with ``.``, so the
two cannot meet). Writes go to a temporary file in the target directory, are fsynced, and
are renamed into place, so a reader or a crash sees the old object or the new, never half.
Download URLs point at ``GET /v1/files/{key}`` with an HMAC signature (``signing``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from sautikit.storage.base import (
    ObjectNotFound,
    ObjectStore,
    PresignedUrl,
    StorageError,
    content_disposition,
    url_deadline,
    validate_key,
)
from sautikit.storage.signing import UrlSigner

__all__ = ["DOWNLOAD_PATH", "LocalObjectStore", "OpenObject"]

DOWNLOAD_PATH = "/v1/files"
_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_CHUNK = 256 * 1024


@dataclass
class OpenObject:
    """An object opened for reading: it stays whole even if replaced or deleted meanwhile."""

    handle: BinaryIO
    size: int
    content_type: str

    async def chunks(self) -> AsyncIterator[bytes]:
        """The content in pieces, read off the event loop; closes the file when done."""
        try:
            while chunk := await asyncio.to_thread(self.handle.read, _CHUNK):
                yield chunk
        finally:
            self.handle.close()


class LocalObjectStore(ObjectStore):
    def __init__(self, root: Path, public_url: str, signer: UrlSigner) -> None:
        self.root = root
        self.public_url = public_url.rstrip("/")
        self.signer = signer

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _meta_path(self, key: str) -> Path:
        return self.root / ".meta" / validate_key(key)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        def copy(target: BinaryIO) -> None:
            with path.open("rb") as source:
                shutil.copyfileobj(source, target, _CHUNK)

        await asyncio.to_thread(self._put, key, copy, content_type)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._put, key, lambda target: target.write(data), content_type)

    def _put(self, key: str, write: Callable[[BinaryIO], object], content_type: str) -> None:
        if not content_type or not (content_type.isascii() and content_type.isprintable()):
            raise ValueError(f"invalid content type {content_type[:80]!r}")
        target = self._path(key)
        try:
            # The type goes first: a reader who finds the object also finds its type.
            _write_atomically(self._meta_path(key), lambda meta: meta.write(content_type.encode()))
            _write_atomically(target, write)
        except OSError as exc:
            raise StorageError(f"could not store {key!r}: {exc.strerror or exc}") from exc

    async def get_bytes(self, key: str) -> bytes:
        opened = await self.open(key)
        with opened.handle:
            return await asyncio.to_thread(opened.handle.read)

    async def open(self, key: str) -> OpenObject:
        """Open the object for streaming; ``ObjectNotFound`` if there is none."""
        return await asyncio.to_thread(self._open, key)

    def _open(self, key: str) -> OpenObject:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise StorageError(f"could not read {key!r}: {exc.strerror or exc}") from exc
        try:
            content_type = self._meta_path(key).read_text()
        except OSError:
            content_type = _DEFAULT_CONTENT_TYPE
        return OpenObject(handle, os.fstat(handle.fileno()).st_size, content_type)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    def _delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
            self._meta_path(key).unlink(missing_ok=True)
        except IsADirectoryError:
            return  # a key that is only a prefix of others holds no object
        except OSError as exc:
            raise StorageError(f"could not delete {key!r}: {exc.strerror or exc}") from exc

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def size(self, key: str) -> int:
        path = self._path(key)
        try:
            status = await asyncio.to_thread(path.stat)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if not stat.S_ISREG(status.st_mode):
            raise ObjectNotFound(key)
        return status.st_size

    async def presigned_url(
        self, key: str, expires_in: timedelta, filename: str | None = None
    ) -> PresignedUrl:
        validate_key(key)
        if filename is not None:
            content_disposition(filename)  # refuse a name the download could not carry
        _, expires_at = url_deadline(expires_in)
        expires = int(expires_at.timestamp())
        query = {"expires": str(expires)}
        if filename is not None:
            query["filename"] = filename
        query["signature"] = self.signer.sign(key, expires, filename)
        url = f"{self.public_url}{DOWNLOAD_PATH}/{quote(key, safe='/')}?{urlencode(query)}"
        return PresignedUrl(url, expires_at)


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with temporary.open("xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # The rename is durable only once the directory entry itself is on disk.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
