"""Object storage for recordings: one interface, a local directory and S3-compatible stores.

``open_store`` picks the backend from ``SAUTIKIT_STORAGE_URL`` (docs/storage.md)::

    ""                                   a directory, data_dir/objects (the default)
    s3://BUCKET?endpoint=…&region=…      an S3-compatible bucket
"""

from __future__ import annotations

from sautikit.config import Settings
from sautikit.storage.base import (
    InvalidKey,
    ObjectNotFound,
    ObjectStore,
    PresignedUrl,
    StorageError,
    content_disposition,
    validate_key,
)
from sautikit.storage.local import LocalObjectStore
from sautikit.storage.s3 import S3ObjectStore, parse_s3_url
from sautikit.storage.signing import UrlSigner

__all__ = [
    "InvalidKey",
    "LocalObjectStore",
    "ObjectNotFound",
    "ObjectStore",
    "PresignedUrl",
    "S3ObjectStore",
    "StorageError",
    "content_disposition",
    "open_store",
    "validate_key",
]


def open_store(source: Settings | str, *, ambient_credentials: bool | None = None) -> ObjectStore:
    """The store that ``source`` names: the operator's settings, or an ``s3://`` URL.

    ``ambient_credentials`` says whether an S3 URL without credentials may use the AWS
    environment (``AWS_ACCESS_KEY_ID``…). It defaults to yes for the operator's settings and
    no for a bare URL, which may be a workspace's own bucket.
    """
    if isinstance(source, Settings):
        if not source.storage_url:
            return LocalObjectStore(
                source.data_dir / "objects",
                source.effective_public_url,
                UrlSigner(source.signing_key()),
            )
        url, ambient = source.storage_url, True
    else:
        url, ambient = source, False
    return S3ObjectStore(
        parse_s3_url(url),
        ambient_credentials=ambient if ambient_credentials is None else ambient_credentials,
    )
