"""LocalSynthesizer (espeak-ng): the audio it produces and the errors it raises."""
from __future__ import annotations

import asyncio
import struct

import numpy as np
import pytest
from structlog.testing import capture_logs

from chimevoice.speech import POLLY_VOICES, LocalSynthesizer, SpeechError, SpeechRequest

from .wavcheck import dbfs, frame_rms, longest_silence, read_wav, speech_evidence

SHORT = "Thank you for calling."
MEDIUM = "Thank you for calling the support line. Please enter your account number, then press pound."
LONG = (MEDIUM + " If you know the extension of the person you are trying to reach, you may dial it at "
        "any time. For billing questions, press one. For technical support, press two. To hear these "
        "options again, press star.")


def ssml(body: str) -> SpeechRequest:
    return SpeechRequest(f"<speak>{body}</speak>", text_type="ssml")


async def synth(tts: LocalSynthesizer, req: SpeechRequest):
    return read_wav(await tts.synthesize(req))


def assert_speech(w, *, min_active: float = 0.4) -> dict[str, float]:
    ev = speech_evidence(w)
    assert ev["rms_dbfs"] > -35, ev  # audible
    assert ev["peak_dbfs"] < -0.3, ev  # not clipped
    assert ev["active_fraction"] > min_active, ev  # mostly sound, not silence
    assert ev["envelope_variation"] > 0.3, ev  # syllables, not a steady tone or noise
    assert ev["voiced_fraction"] > 0.25, ev  # periodic (voiced) frames
    assert 70 < ev["median_pitch_hz"] < 400, ev  # at a human voice pitch
    return ev


async def test_output_is_8khz_mono_16bit_pcm_wav(local_tts):
    path = await local_tts.synthesize(SpeechRequest(SHORT))
    head = path.read_bytes()[:44]
    riff, size, wave_, fmt, fmt_len, tag, channels, rate, byte_rate, align, bits, data, data_len = \
        struct.unpack("<4sI4s4sIHHIIHH4sI", head)
    assert (riff, wave_, fmt, data) == (b"RIFF", b"WAVE", b"fmt ", b"data")
    assert (tag, channels, rate, bits, align, byte_rate) == (1, 1, 8000, 16, 2, 16000)
    assert path.stat().st_size == 44 + data_len and size == 36 + data_len
    w = read_wav(path)
    assert (w.rate, w.channels, w.sampwidth) == (8000, 1, 2)


async def test_short_sentence_is_plausible_speech(local_tts):
    w = await synth(local_tts, SpeechRequest(SHORT))
    assert 1.0 <= w.duration <= 4.0, w.duration
    assert_speech(w)


async def test_duration_grows_with_text_length(local_tts):
    short, medium, long_ = [await synth(local_tts, SpeechRequest(t)) for t in (SHORT, MEDIUM, LONG)]
    assert short.duration < medium.duration < long_.duration
    # roughly proportional to the amount of text (espeak-ng speaks ~12-18 characters/s)
    for w, text in ((short, SHORT), (medium, MEDIUM), (long_, LONG)):
        assert 8 < len(text) / w.duration < 25, (len(text), w.duration)
    assert_speech(long_)


async def test_break_one_second_adds_about_one_second(local_tts):
    plain = await synth(local_tts, ssml("Please hold. Your call is important."))
    broken = await synth(local_tts, ssml("Please hold. <break time='1s'/> Your call is important."))
    assert 0.85 <= broken.duration - plain.duration <= 1.25, (plain.duration, broken.duration)
    assert longest_silence(broken.samples, 8000) >= 0.95
    assert longest_silence(plain.samples, 8000) < 0.6
    three = await synth(local_tts, ssml("Please hold. <break time='3000ms'/> Your call is important."))
    assert 2.8 <= three.duration - plain.duration <= 3.25


async def test_breaks_alone_and_at_the_edges_are_exact_silence(local_tts):
    w = await synth(local_tts, ssml("<break time='2s'/>"))
    assert 2.0 <= w.duration <= 2.3
    assert np.max(np.abs(w.samples)) == 0.0
    lead = await synth(local_tts, ssml("<break time='1500ms'/>Hello"))
    assert longest_silence(lead.samples[: 8000 * 2], 8000) >= 1.45
    plain = await synth(local_tts, ssml("Hello"))
    assert 1.4 <= lead.duration - plain.duration <= 1.6


async def test_prosody_rate_and_volume_take_effect(local_tts):
    normal = await synth(local_tts, ssml(MEDIUM))
    slow = await synth(local_tts, ssml(f"<prosody rate='x-slow'>{MEDIUM}</prosody>"))
    fast = await synth(local_tts, ssml(f"<prosody rate='150%'>{MEDIUM}</prosody>"))
    assert slow.duration > 1.3 * normal.duration
    assert fast.duration < 0.8 * normal.duration
    soft = await synth(local_tts, ssml(f"<prosody volume='x-soft'>{SHORT}</prosody>"))
    loud = await synth(local_tts, ssml(f"<prosody volume='x-loud'>{SHORT}</prosody>"))
    assert speech_evidence(loud)["rms_dbfs"] - speech_evidence(soft)["rms_dbfs"] > 8
    silent = await synth(local_tts, ssml(f"<prosody volume='silent'>{SHORT}</prosody>"))
    assert np.max(np.abs(silent.samples)) < 1e-3 and silent.duration > 0.8


async def test_expletive_is_bleeped(local_tts):
    w = await synth(local_tts, ssml("What the <say-as interpret-as='expletive'>heck</say-as> happened"))
    spectrum = np.abs(np.fft.rfft(w.samples))
    freqs = np.fft.rfftfreq(w.samples.size, 1 / 8000)
    band = (freqs > 990) & (freqs < 1010)
    assert spectrum[band].max() > 5 * np.median(spectrum[(freqs > 900) & (freqs < 1100)])


async def test_lang_switch_runs_a_second_voice(local_tts):
    before = local_tts.processes
    w = await synth(local_tts, ssml("Hello and <lang xml:lang='fr-FR'>bonjour tout le monde</lang>"))
    assert local_tts.processes - before == 2
    assert_speech(w)


async def test_every_catalogue_voice_speaks_with_a_voice_of_its_gender(local_tts):
    phrases = {"en": "Thank you for calling, please hold.", "es": "Gracias por llamar, espere por favor.",
               "fr": "Merci de votre appel, veuillez patienter.", "de": "Danke für Ihren Anruf.",
               "it": "Grazie per aver chiamato.", "pt": "Obrigado por ligar, aguarde.",
               "ja": "お電話ありがとうございます", "cmn": "谢谢您的来电，请稍候。", "yue": "多謝你嘅來電",
               "ko": "전화해 주셔서 감사합니다", "ar": "شكرا لاتصالك", "arb": "شكرا لاتصالك",
               "hi": "कॉल करने के लिए धन्यवाद"}

    async def one(v):
        text = phrases.get(v.language.split("-")[0], "one two three four five six seven eight")
        engine = "standard" if "standard" in v.engines else "neural"
        w = await synth(local_tts, SpeechRequest(text, voice_id=v.id, engine=engine))
        return v, w

    results = await asyncio.gather(*(one(v) for v in POLLY_VOICES.values()))
    for v, w in results:
        ev = speech_evidence(w)
        assert w.duration > 0.5 and ev["active_fraction"] > 0.3, (v.id, ev)
        if v.gender == "Female":
            assert ev["median_pitch_hz"] > 150, (v.id, ev)
        else:
            assert ev["median_pitch_hz"] < 150, (v.id, ev)


async def test_unmapped_voice_falls_back_to_its_language_voice_with_a_log_line(local_tts):
    assert "Carla" in POLLY_VOICES
    with capture_logs() as logs:
        w = await synth(local_tts, SpeechRequest("Grazie per aver chiamato.", voice_id="Carla"))
        await synth(local_tts, SpeechRequest("Arrivederci.", voice_id="Carla"))
    assert_speech(w)
    fallbacks = [e for e in logs if e["event"] == "speech.voice_fallback"]
    assert len(fallbacks) == 1  # once per voice
    assert fallbacks[0]["voice_id"] == "Carla" and fallbacks[0]["local_voice"] == "it+f3"
    with capture_logs() as logs:
        await synth(local_tts, SpeechRequest("hello", voice_id="Joanna"))  # mapped: no log
    assert not [e for e in logs if e["event"] == "speech.voice_fallback"]


async def test_language_without_a_local_voice_is_an_error(tmp_path):
    tts = LocalSynthesizer(tmp_path, languages={"ja-JP": None, "hi-IN": None})
    with pytest.raises(SpeechError) as info:
        await tts.synthesize(SpeechRequest("konnichiwa", voice_id="Mizuki"))
    assert (info.value.error_type, info.value.message) == (
        "InvalidActionParameter", "VoiceId parameter value is invalid.")
    with pytest.raises(SpeechError) as info:
        await tts.synthesize(SpeechRequest("namaste", voice_id="Aditi", language_code="hi-IN"))
    assert (info.value.error_type, info.value.message) == (
        "InvalidActionParameter", "LanguageCode parameter value is invalid.")
    assert tts.processes == 0
    # Aditi's other language still works, and a <lang> without a local voice degrades to the main voice.
    w = await synth(tts, SpeechRequest("hello", voice_id="Aditi"))
    assert w.duration > 0.3
    w = await synth(tts, ssml("Hello <lang xml:lang='ja-JP'>sayonara</lang>"))
    assert_speech(w)


async def test_invalid_requests_fail_before_any_synthesis(local_tts):
    for req, msg in [
        (ssml("Hello <break time='soon'/>"), "Text parameter value is not valid SSML."),
        (SpeechRequest("<speak>unclosed", text_type="ssml"), "Text parameter value is not valid SSML."),
        (SpeechRequest("hi", voice_id="Bogus"), "VoiceId parameter value is invalid."),
        (SpeechRequest("x" * 1001), "Text is limited to 1,000 characters"),
    ]:
        with pytest.raises(SpeechError) as info:
            await local_tts.synthesize(req)
        assert info.value.message == msg
    assert local_tts.processes == 0 and local_tts.syntheses == 0
    assert list(local_tts.out_dir.iterdir()) == []


async def test_output_is_deterministic_and_leaves_no_temporary_files(local_tts):
    a = (await local_tts.synthesize(SpeechRequest(SHORT))).read_bytes()
    b = (await local_tts.synthesize(SpeechRequest(SHORT, voice_id="Joanna"))).read_bytes()
    assert a == b
    c = (await local_tts.synthesize(SpeechRequest(SHORT, voice_id="Matthew"))).read_bytes()
    assert c != a
    assert all(p.suffix == ".wav" and not p.name.startswith(".") for p in local_tts.out_dir.iterdir())


async def test_nothing_to_say_is_a_short_silence(local_tts):
    for req in (ssml(""), ssml("<mark name='x'/>"), SpeechRequest("   ")):
        w = await synth(local_tts, req)
        assert 0.1 <= w.duration <= 0.3
        assert np.max(np.abs(w.samples)) == 0.0


async def test_level_is_telephone_friendly(local_tts):
    w = await synth(local_tts, SpeechRequest(MEDIUM))
    active = frame_rms(w.samples, 8000)
    active = active[dbfs(active) > -45]
    assert -28 < float(dbfs(np.sqrt(np.mean(active ** 2)))) < -10


async def test_missing_engine_binary_is_a_system_error(tmp_path):
    tts = LocalSynthesizer(tmp_path, binary="/nonexistent/espeak-ng")
    with pytest.raises(SpeechError) as info:
        await tts.synthesize(SpeechRequest("hello"))
    assert (info.value.error_type, info.value.message) == ("SystemException", "System error while running action")


async def test_engine_timeout_is_a_system_error(tmp_path):
    tts = LocalSynthesizer(tmp_path, timeout_s=1e-6)
    with pytest.raises(SpeechError) as info:
        await tts.synthesize(SpeechRequest(LONG))
    assert info.value.error_type == "SystemException" and info.value.reason == "engine_timeout"


def test_only_espeak_ng_is_supported(tmp_path):
    with pytest.raises(ValueError):
        LocalSynthesizer(tmp_path, engine="festival")


async def test_long_text_is_split_at_sentences_without_changing_its_length(tmp_path, monkeypatch):
    split = LocalSynthesizer(tmp_path / "split")
    w_split = await synth(split, SpeechRequest(LONG))
    assert split.processes >= 2  # sentences of a long text run as parallel chunks
    import chimevoice.speech.local as local_mod

    monkeypatch.setattr(local_mod, "MAX_CHUNK_CHARS", 10_000)
    whole = LocalSynthesizer(tmp_path / "whole")
    w_whole = await synth(whole, SpeechRequest(LONG))
    assert whole.processes == 1
    assert w_split.duration == pytest.approx(w_whole.duration, rel=0.05)
    assert_speech(w_split)


def hanging_engine(tts: LocalSynthesizer, tmp_path) -> None:
    """Swap the engine binary for one that never answers (and ignores a closed pipe)."""
    script = tmp_path / "espeak-hang"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    tts._binary = str(script)


def children_named(prefix: str) -> list[int]:
    import os
    from pathlib import Path

    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1: text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[1]) == os.getpid() and comm.startswith(prefix) and fields[0] != "Z":
            kids.append(int(stat.parent.name))
    return kids


async def test_cancelling_a_synthesis_ends_its_engine_processes(local_tts, tmp_path):
    hanging_engine(local_tts, tmp_path)
    task = asyncio.ensure_future(local_tts.synthesize(SpeechRequest(SHORT)))
    for _ in range(500):  # until the process has started
        await asyncio.sleep(0.002)
        if children_named("sleep"):
            break
    assert children_named("sleep"), "the engine never started"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert children_named("sleep") == []


async def test_a_hanging_engine_is_killed_and_reported(local_tts, tmp_path):
    hanging_engine(local_tts, tmp_path)
    local_tts.timeout_s = 0.3
    with pytest.raises(SpeechError) as info:
        await local_tts.synthesize(SpeechRequest(SHORT))
    assert (info.value.error_type, info.value.reason) == ("SystemException", "engine_timeout")
    assert children_named("sleep") == []
