"""A minimal Amazon Polly endpoint for handlers (docs/aws-local.md): ``SynthesizeSpeech`` and
``DescribeVoices`` of botocore's ``polly`` model, answered by chimevoice's own text-to-speech (the
synthesizer of ``speech:``: espeak-ng by default), so a handler that calls
``boto3.client("polly").synthesize_speech(...)`` — and writes the audio to S3 for ``PlayAudio``, as
Chime samples do — runs without AWS.

Output formats: ``pcm`` (16-bit little-endian mono), ``mulaw``, ``alaw`` (8 kHz), ``mp3``,
``ogg_opus``; ``ogg_vorbis`` and speech marks (``json``) are refused with ``ValidationException``.
Requests are SigV4-verified (service ``polly``, any region) against the keys given.
"""
from __future__ import annotations

import audioop  # noqa: I001 - deprecated in 3.11, present until 3.13; for mu-law / A-law only
import io
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import numpy as np
import structlog
from aiohttp import web

from ..speech import SpeechError, SpeechRequest, Synthesizer
from ..speech.voices import POLLY_VOICES
from .errors import ApiError
from .sigv4 import SigV4Verifier, parse_authorization

__all__ = ["make_polly_app", "PollyServer", "render_speech"]

log = structlog.get_logger("chimevoice.polly")

MAX_BODY = 64 * 1024
# format -> (allowed sample rates, default rate, content type)
FORMATS: dict[str, tuple[tuple[int, ...], int, str]] = {
    "pcm": ((8000, 16000), 16000, "audio/pcm"),
    "mulaw": ((8000,), 8000, "audio/basic"),
    "alaw": ((8000,), 8000, "audio/alaw"),
    "mp3": ((8000, 16000, 22050, 24000), 22050, "audio/mpeg"),
    "ogg_opus": ((8000, 16000, 24000, 48000), 48000, "audio/ogg"),
}
_LANGUAGE_NAMES = {"en-US": "US English", "en-GB": "British English", "de-DE": "German", "fr-FR": "French",
                   "es-ES": "Castilian Spanish", "es-US": "US Spanish", "it-IT": "Italian", "ja-JP": "Japanese"}


class _PollyError(Exception):
    """An error of Polly's model: code (exception name), message, HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _error(code: str, status: int, message: str, request_id: str) -> web.Response:
    return web.json_response({"message": message}, status=status,
                             headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id})


def _resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out:
        return samples
    import av
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate_in
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate_out)
    parts = [f.to_ndarray().reshape(-1) for f in (*resampler.resample(frame), *resampler.resample(None))]
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


def _encode(samples: np.ndarray, rate: int, fmt: str) -> bytes:
    """int16 mono samples at ``rate`` -> the bytes of Polly's ``fmt``."""
    pcm = samples.astype("<i2").tobytes()
    if fmt == "pcm":
        return pcm
    if fmt == "mulaw":
        return audioop.lin2ulaw(pcm, 2)
    if fmt == "alaw":
        return audioop.lin2alaw(pcm, 2)
    import av
    out = io.BytesIO()
    container_format, codec = {"mp3": ("mp3", "libmp3lame"), "ogg_opus": ("ogg", "libopus")}[fmt]
    with av.open(out, "w", format=container_format) as container:
        stream: Any = container.add_stream(codec, rate=rate, layout="mono")
        size = stream.codec_context.frame_size or 1152
        for start in range(0, len(samples), size):
            chunk = samples[start:start + size]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def render_speech(path: Any, fmt: str, rate: int) -> bytes:
    """A synthesizer's WAV file as the bytes of Polly's ``fmt`` at ``rate`` (also the Lex runtime's
    audio answers)."""
    from ..media.audio import read_pcm
    samples, source_rate = read_pcm(path)
    return _encode(_resample(samples.astype(np.int16), source_rate, rate), rate, fmt)


def make_polly_app(synthesizer: Synthesizer, keys: Mapping[str, str], *,
                   clock: Callable[[], float] = time.time) -> web.Application:
    verifiers: dict[str, SigV4Verifier] = {}

    def verify(request: web.Request, body: bytes) -> None:
        header = request.headers.get("Authorization", "")
        try:
            region = parse_authorization(header).region if header else "us-east-1"
        except ApiError:
            region = "us-east-1"      # the verifier reports the malformed header
        verifier = verifiers.get(region)
        if verifier is None:
            verifier = verifiers[region] = SigV4Verifier(dict(keys), region=region, clock=clock, service="polly")
        verifier.verify(request.method, request.raw_path, request.headers.items(), body,
                        host_url=f"{request.scheme}://{request.host}")

    @web.middleware
    async def frame(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        begun = time.perf_counter()
        try:
            verify(request, await request.read())
            response = await handler(request)
        except (ApiError, _PollyError) as exc:
            response = _error(exc.code, exc.status, exc.message, request_id)
        except web.HTTPException as exc:
            response = _error("ValidationException" if exc.status < 500 else "ServiceFailureException",
                              exc.status, exc.reason, request_id)
        except Exception:
            log.exception("polly_failure", path=request.path[:200])
            response = _error("ServiceFailureException", 500, "The service encountered an unexpected error.",
                              request_id)
        response.headers.setdefault("x-amzn-RequestId", request_id)
        log.info("polly_request", path=request.path[:200], status=response.status,
                 latency_ms=round((time.perf_counter() - begun) * 1000, 1))
        return response

    async def synthesize_speech(request: web.Request) -> web.Response:
        try:
            params: Any = await request.json()
        except ValueError:
            raise _PollyError("ValidationException", "The request body is not JSON.") from None
        if not isinstance(params, dict):
            raise _PollyError("ValidationException", "The request body must be a JSON object.")
        for member in ("OutputFormat", "Text", "VoiceId"):
            if not params.get(member):
                raise _PollyError("ValidationException", f"1 validation error detected: {member} must not be null")
        fmt = params["OutputFormat"]
        if fmt not in FORMATS:
            raise _PollyError("ValidationException", f"OutputFormat {fmt!r} is not supported by chimevoice "
                                                     f"(supported: {', '.join(FORMATS)})")
        rates, default_rate, content_type = FORMATS[fmt]
        try:
            rate = int(params.get("SampleRate") or default_rate)
        except (TypeError, ValueError):
            rate = -1
        if rate not in rates:
            raise _PollyError("InvalidSampleRateException",
                              f"SampleRate {params.get('SampleRate')!r} is not valid for {fmt}: "
                              f"{', '.join(map(str, rates))}")
        if params.get("SpeechMarkTypes"):
            raise _PollyError("ValidationException", "Speech marks are not supported by chimevoice")
        speech = SpeechRequest(text=params["Text"], text_type=params.get("TextType") or "text",
                               engine=params.get("Engine") or "standard",
                               language_code=params.get("LanguageCode") or None, voice_id=params["VoiceId"])
        try:
            path = await synthesizer.synthesize(speech)
        except SpeechError as exc:
            code = {"text_too_long": "TextLengthExceededException", "ssml": "InvalidSsmlException"}.get(
                exc.reason, "ValidationException")
            if exc.reason.startswith(("engine_", "polly_")):
                raise _PollyError("ServiceFailureException", exc.detail or exc.message, 500) from None
            raise _PollyError(code, exc.detail or exc.message) from None
        audio = render_speech(path, fmt, rate)
        return web.Response(body=audio, content_type=content_type,
                            headers={"x-amzn-RequestCharacters": str(len(params["Text"]))})

    async def describe_voices(request: web.Request) -> web.Response:
        language, engine = request.query.get("LanguageCode"), request.query.get("Engine")
        additional = request.query.get("IncludeAdditionalLanguageCodes", "false").lower() == "true"
        voices = []
        for voice in POLLY_VOICES.values():
            if engine and engine not in voice.engines:
                continue
            if language and language != voice.language and not (additional and language in voice.languages):
                continue
            entry: dict[str, Any] = {"Gender": voice.gender, "Id": voice.id, "LanguageCode": voice.language,
                                     "LanguageName": _LANGUAGE_NAMES.get(voice.language, voice.language),
                                     "Name": voice.id, "SupportedEngines": sorted(voice.engines)}
            if voice.additional_languages:
                entry["AdditionalLanguageCodes"] = list(voice.additional_languages)
            voices.append(entry)
        return web.json_response({"Voices": voices})

    async def unknown(request: web.Request) -> web.Response:
        raise _PollyError("UnknownOperationException", f"No operation {request.method} {request.path[:200]}.", 404)

    app = web.Application(middlewares=[frame], client_max_size=MAX_BODY)
    app.router.add_post("/v1/speech", synthesize_speech)
    app.router.add_get("/v1/voices", describe_voices)
    app.router.add_route("*", "/{tail:.*}", unknown)
    return app


class PollyServer:
    """:func:`make_polly_app` on ``listen``."""

    def __init__(self, synthesizer: Synthesizer, keys: Mapping[str, str], listen: tuple[str, int]) -> None:
        self._app = make_polly_app(synthesizer, keys)
        self._listen = listen
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        runner = web.AppRunner(self._app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._listen[0], self._listen[1]).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("polly_listening", address=self._listen[0], port=self._listen[1])

    @property
    def started(self) -> bool:
        return self._runner is not None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
