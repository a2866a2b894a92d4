import shutil
import subprocess
import warnings

import numpy as np
import pytest

from chimevoice.media.analysis import (
    dominant_frequency,
    goertzel_power,
    mulaw_decode,
    mulaw_encode,
    rms_dbfs,
    similarity,
    tone,
    write_tone_wav,
)
from chimevoice.media.audio import AudioCache, read_pcm

from .wavutil import parse_header

RATE = 8000


def test_goertzel_power_of_pure_tone():
    x = tone(1000.0, 1.0, RATE, 0.5)
    assert goertzel_power(x, RATE, 1000.0) == pytest.approx(0.125, rel=0.01)
    assert goertzel_power(x, RATE, 1300.0) < 1e-4
    assert goertzel_power(x, RATE, 941.0) < 1e-3


def test_goertzel_power_scales_int16():
    x = np.round(tone(697.0, 0.5, RATE, 0.25) * 32767).astype(np.int16)
    assert goertzel_power(x, RATE, 697.0) == pytest.approx(0.25**2 / 2, rel=0.02)


def test_goertzel_detects_dtmf_pair():
    x = tone(770.0, 0.1, RATE, 0.3) + tone(1336.0, 0.1, RATE, 0.3)  # digit 5
    powers = {f: goertzel_power(x, RATE, f) for f in (697, 770, 852, 941, 1209, 1336, 1477, 1633)}
    top2 = sorted(powers, key=powers.get)[-2:]
    assert sorted(top2) == [770, 1336]


@pytest.mark.parametrize("freq", [100.0, 697.3, 1000.0, 2500.5, 3900.0])
def test_dominant_frequency(freq):
    assert dominant_frequency(tone(freq, 0.5, RATE, 0.4), RATE) == pytest.approx(freq, abs=0.5)


def test_dominant_frequency_picks_strongest_and_ignores_dc():
    x = 0.3 + tone(440.0, 0.5, RATE, 0.1) + tone(1800.0, 0.5, RATE, 0.4)
    assert dominant_frequency(x, RATE) == pytest.approx(1800.0, abs=1.0)


def test_write_tone_wav(tmp_path):
    p = write_tone_wav(tmp_path / "t.wav", 1209.0, 0.75, rate=16000, amplitude=0.25)
    h = parse_header(p)
    assert (h["tag"], h["channels"], h["rate"], h["bits"]) == (1, 1, 16000, 16)
    samples = np.frombuffer(h["data"], dtype="<i2")
    assert samples.size == 12000
    assert np.abs(samples).max() == pytest.approx(0.25 * 32767, rel=0.01)
    assert dominant_frequency(samples, 16000) == pytest.approx(1209.0, abs=0.5)
    assert rms_dbfs(samples) == pytest.approx(20 * np.log10(0.25 / np.sqrt(2)), abs=0.1)


def test_mulaw_matches_reference_codec():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    codes = np.arange(256, dtype=np.uint8)
    ref_decoded = np.frombuffer(audioop.ulaw2lin(codes.tobytes(), 2), dtype=np.int16)
    assert np.array_equal(mulaw_decode(codes), ref_decoded)
    x = np.arange(-32768, 32768, 7, dtype=np.int16)
    ours = mulaw_decode(mulaw_encode(x)).astype(np.int32)
    ref = np.frombuffer(audioop.ulaw2lin(audioop.lin2ulaw(x.tobytes(), 2), 2), dtype=np.int16).astype(np.int32)
    # Encoders may differ by rounding at step boundaries: at most one quantisation step apart.
    step = np.maximum(8, 2 ** (np.floor(np.log2(np.abs(ref) + 132)) - 4))
    assert np.all(np.abs(ours - ref) <= step)
    # quantisation error stays within half a step of the segment (G.711 accuracy)
    assert np.all(np.abs(ours - x) <= step)


# -- similarity ------------------------------------------------------------------------

needs_speech_tools = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None, reason="espeak-ng and sox needed"
)


def _speak(tmp_path, name, text):
    raw = tmp_path / f"{name}.raw.wav"
    out = tmp_path / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(out)], check=True)
    return out


def _mulaw_roundtrip_sox(tmp_path, src):
    ulaw = tmp_path / (src.stem + ".ulaw.wav")
    back = tmp_path / (src.stem + ".back.wav")
    subprocess.run(["sox", str(src), "-e", "u-law", str(ulaw)], check=True)
    subprocess.run(["sox", str(ulaw), "-e", "signed-integer", "-b", "16", str(back)], check=True)
    samples, rate = read_pcm(back)
    assert rate == RATE
    return samples


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox needed")
    d = tmp_path_factory.mktemp("speech")
    files = {
        "welcome": _speak(d, "welcome", "Welcome to chimevoice. This is the demo interactive voice response."),
        "other": _speak(d, "other", "Please hold while we connect your call to the next available agent."),
        "goodbye": _speak(d, "goodbye", "Goodbye."),
    }
    files["welcome_ulaw"] = _mulaw_roundtrip_sox(d, files["welcome"])
    files["other_ulaw"] = _mulaw_roundtrip_sox(d, files["other"])
    return files


def _place(x, lead_s=0.8, gain=0.5, tail_s=0.5):
    y = np.clip(np.round(x.astype(np.float64) * gain), -32768, 32767).astype(np.int16)
    return np.concatenate([np.zeros(int(lead_s * RATE), np.int16), y, np.zeros(int(tail_s * RATE), np.int16)])


def _jitter(x, rng, events=5, max_ms=10):
    """Insert or drop a few short runs of samples at random places (jitter-buffer adjustments)."""
    out, pos = [], 0
    for cut in sorted(rng.integers(RATE // 2, x.size - RATE // 2, events)):
        if cut < pos:
            continue
        out.append(x[pos:cut])
        n = int(rng.integers(8, max_ms * RATE // 1000 + 1))
        if rng.random() < 0.5:
            out.append(np.zeros(n, np.int16))
            pos = cut
        else:
            pos = cut + n
    out.append(x[pos:])
    return np.concatenate(out)


@needs_speech_tools
def test_similarity_identical(speech):
    ref, _ = read_pcm(speech["welcome"])
    assert similarity(ref, ref, RATE) > 0.99


@needs_speech_tools
def test_similarity_mulaw_roundtrip_with_silence_and_gain(speech):
    ref, _ = read_pcm(speech["welcome"])
    rec = _place(speech["welcome_ulaw"], lead_s=1.3, gain=0.4)
    assert similarity(ref, rec, RATE) > 0.95


@needs_speech_tools
def test_similarity_with_our_mulaw_codec_and_louder_gain(speech):
    ref, _ = read_pcm(speech["welcome"])
    rec = mulaw_decode(mulaw_encode(_place(ref, lead_s=0.25, gain=1.2)))
    assert similarity(ref, rec, RATE) > 0.95


@needs_speech_tools
@pytest.mark.parametrize("seed", range(4))
def test_similarity_tolerates_jitter(speech, seed):
    ref, _ = read_pcm(speech["welcome"])
    rec = _jitter(_place(speech["welcome_ulaw"], lead_s=0.5, gain=0.7), np.random.default_rng(seed))
    assert rec.size != _place(speech["welcome_ulaw"], lead_s=0.5).size  # the jitter really changed timing
    assert similarity(ref, rec, RATE) > 0.9


@needs_speech_tools
def test_similarity_follows_growing_delay(speech):
    """A delay that keeps growing: 15 ms of silence inserted every 0.3 s (> 200 ms in total)."""
    ref, _ = read_pcm(speech["welcome"])
    rec = _place(speech["welcome_ulaw"], lead_s=0.4, gain=0.8)
    step = int(0.3 * RATE)
    pieces = [rec[:step]]
    for start in range(step, rec.size, step):
        pieces.append(np.zeros(15 * RATE // 1000, np.int16))
        pieces.append(rec[start : start + step])
    delayed = np.concatenate(pieces)
    assert delayed.size - rec.size >= RATE // 5
    assert similarity(ref, delayed, RATE) > 0.9


@needs_speech_tools
def test_similarity_low_for_different_utterance(speech):
    ref, _ = read_pcm(speech["welcome"])
    other = _place(speech["other_ulaw"], lead_s=0.8, gain=0.5)
    assert similarity(ref, other, RATE) < 0.4
    ref_other, _ = read_pcm(speech["other"])
    assert similarity(ref_other, _place(speech["welcome_ulaw"]), RATE) < 0.4


@needs_speech_tools
def test_similarity_low_for_short_other_word_noise_and_silence(speech):
    ref, _ = read_pcm(speech["welcome"])
    goodbye, _ = read_pcm(speech["goodbye"])
    assert similarity(ref, _place(goodbye), RATE) < 0.3
    noise = np.random.default_rng(0).normal(0, 3000, 6 * RATE).astype(np.int16)
    assert similarity(ref, noise, RATE) < 0.1
    assert similarity(ref, np.zeros(6 * RATE, np.int16), RATE) == 0.0
    assert similarity(ref, np.zeros(0, np.int16), RATE) == 0.0


@needs_speech_tools
def test_similarity_penalises_missing_part(speech):
    ref, _ = read_pcm(speech["welcome"])
    half = _place(speech["welcome_ulaw"][: ref.size // 2])
    score = similarity(ref, half, RATE)
    assert 0.2 < score < 0.75


@needs_speech_tools
def test_similarity_after_prepare_and_mulaw(speech, tmp_path):
    """A 22.05 kHz stereo prompt converted by AudioCache, then sent over G.711: still recognised."""
    stereo = tmp_path / "stereo.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(tmp_path / "w.wav"), "Welcome to chimevoice."], check=True)
    subprocess.run(["sox", str(tmp_path / "w.wav"), "-c", "2", "-b", "24", str(stereo)], check=True)
    prepared = AudioCache(tmp_path / "cache").prepare(stereo)
    played, _ = read_pcm(prepared.path)
    ref = _mulaw_roundtrip_sox(tmp_path, prepared.path)
    assert similarity(played, _place(ref, gain=0.8), RATE) > 0.95
