"""The voice catalogue against botocore's Polly model, and the local voice table."""
from __future__ import annotations

import botocore.session

from chimevoice.speech import DEFAULT_VOICE_ID, POLLY_LANGUAGES, POLLY_VOICES, LocalSynthesizer
from chimevoice.speech.voices import LANGUAGE_CODE_RE, LOCAL_LANGUAGES, LOCAL_VOICES

MODEL = botocore.session.get_session().get_service_model("polly")
BOTO_VOICES = set(MODEL.shape_for("VoiceId").enum)
BOTO_LANGUAGES = set(MODEL.shape_for("LanguageCode").enum)


def test_catalogue_uses_only_polly_names():
    assert set(POLLY_VOICES) <= BOTO_VOICES
    assert POLLY_LANGUAGES <= BOTO_LANGUAGES
    for v in POLLY_VOICES.values():
        assert set(v.languages) <= POLLY_LANGUAGES, v
        assert v.engines and v.engines <= {"standard", "neural"}, v
        assert v.gender in ("Female", "Male"), v


def test_every_polly_language_has_the_code_shape_and_a_catalogue_voice():
    for code in POLLY_LANGUAGES:
        assert LANGUAGE_CODE_RE.fullmatch(code), code
    spoken = {lang for v in POLLY_VOICES.values() for lang in v.languages}
    assert spoken == POLLY_LANGUAGES


def test_default_voice_and_examples_resolve():
    joanna = POLLY_VOICES[DEFAULT_VOICE_ID]
    assert DEFAULT_VOICE_ID == "Joanna" and joanna.language == "en-US"
    assert joanna.engines == {"standard", "neural"}  # the guide's examples use both
    assert POLLY_VOICES["Aditi"].languages == ("en-IN", "hi-IN")  # the bilingual example


def test_local_tables_cover_the_catalogue():
    assert set(LOCAL_LANGUAGES) == POLLY_LANGUAGES
    assert set(LOCAL_VOICES) <= set(POLLY_VOICES)


def test_every_language_has_an_installed_espeak_voice(tmp_path):
    tts = LocalSynthesizer(tmp_path)
    assert tts.available and tts.version != "unknown"
    missing = [code for code, voice in tts.local_languages().items() if voice is None]
    assert missing == []
