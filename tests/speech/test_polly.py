"""PollySynthesizer through real boto3 against a local Polly look-alike (tests/speech/fake_polly.py)."""
from __future__ import annotations

import socket

import pytest

from chimevoice.speech import (
    CachingSynthesizer,
    PollySynthesizer,
    SpeechError,
    SpeechRequest,
    make_synthesizer,
)

from .fake_polly import ACCESS_KEY, MS_PER_CHAR, SECRET_KEY
from .wavcheck import read_wav, speech_evidence


async def test_success_wraps_polly_pcm_in_an_8khz_wav(polly_tts, fake_polly):
    polly, _ = fake_polly
    text = "Hello, World!"
    path = await polly_tts.synthesize(SpeechRequest(text))
    w = read_wav(path)
    assert (w.rate, w.channels, w.sampwidth) == (8000, 1, 2)
    assert w.duration == pytest.approx(len(text) * MS_PER_CHAR / 1000, abs=0.01)
    assert speech_evidence(w)["active_fraction"] > 0.5
    (sent,) = polly.requests
    assert sent["body"] == {"Engine": "standard", "OutputFormat": "pcm", "SampleRate": "8000",
                            "Text": text, "TextType": "text", "VoiceId": "Joanna"}
    assert "/us-east-1/polly/aws4_request" in sent["headers"]["Authorization"]
    assert polly_tts.syntheses == 1


async def test_all_parameters_are_passed_through(polly_tts, fake_polly):
    polly, _ = fake_polly
    await polly_tts.synthesize(SpeechRequest("<speak>namaste</speak>", text_type="ssml", engine="standard",
                                             language_code="hi-IN", voice_id="Aditi"))
    assert polly.requests[-1]["body"] == {
        "Engine": "standard", "LanguageCode": "hi-IN", "OutputFormat": "pcm", "SampleRate": "8000",
        "Text": "<speak>namaste</speak>", "TextType": "ssml", "VoiceId": "Aditi"}


async def test_duration_follows_text_length(polly_tts):
    short = read_wav(await polly_tts.synthesize(SpeechRequest("Hi there.")))
    long_ = read_wav(await polly_tts.synthesize(SpeechRequest("Thank you for calling, please hold the line.")))
    assert long_.duration > 3 * short.duration


@pytest.mark.parametrize(
    "req, error_type, message",
    [
        # Polly's InvalidSsmlException
        (SpeechRequest("<speak>unclosed", text_type="ssml"),
         "InvalidActionParameter", "Text parameter value is not valid SSML."),
        # ValidationException at 'voiceId'
        (SpeechRequest("hi", voice_id="Bogus"), "InvalidActionParameter", "VoiceId parameter value is invalid."),
        # EngineNotSupportedException
        (SpeechRequest("bonjour", voice_id="Celine", engine="neural"),
         "InvalidActionParameter", "Engine parameter value is invalid."),
        # LanguageNotSupportedException
        (SpeechRequest("hola", voice_id="Joanna", language_code="es-US"),
         "InvalidActionParameter", "LanguageCode parameter value is invalid."),
    ],
)
async def test_polly_rejections_map_to_the_spec_errors(polly_tts, fake_polly, req, error_type, message):
    polly, _ = fake_polly
    with pytest.raises(SpeechError) as info:
        await polly_tts.synthesize(req)
    assert (info.value.error_type, info.value.message) == (error_type, message)
    assert len(polly.requests) == 1  # Polly was asked: it is the judge of voices and SSML


async def test_chime_level_checks_happen_before_calling_polly(polly_tts, fake_polly):
    polly, _ = fake_polly
    for req, expected in [
        (SpeechRequest(""), ("MissingRequiredActionParameter", "Text is a required parameter.")),
        (SpeechRequest("x" * 1001), ("MissingRequiredActionParameter", "Text is limited to 1,000 characters")),
        (SpeechRequest("hi", engine="generative"), ("InvalidActionParameter", "Engine parameter value is invalid.")),
        (SpeechRequest("hi", text_type="xml"), ("InvalidActionParameter", "TextType parameter value is invalid.")),
    ]:
        with pytest.raises(SpeechError) as info:
            await polly_tts.synthesize(req)
        assert (info.value.error_type, info.value.message) == expected
    assert polly.requests == []


async def test_full_local_validation_can_be_enabled(fake_polly, tmp_path):
    polly, url = fake_polly
    tts = PollySynthesizer(tmp_path, region="us-east-1", endpoint_url=url, aws_access_key_id=ACCESS_KEY,
                           aws_secret_access_key=SECRET_KEY, max_attempts=1, validate_catalogue=True)
    with pytest.raises(SpeechError) as info:
        await tts.synthesize(SpeechRequest("<speak><foo/></speak>", text_type="ssml"))
    assert info.value.message == "Text parameter value is not valid SSML."
    assert polly.requests == []
    tts.close()


async def test_throttling_is_action_execution_throttled(polly_tts, fake_polly):
    polly, _ = fake_polly
    polly.fail_next(400, "ThrottlingException", "Rate exceeded")
    with pytest.raises(SpeechError) as info:
        await polly_tts.synthesize(SpeechRequest("hello"))
    assert info.value.as_action_data("SpeakAndGetDigits") == {
        "ErrorType": "ActionExecutionThrottled",
        "ErrorMessage": "Amazon Polly is throttling the request to synthesize speech."}


async def test_throttling_is_retried_by_botocore(fake_polly, tmp_path):
    polly, url = fake_polly
    tts = PollySynthesizer(tmp_path, region="us-east-1", endpoint_url=url, aws_access_key_id=ACCESS_KEY,
                           aws_secret_access_key=SECRET_KEY, max_attempts=2)
    polly.fail_next(429, "TooManyRequestsException", "slow down")
    path = await tts.synthesize(SpeechRequest("hello"))
    assert read_wav(path).duration > 0.2 and len(polly.requests) == 2
    tts.close()


async def test_bad_credentials_are_access_denied(fake_polly, tmp_path):
    _, url = fake_polly
    tts = PollySynthesizer(tmp_path, region="us-east-1", endpoint_url=url, aws_access_key_id="AKIDWRONG",
                           aws_secret_access_key="nope", max_attempts=1)
    with pytest.raises(SpeechError) as info:
        await tts.synthesize(SpeechRequest("hello"))
    err = info.value
    assert err.error_type == "AccessDenied"
    assert err.message_for("Speak") == (
        "The AWSServiceRoleForAmazonChimeVoiceConnector service-linked role is not configured correctly.")
    assert err.message_for("SpeakAndGetDigits") == (
        "The AWSServiceRoleForAmazonChimeVoiceConnector role is not configured correctly.")
    tts.close()


async def test_wrong_region_scope_is_access_denied(fake_polly, tmp_path):
    _, url = fake_polly
    tts = PollySynthesizer(tmp_path, region="eu-west-1", endpoint_url=url, aws_access_key_id=ACCESS_KEY,
                           aws_secret_access_key=SECRET_KEY, max_attempts=1)
    with pytest.raises(SpeechError) as info:
        await tts.synthesize(SpeechRequest("hello"))
    assert info.value.error_type == "AccessDenied"
    tts.close()


@pytest.mark.parametrize("status, code", [(500, "ServiceFailureException"), (503, "ServiceUnavailable"),
                                          (400, "LexiconNotFoundException")])
async def test_service_failures_are_system_exceptions(polly_tts, fake_polly, status, code):
    polly, _ = fake_polly
    polly.fail_next(status, code, "something broke")
    with pytest.raises(SpeechError) as info:
        await polly_tts.synthesize(SpeechRequest("hello"))
    assert (info.value.error_type, info.value.message) == ("SystemException", "System error while running action")


async def test_polly_length_limit_maps_to_the_text_limit_error(polly_tts, fake_polly):
    polly, _ = fake_polly
    polly.fail_next(400, "TextLengthExceededException", "Maximum text length has been exceeded")
    with pytest.raises(SpeechError) as info:
        await polly_tts.synthesize(SpeechRequest("hello"))
    assert (info.value.error_type, info.value.message) == (
        "MissingRequiredActionParameter", "Text is limited to 1,000 characters")


async def test_a_non_pcm_answer_is_a_system_exception(polly_tts, fake_polly):
    polly, _ = fake_polly
    polly.content_type = "audio/mpeg"
    with pytest.raises(SpeechError) as info:
        await polly_tts.synthesize(SpeechRequest("hello"))
    assert info.value.error_type == "SystemException" and info.value.reason == "polly_bad_answer"


async def test_unreachable_endpoint_is_a_system_exception(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tts = PollySynthesizer(tmp_path, region="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                           aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, max_attempts=1,
                           connect_timeout=1.0)
    with pytest.raises(SpeechError) as info:
        await tts.synthesize(SpeechRequest("hello"))
    assert (info.value.error_type, info.value.message) == ("SystemException", "System error while running action")
    tts.close()


async def test_polly_through_make_synthesizer_is_cached(fake_polly, tmp_path):
    polly, url = fake_polly
    tts = make_synthesizer("polly", tmp_path / "tts", region="us-east-1", endpoint_url=url,
                           aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, max_attempts=1)
    assert isinstance(tts, CachingSynthesizer)
    a = await tts.synthesize(SpeechRequest("Welcome to the demo."))
    b = await tts.synthesize(SpeechRequest("Welcome to the demo.", voice_id="Joanna"))
    assert a == b and len(polly.requests) == 1 and tts.stats.hits == 1
    assert read_wav(a).rate == 8000
    tts.close()
