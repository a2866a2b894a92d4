"""Text-to-speech for the Speak and SpeakAndGetDigits actions.

Usage::

    from chimevoice.speech import SpeechRequest, SpeechError, make_synthesizer

    tts = make_synthesizer("local", "/var/lib/chimevoice/tts")  # cached espeak-ng
    try:
        wav = await tts.synthesize(SpeechRequest("Hello, World!", voice_id="Joanna"))
    except SpeechError as err:
        action_data.update(err.as_action_data("Speak"))  # ErrorType / ErrorMessage

Every synthesizer returns the path of an 8 kHz mono 16-bit PCM WAV file. See
docs/speech.md for the voice table, the SSML support matrix, the error mapping and the
cache.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .cache import CacheStats, CachingSynthesizer
from .errors import SpeechError
from .local import LocalSynthesizer
from .polly import PollySynthesizer, map_polly_error
from .request import MAX_TEXT_CHARS, ResolvedRequest, SpeechRequest, canonical, resolve, validate
from .voices import DEFAULT_VOICE_ID, POLLY_LANGUAGES, POLLY_VOICES, VoiceInfo

__all__ = [
    "SpeechRequest",
    "SpeechError",
    "Synthesizer",
    "validate",
    "resolve",
    "canonical",
    "ResolvedRequest",
    "LocalSynthesizer",
    "PollySynthesizer",
    "CachingSynthesizer",
    "CacheStats",
    "make_synthesizer",
    "map_polly_error",
    "MAX_TEXT_CHARS",
    "DEFAULT_VOICE_ID",
    "POLLY_VOICES",
    "POLLY_LANGUAGES",
    "VoiceInfo",
]


@runtime_checkable
class Synthesizer(Protocol):
    async def synthesize(self, req: SpeechRequest) -> Path:
        """Synthesize ``req``; returns an 8 kHz mono s16 WAV file, or raises SpeechError."""
        ...


def make_synthesizer(kind: str, cache_dir: str | os.PathLike[str], *, cache: bool = True,
                     max_cache_bytes: int | None = None, **opts: Any) -> Synthesizer:
    """Build the synthesizer named by ``kind``: ``"local"`` (espeak-ng) or ``"polly"``.

    ``opts`` go to :class:`LocalSynthesizer` / :class:`PollySynthesizer` (``region`` is
    required for Polly; ``endpoint_url`` and credentials are optional). With ``cache``
    (the default) the result is wrapped in a :class:`CachingSynthesizer` whose files are
    in ``cache_dir``; the backend writes its fresh files under ``cache_dir/.work``.
    """
    root = Path(cache_dir)
    work = root / ".work" if cache else root
    if kind == "local":
        inner: Any = LocalSynthesizer(work, **opts)
    elif kind == "polly":
        if "region" not in opts:
            raise ValueError("the polly synthesizer needs region=")
        inner = PollySynthesizer(work, **opts)
    else:
        raise ValueError(f"unknown synthesizer kind {kind!r} (expected 'local' or 'polly')")
    if not cache:
        return inner
    return CachingSynthesizer(inner, root, max_bytes=max_cache_bytes)
