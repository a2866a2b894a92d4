"""A local stand-in for Amazon Polly's REST API (``POST /v1/speech``), for boto3 tests.

It speaks the wire protocol boto3 uses (restJson1): a JSON request body, a raw
``audio/pcm`` answer, and errors as a status code plus ``x-amzn-ErrorType`` header and a
``{"message": ...}`` body. It checks what Polly checks for the tests' purposes: the SigV4
``Authorization`` header (scope ``<region>/polly/aws4_request``, known access key),
OutputFormat/SampleRate, VoiceId, Engine and LanguageCode against a small voice table,
and SSML well-formedness. Audio: a 16-bit mono "voice" (harmonic tone, amplitude
modulated at a syllable rate) lasting 60 ms per character of text.

Independent of chimevoice's own catalogue on purpose: it is the service under test.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

ACCESS_KEY = "AKIDCHIMEVOICETEST"
SECRET_KEY = "chimevoice-test-secret"

VOICES = {  # id: (language, additional languages, engines)
    "Joanna": ("en-US", (), {"standard", "neural"}),
    "Matthew": ("en-US", (), {"standard", "neural"}),
    "Celine": ("fr-FR", (), {"standard"}),
    "Aditi": ("en-IN", ("hi-IN",), {"standard"}),
    "Danielle": ("en-US", (), {"neural"}),
}
MS_PER_CHAR = 60


@dataclass
class FakePolly:
    region: str = "us-east-1"
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: Errors to return before the next successes: (status, code, message).
    queued_errors: list[tuple[int, str, str]] = field(default_factory=list)
    content_type: str = "audio/pcm"

    def fail_next(self, status: int, code: str, message: str, times: int = 1) -> None:
        self.queued_errors.extend([(status, code, message)] * times)

    # -- HTTP ------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/speech", self.speech)
        return app

    @staticmethod
    def error(status: int, code: str, message: str) -> web.Response:
        return web.Response(
            status=status,
            body=json.dumps({"message": message}).encode(),
            headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.tts/",
                     "x-amzn-RequestId": "fake-request-id",
                     "Content-Type": "application/json"},
        )

    async def speech(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self.error(400, "SerializationException", "body is not JSON")
        self.requests.append({"body": body, "headers": dict(request.headers)})

        auth = request.headers.get("Authorization", "")
        m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request", auth)
        if not m:
            return self.error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        key, region, service = m.groups()
        if service != "polly" or region != self.region:
            return self.error(403, "InvalidSignatureException", "Credential should be scoped correctly")
        if key != ACCESS_KEY:
            return self.error(403, "UnrecognizedClientException",
                              "The security token included in the request is invalid.")

        if self.queued_errors:
            status, code, message = self.queued_errors.pop(0)
            return self.error(status, code, message)

        fmt = body.get("OutputFormat")
        if fmt != "pcm":
            return self.error(400, "ValidationException",
                              f"1 validation error detected: Value '{fmt}' at 'outputFormat' failed to "
                              "satisfy constraint: this fake only produces pcm")
        rate = body.get("SampleRate", "16000")
        if rate not in ("8000", "16000"):
            return self.error(400, "InvalidSampleRateException", "Invalid sample rate for pcm output")
        voice_id = body.get("VoiceId")
        if voice_id not in VOICES:
            return self.error(400, "ValidationException",
                              f"1 validation error detected: Value '{voice_id}' at 'voiceId' failed to "
                              f"satisfy constraint: Member must satisfy enum value set: {sorted(VOICES)}")
        lang, extra, engines = VOICES[voice_id]
        engine = body.get("Engine", "standard")
        if engine not in engines:
            return self.error(400, "EngineNotSupportedException",
                              f"This voice does not support the selected engine: {engine}")
        language = body.get("LanguageCode")
        if language is not None and language not in (lang, *extra):
            return self.error(400, "LanguageNotSupportedException",
                              f"Language {language} is not supported by voice {voice_id}")
        text = body.get("Text", "")
        if len(text) > 3000:
            return self.error(400, "TextLengthExceededException", "Maximum text length has been exceeded")
        spoken = text
        if body.get("TextType", "text") == "ssml":
            try:
                root = ET.fromstring(text)
            except ET.ParseError as exc:
                return self.error(400, "InvalidSsmlException", f"Invalid SSML request: {exc}")
            if root.tag != "speak":
                return self.error(400, "InvalidSsmlException", "Invalid SSML request")
            spoken = "".join(root.itertext())

        pcm = voice_like(len(spoken.strip()) * MS_PER_CHAR / 1000.0, int(rate))
        return web.Response(body=pcm, headers={"Content-Type": self.content_type,
                                               "x-amzn-RequestCharacters": str(len(spoken))})


def voice_like(seconds: float, rate: int) -> bytes:
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    f0 = 180.0
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4.0 * t))  # 4 syllables per second
    x = 0.3 * wave / 2.3 * envelope
    return np.round(x * 32767).astype("<i2").tobytes()
