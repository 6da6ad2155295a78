"""The S3 store against SeaweedFS on loopback, which enforces SigV4 and presigned expiry."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.storage.conftest import S3Server

from sautikit.config import Settings
from sautikit.storage import (
    InvalidKey,
    ObjectNotFound,
    S3ObjectStore,
    StorageError,
    open_store,
)
from sautikit.storage.s3 import MIN_MULTIPART_THRESHOLD, parse_s3_url

WAV_HEADER = b"RIFF\x24\x00\x00\x00WAVEfmt "


@pytest.fixture
def prefix() -> str:
    return f"t{secrets.token_hex(6)}"


@pytest.fixture
async def store(s3_server: S3Server, prefix: str) -> AsyncIterator[S3ObjectStore]:
    opened = open_store(s3_server.url(prefix, multipart_threshold=str(MIN_MULTIPART_THRESHOLD)))
    assert isinstance(opened, S3ObjectStore)
    yield opened
    await opened.close()


def _flip_one_character(text: str) -> str:
    middle = len(text) // 2
    return text[:middle] + ("0" if text[middle] != "0" else "1") + text[middle + 1 :]


async def test_bytes_round_trip_under_the_prefix(
    store: S3ObjectStore, s3_server: S3Server, prefix: str
) -> None:
    await store.put_bytes("recordings/rec_1.wav", WAV_HEADER, "audio/wav")

    assert await store.get_bytes("recordings/rec_1.wav") == WAV_HEADER
    assert await store.size("recordings/rec_1.wav") == len(WAV_HEADER)
    assert await store.exists("recordings/rec_1.wav")
    head = s3_server.client().head_object(
        Bucket=s3_server.bucket, Key=f"{prefix}/recordings/rec_1.wav"
    )
    assert head["ContentType"] == "audio/wav"


async def test_small_file_uploads_in_one_request(store: S3ObjectStore, tmp_path: Path) -> None:
    path = tmp_path / "short.mp3"
    path.write_bytes(b"ID3" + os.urandom(4096))

    await store.put_file("rec_2.mp3", path, "audio/mpeg")

    assert await store.get_bytes("rec_2.mp3") == path.read_bytes()


async def test_large_file_uploads_in_parts(
    store: S3ObjectStore, s3_server: S3Server, prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "long.wav"
    path.write_bytes(os.urandom(9 * 1024 * 1024))  # above the 5 MiB threshold: two 8 MiB parts

    await store.put_file("long.wav", path, "audio/wav")

    assert await store.get_bytes("long.wav") == path.read_bytes()
    head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=f"{prefix}/long.wav")
    assert head["ETag"].strip('"').endswith("-2")  # a multipart object's ETag counts its parts
    assert head["ContentType"] == "audio/wav"


async def test_presigned_url_downloads_with_plain_http(store: S3ObjectStore) -> None:
    await store.put_bytes("rec_3.wav", WAV_HEADER, "audio/wav")
    before = datetime.now(UTC)

    url, expires_at = await store.presigned_url(
        "rec_3.wav", timedelta(minutes=15), filename="call recording.wav"
    )

    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == WAV_HEADER
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["content-disposition"] == 'attachment; filename="call recording.wav"'
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["900"]
    assert before + timedelta(minutes=14) < expires_at <= before + timedelta(minutes=15)


async def test_expired_presigned_url_is_refused(store: S3ObjectStore) -> None:
    await store.put_bytes("rec_4.wav", WAV_HEADER, "audio/wav")
    # SigV4 times are whole seconds: a lifetime of a few seconds keeps the first fetch
    # inside it even on a loaded machine.
    url, _ = await store.presigned_url("rec_4.wav", timedelta(seconds=3))
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 200

        await asyncio.sleep(4.5)
        response = await http.get(url)

    assert response.status_code == 403
    assert b"expired" in response.content.lower()
    assert WAV_HEADER not in response.content


async def test_tampered_presigned_urls_are_refused(store: S3ObjectStore, prefix: str) -> None:
    await store.put_bytes("rec_5.wav", WAV_HEADER, "audio/wav")
    await store.put_bytes("rec_6.wav", b"another caller's audio", "audio/wav")
    url, _ = await store.presigned_url("rec_5.wav", timedelta(minutes=5))
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]

    tampered = [
        url.replace(signature, _flip_one_character(signature)),
        url.replace(f"{prefix}/rec_5.wav", f"{prefix}/rec_6.wav"),
        url.replace("X-Amz-Expires=300", "X-Amz-Expires=600"),
    ]

    async with httpx.AsyncClient() as http:
        for changed in tampered:
            assert changed != url
            response = await http.get(changed)
            assert response.status_code == 403, changed
            assert b"caller" not in response.content and WAV_HEADER not in response.content


async def test_delete_removes_and_is_idempotent(store: S3ObjectStore) -> None:
    await store.put_bytes("rec_7.wav", WAV_HEADER, "audio/wav")

    await store.delete("rec_7.wav")
    await store.delete("rec_7.wav")

    assert not await store.exists("rec_7.wav")
    with pytest.raises(ObjectNotFound):
        await store.get_bytes("rec_7.wav")
    with pytest.raises(ObjectNotFound):
        await store.size("rec_7.wav")


async def test_app_copies_a_recording_into_its_own_bucket(
    store: S3ObjectStore, s3_server: S3Server, tmp_path: Path
) -> None:
    # The seed's flow: Sautikit stores the call, the app is handed RecordingUrl, downloads
    # it with plain HTTP and keeps it in its own bucket with its own credentials.
    recording = tmp_path / "rec_8.wav"
    recording.write_bytes(WAV_HEADER + os.urandom(64 * 1024))
    await store.put_file("calls/rec_8.wav", recording, "audio/wav")
    recording_url, _ = await store.presigned_url("calls/rec_8.wav", timedelta(minutes=15))

    async with httpx.AsyncClient() as http:
        response = await http.get(recording_url)
    response.raise_for_status()
    app = s3_server.client(s3_server.app)
    app.put_object(Bucket=s3_server.app_bucket, Key="archive/rec_8.wav", Body=response.content)

    kept = app.get_object(Bucket=s3_server.app_bucket, Key="archive/rec_8.wav")["Body"].read()
    assert kept == recording.read_bytes()


async def test_operator_credentials_may_come_from_the_aws_environment(
    s3_server: S3Server, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.sautikit.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.sautikit.secret_key)
    settings = Settings(data_dir=tmp_path, storage_url=s3_server.url(prefix, credentials=False))

    store = open_store(settings)
    try:
        await store.put_bytes("from-env.wav", WAV_HEADER, "audio/wav")
        assert await store.get_bytes("from-env.wav") == WAV_HEADER
    finally:
        await store.close()


def test_a_workspace_url_never_borrows_the_operator_credentials(
    s3_server: S3Server, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.sautikit.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.sautikit.secret_key)

    with pytest.raises(StorageError, match="no credentials"):
        open_store(s3_server.url(prefix, credentials=False))


async def test_wrong_credentials_fail_without_revealing_them(
    s3_server: S3Server, prefix: str
) -> None:
    wrong_secret = "wrong-" + secrets.token_hex(8)
    url = s3_server.url(prefix).replace(s3_server.sautikit.secret_key, wrong_secret)
    store = open_store(url)
    try:
        with pytest.raises(StorageError) as raised:
            await store.put_bytes("rec_9.wav", WAV_HEADER, "audio/wav")
    finally:
        await store.close()

    assert not isinstance(raised.value, ObjectNotFound)
    assert "rec_9.wav" in str(raised.value)
    assert wrong_secret not in str(raised.value)


async def test_unsafe_keys_are_refused_before_any_request(store: S3ObjectStore) -> None:
    for key in ("../escape.wav", "/absolute.wav", "a//b.wav", "with space.wav"):
        with pytest.raises(InvalidKey):
            await store.put_bytes(key, WAV_HEADER, "audio/wav")
        with pytest.raises(InvalidKey):
            await store.presigned_url(key, timedelta(minutes=1))


# -- the storage URL ---------------------------------------------------------------------


def test_storage_url_names_every_setting() -> None:
    location = parse_s3_url(
        "s3://AKIDEXAMPLE:se%2Fcr%2Bet@bucket-1/sautikit/prod?endpoint=https://s3.example.net/"
        "&region=af-south-1&path_style=true&multipart_threshold=67108864"
    )

    assert location.bucket == "bucket-1"
    assert location.prefix == "sautikit/prod/"
    assert location.endpoint == "https://s3.example.net"
    assert location.region == "af-south-1"
    assert location.path_style is True
    assert location.access_key == "AKIDEXAMPLE"
    assert location.secret_key == "se/cr+et"
    assert location.multipart_threshold == 64 * 1024 * 1024
    assert "se/cr+et" not in repr(location)


def test_storage_url_defaults() -> None:
    location = parse_s3_url("s3://bucket")

    assert (location.prefix, location.endpoint, location.region) == ("", None, "us-east-1")
    assert location.path_style is False
    assert location.access_key is None


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("https://bucket", "s3://"),
        ("s3://?region=x", "no bucket"),
        ("s3://key-only@bucket", "ACCESS_KEY:SECRET_KEY"),
        ("s3://bucket?endpont=http://x", "unknown storage URL option endpont"),
        ("s3://bucket?endpoint=ftp://host", "http:// or https://"),
        ("s3://bucket?endpoint=http://k:s@host", "not in the endpoint"),
        ("s3://bucket?path_style=maybe", "path_style"),
        ("s3://bucket?multipart_threshold=1024", "at least"),
        ("s3://bucket?multipart_threshold=lots", "byte count"),
        ("s3://bucket/../up", "prefix"),
        ("s3://Bucket_1", "bucket name"),
        ("s3://[bucket", "not a valid URL"),
    ],
)
def test_bad_storage_urls_say_what_is_wrong(url: str, complaint: str) -> None:
    with pytest.raises(StorageError, match=complaint):
        parse_s3_url(url)


def test_bad_storage_url_errors_do_not_repeat_the_secret() -> None:
    with pytest.raises(StorageError) as raised:
        parse_s3_url("s3://AKID:TOPSECRET@bucket?path_style=maybe")

    assert "TOPSECRET" not in str(raised.value)


@given(st.text(max_size=120))
def test_any_text_parses_or_raises_storage_error(text: str) -> None:
    for url in (text, "s3://" + text):
        with contextlib.suppress(StorageError):
            parse_s3_url(url)
