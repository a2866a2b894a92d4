"""VoiceFocus noise suppression: SNR gain on noisy speech, speech kept, fixed 20 ms latency,
frame contract, on/off switching without gaps, per-instance state, CPU cost.

Speech is espeak-ng at 8 kHz; noises are generated here. SNR is measured against the clean
speech delayed by the documented latency, so the error counts residual noise *and* speech damage.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import numpy as np
import pytest

from chimevoice.media.voicefocus import FRAME_SAMPLES, LATENCY_SAMPLES, NoiseSuppressor, VoiceFocus, available
from chimevoice.speech.wavio import parse_wav_bytes, resample

RATE = 8000
D = LATENCY_SAMPLES


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng needed")
    parts = []
    for text, voice in (
        ("Please leave your message after the tone, and press the pound key when you are done.", "en-us+f3"),
        ("Your call is important to us. An agent will be with you in a few moments.", "en-gb+m3"),
    ):
        wav = subprocess.run(["espeak-ng", "--stdout", "-v", voice, text], check=True, capture_output=True).stdout
        x, rate = parse_wav_bytes(wav)
        parts += [resample(x, rate, RATE), np.zeros(RATE // 2, dtype=np.int16)]
    x = np.concatenate(parts)
    return x[: x.size // FRAME_SAMPLES * FRAME_SAMPLES].astype(np.float64)


def add_noise(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    g = np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return np.clip(np.round(clean + g * noise), -32768, 32767).astype(np.int16)


def white(n: int, rng) -> np.ndarray:
    return rng.standard_normal(n)


def fan(n: int, rng) -> np.ndarray:
    t = np.arange(n) / RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 20))
    air = np.convolve(rng.standard_normal(n), np.ones(6) / 6, "same")
    return hum / np.std(hum) + air / np.std(air)


def run_frames(vf, x: np.ndarray, as_bytes: bool = False) -> np.ndarray:
    out = []
    for i in range(0, x.size, FRAME_SAMPLES):
        frame = x[i : i + FRAME_SAMPLES]
        y = vf.process(frame.tobytes() if as_bytes else frame)
        out.append(np.frombuffer(y, dtype="<i2") if as_bytes else y)
    return np.concatenate(out)


def snr(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / np.sum((est - ref) ** 2)))


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_library_is_available():
    assert available(), "libspeexdsp (Debian libspeexdsp1) must be installed: scripts/bootstrap does it"


@pytest.mark.parametrize("noise_kind, snr_in, min_gain", [("white", 5, 4.0), ("white", 0, 5.0), ("fan", 5, 4.0)])
def test_raises_snr_and_keeps_speech(speech, noise_kind, snr_in, min_gain):
    rng = np.random.default_rng(7)
    noise = {"white": white, "fan": fan}[noise_kind](speech.size, rng)
    noisy = add_noise(speech, noise, snr_in)
    ref = speech[:-D]

    out = run_frames(VoiceFocus(True), noisy).astype(np.float64)[D:]
    passthrough = run_frames(VoiceFocus(False), noisy).astype(np.float64)[D:]

    snr_noisy = snr(ref, passthrough)
    assert abs(snr_noisy - snr_in) < 0.3  # the measurement itself: a pass-through gains nothing
    gain = snr(ref, out) - snr_noisy
    assert gain >= min_gain, f"SNR {snr_noisy:.1f} -> {snr(ref, out):.1f} dB"
    assert corr(ref, out) >= corr(ref, passthrough)  # speech not worse than what came in


def test_removes_noise_in_speech_pauses(speech):
    rng = np.random.default_rng(8)
    noisy = add_noise(speech, white(speech.size, rng), 10)
    out = run_frames(VoiceFocus(True), noisy).astype(np.float64)[D:]
    ref = speech[:-D]
    k = ref.size // FRAME_SAMPLES
    quiet = np.max(np.abs(ref[: k * FRAME_SAMPLES].reshape(k, -1)), axis=1) < 50
    quiet[: RATE // FRAME_SAMPLES] = False  # let the noise estimate settle (first second)
    assert quiet.sum() > 20
    before = np.mean(noisy[:-D].astype(np.float64)[: k * FRAME_SAMPLES].reshape(k, -1)[quiet] ** 2)
    after = np.mean(out[: k * FRAME_SAMPLES].reshape(k, -1)[quiet] ** 2)
    assert 10 * np.log10(before / after) >= 10.0


def test_clean_speech_passes_with_exactly_one_frame_of_latency(speech):
    x = speech.astype(np.int16)
    y = run_frames(VoiceFocus(True), x).astype(np.float64)
    lags = range(0, 400)
    c = [np.dot(speech[: speech.size - 400], y[lag : lag + speech.size - 400]) for lag in lags]
    assert int(np.argmax(c)) == D == 160
    assert corr(speech[:-D], y[D:]) > 0.99
    assert snr(speech[:-D], y[D:]) > 20.0


def test_frame_contract():
    vf = VoiceFocus(True)
    frame = (np.arange(160) * 50 % 2000 - 1000).astype(np.int16)
    out = vf.process(frame.tobytes())
    assert isinstance(out, bytes) and len(out) == 320
    out = vf.process(np.tile(frame, 3))
    assert isinstance(out, np.ndarray) and out.dtype == np.int16 and out.size == 480
    assert vf.process(b"") == b""
    with pytest.raises(ValueError):
        vf.process(frame[:100])
    with pytest.raises(TypeError):
        vf.process(frame.astype(np.float32))
    before = frame.copy()
    NoiseSuppressor().process(frame)
    np.testing.assert_array_equal(frame, before)  # the caller's buffer is not modified


def test_disabled_is_an_exact_one_frame_delay():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(4000) * 3000).astype(np.int16)[:3840]
    y = run_frames(VoiceFocus(False), x, as_bytes=True)
    np.testing.assert_array_equal(y[:D], 0)
    np.testing.assert_array_equal(y[D:], x[:-D])


def test_switching_on_and_off_keeps_the_timeline(speech):
    """Toggle every 0.5 s on clean speech: output frames line up with the input delayed by one
    frame across every switch (no dropped, repeated or silent frame)."""
    x = speech.astype(np.int16)
    vf = VoiceFocus(False)
    out = []
    n_frames = x.size // FRAME_SAMPLES
    for k in range(n_frames):
        if k and k % 25 == 0:
            vf.enabled = not vf.enabled
        out.append(vf.process(x[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES]))
    y = np.concatenate(out).astype(np.float64)[D:]
    ref = speech[:-D]
    enabled_frames = sum(1 for k in range(n_frames) if (k // 25) % 2)
    assert vf.seconds_enabled == pytest.approx(FRAME_SAMPLES / RATE * enabled_frames, abs=1e-9)
    for k in range(25, n_frames - 1, 25):  # the frames right after each switch
        seg = slice(k * FRAME_SAMPLES - D, k * FRAME_SAMPLES - D + 2 * FRAME_SAMPLES)
        r, o = ref[seg], y[seg]
        if np.sum(r**2) < 1e5 * r.size:  # a pause: nothing to compare
            continue
        assert corr(r, o) > 0.9, f"switch at frame {k}"
        assert 0.5 < np.sum(o**2) / np.sum(r**2) < 2.0, f"switch at frame {k}"


def test_instances_keep_separate_state(speech):
    rng = np.random.default_rng(5)
    a = add_noise(speech, white(speech.size, rng), 5)
    b = add_noise(speech[::-1].copy(), fan(speech.size, rng), 0)
    alone_a = run_frames(VoiceFocus(True), a)
    alone_b = run_frames(VoiceFocus(True), b)
    va, vb = VoiceFocus(True), VoiceFocus(True)
    mixed_a, mixed_b = [], []
    for i in range(0, a.size, FRAME_SAMPLES):  # two legs processed alternately by one thread
        mixed_a.append(va.process(a[i : i + FRAME_SAMPLES]))
        mixed_b.append(vb.process(b[i : i + FRAME_SAMPLES]))
    np.testing.assert_array_equal(np.concatenate(mixed_a), alone_a)
    np.testing.assert_array_equal(np.concatenate(mixed_b), alone_b)


def test_cost_per_frame_is_small():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(RATE * 5) * 2000).astype(np.int16)
    vf = VoiceFocus(True)
    t0 = time.process_time()
    run_frames(vf, x)
    us = (time.process_time() - t0) / (x.size / FRAME_SAMPLES) * 1e6
    assert us < 1000, f"{us:.0f} µs per 20 ms frame"  # measured ~20-40 µs; 1 ms = 5% of real time
