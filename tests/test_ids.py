"""UUIDv7 ids: version 7, RFC 9562 variant, and creation order equals sort order."""

import uuid

from sautikit.ids import new_id, uuid7


def test_version_and_variant() -> None:
    value = uuid7()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_ids_sort_in_creation_order() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
