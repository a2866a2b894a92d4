"""The synthesis request and its validation (spec 03b §2.2-2.3, §3.3-3.4, §5).

Check order (spec 03b §5): Text present, Text length, then the enums (TextType, Engine),
the voice, the language, the voice/engine and voice/language pairs, and last the SSML.
The first failure is raised.

Readings chosen here (docs/speech.md):

* An empty string in an optional field (``Engine``, ``LanguageCode``, ``TextType``,
  ``VoiceId``) means "not given", as handlers leave optional fields empty (spec README).
  An empty ``Text`` is missing (spec 03b §2.3).
* The 1,000-character limit counts ``len(Text)`` in code points, SSML markup included.
* Enum values are case-sensitive: ``Neural``, ``SSML``, ``joanna``, ``en-us`` are invalid.
* ``LanguageCode`` given with a voice that does not speak it is invalid (no silent
  substitution, spec 03b §2.3); without it, a bilingual voice uses its default language.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import SpeechError
from .ssml import Document, parse_ssml, plain_text
from .voices import DEFAULT_VOICE_ID, LANGUAGE_CODE_RE, POLLY_LANGUAGES, POLLY_VOICES, VoiceInfo

__all__ = [
    "SpeechRequest",
    "ResolvedRequest",
    "MAX_TEXT_CHARS",
    "ENGINES",
    "TEXT_TYPES",
    "canonical",
    "check_basic",
    "resolve",
    "validate",
]

MAX_TEXT_CHARS = 1000
ENGINES = ("standard", "neural")
TEXT_TYPES = ("text", "ssml")


@dataclass(frozen=True)
class SpeechRequest:
    """One text-to-speech request: the Polly parameters of Speak / SpeakAndGetDigits."""

    text: str
    text_type: str = "text"  # "text" | "ssml"
    engine: str = "standard"  # "standard" | "neural"
    language_code: str | None = None
    voice_id: str | None = None

    @classmethod
    def from_parameters(cls, params: dict[str, Any]) -> SpeechRequest:
        """From a Speak ``Parameters`` dict or a ``SpeechParameters`` object (keys as in the guide)."""
        return cls(
            text=params.get("Text"),  # type: ignore[arg-type]
            text_type=params.get("TextType"),  # type: ignore[arg-type]
            engine=params.get("Engine"),  # type: ignore[arg-type]
            language_code=params.get("LanguageCode"),
            voice_id=params.get("VoiceId"),
        )


def _opt(value: Any) -> Any:
    return None if value is None or value == "" else value


def canonical(req: SpeechRequest) -> tuple[Any, ...]:
    """The request with defaults filled in: ``(text, text_type, engine, language, voice)``.

    Two requests that mean the same (``voice_id=None`` and ``"Joanna"``) compare equal.
    Used for cache keys; performs no validation.
    """
    return (
        req.text,
        _opt(req.text_type) or "text",
        _opt(req.engine) or "standard",
        _opt(req.language_code),
        _opt(req.voice_id) or DEFAULT_VOICE_ID,
    )


@dataclass(frozen=True)
class ResolvedRequest:
    text: str
    text_type: str
    engine: str
    language: str  # the language spoken (LanguageCode, or the voice's default)
    voice: VoiceInfo
    document: Document  # the text as spans and pauses (SSML parsed)
    language_given: bool  # LanguageCode was in the request


def check_basic(req: SpeechRequest) -> tuple[str, str, str]:
    """The checks the Chime service itself makes before calling Polly.

    Text present and at most 1,000 characters; TextType and Engine in the Speak action's
    enums. Returns ``(text, text_type, engine)`` with defaults applied.
    """
    text = req.text
    if text is None or text == "":
        raise SpeechError.text_required()
    if not isinstance(text, str):
        raise SpeechError.invalid("Text", "text_type", f"Text is a {type(text).__name__}, not a string")
    if len(text) > MAX_TEXT_CHARS:
        raise SpeechError.text_too_long(f"{len(text)} characters, limit {MAX_TEXT_CHARS}")
    text_type = _opt(req.text_type) or "text"
    if text_type not in TEXT_TYPES:
        raise SpeechError.invalid("TextType", "text_type", f"TextType {text_type!r} is not text or ssml")
    engine = _opt(req.engine) or "standard"
    if engine not in ENGINES:
        raise SpeechError.invalid("Engine", "engine", f"Engine {engine!r} is not standard or neural")
    return text, text_type, engine


def resolve(req: SpeechRequest) -> ResolvedRequest:
    """Validate ``req`` fully against the voice catalogue and Polly's SSML rules."""
    text, text_type, engine = check_basic(req)

    voice_id = _opt(req.voice_id) or DEFAULT_VOICE_ID
    voice = POLLY_VOICES.get(voice_id) if isinstance(voice_id, str) else None
    if voice is None:
        raise SpeechError.invalid("VoiceId", "voice", f"VoiceId {voice_id!r} is not a known Polly voice")

    language_code = _opt(req.language_code)
    if language_code is not None:
        if (not isinstance(language_code, str) or not LANGUAGE_CODE_RE.fullmatch(language_code)
                or language_code not in POLLY_LANGUAGES):
            raise SpeechError.invalid("LanguageCode", "language",
                                      f"LanguageCode {language_code!r} is not a Polly language code")

    if engine not in voice.engines:
        raise SpeechError.invalid("Engine", "voice_engine",
                                  f"voice {voice.id} has no {engine} engine (it has {sorted(voice.engines)})")

    if language_code is not None and language_code not in voice.languages:
        raise SpeechError.invalid("LanguageCode", "voice_language",
                                  f"voice {voice.id} does not speak {language_code} "
                                  f"(it speaks {', '.join(voice.languages)})")
    language = language_code or voice.language

    document = parse_ssml(text, language) if text_type == "ssml" else plain_text(text)
    return ResolvedRequest(text, text_type, engine, language, voice, document, language_code is not None)


def validate(req: SpeechRequest) -> None:
    """Raise :class:`SpeechError` if ``req`` breaks a rule of the spec; pure (no I/O)."""
    resolve(req)
