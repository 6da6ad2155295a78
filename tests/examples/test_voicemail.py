"""examples/voicemail: the seed's voicemail app — prompt, signed callbacks, storage."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from tests.examples.conftest import FileServer, load_example
from tests.storage.conftest import S3Server, s3_server  # noqa: F401 - a fixture, by import

from sautikit.voice.actions import Hangup, Record, Say, parse_actions
from sautikit.voice.callbacks import CallbackEncoding, encode_fields
from sautikit_sdk.signing import SIGNATURE_HEADER, sign

SECRET = "whsec_voicemail"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)

voicemail: ModuleType = load_example("voicemail")


def _signed(
    fields: dict[str, object],
    secret: str = SECRET,
    encoding: CallbackEncoding = CallbackEncoding.FORM,
) -> dict[str, object]:
    """A request as Sautikit sends it: a form of strings unless JSON was chosen."""
    raw, content_type = encode_fields(fields, encoding)  # type: ignore[arg-type]
    return {
        "content": raw,
        "headers": {"Content-Type": content_type, SIGNATURE_HEADER: sign(secret, raw)},
    }


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = voicemail.VoicemailSettings(
        public_url="https://yourapp.example.com",
        signing_secret=SECRET,
        local_dir=tmp_path / "store",
    )
    transport = httpx.ASGITransport(app=voicemail.create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        yield client


async def test_the_prompt_is_the_seeds_say_and_record(app_client: httpx.AsyncClient) -> None:
    answer = await app_client.post("/voicemail/prompt", **_signed({"CallId": "c1"}))
    assert answer.status_code == 200
    assert answer.json() == {
        "actions": [
            {
                "say": {
                    "text": "You have reached the voicemail of Acme Corp. Please leave a "
                    "message after the tone. Press the hash key when done.",
                    "language": "en-US",
                }
            },
            {
                "record": {
                    "action": "https://yourapp.example.com/voicemail/recording",
                    "method": "POST",
                    "timeout": 10,
                    "maxLength": 120,
                    "finishOnKey": "#",
                    "transcribe": True,
                    "transcribeCallback": "https://yourapp.example.com/voicemail/transcript",
                }
            },
        ]
    }
    say, record = parse_actions(answer.json())
    assert isinstance(say, Say) and isinstance(record, Record)


@pytest.mark.parametrize("encoding", list(CallbackEncoding))
async def test_a_recording_is_fetched_from_its_url_and_stored_with_its_metadata(
    app_client: httpx.AsyncClient,
    file_server: FileServer,
    tmp_path: Path,
    encoding: CallbackEncoding,
) -> None:
    file_server.files["/r/rec-1.wav"] = ("audio/wav", WAV)
    fields = {
        "CallId": "call-1",
        "RecordingSid": "rec-1",
        "RecordingUrl": f"{file_server.base_url}/r/rec-1.wav",
        "RecordingDuration": 7,
    }
    answer = await app_client.post("/voicemail/recording", **_signed(fields, encoding=encoding))
    assert answer.status_code == 200
    assert [type(action) for action in parse_actions(answer.json())] == [Hangup]
    assert file_server.fetched == ["/r/rec-1.wav"]
    stored = tmp_path / "store" / "voicemails" / "call-1" / "rec-1.wav"
    assert stored.read_bytes() == WAV
    metadata = json.loads(stored.with_name("rec-1.wav.json").read_text())
    assert metadata == {"content_type": "audio/wav", "callId": "call-1", "duration": "7"}


async def test_a_silent_recording_stores_nothing(
    app_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    fields = {"CallId": "c2", "RecordingSid": "r2", "RecordingDuration": 0}
    answer = await app_client.post("/voicemail/recording", **_signed(fields))
    assert answer.json() == {"actions": [{"hangup": {}}]}
    assert not (tmp_path / "store").exists()


async def test_the_transcript_is_kept_beside_the_recording(
    app_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    fields = {
        "CallId": "call-1",
        "RecordingSid": "rec-1",
        "TranscriptionSid": "t-1",
        "TranscriptionStatus": "completed",
        "TranscriptionText": "Please call me back",
    }
    answer = await app_client.post("/voicemail/transcript", **_signed(fields))
    assert answer.status_code == 204
    stored = tmp_path / "store" / "voicemails" / "call-1" / "rec-1.txt"
    assert stored.read_text() == "Please call me back"
    failed = {**fields, "TranscriptionStatus": "failed", "RecordingSid": "rec-2"}
    assert (await app_client.post("/voicemail/transcript", **_signed(failed))).status_code == 204
    assert not stored.with_name("rec-2.txt").exists()


@pytest.mark.parametrize("secret", ["whsec_wrong", None])
async def test_a_bad_or_missing_signature_is_refused_and_nothing_is_fetched(
    app_client: httpx.AsyncClient, file_server: FileServer, tmp_path: Path, secret: str | None
) -> None:
    fields = {
        "CallId": "call-1",
        "RecordingSid": "rec-1",
        "RecordingUrl": f"{file_server.base_url}/r/rec-1.wav",
        "RecordingDuration": 7,
    }
    request = _signed(fields, secret or SECRET)
    if secret is None:
        del request["headers"][SIGNATURE_HEADER]  # type: ignore[attr-defined]
    answer = await app_client.post("/voicemail/recording", **request)
    assert answer.status_code == 401
    assert file_server.fetched == []
    assert not (tmp_path / "store").exists()


async def test_a_tampered_body_is_refused(app_client: httpx.AsyncClient) -> None:
    request = _signed({"CallId": "c1"})
    request["content"] = b"CallId=c2"
    assert (await app_client.post("/voicemail/prompt", **request)).status_code == 401


async def test_without_a_secret_requests_are_not_checked(tmp_path: Path) -> None:
    settings = voicemail.VoicemailSettings(local_dir=tmp_path)
    transport = httpx.ASGITransport(app=voicemail.create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        answer = await client.post("/voicemail/prompt", json={"CallId": "c1"})
    assert answer.status_code == 200
    record = answer.json()["actions"][1]["record"]
    assert record["action"] == "http://app.test/voicemail/recording"  # from the request


async def test_with_a_bucket_the_recording_goes_to_s3(
    s3_server: S3Server,  # noqa: F811 - the imported fixture
    file_server: FileServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.app.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.app.secret_key)
    settings = voicemail.VoicemailSettings(
        signing_secret=SECRET,
        s3_bucket=s3_server.app_bucket,
        s3_endpoint_url=s3_server.endpoint,
        aws_region="us-east-1",
    )
    file_server.files["/r/rec-s3.wav"] = ("audio/wav", WAV)
    fields = {
        "CallId": "call-s3",
        "RecordingSid": "rec-s3",
        "RecordingUrl": f"{file_server.base_url}/r/rec-s3.wav",
        "RecordingDuration": 3,
    }
    transport = httpx.ASGITransport(app=voicemail.create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        answer = await client.post("/voicemail/recording", **_signed(fields))
    assert answer.status_code == 200
    stored = s3_server.client(s3_server.app).get_object(
        Bucket=s3_server.app_bucket, Key="voicemails/call-s3/rec-s3.wav"
    )
    assert stored["Body"].read() == WAV
    assert stored["Metadata"] == {"callid": "call-s3", "duration": "3"}
    assert stored["ContentType"] == "audio/wav"
