"""Play audio: the allow-list decides, WAV and MP3 decode, and the cache keeps its bounds."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.voice.voice_rig import AppServer, Reply, wav_bytes

from sautikit.media.audio import SAMPLE_RATE
from sautikit.voice.prompts import PromptCache, PromptError

MP3 = (
    Path(__file__).parents[1] / "media" / "fixtures" / "tone-440hz-22050-stereo.mp3"
).read_bytes()


def loopback(host: str) -> bool:
    return host == "127.0.0.1"


async def test_wav_is_fetched_decoded_and_cached(app: AppServer, http: httpx.AsyncClient) -> None:
    url = app.route("/hello.wav", Reply(body=wav_bytes(0.5), content_type="audio/wav"))
    cache = PromptCache(http)
    audio = await cache.load(url, allowed=loopback)
    assert audio.dtype == np.int16 and len(audio) == SAMPLE_RATE // 2
    assert np.abs(audio).max() > 1000
    again = await cache.load(url, allowed=loopback)
    assert again is audio and len(app.hits) == 1
    assert cache.size == audio.nbytes


async def test_mp3_is_decoded_to_8_khz(app: AppServer, http: httpx.AsyncClient) -> None:
    url = app.route("/hold.mp3", Reply(body=MP3, content_type="audio/mpeg"))
    audio = await PromptCache(http).load(url, allowed=loopback)
    assert audio.dtype == np.int16 and len(audio) > SAMPLE_RATE // 10


async def test_a_host_off_the_allow_list_is_never_fetched(
    app: AppServer, http: httpx.AsyncClient
) -> None:
    url = app.route("/hello.wav", Reply(body=wav_bytes()))
    cache = PromptCache(http)
    await cache.load(url, allowed=loopback)
    with pytest.raises(PromptError) as caught:
        await cache.load(url, allowed=lambda host: host == "media.example.com")
    assert caught.value.code == "play.not_allowed"
    assert "'127.0.0.1' is not on the play-URL allow-list" in caught.value.message
    assert len(app.hits) == 1  # refused from the cache too, without a request


@pytest.mark.parametrize(
    ("reply", "code", "message"),
    [
        (Reply(404, b"gone"), "play.fetch_failed", "answered HTTP 404"),
        (
            Reply(body=b"<html>not audio</html>", content_type="text/html"),
            "play.bad_audio",
            "unsupported audio",
        ),
        (
            Reply(body=b"x" * 2000, content_type="audio/wav"),
            "play.fetch_failed",
            "over the limit of 1000 bytes",
        ),
    ],
)
async def test_unplayable_urls_raise_prompt_errors(
    app: AppServer, http: httpx.AsyncClient, reply: Reply, code: str, message: str
) -> None:
    url = app.route("/prompt", reply)
    with pytest.raises(PromptError) as caught:
        await PromptCache(http, max_file_bytes=1000).load(url, allowed=loopback)
    assert caught.value.code == code and message in caught.value.message


async def test_entries_expire(app: AppServer, http: httpx.AsyncClient) -> None:
    now = [0.0]
    url = app.route("/hello.wav", Reply(body=wav_bytes()))
    cache = PromptCache(http, ttl=60.0, clock=lambda: now[0])
    await cache.load(url, allowed=loopback)
    now[0] = 59.0
    assert url in cache
    await cache.load(url, allowed=loopback)
    now[0] = 61.0
    assert url not in cache
    await cache.load(url, allowed=loopback)
    assert len(app.hits) == 2


async def test_the_least_recently_used_go_first(app: AppServer, http: httpx.AsyncClient) -> None:
    one_prompt = 2 * int(SAMPLE_RATE * 0.2)
    urls = [app.route(f"/p{i}.wav", Reply(body=wav_bytes(0.2))) for i in range(3)]
    cache = PromptCache(http, max_bytes=2 * one_prompt)
    await cache.load(urls[0], allowed=loopback)
    await cache.load(urls[1], allowed=loopback)
    await cache.load(urls[0], allowed=loopback)  # now the most recent
    await cache.load(urls[2], allowed=loopback)
    assert urls[0] in cache and urls[2] in cache and urls[1] not in cache
    assert cache.size == 2 * one_prompt
