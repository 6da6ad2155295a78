"""Which object store holds a workspace's recordings: its own bucket, or the operator's.

A workspace that named a bucket (``Workspace.storage_url``, SPEC §5 "capture every call to
your own storage") has its recordings written there with its own credentials, which are
kept encrypted (``Workspace.storage_credentials``: the JSON ``{"access_key", "secret_key"}``
sealed by :func:`sautikit.crypto.encrypt_secret`, bound to the workspace id). Every other
workspace uses the operator's store. Opened stores are kept and reused until the
workspace's settings change.
"""

from __future__ import annotations

import dataclasses
import json

from sautikit.config import Settings
from sautikit.crypto import CryptoError, decrypt_secret
from sautikit.db.models import Workspace
from sautikit.storage import ObjectStore, S3ObjectStore, StorageError
from sautikit.storage.s3 import parse_s3_url

__all__ = ["WorkspaceStores"]


class WorkspaceStores:
    """Answers the store of each workspace; ``operator_store`` is everyone else's."""

    def __init__(self, settings: Settings, operator_store: ObjectStore) -> None:
        self.settings = settings
        self.operator_store = operator_store
        self._opened: dict[str, tuple[tuple[str, str | None], ObjectStore]] = {}

    def for_workspace(self, workspace: Workspace) -> ObjectStore:
        """The store for ``workspace``'s recordings; ``StorageError`` if its bucket settings
        cannot be used (credentials that no longer decrypt, a malformed URL)."""
        if not workspace.storage_url:
            return self.operator_store
        settings_now = (workspace.storage_url, workspace.storage_credentials)
        cached = self._opened.get(workspace.id)
        if cached is not None and cached[0] == settings_now:
            return cached[1]
        store = self._open(workspace)
        self._opened[workspace.id] = (settings_now, store)
        return store

    def _open(self, workspace: Workspace) -> ObjectStore:
        location = parse_s3_url(workspace.storage_url or "")
        if workspace.storage_credentials is not None:
            try:
                sealed = decrypt_secret(
                    workspace.storage_credentials,
                    self.settings.signing_key(),
                    context=workspace.id,
                )
                credentials = json.loads(sealed)
                location = dataclasses.replace(
                    location,
                    access_key=str(credentials["access_key"]),
                    secret_key=str(credentials["secret_key"]),
                )
            except (CryptoError, ValueError, KeyError, TypeError) as exc:
                raise StorageError(
                    f"the stored credentials of workspace {workspace.id}'s bucket "
                    f"{location.bucket!r} cannot be used: {exc}"
                ) from None
        # Never the operator's ambient AWS credentials for a workspace's bucket.
        return S3ObjectStore(location, ambient_credentials=False)

    async def close(self) -> None:
        """Close the workspace stores opened here (not the operator's, which is shared)."""
        opened, self._opened = self._opened, {}
        for _, store in opened.values():
            await store.close()
