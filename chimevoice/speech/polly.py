"""Amazon Polly through boto3: ``synthesize_speech`` with ``OutputFormat="pcm"``, 8 kHz.

The request is checked first for what the Chime service itself checks (Text present and
at most 1,000 characters, TextType and Engine in the Speak action's enums). VoiceId,
LanguageCode and SSML are Polly's to judge (its catalogue is newer than ours), unless
``validate_catalogue=True``, which applies the full local validation before calling.

boto3 runs in a small thread pool of its own (``max_concurrency`` threads; the HTTP
connection pool is sized to match). The raw PCM Polly returns (s16le mono, 8,000 Hz) is
wrapped in a WAV header and written atomically into ``cache_dir``.

Error mapping (:func:`map_polly_error`; spec 03b §4 self-hosted mapping, E12/E13/E15):

==========================================  =======================================================================
Polly / botocore                            SpeechError
==========================================  =======================================================================
``InvalidSsmlException``                    InvalidActionParameter, ``Text parameter value is not valid SSML.``
``EngineNotSupportedException``             InvalidActionParameter, ``Engine parameter value is invalid.``
``LanguageNotSupportedException``           InvalidActionParameter, ``LanguageCode parameter value is invalid.``
``ValidationException`` naming voiceId /    InvalidActionParameter with that parameter's message
languageCode / engine / textType / text
(otherwise the generic ``Speech parameter
value is invalid.``)
``TextLengthExceededException``             MissingRequiredActionParameter, ``Text is limited to 1,000 characters``
throttling codes (``ThrottlingException``,  ActionExecutionThrottled (after botocore's own retries)
``TooManyRequestsException``, ...) or
HTTP 429
``AccessDeniedException``,                  AccessDenied
``UnrecognizedClientException``,
signature/token errors, HTTP 401/403,
no credentials
anything else: 5xx,                         SystemException, ``System error while running action``
``ServiceFailureException``, connection
errors, timeouts, a non-PCM answer
==========================================  =======================================================================
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog

from .errors import SpeechError
from .request import SpeechRequest, canonical, check_basic, resolve
from .voices import DEFAULT_VOICE_ID
from .wavio import OUTPUT_RATE, atomic_replace_bytes, pcm16_to_wav_bytes

__all__ = ["PollySynthesizer", "map_polly_error"]

log = structlog.get_logger("chimevoice.speech")

_THROTTLING = {
    "ThrottlingException", "Throttling", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "ProvisionedThroughputExceededException",
    "RequestThrottled", "SlowDown", "LimitExceededException", "ServiceQuotaExceededException",
    "PriorRequestNotComplete", "EC2ThrottledException", "BandwidthLimitExceeded",
}
_ACCESS = {
    "AccessDeniedException", "AccessDenied", "UnrecognizedClientException",
    "InvalidSignatureException", "SignatureDoesNotMatch", "ExpiredTokenException", "ExpiredToken",
    "InvalidClientTokenId", "MissingAuthenticationTokenException", "MissingAuthenticationToken",
    "IncompleteSignature", "IncompleteSignatureException", "NotAuthorized", "AuthFailure",
    "UnauthorizedOperation", "RequestExpired", "InvalidAccessKeyId", "AuthorizationError",
}
_FIELDS = {
    "voiceid": "VoiceId", "languagecode": "LanguageCode", "engine": "Engine",
    "texttype": "TextType", "text": "Text",
}
_FIELD_RE = re.compile(r"at '([A-Za-z]+)'")
# Polly's SampleRate for PCM output: "8000" or "16000".
_SAMPLE_RATE = str(OUTPUT_RATE)


def map_polly_error(exc: BaseException) -> SpeechError:
    """Translate a botocore exception (or anything raised by the call) into a SpeechError."""
    if isinstance(exc, SpeechError):
        return exc
    try:
        from botocore import exceptions as bex
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return SpeechError.system(f"{type(exc).__name__}: {exc}")

    if isinstance(exc, bex.ClientError):
        err = exc.response.get("Error", {}) or {}
        code = str(err.get("Code") or "")
        message = str(err.get("Message") or "")
        status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
        detail = f"{code} ({status}): {message}"
        if code == "InvalidSsmlException":
            return SpeechError.invalid_ssml(detail)
        if code == "EngineNotSupportedException":
            return SpeechError.invalid("Engine", "voice_engine", detail)
        if code == "LanguageNotSupportedException":
            return SpeechError.invalid("LanguageCode", "voice_language", detail)
        if code == "TextLengthExceededException":
            return SpeechError.text_too_long(detail)
        if code in _THROTTLING or status == 429:
            return SpeechError.throttled(detail)
        if code in _ACCESS or status in (401, 403):
            return SpeechError.access_denied(detail)
        if code in ("ValidationException", "InvalidParameterValue", "InvalidParameterValueException",
                    "InvalidParameterException", "InvalidParameterCombination"):
            m = _FIELD_RE.search(message)
            param = _FIELDS.get(m.group(1).lower()) if m else None
            if param is None:
                low = message.lower()
                param = next((p for key, p in (("ssml", "ssml"), ("engine", "Engine"),
                                                ("language", "LanguageCode"), ("voice", "VoiceId"))
                              if key in low), None)
            if param == "ssml":
                return SpeechError.invalid_ssml(detail)
            if param is not None:
                return SpeechError.invalid(param, "polly_validation", detail)
            return SpeechError.invalid_parameters(detail)
        return SpeechError.system(detail, reason="polly_error")

    if isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError,
                        bex.CredentialRetrievalError)):
        return SpeechError.access_denied(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, bex.ParamValidationError):
        text = str(exc)
        param = next((p for key, p in (("VoiceId", "VoiceId"), ("LanguageCode", "LanguageCode"),
                                        ("Engine", "Engine"), ("TextType", "TextType"), ("Text", "Text"))
                      if key in text), None)
        if param:
            return SpeechError.invalid(param, "param_validation", text)
        return SpeechError.invalid_parameters(text)
    return SpeechError.system(f"{type(exc).__name__}: {exc}", reason="polly_unreachable")


class PollySynthesizer:
    """Synthesizes with Amazon Polly (or a Polly-compatible endpoint) into ``cache_dir``.

    ``region``: the Polly region. ``endpoint_url``: another endpoint (a test server, a
    VPC endpoint). Credentials come from boto3's usual chain unless given. ``max_attempts``:
    total attempts per request (botocore standard retry mode: throttling and
    5xx answers are retried with backoff).
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        *,
        region: str,
        endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        profile_name: str | None = None,
        validate_catalogue: bool = False,
        max_concurrency: int = 8,
        max_attempts: int = 3,
        connect_timeout: float = 2.0,
        read_timeout: float = 10.0,
    ) -> None:
        self.out_dir = Path(cache_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.region = region
        self.endpoint_url = endpoint_url
        self.validate_catalogue = validate_catalogue
        self.backend_id = f"polly:{region}:{endpoint_url or 'aws'}:pcm{_SAMPLE_RATE}"
        self._session_args = {k: v for k, v in (
            ("aws_access_key_id", aws_access_key_id),
            ("aws_secret_access_key", aws_secret_access_key),
            ("aws_session_token", aws_session_token),
            ("profile_name", profile_name),
        ) if v is not None}
        self._config_args = dict(
            region_name=region,
            retries={"mode": "standard", "total_max_attempts": max(1, int(max_attempts))},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max(1, int(max_concurrency)),
        )
        self._executor = ThreadPoolExecutor(max_workers=max(1, int(max_concurrency)),
                                            thread_name_prefix="polly")
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.syntheses = 0
        self.requests = 0

    # -- boto3 -----------------------------------------------------------------------------
    def _get_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session(**self._session_args)
                self._client = session.client("polly", endpoint_url=self.endpoint_url,
                                              config=Config(**self._config_args))
            return self._client

    def _call(self, params: dict[str, Any]) -> bytes:
        client = self._get_client()
        self.requests += 1
        resp = client.synthesize_speech(**params)
        stream = resp["AudioStream"]
        try:
            data = stream.read()
        finally:
            stream.close()
        content_type = str(resp.get("ContentType") or "")
        if not content_type.startswith("audio/pcm"):
            raise SpeechError.system(f"Polly answered {content_type!r}, expected audio/pcm",
                                     reason="polly_bad_answer")
        return data

    async def warm(self) -> None:
        """Create the boto3 client now (it takes tens of milliseconds)."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._get_client)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- synthesis -------------------------------------------------------------------------
    def params_for(self, req: SpeechRequest) -> dict[str, Any]:
        """The SynthesizeSpeech parameters for ``req`` (raises SpeechError on a local check)."""
        if self.validate_catalogue:
            r = resolve(req)
            text, text_type, engine, voice_id = r.text, r.text_type, r.engine, r.voice.id
            language = r.language if r.language_given else None
        else:
            text, text_type, engine = check_basic(req)
            voice_id = req.voice_id if req.voice_id not in (None, "") else DEFAULT_VOICE_ID
            language = req.language_code if req.language_code not in (None, "") else None
            if not isinstance(voice_id, str):
                raise SpeechError.invalid("VoiceId", "voice", f"VoiceId is a {type(voice_id).__name__}")
            if language is not None and not isinstance(language, str):
                raise SpeechError.invalid("LanguageCode", "language",
                                          f"LanguageCode is a {type(language).__name__}")
        params: dict[str, Any] = {
            "Engine": engine,
            "OutputFormat": "pcm",
            "SampleRate": _SAMPLE_RATE,
            "Text": text,
            "TextType": text_type,
            "VoiceId": voice_id,
        }
        if language is not None:
            params["LanguageCode"] = language
        return params

    def output_path(self, req: SpeechRequest) -> Path:
        key = hashlib.sha256(json.dumps([self.backend_id, *canonical(req)], default=repr,
                                        ensure_ascii=False).encode()).hexdigest()[:40]
        return self.out_dir / f"{key}.wav"

    async def synthesize(self, req: SpeechRequest) -> Path:
        t0 = time.perf_counter()
        params = self.params_for(req)
        loop = asyncio.get_running_loop()
        try:
            pcm = await loop.run_in_executor(self._executor, self._call, params)
        except Exception as exc:  # botocore errors, connection errors
            err = map_polly_error(exc)
            log.warning("speech.polly_failed", error_type=err.error_type, reason=err.reason,
                        detail=err.detail or str(exc))
            raise err from exc
        if len(pcm) < 2:
            pcm = bytes(2 * OUTPUT_RATE // 10)  # nothing to say (e.g. "<speak/>"): 100 ms of silence
        path = self.output_path(req)
        await loop.run_in_executor(self._executor, atomic_replace_bytes, path, pcm16_to_wav_bytes(pcm))
        self.syntheses += 1
        log.debug("speech.synthesized", backend="polly", voice=params["VoiceId"], chars=len(params["Text"]),
                  duration_s=round(len(pcm) / 2 / OUTPUT_RATE, 3),
                  elapsed_ms=round((time.perf_counter() - t0) * 1000, 1))
        return path
