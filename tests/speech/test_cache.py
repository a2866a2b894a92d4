"""CachingSynthesizer: hits without synthesis, one synthesis for concurrent twins, atomic files."""
from __future__ import annotations

import asyncio
import os

import pytest

from chimevoice.speech import (
    CachingSynthesizer,
    LocalSynthesizer,
    SpeechError,
    SpeechRequest,
    make_synthesizer,
)

from .wavcheck import read_wav


class Counting:
    """Wraps a synthesizer and counts the syntheses it is asked for."""

    def __init__(self, inner, delay: float = 0.0):
        self.inner = inner
        self.backend_id = inner.backend_id
        self.calls = 0
        self.delay = delay

    async def synthesize(self, req):
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return await self.inner.synthesize(req)


@pytest.fixture
def counted(tmp_path):
    return Counting(LocalSynthesizer(tmp_path / "cache" / ".work"))


@pytest.fixture
def cache(counted, tmp_path):
    return CachingSynthesizer(counted, tmp_path / "cache")


def leftovers(root):
    return [p for p in root.rglob("*") if p.is_file() and (p.name.startswith(".") or p.suffix == ".tmp")]


async def test_repeat_is_served_from_the_cache_without_synthesis(cache, counted, tmp_path):
    req = SpeechRequest("Your call is important to us.")
    first = await cache.synthesize(req)
    data = first.read_bytes()
    second = await cache.synthesize(req)
    assert second == first and second.read_bytes() == data
    assert counted.calls == 1
    assert (cache.stats.misses, cache.stats.hits) == (1, 1)
    assert first.parent.parent == tmp_path / "cache" and len(first.parent.name) == 2
    w = read_wav(first)
    assert (w.rate, w.channels) == (8000, 1) and w.duration > 1.0
    # The backend's own file was moved into the cache, not left behind; nothing temporary remains.
    assert list((tmp_path / "cache" / ".work").iterdir()) == []
    assert leftovers(tmp_path / "cache") == []


async def test_requests_that_mean_the_same_share_an_entry(cache, counted):
    a = await cache.synthesize(SpeechRequest("Hello"))
    b = await cache.synthesize(SpeechRequest("Hello", text_type="text", engine="standard", voice_id="Joanna",
                                             language_code=""))
    assert a == b and counted.calls == 1


async def test_every_input_is_part_of_the_key(cache, counted):
    reqs = [
        SpeechRequest("Hello"),
        SpeechRequest("Hello!"),
        SpeechRequest("Hello", voice_id="Matthew"),
        SpeechRequest("Hello", engine="neural"),
        SpeechRequest("Hello", language_code="en-US"),
        SpeechRequest("<speak>Hello</speak>", text_type="ssml"),
    ]
    paths = [await cache.synthesize(r) for r in reqs]
    assert len(set(paths)) == len(reqs) and counted.calls == len(reqs)


async def test_backend_identity_is_part_of_the_key(tmp_path):
    slow = LocalSynthesizer(tmp_path / "w1", speed_wpm=120)
    fast = LocalSynthesizer(tmp_path / "w2", speed_wpm=200)
    assert slow.backend_id != fast.backend_id
    a = await CachingSynthesizer(slow, tmp_path / "c").synthesize(SpeechRequest("Hello there, friend"))
    b = await CachingSynthesizer(fast, tmp_path / "c").synthesize(SpeechRequest("Hello there, friend"))
    assert a != b and read_wav(a).duration > read_wav(b).duration


async def test_concurrent_identical_requests_synthesize_once(tmp_path):
    counted = Counting(LocalSynthesizer(tmp_path / "w"), delay=0.05)
    cache = CachingSynthesizer(counted, tmp_path / "c")
    paths = await asyncio.gather(*(cache.synthesize(SpeechRequest("Please hold.")) for _ in range(5)))
    assert len(set(paths)) == 1 and counted.calls == 1
    assert (cache.stats.misses, cache.stats.joins) == (1, 4)


async def test_a_cancelled_caller_does_not_cancel_the_others(tmp_path):
    counted = Counting(LocalSynthesizer(tmp_path / "w"), delay=0.1)
    cache = CachingSynthesizer(counted, tmp_path / "c")
    first = asyncio.ensure_future(cache.synthesize(SpeechRequest("Please hold.")))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(cache.synthesize(SpeechRequest("Please hold.")))
    await asyncio.sleep(0.01)
    first.cancel()
    path = await second
    assert first.cancelled() and read_wav(path).duration > 0.5 and counted.calls == 1


async def test_errors_are_not_cached(cache, counted, tmp_path):
    bad = SpeechRequest("hi", voice_id="Nobody")
    for _ in range(2):
        with pytest.raises(SpeechError) as info:
            await cache.synthesize(bad)
        assert info.value.message == "VoiceId parameter value is invalid."
    await asyncio.sleep(0)
    assert counted.calls == 2 and cache.stats.errors == 2 and cache.stats.hits == 0
    assert not cache.contains(bad)


async def test_a_torn_file_is_not_served(cache, counted):
    req = SpeechRequest("Thank you for waiting.")
    path = await cache.synthesize(req)
    size = path.stat().st_size
    with open(path, "r+b") as fh:  # as if a crash had cut the file short
        fh.truncate(size // 2)
    again = await cache.synthesize(req)
    assert again == path and again.stat().st_size == size
    assert counted.calls == 2 and cache.stats.hits == 0


async def test_the_cache_survives_a_restart(cache, counted, tmp_path):
    req = SpeechRequest("Goodbye.")
    path = await cache.synthesize(req)
    counted2 = Counting(LocalSynthesizer(tmp_path / "cache" / ".work"))
    reopened = CachingSynthesizer(counted2, tmp_path / "cache")
    assert await reopened.synthesize(req) == path
    assert counted2.calls == 0 and reopened.stats.hits == 1


async def test_size_limit_evicts_least_recently_used(tmp_path):
    cache = CachingSynthesizer(LocalSynthesizer(tmp_path / "w"), tmp_path / "c", max_bytes=60_000, min_age_s=0)
    texts = [f"Message number {n}, please listen carefully." for n in range(8)]
    paths = []
    for t in texts:
        paths.append(await cache.synthesize(SpeechRequest(t)))
        os.utime(paths[-1], (1_000_000 + len(paths), 1_000_000 + len(paths)))  # distinct, ordered mtimes
    total = sum(p.stat().st_size for p in paths if p.exists())
    assert total <= 60_000
    assert cache.stats.evictions > 0
    assert not paths[0].exists() and paths[-1].exists()


async def test_make_synthesizer_local_is_cached(tmp_path):
    tts = make_synthesizer("local", tmp_path / "tts")
    assert isinstance(tts, CachingSynthesizer)
    a = await tts.synthesize(SpeechRequest("Hello"))
    b = await tts.synthesize(SpeechRequest("Hello"))
    assert a == b and tts.stats.hits == 1 and tts.inner.syntheses == 1
    plain = make_synthesizer("local", tmp_path / "plain", cache=False)
    assert isinstance(plain, LocalSynthesizer)
    with pytest.raises(ValueError):
        make_synthesizer("festival", tmp_path)
    with pytest.raises(ValueError):
        make_synthesizer("polly", tmp_path)  # region is required
