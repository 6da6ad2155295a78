"""The local directory store, and its signed URLs served by ``GET /v1/files/{key}``."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from sautikit.config import Settings
from sautikit.storage import (
    InvalidKey,
    LocalObjectStore,
    ObjectNotFound,
    S3ObjectStore,
    StorageError,
    content_disposition,
    open_store,
    validate_key,
)
from sautikit.storage.signing import BadSignature, UrlExpired, UrlSigner

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4
MP3 = b"ID3\x04\x00" + bytes(512)
UNSAFE_KEYS = [
    "",
    "../secret.key",
    "recordings/../../secret.key",
    "/etc/passwd",
    "a//b.wav",
    "a/./b.wav",
    ".hidden",
    "a/",
    "a\\b.wav",
    "with space.wav",
    "caf\u00e9.wav",
    "x" * 1025,
]


@pytest.fixture
def store(settings: Settings) -> LocalObjectStore:
    opened = open_store(settings)
    assert isinstance(opened, LocalObjectStore)
    return opened


@pytest.fixture
async def http(api_app: FastAPI, store: LocalObjectStore) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API with the download route, wired as the composition root does."""
    api_app.state.store = store
    transport = httpx.ASGITransport(app=api_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=store.public_url) as client:
        yield client


def _error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


# -- the store -------------------------------------------------------------------------


def test_default_store_is_a_directory_under_the_data_dir(settings: Settings) -> None:
    store = open_store(settings)

    assert isinstance(store, LocalObjectStore)
    assert store.root == settings.data_dir / "objects"
    assert store.public_url == settings.effective_public_url


async def test_a_storage_url_selects_an_s3_store(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path, storage_url="s3://bucket?region=af-south-1"))

    assert isinstance(store, S3ObjectStore)
    assert store.location.region == "af-south-1"
    await store.close()


@pytest.mark.parametrize("url", ["", "file:///var/objects", "recordings"])
def test_a_bare_url_must_be_an_s3_url(url: str) -> None:
    with pytest.raises(StorageError, match="s3://"):
        open_store(url)


async def test_bytes_round_trip(store: LocalObjectStore) -> None:
    await store.put_bytes("recordings/ws_1/rec_1.wav", WAV, "audio/wav")

    assert await store.get_bytes("recordings/ws_1/rec_1.wav") == WAV
    assert await store.size("recordings/ws_1/rec_1.wav") == len(WAV)
    assert await store.exists("recordings/ws_1/rec_1.wav")
    assert not await store.exists("recordings/ws_1/rec_2.wav")


async def test_put_file_replaces_and_leaves_no_temporary_files(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "spool.wav"
    source.write_bytes(WAV)
    await store.put_bytes("rec_1.wav", b"an older take", "audio/wav")

    await store.put_file("rec_1.wav", source, "audio/wav")

    assert await store.get_bytes("rec_1.wav") == WAV
    assert sorted(path.name for path in store.root.iterdir()) == [".meta", "rec_1.wav"]
    assert [path.name for path in (store.root / ".meta").iterdir()] == ["rec_1.wav"]


async def test_failed_upload_keeps_the_previous_object(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    await store.put_bytes("rec_1.wav", WAV, "audio/wav")

    with pytest.raises(StorageError, match=r"rec_1\.wav"):
        await store.put_file("rec_1.wav", tmp_path / "vanished.wav", "audio/wav")

    assert await store.get_bytes("rec_1.wav") == WAV
    assert sorted(path.name for path in store.root.iterdir()) == [".meta", "rec_1.wav"]


async def test_delete_removes_and_is_idempotent(store: LocalObjectStore) -> None:
    await store.put_bytes("calls/rec_1.wav", WAV, "audio/wav")

    await store.delete("calls/rec_1.wav")
    await store.delete("calls/rec_1.wav")
    await store.delete("calls")  # a prefix of other keys, not an object

    assert not await store.exists("calls/rec_1.wav")
    with pytest.raises(ObjectNotFound):
        await store.get_bytes("calls/rec_1.wav")
    with pytest.raises(ObjectNotFound):
        await store.size("calls/rec_1.wav")


async def test_a_prefix_is_not_an_object(store: LocalObjectStore) -> None:
    await store.put_bytes("calls/rec_1.wav", WAV, "audio/wav")

    assert not await store.exists("calls")
    with pytest.raises(ObjectNotFound):
        await store.size("calls")
    with pytest.raises(ObjectNotFound):
        await store.get_bytes("calls")


@pytest.mark.parametrize("key", UNSAFE_KEYS)
async def test_unsafe_keys_are_refused(store: LocalObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put_bytes(key, WAV, "audio/wav")
    with pytest.raises(InvalidKey):
        await store.get_bytes(key)
    with pytest.raises(InvalidKey):
        await store.presigned_url(key, timedelta(minutes=1))


@given(st.text(max_size=60))
def test_an_accepted_key_stays_inside_the_store(key: str) -> None:
    root = Path("/srv/objects")
    try:
        validate_key(key)
    except InvalidKey:
        return
    resolved = Path(os.path.normpath(root / key))
    assert resolved.is_relative_to(root) and resolved != root
    assert not any(part.startswith(".") for part in key.split("/"))


async def test_url_lifetime_must_be_between_a_second_and_a_week(store: LocalObjectStore) -> None:
    for lifetime in (timedelta(0), timedelta(milliseconds=500), timedelta(days=7, seconds=1)):
        with pytest.raises(ValueError, match="lifetime"):
            await store.presigned_url("rec_1.wav", lifetime)


async def test_presigned_url_points_at_the_download_route(store: LocalObjectStore) -> None:
    before = datetime.now(UTC).replace(microsecond=0)

    url, expires_at = await store.presigned_url("calls/rec_1.wav", timedelta(minutes=15))

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == store.public_url
    assert parts.path == "/v1/files/calls/rec_1.wav"
    query = parse_qs(parts.query)
    assert sorted(query) == ["expires", "signature"]
    assert int(query["expires"][0]) == int(expires_at.timestamp())
    assert before + timedelta(minutes=15) <= expires_at <= before + timedelta(minutes=15, seconds=1)


# -- the download route ------------------------------------------------------------------


async def test_download_streams_the_file_with_its_type_and_length(
    store: LocalObjectStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    spool = tmp_path / "rec.mp3"
    spool.write_bytes(MP3)
    await store.put_bytes("rec_1.wav", WAV, "audio/wav")
    await store.put_file("rec_2.mp3", spool, "audio/mpeg")

    for key, content, content_type in (
        ("rec_1.wav", WAV, "audio/wav"),
        ("rec_2.mp3", MP3, "audio/mpeg"),
    ):
        url, _ = await store.presigned_url(key, timedelta(minutes=15))
        response = await http.get(url)  # no API key

        assert response.status_code == 200
        assert response.content == content
        assert response.headers["content-type"] == content_type
        assert response.headers["content-length"] == str(len(content))
        assert "content-disposition" not in response.headers


async def test_download_names_the_file_when_asked(
    store: LocalObjectStore, http: httpx.AsyncClient
) -> None:
    await store.put_bytes("rec_1.wav", WAV, "audio/wav")

    url, _ = await store.presigned_url(
        "rec_1.wav", timedelta(minutes=1), filename="Simu ya Juma.wav"
    )
    response = await http.get(url)

    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="Simu ya Juma.wav"'


async def test_expired_url_answers_410(store: LocalObjectStore, http: httpx.AsyncClient) -> None:
    await store.put_bytes("rec_1.wav", WAV, "audio/wav")
    expires = int(time.time()) - 1
    query = urlencode({"expires": expires, "signature": store.signer.sign("rec_1.wav", expires)})

    response = await http.get(f"/v1/files/rec_1.wav?{query}")

    assert response.status_code == 410
    assert _error_code(response) == "storage.url_expired"
    assert response.json()["error"]["request_id"].startswith("req_")


def _flip_one_character(text: str) -> str:
    middle = len(text) // 2
    return text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1 :]


async def test_tampered_urls_answer_403(store: LocalObjectStore, http: httpx.AsyncClient) -> None:
    await store.put_bytes("rec_1.wav", WAV, "audio/wav")
    await store.put_bytes("rec_2.wav", b"another caller's audio", "audio/wav")
    url, _ = await store.presigned_url("rec_1.wav", timedelta(minutes=5), filename="a.wav")
    query = parse_qs(urlsplit(url).query)
    signature, expires = query["signature"][0], query["expires"][0]

    tampered = [
        url.replace(signature, _flip_one_character(signature)),
        url.replace("/rec_1.wav", "/rec_2.wav"),
        url.replace(f"expires={expires}", f"expires={int(expires) + 3600}"),
        url.replace("filename=a.wav", "filename=b.wav"),
        url.replace("filename=a.wav&", ""),
        url.replace(f"&signature={signature}", ""),
        url.replace(f"expires={expires}", "expires=-1"),
        url.replace(signature, signature + "\u00e9"),
    ]

    for changed in tampered:
        assert changed != url
        response = await http.get(changed)
        assert response.status_code == 403, changed
        assert _error_code(response) == "storage.bad_signature"


async def test_missing_object_answers_404(store: LocalObjectStore, http: httpx.AsyncClient) -> None:
    await store.put_bytes("rec_1.wav", WAV, "audio/wav")
    url, _ = await store.presigned_url("rec_1.wav", timedelta(minutes=5))
    await store.delete("rec_1.wav")

    response = await http.get(url)

    assert response.status_code == 404
    assert _error_code(response) == "storage.not_found"


async def test_a_signed_traversal_key_still_serves_nothing(
    store: LocalObjectStore, http: httpx.AsyncClient
) -> None:
    # Even a URL signed for "../secret.key" (which the store never signs) must not reach
    # the file beside the objects folder.
    store.root.mkdir(parents=True)
    (store.root.parent / "secret.key").write_text("operator secret")
    key = "../secret.key"
    expires = int(time.time()) + 60
    query = urlencode({"expires": expires, "signature": store.signer.sign(key, expires)})

    response = await http.get(f"/v1/files/%2E%2E/secret.key?{query}")

    assert b"operator secret" not in response.content
    assert response.status_code == 404
    assert _error_code(response) == "storage.not_found"


async def test_route_serves_nothing_without_a_local_store(
    api_app: FastAPI, store: LocalObjectStore
) -> None:
    await store.put_bytes("rec_1.wav", WAV, "audio/wav")
    url, _ = await store.presigned_url("rec_1.wav", timedelta(minutes=5))
    api_app.state.store = None
    transport = httpx.ASGITransport(app=api_app, raise_app_exceptions=False)

    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(url)

    assert response.status_code == 404
    assert _error_code(response) == "storage.not_found"


# -- signatures and download names -------------------------------------------------------


def test_signatures_depend_on_the_secret() -> None:
    expires = int(time.time()) + 60
    signature = UrlSigner(b"operator secret").sign("rec_1.wav", expires)

    UrlSigner(b"operator secret").verify("rec_1.wav", str(expires), signature)
    with pytest.raises(BadSignature):
        UrlSigner(b"another secret").verify("rec_1.wav", str(expires), signature)


def test_expiry_is_checked_after_the_signature() -> None:
    signer = UrlSigner(b"operator secret")
    signature = signer.sign("rec_1.wav", 1000)

    with pytest.raises(UrlExpired):
        signer.verify("rec_1.wav", "1000", signature, now=1000)
    with pytest.raises(BadSignature):
        signer.verify("rec_1.wav", "1000", signature[::-1], now=1000)
    signer.verify("rec_1.wav", "1000", signature, now=999)


@given(
    key=st.text(max_size=40),
    expires=st.none() | st.text(max_size=20),
    signature=st.none() | st.text(max_size=50),
    filename=st.none() | st.text(max_size=20),
)
def test_verify_answers_any_input_with_its_own_errors(
    key: str, expires: str | None, signature: str | None, filename: str | None
) -> None:
    with pytest.raises(BadSignature):
        UrlSigner(b"operator secret").verify(key, expires, signature, filename)


def test_content_disposition_carries_non_ascii_names() -> None:
    value = content_disposition('Mkutano "Nairobi" – 24.wav')

    assert value == (
        'attachment; filename="Mkutano _Nairobi_ _ 24.wav"; '
        "filename*=UTF-8''Mkutano%20%22Nairobi%22%20%E2%80%93%2024.wav"
    )


@pytest.mark.parametrize("filename", ["", "line\nbreak.wav", "x" * 256])
def test_content_disposition_refuses_names_a_header_cannot_carry(filename: str) -> None:
    with pytest.raises(ValueError, match="filename"):
        content_disposition(filename)
