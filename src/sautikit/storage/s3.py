"""S3-compatible stores (AWS S3, MinIO, SeaweedFS, Ceph, R2) through boto3.

boto3 is synchronous; each call runs in a worker thread (``asyncio.to_thread``) on one
client, which boto3 documents as thread-safe. Uploads go through boto3's transfer manager,
which switches to a multipart upload above the threshold. Download URLs are SigV4
presigned GETs made by botocore's own presigner; they need no call to the server.

The store is described by a URL (see ``parse_s3_url`` and docs/storage.md)::

    s3://[ACCESS_KEY:SECRET_KEY@]BUCKET[/PREFIX]?endpoint=URL&region=R&path_style=true
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sautikit.storage.base import (
    ObjectNotFound,
    ObjectStore,
    PresignedUrl,
    StorageError,
    content_disposition,
    url_deadline,
    validate_key,
)

__all__ = [
    "DEFAULT_MULTIPART_THRESHOLD",
    "MIN_MULTIPART_THRESHOLD",
    "S3Location",
    "S3ObjectStore",
    "parse_s3_url",
]

MIN_MULTIPART_THRESHOLD = 5 * 1024 * 1024  # S3's smallest part
DEFAULT_MULTIPART_THRESHOLD = 16 * 1024 * 1024
# Parts are read into memory, one per upload thread: 8 MiB × 10 threads bounds an upload.
_PART_SIZE = 8 * 1024 * 1024
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_URL_OPTIONS = frozenset({"endpoint", "region", "path_style", "multipart_threshold"})
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_T = TypeVar("_T")


@dataclass(frozen=True)
class S3Location:
    """Where an S3 store is and how to sign for it; the secret key never shows in a repr."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str = "us-east-1"
    path_style: bool = False
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD

    def __post_init__(self) -> None:
        if self.multipart_threshold < MIN_MULTIPART_THRESHOLD:
            raise StorageError(
                f"multipart_threshold must be at least {MIN_MULTIPART_THRESHOLD} bytes"
            )


def parse_s3_url(url: str) -> S3Location:
    """Read ``s3://…`` into an ``S3Location``; ``StorageError`` names what is wrong.

    Credentials in the URL are percent-decoded (write ``/`` in a secret as ``%2F``). The
    error messages never repeat the credentials.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        raise StorageError("the storage URL is not a valid URL") from None
    if parts.scheme != "s3":
        raise StorageError("a storage URL must start with s3://")
    userinfo, at, bucket = parts.netloc.rpartition("@")
    if not bucket:
        raise StorageError("the storage URL names no bucket: use s3://BUCKET?…")
    if not _BUCKET.fullmatch(bucket):
        raise StorageError(
            "a bucket name is 3–63 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    access_key = secret_key = None
    if at:
        user, colon, password = userinfo.partition(":")
        if not user or not colon or not password:
            raise StorageError("credentials in a storage URL must be ACCESS_KEY:SECRET_KEY@")
        access_key, secret_key = unquote(user), unquote(password)
    prefix = parts.path.strip("/")
    if prefix:
        try:
            validate_key(prefix)
        except StorageError as exc:
            raise StorageError(f"the storage URL's prefix is not valid: {exc}") from None
        prefix += "/"
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - _URL_OPTIONS)
    if unknown:
        raise StorageError(
            f"unknown storage URL option {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_URL_OPTIONS))}"
        )
    return S3Location(
        bucket=bucket,
        prefix=prefix,
        endpoint=_endpoint(options.get("endpoint")),
        region=options.get("region") or "us-east-1",
        path_style=_flag(options.get("path_style", "false")),
        access_key=access_key,
        secret_key=secret_key,
        multipart_threshold=_threshold(options.get("multipart_threshold")),
    )


def _endpoint(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        endpoint = urlsplit(value)
    except ValueError:
        raise StorageError("the storage URL's endpoint is not a valid URL") from None
    if endpoint.scheme not in {"http", "https"} or not endpoint.hostname:
        raise StorageError("the storage URL's endpoint must be an http:// or https:// URL")
    if endpoint.username is not None or endpoint.password is not None:
        raise StorageError("put credentials before the bucket, not in the endpoint")
    return value.rstrip("/")


def _flag(value: str) -> bool:
    if value.lower() in {"true", "1", "yes"}:
        return True
    if value.lower() in {"false", "0", "no"}:
        return False
    raise StorageError(f"path_style must be true or false, not {value[:20]!r}")


def _threshold(value: str | None) -> int:
    if value is None:
        return DEFAULT_MULTIPART_THRESHOLD
    if not (value.isascii() and value.isdigit()):
        raise StorageError(f"multipart_threshold must be a byte count, not {value[:20]!r}")
    return int(value)


class S3ObjectStore(ObjectStore):
    """A bucket (and optional key prefix) on an S3-compatible server.

    Without credentials in ``location``, ``ambient_credentials`` lets boto3 find them its
    usual way (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, then ``~/.aws``, then an
    instance role). A store built from a workspace's own URL must not: it would lend the
    operator's credentials to the workspace.
    """

    def __init__(self, location: S3Location, *, ambient_credentials: bool) -> None:
        if location.access_key is None and not ambient_credentials:
            raise StorageError(f"the storage URL for bucket {location.bucket!r} has no credentials")
        self.location = location
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if location.path_style else "virtual"},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
            # AWS_ENDPOINT_URL* in the environment must not redirect a workspace's bucket.
            ignore_configured_endpoint_urls=not ambient_credentials,
        )
        try:
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=location.endpoint,
                region_name=location.region,
                aws_access_key_id=location.access_key,
                aws_secret_access_key=location.secret_key,
                config=config,
            )
        except BotoCoreError as exc:
            raise StorageError(f"cannot open bucket {location.bucket!r}: {exc}") from exc
        self._transfer = TransferConfig(
            multipart_threshold=location.multipart_threshold, multipart_chunksize=_PART_SIZE
        )

    def _key(self, key: str) -> str:
        return self.location.prefix + validate_key(key)

    async def _call(self, action: str, key: str, call: Callable[[], _T]) -> _T:
        """Run one blocking boto3 call in a thread, turning its failures into ours."""
        try:
            return await asyncio.to_thread(call)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from exc
            reason = f"{code}: {error.get('Message')}" if error.get("Message") else code
            raise self._failure(action, key, reason) from exc
        except (BotoCoreError, S3UploadFailedError) as exc:
            raise self._failure(action, key, str(exc)) from exc
        except OSError as exc:
            raise self._failure(action, key, exc.strerror or str(exc)) from exc

    def _failure(self, action: str, key: str, reason: str) -> StorageError:
        return StorageError(
            f"could not {action} {key!r} in bucket {self.location.bucket!r}: {reason}"
        )

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        name = self._key(key)
        await self._call(
            "upload",
            key,
            lambda: self._client.upload_file(
                str(path),
                self.location.bucket,
                name,
                ExtraArgs={"ContentType": content_type},
                Config=self._transfer,
            ),
        )

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        name = self._key(key)
        await self._call(
            "upload",
            key,
            lambda: self._client.put_object(
                Bucket=self.location.bucket, Key=name, Body=data, ContentType=content_type
            ),
        )

    async def get_bytes(self, key: str) -> bytes:
        name = self._key(key)

        def download() -> bytes:
            response = self._client.get_object(Bucket=self.location.bucket, Key=name)
            with response["Body"] as body:
                data: bytes = body.read()
                return data

        return await self._call("download", key, download)

    async def delete(self, key: str) -> None:
        name = self._key(key)
        await self._call(
            "delete",
            key,
            lambda: self._client.delete_object(Bucket=self.location.bucket, Key=name),
        )

    async def exists(self, key: str) -> bool:
        try:
            await self._head(key)
        except ObjectNotFound:
            return False
        return True

    async def size(self, key: str) -> int:
        return int((await self._head(key))["ContentLength"])

    async def _head(self, key: str) -> dict[str, Any]:
        name = self._key(key)
        return await self._call(
            "inspect",
            key,
            lambda: self._client.head_object(Bucket=self.location.bucket, Key=name),
        )

    async def presigned_url(
        self, key: str, expires_in: timedelta, filename: str | None = None
    ) -> PresignedUrl:
        params = {"Bucket": self.location.bucket, "Key": self._key(key)}
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(filename)
        # Taken before signing: the server's deadline (X-Amz-Date + X-Amz-Expires) is never
        # earlier than the one reported.
        seconds, expires_at = url_deadline(expires_in)
        url = await self._call(
            "sign a URL for",
            key,
            lambda: self._client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=seconds
            ),
        )
        return PresignedUrl(url, expires_at)

    async def close(self) -> None:
        self._client.close()
