"""Audio for actions: prompts from buckets and text-to-speech, ready to play."""
from __future__ import annotations

import asyncio
import wave
from concurrent.futures import ThreadPoolExecutor

from ..media.audio import AudioCache
from ..media.storage import BucketStore
from ..osthread import set_os_thread_name
from ..speech import Synthesizer

#: A prompt played to call after call is checked on disk at most this often.
AUDIO_MEMO_S = 2.0


class PromptService:
    """Turns (bucket, key) and speech requests into 8 kHz WAV files.

    Decoding and resampling run on a small thread pool; a (bucket, key) prepared in
    the last ``AUDIO_MEMO_S`` is answered from memory (no disk check, no thread hop).
    Errors are the media and speech layers' own (``AudioSourceError``, ``SpeechError``:
    both carry the Chime ErrorType and ErrorMessage)."""

    def __init__(self, audio: AudioCache, buckets: BucketStore, speech: Synthesizer,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.audio = audio
        self.buckets = buckets
        self.speech = speech
        self.loop = loop
        self._memo: dict[tuple[str, str], tuple[float, str, float]] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="audio",
                                        initializer=set_os_thread_name, initargs=("cv-audio",))

    def recent(self, bucket: str, key: str) -> tuple[str, float] | None:
        """(path, duration) when this object was prepared a moment ago, else None."""
        hit = self._memo.get((bucket, key))
        if hit is not None and hit[0] > self.loop.time():
            return hit[1], hit[2]
        return None

    async def prepare(self, bucket: str, key: str) -> tuple[str, float]:
        prepared = await self.loop.run_in_executor(
            self._pool, self.audio.prepare_object, self.buckets, bucket, key)
        path, duration = str(prepared.path), prepared.duration_s
        self._memo[(bucket, key)] = (self.loop.time() + AUDIO_MEMO_S, path, duration)
        return path, duration

    async def synthesize(self, request: object) -> tuple[str, float]:
        path = await self.speech.synthesize(request)  # type: ignore[arg-type]
        with wave.open(str(path), "rb") as w:
            duration = w.getnframes() / w.getframerate()
        return str(path), duration

    def close(self) -> None:
        self._pool.shutdown(wait=False)
