"""validate(): each parameter rule of spec 03b §2.2-2.3 / §5 and its exact ErrorType/ErrorMessage."""
from __future__ import annotations

import pytest

from chimevoice.engine.errors import ActionError
from chimevoice.speech import SpeechError, SpeechRequest, canonical, resolve, validate

MISSING = "MissingRequiredActionParameter"
INVALID = "InvalidActionParameter"

TEXT_REQUIRED = "Text is a required parameter."
TEXT_TOO_LONG = "Text is limited to 1,000 characters"
BAD_TEXT = "Text parameter value is invalid."
BAD_ENGINE = "Engine parameter value is invalid."
BAD_TEXT_TYPE = "TextType parameter value is invalid."
BAD_LANGUAGE = "LanguageCode parameter value is invalid."
BAD_VOICE = "VoiceId parameter value is invalid."
BAD_SSML = "Text parameter value is not valid SSML."


def error_of(req: SpeechRequest) -> tuple[str, str]:
    with pytest.raises(SpeechError) as info:
        validate(req)
    return info.value.error_type, info.value.message


@pytest.mark.parametrize(
    "req, expected",
    [
        # Text (stated errors, L12916 / L12919)
        (SpeechRequest(None), (MISSING, TEXT_REQUIRED)),  # type: ignore[arg-type]
        (SpeechRequest(""), (MISSING, TEXT_REQUIRED)),
        (SpeechRequest("x" * 1001), (MISSING, TEXT_TOO_LONG)),
        (SpeechRequest("<speak>" + "x" * 987 + "</speak>", text_type="ssml"), (MISSING, TEXT_TOO_LONG)),
        (SpeechRequest(12345), (INVALID, BAD_TEXT)),  # type: ignore[arg-type]
        # TextType / Engine enums, case-sensitive
        (SpeechRequest("hi", text_type="SSML"), (INVALID, BAD_TEXT_TYPE)),
        (SpeechRequest("hi", text_type="html"), (INVALID, BAD_TEXT_TYPE)),
        (SpeechRequest("hi", engine="Neural"), (INVALID, BAD_ENGINE)),
        (SpeechRequest("hi", engine="generative"), (INVALID, BAD_ENGINE)),
        (SpeechRequest("hi", engine="long-form"), (INVALID, BAD_ENGINE)),
        # VoiceId
        (SpeechRequest("hi", voice_id="Bogus"), (INVALID, BAD_VOICE)),
        (SpeechRequest("hi", voice_id="joanna"), (INVALID, BAD_VOICE)),
        (SpeechRequest("hi", voice_id="Tiffany"), (INVALID, BAD_VOICE)),  # a Polly voice not in the catalogue
        # LanguageCode: format, Polly's list, the voice's languages
        (SpeechRequest("hi", language_code="en-us"), (INVALID, BAD_LANGUAGE)),
        (SpeechRequest("hi", language_code="english"), (INVALID, BAD_LANGUAGE)),
        (SpeechRequest("hi", language_code="xx-YY"), (INVALID, BAD_LANGUAGE)),
        (SpeechRequest("hi", language_code="fr-FR"), (INVALID, BAD_LANGUAGE)),  # Joanna is en-US only
        (SpeechRequest("hi", voice_id="Aditi", language_code="en-US"), (INVALID, BAD_LANGUAGE)),
        # The voice lacks the engine
        (SpeechRequest("bonjour", voice_id="Celine", engine="neural"), (INVALID, BAD_ENGINE)),
        (SpeechRequest("hi", voice_id="Danielle"), (INVALID, BAD_ENGINE)),  # neural-only, default standard
    ],
)
def test_rule_gives_exact_error(req, expected):
    assert error_of(req) == expected


@pytest.mark.parametrize(
    "ssml",
    [
        "<speak>Hello",  # not well-formed
        "Hello world",  # no <speak>
        "<p>Hello</p>",  # root is not <speak>
        "<speak>AT&T</speak>",  # reserved character not escaped
        "<speak><foo>x</foo></speak>",  # not a Polly tag
        "<speak><voice name='x'>hi</voice></speak>",  # SSML 1.1 tag Polly does not support
        "<speak>a <break time='abc'/> b</speak>",
        "<speak>a <break time='3'/> b</speak>",  # a unit is required
        "<speak>a <break strength='huge'/> b</speak>",
        "<speak><prosody rate='fast-ish'>x</prosody></speak>",
        "<speak><prosody pitch='+10dB'>x</prosody></speak>",
        "<speak><prosody volume='+6%'>x</prosody></speak>",
        "<speak><say-as>123</say-as></speak>",  # interpret-as required
        "<speak><say-as interpret-as='roman'>XII</say-as></speak>",
        "<speak><sub>W3C</sub></speak>",  # alias required
        "<speak><lang>bonjour</lang></speak>",  # xml:lang required
        "<speak><lang xml:lang='french'>bonjour</lang></speak>",
        "<speak><phoneme alphabet='ipa'>pecan</phoneme></speak>",  # ph required
        "<speak><phoneme alphabet='arpabet' ph='P IY'>pecan</phoneme></speak>",
        "<speak><emphasis level='loud'>x</emphasis></speak>",
        "<speak><amazon:effect name='robot'>x</amazon:effect></speak>",
        "<speak><amazon:unknown>x</amazon:unknown></speak>",
        "<!DOCTYPE speak [<!ENTITY a 'aaaa'>]><speak>&a;</speak>",
        "<speak><speak>nested</speak></speak>",
    ],
)
def test_invalid_ssml_gives_exact_error(ssml):
    assert error_of(SpeechRequest(ssml, text_type="ssml")) == (INVALID, BAD_SSML)


@pytest.mark.parametrize(
    "req",
    [
        SpeechRequest("Hello, World!"),
        SpeechRequest("x" * 1000),  # exactly the limit
        SpeechRequest("Hello", engine="neural", language_code="en-US", text_type="text", voice_id="Joanna"),
        SpeechRequest("hi", engine="", language_code="", text_type="", voice_id=""),  # empty = not given
        SpeechRequest("namaste", voice_id="Aditi", language_code="hi-IN"),  # bilingual voice
        SpeechRequest("hello", voice_id="Aditi"),
        SpeechRequest("a < b & c", text_type="text"),  # plain text is not XML
        SpeechRequest("<speak>Hello <break time='1s'/> world</speak>", text_type="ssml"),
        SpeechRequest("  <speak>leading whitespace</speak>", text_type="ssml"),
        SpeechRequest('<?xml version="1.0"?><speak>declared</speak>', text_type="ssml"),
        SpeechRequest('<speak xmlns="http://www.w3.org/2001/10/synthesis" version="1.1">ns</speak>',
                      text_type="ssml"),
        # amazon: tags without a namespace declaration, as Polly accepts them
        SpeechRequest("<speak><amazon:effect name='whispered'>psst</amazon:effect>"
                      "<amazon:breath/><amazon:domain name='news'>x</amazon:domain>"
                      "<amazon:auto-breaths>y</amazon:auto-breaths></speak>", text_type="ssml"),
        SpeechRequest("<speak xmlns:amazon='https://example.com/amazon'>"
                      "<amazon:effect phonation='soft' vocal-tract-length='+10%'>x</amazon:effect></speak>",
                      text_type="ssml"),
        SpeechRequest("<speak><p><s>One</s><s>Two</s></p><break strength='x-strong'/>"
                      "<prosody rate='85%' pitch='-5%' volume='+6dB' amazon:max-duration='2s'>three</prosody>"
                      "<prosody rate='x-fast' pitch='x-low' volume='silent'>four</prosody>"
                      "<say-as interpret-as='characters'>ABC</say-as><say-as interpret-as='telephone'>555-0100</say-as>"
                      "<sub alias='World Wide Web Consortium'>W3C</sub><emphasis level='strong'>big</emphasis>"
                      "<lang xml:lang='fr-FR'>bonjour</lang><phoneme alphabet='x-sampa' ph='pI\"kA:n'>pecan</phoneme>"
                      "<mark name='here'/><w role='amazon:VB'>read</w><!-- a comment --></speak>",
                      text_type="ssml"),
    ],
)
def test_valid_requests_pass(req):
    validate(req)


def test_speech_error_is_an_action_error_and_carries_the_parameter():
    with pytest.raises(ActionError) as info:
        validate(SpeechRequest("hi", voice_id="Nobody"))
    err = info.value
    assert isinstance(err, SpeechError)
    assert (err.parameter, err.reason) == ("VoiceId", "voice")
    assert err.as_action_data("Speak") == {"ErrorType": INVALID, "ErrorMessage": BAD_VOICE}


def test_access_denied_message_depends_on_the_action():
    err = SpeechError.access_denied("no role")
    assert err.message_for("Speak") == (
        "The AWSServiceRoleForAmazonChimeVoiceConnector service-linked role is not configured correctly.")
    assert err.message_for("SpeakAndGetDigits") == (
        "The AWSServiceRoleForAmazonChimeVoiceConnector role is not configured correctly.")
    assert SpeechError.throttled().as_action_data("SpeakAndGetDigits") == {
        "ErrorType": "ActionExecutionThrottled",
        "ErrorMessage": "Amazon Polly is throttling the request to synthesize speech."}
    assert SpeechError.system().as_action_data() == {
        "ErrorType": "SystemException", "ErrorMessage": "System error while running action"}


def test_defaults_and_bilingual_language():
    r = resolve(SpeechRequest("hello"))
    assert (r.voice.id, r.engine, r.text_type, r.language, r.language_given) == (
        "Joanna", "standard", "text", "en-US", False)
    assert resolve(SpeechRequest("hello", voice_id="Aditi")).language == "en-IN"
    assert resolve(SpeechRequest("namaste", voice_id="Aditi", language_code="hi-IN")).language == "hi-IN"


def test_canonical_fills_defaults():
    assert canonical(SpeechRequest("hi")) == canonical(
        SpeechRequest("hi", text_type="text", engine="standard", voice_id="Joanna"))
    assert canonical(SpeechRequest("hi", voice_id="")) == canonical(SpeechRequest("hi"))
    assert canonical(SpeechRequest("hi")) != canonical(SpeechRequest("hi", voice_id="Salli"))
    assert canonical(SpeechRequest("hi")) != canonical(SpeechRequest("hi", language_code="en-US"))


def test_from_parameters_reads_the_guide_keys():
    req = SpeechRequest.from_parameters({"Text": "Hello", "CallId": "c1", "Engine": "neural",
                                         "LanguageCode": "en-US", "TextType": "text", "VoiceId": "Joanna"})
    assert req == SpeechRequest("Hello", "text", "neural", "en-US", "Joanna")
    validate(SpeechRequest.from_parameters({"Text": "Hello"}))
