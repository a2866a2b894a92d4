"""The embedded synthesizer: espeak-ng, no network.

Pipeline for one request:

1. :func:`~chimevoice.speech.request.resolve` validates it (catalogue, SSML) and gives a
   flat list of spans and pauses (:mod:`chimevoice.speech.ssml`).
2. The list is cut into *chunks* wherever the local voice changes (``<lang>``,
   ``amazon:effect whispered``), at bleeps (``say-as expletive``), and at the first
   sentence end after 200 characters (long texts then use several cores). Inside a chunk,
   prosody, emphasis, ``say-as characters`` and pauses between words are written in the
   SSML subset espeak-ng understands (``-m``); each chunk is one espeak-ng process
   (chunks run concurrently).
3. Each chunk's audio (22,050 Hz) is trimmed of its leading/trailing silence and
   resampled to 8 kHz with swresample (PyAV) as soon as its process ends; chunks are
   joined with exact silences for the pauses at their edges (a ``<break time>`` before the first word or after the last
   is exact silence), a short lead-in and tail are added, and the result is written
   atomically as 8 kHz mono s16 WAV.

Voices: :mod:`chimevoice.speech.voices` maps a Polly voice and language to an espeak-ng
language voice plus a variant (``en-us+f3`` for Joanna). A catalogue voice without an
entry of its own uses its language's default variant for its gender (logged once). A
language with no espeak-ng voice installed makes the request fail with
``InvalidActionParameter`` (``LanguageCode``, or ``VoiceId`` when the language came from
the voice); another voice is never substituted silently (spec 03b §2.3).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from xml.sax.saxutils import escape

import numpy as np
import structlog

from .errors import SpeechError
from .request import ResolvedRequest, SpeechRequest, canonical, resolve
from .ssml import STRENGTH_MS, Item, Span, Style
from .voices import LOCAL_LANGUAGES, F, local_voice_for
from .wavio import OUTPUT_RATE, parse_wav_bytes, resample, write_wav_atomic

__all__ = ["LocalSynthesizer", "RENDER_VERSION"]

log = structlog.get_logger("chimevoice.speech")

#: Bump when the rendering changes, so cached audio from older code is not reused.
RENDER_VERSION = 1

LEAD_IN_MS = 40
TAIL_MS = 120
JOIN_MS = 60  # between two chunks with no pause between them (a voice change)
TRIM_MARGIN_MS = 15
SILENCE_THRESHOLD = 10 ** (-50 / 20)
MIN_DURATION_MS = 100
PEAK_LIMIT = 10 ** (-0.5 / 20)
BLEEP_LEVEL = 0.25
#: A chunk longer than this (characters) is ended at the next sentence end, and the text
#: goes on in another espeak-ng process running in parallel.
MAX_CHUNK_CHARS = 200
#: espeak-ng's pause after punctuation at 165 words/min (measured with espeak-ng 1.51),
#: as far as a following <break time> swallows it.
PUNCTUATION_PAUSE_MS = {".": 400.0, "?": 400.0, "!": 330.0, ";": 200.0, ":": 200.0, ",": 120.0}


@dataclass
class _Chunk:
    voice: str
    parts: list[str] = field(default_factory=list)
    speech: bool = False
    trim: bool = True
    chars: int = 0
    last_text: str = ""

    def ssml(self) -> str:
        return "<speak>" + "".join(self.parts) + "</speak>"


@dataclass
class _Gap:
    ms: float
    tone_hz: float | None = None
    soft: bool = False  # from a strength pause (dropped at the very end)


class LocalSynthesizer:
    """Synthesizes with espeak-ng into ``cache_dir`` (one file per distinct request).

    ``cache_dir``: where output files are written, named by a hash of the request and
    this backend's settings; an identical request is synthesized again and the file
    replaced atomically (use :class:`~chimevoice.speech.cache.CachingSynthesizer` to
    reuse it). ``engine``: only ``"espeak-ng"``. ``speed_wpm``: espeak-ng's base rate
    (Polly's ``medium``). ``gain_db``: output gain. ``languages``: overrides of
    :data:`~chimevoice.speech.voices.LOCAL_LANGUAGES` (a ``None`` value removes a
    language). ``max_processes``: concurrent espeak-ng processes.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        *,
        engine: str = "espeak-ng",
        binary: str | None = None,
        speed_wpm: int = 165,
        gain_db: float = 0.0,
        languages: Mapping[str, tuple[str, str, str] | None] | None = None,
        max_processes: int | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        if engine != "espeak-ng":
            raise ValueError(f"unsupported local TTS engine {engine!r} (supported: 'espeak-ng')")
        self.engine = engine
        self.out_dir = Path(cache_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.speed_wpm = int(speed_wpm)
        self.gain_db = float(gain_db)
        self.timeout_s = float(timeout_s)
        self._binary = shutil.which(binary or "espeak-ng")
        self._sem = asyncio.Semaphore(max_processes or max(2, os.cpu_count() or 2))
        self.syntheses = 0  # completed synthesize() calls
        self.processes = 0  # espeak-ng processes run
        self._fallback_logged: set[tuple[str, str]] = set()

        self.version, self._voice_files, self._variants = self._probe()
        table = dict(LOCAL_LANGUAGES)
        if languages:
            table.update(languages)
        # A language whose espeak-ng voice is not installed has no local voice.
        self._languages: dict[str, tuple[str, str, str] | None] = {
            code: (entry if entry is not None and entry[0] in self._voice_files else None)
            for code, entry in table.items()
        }
        overrides = "" if not languages else hashlib.sha256(
            json.dumps(sorted((k, v) for k, v in languages.items()), default=str).encode()).hexdigest()[:8]
        self.backend_id = (f"local:espeak-ng:{self.version}:r{RENDER_VERSION}:s{self.speed_wpm}"
                           f":g{self.gain_db:g}{':' + overrides if overrides else ''}")

    # -- set-up ----------------------------------------------------------------------------
    def _probe(self) -> tuple[str, dict[str, str], set[str]]:
        if self._binary is None:
            log.warning("speech.espeak_missing", hint="apt-get install espeak-ng")
            return "missing", {}, set()
        binary = self._binary

        def run(*args: str) -> str:
            try:
                return subprocess.run([binary, *args], capture_output=True, text=True,
                                      timeout=10, check=False).stdout
            except (OSError, subprocess.SubprocessError):
                return ""

        words = run("--version").split()
        version = next((words[i + 1] for i, w in enumerate(words[:-1]) if w.endswith("speech:")),
                       "unknown")
        # Language name -> voice file ("en-gb" -> "gmw/en"). Variants must be appended to the
        # file name: espeak-ng 1.51 drops the variant of "en-gb+f3" and "fr-fr+f3".
        langs: dict[str, str] = {}
        for line in run("--voices").splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 5:
                langs.setdefault(cols[1], cols[4])
        variants = set()
        for line in run("--voices=variant").splitlines()[1:]:
            for tok in line.split():
                if tok.startswith("!v/"):
                    variants.add(tok[3:])
        return version, langs, variants

    @property
    def available(self) -> bool:
        return self._binary is not None

    def local_languages(self) -> dict[str, str | None]:
        """Polly language -> espeak-ng voice used for it here (None: no local voice)."""
        return {k: (v[0] if v else None) for k, v in sorted(self._languages.items())}

    def output_path(self, req: SpeechRequest) -> Path:
        key = hashlib.sha256(json.dumps([self.backend_id, *canonical(req)], default=repr,
                                        ensure_ascii=False).encode()).hexdigest()[:40]
        return self.out_dir / f"{key}.wav"

    # -- voices ----------------------------------------------------------------------------
    def voice_spec(self, resolved: ResolvedRequest, style: Style | None = None) -> str | None:
        """The espeak-ng ``-v`` value for the voice speaking in ``style`` (None: no local voice)."""
        voice = resolved.voice
        lang = (style.lang if style and style.lang else None) or resolved.language
        found = local_voice_for(voice, lang, self._languages)
        if found is None:
            return None
        base, variant, explicit = found
        if not explicit and (voice.id, lang) not in self._fallback_logged:
            self._fallback_logged.add((voice.id, lang))
            log.info("speech.voice_fallback", voice_id=voice.id, language=lang,
                     local_voice=f"{base}+{variant}",
                     note="no local voice of its own: the language's default voice is used")
        if style is not None and style.whisper:
            variant = "whisperf" if voice.gender == F else "whisper"
        name = self._voice_files.get(base, base)
        if variant not in self._variants:
            return name
        return f"{name}+{variant}"

    # -- synthesis -------------------------------------------------------------------------
    async def synthesize(self, req: SpeechRequest) -> Path:
        t0 = time.perf_counter()
        resolved = resolve(req)
        if not self.available:
            raise SpeechError.system("espeak-ng is not installed", reason="engine_missing")
        main = self.voice_spec(resolved)
        if main is None:
            param = "LanguageCode" if resolved.language_given else "VoiceId"
            raise SpeechError.invalid(param, "no_local_voice",
                                      f"no local voice for language {resolved.language}")
        plan = self._plan(resolved, main)
        chunks = [p for p in plan if isinstance(p, _Chunk)]
        results = await asyncio.gather(*(self._run(c) for c in chunks), return_exceptions=True)
        audio: dict[int, np.ndarray] = {}
        for c, r in zip(chunks, results):
            if isinstance(r, BaseException):
                raise r
            audio[id(c)] = r
        path = self.output_path(req)
        duration = await asyncio.to_thread(self._assemble, plan, audio, path)
        self.syntheses += 1
        if resolved.document.degraded:
            log.debug("speech.ssml_degraded", features=list(resolved.document.degraded))
        log.debug("speech.synthesized", backend="local", voice=main, chars=len(resolved.text),
                  chunks=len(chunks), duration_s=round(duration, 3),
                  elapsed_ms=round((time.perf_counter() - t0) * 1000, 1))
        return path

    def _plan(self, resolved: ResolvedRequest, main: str) -> list[_Chunk | _Gap]:
        """Cut the document into espeak-ng chunks and the silences between them.

        Pauses between two spans of one voice stay inside the chunk as espeak-ng
        ``<break>`` (consecutive timed pauses add up; a timed pause wins over strength
        pauses beside it). A pause before the first span, after the last, or where the
        voice changes becomes exact silence; prosodic (strength) pauses at the very end
        are dropped.
        """
        out: list[_Chunk | _Gap] = []
        cur: _Chunk | None = None
        timed_ms = 0.0  # timed pauses since the last span
        strengths: list[str] = []  # strength pauses since the last span
        natural_ms = 0.0  # the punctuation pause the last span ended with

        def flush_gap() -> None:
            nonlocal timed_ms, strengths
            if timed_ms > 0:
                out.append(_Gap(timed_ms + natural_ms))
            elif strengths:
                out.append(_Gap(max(STRENGTH_MS[s] for s in strengths), soft=True))
            timed_ms, strengths = 0.0, []

        def close() -> None:
            nonlocal cur
            if cur is not None and cur.speech:
                out.append(cur)
            cur = None

        for item in _sentences(resolved.document.items):
            if isinstance(item, Span):
                if not item.is_speech:
                    # Whitespace between words: keep it where we are, never start a chunk.
                    if cur is not None and timed_ms == 0 and not strengths:
                        cur.parts.append(" ")
                    continue
                voice = self.voice_spec(resolved, item.style) or main
                if cur is not None and cur.voice != voice:
                    close()
                elif (cur is not None and cur.chars >= MAX_CHUNK_CHARS and timed_ms == 0
                      and not strengths and _ends_sentence(cur.last_text)):
                    # A long text: go on in a new chunk (its own process, run in parallel)
                    # after the sentence pause espeak-ng would have made.
                    close()
                    out.append(_Gap(natural_ms))
                if cur is None:
                    flush_gap()
                    cur = _Chunk(voice)
                elif timed_ms > 0:
                    cur.parts.append(f'<break time="{int(round(timed_ms + natural_ms))}ms"/>')
                elif strengths:
                    strongest = max(strengths, key=lambda s: STRENGTH_MS[s])
                    cur.parts.append(f'<break strength="{strongest}"/>')
                timed_ms, strengths = 0.0, []
                cur.parts.append(_render_span(item))
                cur.chars += len(item.text)
                cur.last_text = item.text
                natural_ms = self._punctuation_pause_ms(item)
                cur.speech = True
                if item.style.silent:
                    cur.trim = False
            elif item.tone_hz:
                close()
                flush_gap()
                out.append(_Gap(float(item.ms or 0), tone_hz=item.tone_hz))
            elif item.timed:
                timed_ms += float(item.ms or 0)
            else:
                strengths.append(item.strength or "medium")
        close()
        flush_gap()
        # Prosodic pauses at the very end (closing </s>, </p>) add nothing audible.
        while out and isinstance(out[-1], _Gap) and out[-1].soft:
            out.pop()
        return out

    def _punctuation_pause_ms(self, span: Span) -> float:
        """The pause espeak-ng makes after the punctuation ending ``span``.

        A ``<break time>`` replaces that pause in espeak-ng, where Polly's break is heard in
        addition to it; the break is lengthened by this much to keep the reading "the
        break adds its time".
        """
        tail = span.text.rstrip()
        base = PUNCTUATION_PAUSE_MS.get(tail[-1:], 0.0) if tail else 0.0
        return base * (165.0 / self.speed_wpm) / max(span.style.rate, 0.1)

    async def _run(self, chunk: _Chunk) -> np.ndarray:
        """One espeak-ng process for ``chunk``: int16 samples at 8 kHz, edges trimmed."""
        args = [self._binary or "espeak-ng", "-m", "-b", "1", "-z", "-v", chunk.voice,
                "-s", str(self.speed_wpm), "--stdout"]
        async with self._sem:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE)
            except OSError as exc:
                raise SpeechError.system(f"cannot start espeak-ng: {exc}", reason="engine_failed") from None
            self.processes += 1
            try:
                out, err = await asyncio.wait_for(proc.communicate(chunk.ssml().encode("utf-8")),
                                                  self.timeout_s)
            except BaseException as exc:
                # Timed out, or the caller was cancelled (the leg hung up): end the process.
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                if isinstance(exc, TimeoutError):
                    raise SpeechError.system(f"espeak-ng took more than {self.timeout_s:g} s",
                                             reason="engine_timeout") from None
                raise
        if proc.returncode != 0:
            raise SpeechError.system(f"espeak-ng exited {proc.returncode}: "
                                     f"{err.decode('utf-8', 'replace').strip()[:300]}",
                                     reason="engine_failed")
        # Decode, trim and resample now, in a thread, while other chunks are synthesized.
        return await asyncio.to_thread(_decode_chunk, out, chunk.trim)

    def _assemble(self, plan: list[_Chunk | _Gap], audio: dict[int, np.ndarray], path: Path) -> float:
        rate = OUTPUT_RATE
        pieces: list[np.ndarray] = [np.zeros(rate * LEAD_IN_MS // 1000, dtype=np.int16)]
        prev_chunk = False
        for item in plan:
            if isinstance(item, _Chunk):
                if prev_chunk:
                    pieces.append(np.zeros(rate * JOIN_MS // 1000, dtype=np.int16))
                pieces.append(audio[id(item)])
                prev_chunk = True
            else:
                n = int(round(item.ms * rate / 1000.0))
                if item.tone_hz:
                    pieces.append(np.round(_bleep(n, item.tone_hz, rate) * 32767).astype(np.int16))
                else:
                    pieces.append(np.zeros(n, dtype=np.int16))
                prev_chunk = False
        pieces.append(np.zeros(rate * TAIL_MS // 1000, dtype=np.int16))
        out = np.concatenate(pieces)
        min_len = rate * MIN_DURATION_MS // 1000
        if out.size < min_len:
            out = np.concatenate([out, np.zeros(min_len - out.size, dtype=np.int16)])
        peak = int(np.max(np.abs(out.astype(np.int32)))) if out.size else 0
        gain = 10 ** (self.gain_db / 20)
        if self.gain_db or peak * gain > PEAK_LIMIT * 32767:
            scale = gain if peak * gain <= PEAK_LIMIT * 32767 else PEAK_LIMIT * 32767 / peak
            out = np.clip(np.round(out.astype(np.float32) * scale), -32768, 32767).astype(np.int16)
        write_wav_atomic(path, out, rate)
        return out.size / rate


_SENTENCE_END_RE = re.compile(r"(?<=[.!?])(?=\s)")


def _sentences(items: tuple[Item, ...]):
    """The items with plain spans cut after each sentence (so long texts can be split)."""
    for item in items:
        if isinstance(item, Span) and item.say_as is None and len(item.text) > MAX_CHUNK_CHARS // 2:
            for piece in _SENTENCE_END_RE.split(item.text):
                if piece:
                    yield Span(piece, item.style)
        else:
            yield item


def _ends_sentence(text: str) -> bool:
    return text.rstrip()[-1:] in (".", "!", "?")


def _render_span(span: Span) -> str:
    st = span.style
    body = escape(span.text)
    if span.say_as == "characters":
        body = f'<say-as interpret-as="characters">{body}</say-as>'
    volume_db = st.volume_db
    if st.emphasis in ("strong", "moderate"):
        body = f"<emphasis>{body}</emphasis>"
    elif st.emphasis == "reduced":
        volume_db -= 3.0
    attrs = []
    if abs(st.rate - 1.0) > 1e-6:
        attrs.append(f'rate="{max(10, round(st.rate * 100))}%"')
    if abs(st.pitch) > 1e-6:
        attrs.append(f'pitch="{st.pitch:+.0f}%"')
    if st.silent:
        attrs.append('volume="silent"')
    elif abs(volume_db) > 1e-6:
        attrs.append(f'volume="{max(0, round(100 * 10 ** (volume_db / 20)))}%"')
    if attrs:
        body = f"<prosody {' '.join(attrs)}>{body}</prosody>"
    return body


def _decode_chunk(wav: bytes, trim: bool) -> np.ndarray:
    try:
        samples, rate = parse_wav_bytes(wav)
    except ValueError as exc:
        raise SpeechError.system(f"espeak-ng output unreadable: {exc}", reason="engine_failed") from None
    if trim:
        samples = _trim(samples, rate)
    return resample(samples, rate, OUTPUT_RATE)


def _trim(samples: np.ndarray, rate: int) -> np.ndarray:
    limit = int(SILENCE_THRESHOLD * 32768)
    loud = np.flatnonzero((samples > limit) | (samples < -limit))
    if loud.size == 0:
        return samples[:0]
    margin = rate * TRIM_MARGIN_MS // 1000
    start = max(0, int(loud[0]) - margin)
    end = min(samples.size, int(loud[-1]) + 1 + margin)
    return samples[start:end]


def _bleep(n: int, hz: float, rate: int) -> np.ndarray:
    t = np.arange(n) / rate
    tone = BLEEP_LEVEL * np.sin(2 * np.pi * hz * t)
    fade = min(n // 2, rate * 5 // 1000)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        tone[:fade] *= ramp
        tone[-fade:] *= ramp[::-1]
    return tone
