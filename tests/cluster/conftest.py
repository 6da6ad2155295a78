"""The cluster tests share the S3 store of the storage tests (SeaweedFS): several nodes
keep their recordings in one bucket."""

from tests.storage.conftest import s3_server

__all__ = ["s3_server"]
