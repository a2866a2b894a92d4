"""In-band DTMF detector: ITU-T Q.24 limits, chunked feeding, mu-law, talk-off on speech.

Signals are generated here, independently of the code under test: two sines at the
Q.23 frequencies, levels in dBm0 (0 dBm0 = a sine 3.14 dB below full scale), white
noise at a given SNR (tone power / noise power over 0-4 kHz), int16 samples.
"""

from __future__ import annotations

import shutil
import subprocess
import wave

import numpy as np
import pytest

from chimevoice.media.dtmf import DtmfDetector, DtmfHit

RATE = 8000
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = "123A456B789C*0#D"
SEQUENCE = "123456789*0#ABCD"


def amplitude(dbm0: float) -> float:
    return 10.0 ** ((dbm0 - 3.14) / 20.0)


def pair(key, seconds, rng, lo_db=-10.0, hi_db=-10.0, off_lo=0.0, off_hi=0.0):
    i = KEYS.index(key)
    t = np.arange(int(round(seconds * RATE))) / RATE
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    return (amplitude(lo_db) * np.sin(2 * np.pi * ROWS[i // 4] * (1 + off_lo) * t + p1)
            + amplitude(hi_db) * np.sin(2 * np.pi * COLS[i % 4] * (1 + off_hi) * t + p2))


def pcm16(x):
    return np.clip(np.round(np.asarray(x) * 32768.0), -32768, 32767).astype(np.int16)


def stream(keys, seconds=0.06, gap=None, seed=0, snr_db=None, **tone):
    """keys as tones with pauses (random 60-120 ms, or `gap` s); int16 samples and (key, start, end)."""
    rng = np.random.default_rng(seed)
    parts, marks, pos = [], [], 0
    for key in keys:
        n = int(round(gap * RATE)) if gap is not None else int(rng.integers(480, 960))
        parts.append(np.zeros(n))
        pos += n
        x = pair(key, seconds, rng, **tone)
        parts.append(x)
        marks.append((key, pos / RATE, (pos + x.size) / RATE))
        pos += x.size
    parts.append(np.zeros(800))
    y = np.concatenate(parts)
    if snr_db is not None:
        power = (amplitude(tone.get("lo_db", -10.0)) ** 2 + amplitude(tone.get("hi_db", -10.0)) ** 2) / 2
        y = y + rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), y.size)
    return pcm16(y), marks


def digits(samples) -> str:
    return "".join(h.digit for h in DtmfDetector().feed(samples))


def twist_levels(twist_db, weaker=-12.0):
    """(lo_db, hi_db) for a twist (high minus low), the weaker tone at `weaker` dBm0."""
    return (weaker + max(0.0, -twist_db), weaker + max(0.0, twist_db))


# -- basic ------------------------------------------------------------------------------


def test_every_digit_once_with_its_timing():
    y, marks = stream(KEYS, seconds=0.08, seed=1)
    hits = DtmfDetector().feed(y)
    assert "".join(h.digit for h in hits) == KEYS
    for hit, (key, start, end) in zip(hits, marks):
        assert isinstance(hit, DtmfHit)
        assert hit.start_s == pytest.approx(start, abs=0.008)
        assert 0.028 <= hit.duration_s <= end - start + 0.005


def test_sequence_50ms_tones_50ms_pauses_in_order():
    y, marks = stream(SEQUENCE, seconds=0.05, gap=0.05, seed=2)
    hits = DtmfDetector().feed(y)
    assert [h.digit for h in hits] == list(SEQUENCE)
    starts = [h.start_s for h in hits]
    assert starts == pytest.approx([m[1] for m in marks], abs=0.008)


@pytest.mark.parametrize("seed", range(3))
def test_sequence_at_20_db_snr_with_a_little_twist(seed):
    y, _ = stream(SEQUENCE, seconds=0.05, gap=0.05, seed=10 + seed, snr_db=20.0, lo_db=-20.0, hi_db=-18.0)
    assert digits(y) == SEQUENCE


def test_float_and_int16_input_agree():
    y, _ = stream("159D", seed=3)
    a = DtmfDetector().feed(y)
    b = DtmfDetector().feed(y.astype(np.float64) / 32768.0)
    assert [h.digit for h in a] == [h.digit for h in b] == list("159D")
    assert [h.start_s for h in a] == pytest.approx([h.start_s for h in b], abs=1e-9)


def test_silence_and_white_noise_give_nothing():
    rng = np.random.default_rng(4)
    det = DtmfDetector()
    assert det.feed(np.zeros(RATE * 2, np.int16)) == []
    assert det.feed(pcm16(rng.normal(0, 0.1, RATE * 5))) == []
    # the same detector still works afterwards
    y, _ = stream("7", seed=4)
    assert "".join(h.digit for h in det.feed(y)) == "7"


def test_other_rates_are_refused():
    with pytest.raises(ValueError):
        DtmfDetector(16000)


# -- Q.24: frequency tolerance -----------------------------------------------------------


@pytest.mark.parametrize(
    "off_lo,off_hi",
    [(0.015, 0.015), (-0.015, -0.015), (0.015, -0.015), (-0.015, 0.015), (0.015, 0.0), (0.0, -0.015)],
)
def test_frequency_offsets_within_1_5_percent_are_detected(off_lo, off_hi):
    y, _ = stream(KEYS, seed=5, off_lo=off_lo, off_hi=off_hi)
    assert digits(y) == KEYS


@pytest.mark.parametrize(
    "off_lo,off_hi",
    [(0.035, 0.0), (-0.035, 0.0), (0.0, 0.035), (0.0, -0.035), (0.035, 0.035), (-0.035, -0.035), (0.05, -0.05)],
)
def test_frequency_offsets_of_3_5_percent_are_rejected(off_lo, off_hi):
    off, _ = stream(KEYS, seed=6, off_lo=off_lo, off_hi=off_hi)
    on, _ = stream("5", seed=6)
    # only the nominal digit after the mistuned ones
    assert digits(np.concatenate((off, on))) == "5"


# -- Q.24: twist -------------------------------------------------------------------------


@pytest.mark.parametrize("twist", [4.0, -8.0, 0.0])
def test_twist_within_limits_is_detected(twist):
    lo_db, hi_db = twist_levels(twist)
    y, _ = stream(KEYS, seed=7, snr_db=25.0, lo_db=lo_db, hi_db=hi_db)
    assert digits(y) == KEYS


@pytest.mark.parametrize("twist", [8.0, 10.0, -12.0, -14.0])
def test_twist_beyond_limits_is_rejected(twist):
    lo_db, hi_db = twist_levels(twist)
    bad, _ = stream(KEYS, seed=8, lo_db=lo_db, hi_db=hi_db)
    good, _ = stream("0", seed=8)
    assert digits(np.concatenate((bad, good))) == "0"


# -- Q.24: duration, pauses, dropouts -----------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_40ms_tones_are_detected(seed):
    y, _ = stream(KEYS, seconds=0.040, seed=20 + seed)
    assert digits(y) == KEYS
    y, _ = stream(KEYS, seconds=0.040, seed=30 + seed, snr_db=20.0, off_lo=0.01, off_hi=-0.01)
    assert digits(y) == KEYS


@pytest.mark.parametrize("ms", [20, 23])
def test_short_tones_are_rejected(ms):
    short, _ = stream(KEYS, seconds=ms / 1000, seed=40 + ms)
    long_, _ = stream("8", seconds=0.05, seed=40)
    assert digits(np.concatenate((short, long_))) == "8"


@pytest.mark.parametrize("dropout_ms", [5, 10, 20])
def test_a_dropout_does_not_split_a_press(dropout_ms):
    rng = np.random.default_rng(dropout_ms)
    for key in "1#D":
        y = np.concatenate(
            (np.zeros(400), pair(key, 0.12, rng), np.zeros(dropout_ms * 8), pair(key, 0.12, rng), np.zeros(800))
        )
        assert digits(pcm16(y)) == key


def test_a_40ms_pause_separates_two_presses_of_one_key():
    y, _ = stream("5555", seconds=0.06, gap=0.04, seed=50)
    assert digits(y) == "5555"
    y, _ = stream("5555", seconds=0.06, gap=0.04, seed=51, snr_db=20.0)
    assert digits(y) == "5555"


def test_a_long_press_is_reported_once():
    rng = np.random.default_rng(52)
    y = np.concatenate((np.zeros(400), pair("9", 2.0, rng), np.zeros(800)))
    hits = DtmfDetector().feed(pcm16(y))
    assert [h.digit for h in hits] == ["9"]
    assert hits[0].start_s == pytest.approx(0.05, abs=0.008)


# -- Q.24: level, noise -------------------------------------------------------------------


def test_minus_25_dbm0_per_tone_is_detected():
    y, _ = stream(KEYS, seed=60, lo_db=-25.0, hi_db=-25.0)
    assert digits(y) == KEYS
    y, _ = stream(KEYS, seed=61, lo_db=-25.0, hi_db=-25.0, snr_db=15.0)
    assert digits(y) == KEYS


@pytest.mark.parametrize("level", [-35.0, -40.0])
def test_below_minus_35_dbm0_is_rejected(level):
    quiet, _ = stream(KEYS, seed=62, lo_db=level, hi_db=level)
    loud, _ = stream("A", seed=62, lo_db=-20.0, hi_db=-20.0)
    assert digits(np.concatenate((quiet, loud))) == "A"


def test_0_dbm0_tones_are_detected():
    y, _ = stream(KEYS, seed=63, lo_db=-3.0, hi_db=-3.0)  # peak 0.99 of full scale
    assert digits(y) == KEYS


@pytest.mark.parametrize("seed", range(4))
def test_15_db_snr_white_noise_is_detected(seed):
    y, _ = stream(KEYS, seed=70 + seed, snr_db=15.0)
    assert digits(y) == KEYS
    lo_db, hi_db = twist_levels(-8.0, weaker=-20.0)
    y, _ = stream(
        KEYS, seconds=0.045, seed=80 + seed, snr_db=15.0, lo_db=lo_db, hi_db=hi_db, off_lo=-0.015, off_hi=0.015
    )
    assert digits(y) == KEYS


# -- streaming ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_random_chunks_give_the_one_shot_result(seed):
    y, _ = stream(SEQUENCE * 2, seconds=0.05, gap=0.05, seed=90 + seed, snr_db=20.0)
    whole = DtmfDetector().feed(y)
    assert "".join(h.digit for h in whole) == SEQUENCE * 2
    rng = np.random.default_rng(seed)
    det, got, i = DtmfDetector(), [], 0
    while i < y.size:
        n = int(rng.choice([1, 7, 100, 160, 333, 800, 2000]))  # single samples to 250 ms
        got += det.feed(y[i : i + n])
        i += n
    assert [h.digit for h in got] == [h.digit for h in whole]
    assert [h.start_s for h in got] == pytest.approx([h.start_s for h in whole], abs=1e-9)
    assert [h.duration_s for h in got] == pytest.approx([h.duration_s for h in whole], abs=1e-9)


def test_a_digit_is_returned_by_the_chunk_in_which_it_completes():
    t = np.arange(int(0.1 * RATE)) / RATE
    press = pcm16(amplitude(-10.0) * (np.sin(2 * np.pi * 697.0 * t) + np.sin(2 * np.pi * 1477.0 * t)))  # "3"
    det = DtmfDetector()
    assert det.feed(np.zeros(160, np.int16)) == []
    assert det.feed(press[:160]) == []  # 20 ms of tone: too short so far
    hits = det.feed(press[160:400])  # 50 ms in all: reported now
    assert [h.digit for h in hits] == ["3"]
    assert hits[0].start_s == pytest.approx(0.02, abs=0.006)
    assert 0.028 <= hits[0].duration_s <= 0.05
    assert det.feed(press[400:]) == []  # the rest of the press: not again
    assert det.feed(np.zeros(800, np.int16)) == []


def test_t0_sets_the_time_base_and_reset_starts_over():
    y, marks = stream("42", seed=101)
    det = DtmfDetector()
    hits = det.feed(y[:2000], t0=100.0) + det.feed(y[2000:])
    assert [h.digit for h in hits] == ["4", "2"]
    assert [h.start_s for h in hits] == pytest.approx([100.0 + m[1] for m in marks], abs=0.008)
    # a later chunk that says where it is in the recording
    det.feed(np.zeros(4000, np.int16), t0=200.0)
    again = det.feed(y, t0=300.0)
    assert [h.start_s for h in again] == pytest.approx([300.0 + m[1] for m in marks], abs=0.008)
    det.reset()
    fresh = det.feed(y)
    assert [h.start_s for h in fresh] == pytest.approx([m[1] for m in marks], abs=0.008)


# -- G.711 mu-law round trip (encoder/decoder written here with numpy) ---------------------


def mulaw_encode(x: np.ndarray) -> np.ndarray:
    v = x.astype(np.int32)
    sign = (v < 0).astype(np.int32) << 7
    mag = np.minimum(np.abs(v), 32635) + 132
    exponent = np.searchsorted(np.array([256, 512, 1024, 2048, 4096, 8192, 16384]), mag, side="right")
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def mulaw_decode(code: np.ndarray) -> np.ndarray:
    u = ~code.astype(np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mag = (((u & 0x0F) << 3) + 132 << exponent) - 132
    return np.where(u & 0x80, -mag, mag).astype(np.int16)


def test_mulaw_codec_here_is_g711():
    x = np.array([0, 1, -1, 100, -100, 1000, 5000, -5000, 32767, -32768], np.int16)
    assert mulaw_encode(np.array([0], np.int16))[0] == 0xFF
    assert mulaw_encode(np.array([-1], np.int16))[0] == 0x7F
    back = mulaw_decode(mulaw_encode(x))
    assert np.all(np.abs(back.astype(int) - x) <= np.maximum(8, np.abs(x.astype(int)) // 16))


@pytest.mark.parametrize("level", [-3.0, -10.0, -25.0])
def test_mulaw_round_trip_is_detected(level):
    y, _ = stream(SEQUENCE, seconds=0.05, gap=0.05, seed=110, lo_db=level, hi_db=level)
    coded = mulaw_decode(mulaw_encode(y))
    assert not np.array_equal(coded, y)
    assert digits(coded) == SEQUENCE


# -- talk-off ------------------------------------------------------------------------------

SPEECH = [
    ("en", "Thank you for calling. Please enter your account number, followed by the pound key. "
           "If you know your party's extension, you may dial it at any time."),
    ("en+f3", "For sales, press one. For support, press two. To repeat these options, press star. "
              "Our offices are open from nine to five, Monday through Friday."),
    ("de", "Guten Tag und herzlich willkommen. Bitte geben Sie Ihre Kundennummer ein und "
           "bestätigen Sie mit der Rautetaste. Vielen Dank für Ihren Anruf."),
    ("en", "Hello? Can you hear me? I would like to check the status of my order, number four five "
           "six seven eight nine. Yes, that is right. Thank you very much, goodbye."),
]


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox needed")
    d = tmp_path_factory.mktemp("dtmf_speech")
    parts = []
    for i, (voice, text) in enumerate(SPEECH):
        raw, out = d / f"{i}.wav", d / f"{i}_8k.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
        subprocess.run(
            ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True, capture_output=True
        )
        with wave.open(str(out)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
            parts.append(np.frombuffer(w.readframes(w.getnframes()), "<i2"))
    return np.concatenate(parts)


@pytest.mark.parametrize("gain_db", [0.0, -12.0, 6.0])
def test_speech_gives_no_digit(speech, gain_db):
    assert speech.size / RATE >= 25.0
    y = pcm16(speech / 32768.0 * 10 ** (gain_db / 20))
    assert np.sqrt(np.mean((y / 32768.0) ** 2)) > 0.01  # real, audible speech
    det = DtmfDetector()
    hits = []
    for i in range(0, y.size, 1600):  # 200 ms chunks, as from a growing recording
        hits += det.feed(y[i : i + 1600])
    assert hits == []
    # the same detector, right after the speech, still hears a key press
    tail, _ = stream("#", seed=120)
    assert "".join(h.digit for h in det.feed(tail)) == "#"


def test_speech_mixed_with_digits_gives_only_the_digits(speech):
    rng = np.random.default_rng(121)
    y = speech[: RATE * 8].astype(np.float64) / 32768.0 * 0.5
    keys = "2580"
    at = [int(RATE * s) for s in (1.0, 3.0, 5.0, 7.0)]
    for key, pos in zip(keys, at):
        y[pos : pos + 560] += pair(key, 0.07, rng, lo_db=-8.0, hi_db=-6.0)
    assert digits(pcm16(y)) == keys
