"""Signal helpers for tests and benchmarks: tones, tone detection, "is this audio in that recording".

Integer sample arrays are scaled to [-1, 1) by their dtype's range (int16 / 32768,
uint8 is taken as offset binary); float arrays are used as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .audio import write_pcm16_wav

__all__ = [
    "to_float",
    "goertzel_power",
    "dominant_frequency",
    "tone",
    "write_tone_wav",
    "rms_dbfs",
    "similarity",
    "mulaw_encode",
    "mulaw_decode",
]


def to_float(samples: np.ndarray) -> np.ndarray:
    """Samples as float64 in [-1, 1) (see module docstring for the scaling)."""
    arr = np.asarray(samples)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64, copy=False)
    if arr.dtype == np.uint8:
        return (arr.astype(np.float64) - 128.0) / 128.0
    if arr.dtype.kind in "iu":
        return arr.astype(np.float64) / float(2 ** (8 * arr.dtype.itemsize - 1))
    raise TypeError(f"unsupported sample dtype {arr.dtype}")


def goertzel_power(samples: np.ndarray, rate: int, freq: float) -> float:
    """Power of the ``freq`` component of ``samples`` (Goertzel / single-bin DFT).

    Normalised so that a pure sinusoid of amplitude A (full scale = 1) at ``freq``
    gives about ``A**2 / 2`` — the same units as ``mean(x**2)``. The ratio
    ``goertzel_power(x, r, f) / mean(x**2)`` is therefore ~1 for a pure tone at f and
    ~0 for a tone elsewhere (given a few hundred periods of signal).
    """
    x = to_float(samples).reshape(-1)
    n = x.size
    if n == 0:
        return 0.0
    # Goertzel's recurrence evaluates the DTFT at freq; for speed, evaluate that sum directly.
    w = 2.0 * np.pi * float(freq) / float(rate)
    k = np.arange(n, dtype=np.float64)
    re = float(np.dot(x, np.cos(w * k)))
    im = float(np.dot(x, np.sin(w * k)))
    return 2.0 * (re * re + im * im) / (n * n)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """Frequency (Hz) of the strongest spectral peak (Hann window, parabolic interpolation; DC ignored)."""
    x = to_float(samples).reshape(-1)
    n = x.size
    if n < 4:
        return 0.0
    x = x - x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(n)))
    spectrum[0] = 0.0
    k = int(np.argmax(spectrum))
    if 0 < k < spectrum.size - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-300)
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom != 0 else 0.0
    else:
        offset = 0.0
    return (k + offset) * rate / n


def tone(freq: float, seconds: float, rate: int = 8000, amplitude: float = 0.5) -> np.ndarray:
    """A float64 sine wave."""
    n = int(round(seconds * rate))
    return amplitude * np.sin(2.0 * np.pi * freq * np.arange(n) / rate)


def write_tone_wav(
    path: str | os.PathLike[str], freq: float, seconds: float, rate: int = 8000, amplitude: float = 0.5
) -> Path:
    """Write a 16-bit mono PCM WAV holding a sine tone; returns the path."""
    return write_pcm16_wav(path, tone(freq, seconds, rate, amplitude), rate)


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (-inf for silence)."""
    x = to_float(samples)
    if x.size == 0:
        return float("-inf")
    ms = float(np.mean(x * x))
    return 10.0 * np.log10(ms) if ms > 0 else float("-inf")


# ---------------------------------------------------------------------------------------
# G.711 mu-law (for tests that simulate the RTP path without a SIP stack)
# ---------------------------------------------------------------------------------------

_MU = 255.0


def mulaw_encode(samples: np.ndarray) -> np.ndarray:
    """ITU-T G.711 mu-law encode int16 samples to uint8 code words."""
    x = np.asarray(samples).astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def mulaw_decode(codes: np.ndarray) -> np.ndarray:
    """ITU-T G.711 mu-law decode uint8 code words to int16 samples."""
    u = ~np.asarray(codes).astype(np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    mag = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -mag, mag).astype(np.int16)


# ---------------------------------------------------------------------------------------
# similarity
# ---------------------------------------------------------------------------------------


def _bandpass(x: np.ndarray, rate: int, low: float, high: float) -> np.ndarray:
    """Zero-phase FFT brick-wall band-pass (good enough for analysis)."""
    n = x.size
    if n == 0:
        return x
    nfft = 1 << int(np.ceil(np.log2(max(n, 2))))
    spec = np.fft.rfft(x, nfft)
    freqs = np.fft.rfftfreq(nfft, 1.0 / rate)
    spec[(freqs < low) | (freqs > high)] = 0.0
    return np.fft.irfft(spec, nfft)[:n]


def _xcorr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full cross-correlation c[lag + len(a) - 1] = sum_n a[n] * b[n + lag] for lag in -(len(a)-1)..len(b)-1."""
    n = a.size + b.size - 1
    nfft = 1 << int(np.ceil(np.log2(n)))
    fa = np.fft.rfft(a[::-1], nfft)
    fb = np.fft.rfft(b, nfft)
    return np.fft.irfft(fa * fb, nfft)[:n]


def similarity(
    reference: np.ndarray,
    recorded: np.ndarray,
    rate: int,
    *,
    block_s: float = 0.1,
    max_drift_s: float = 0.03,
    band: tuple[float, float] = (250.0, 3400.0),
) -> float:
    """How completely ``recorded`` contains ``reference``: 0 (not at all) .. 1 (identical waveform).

    Both signals must be at ``rate``. Steps:

    1. Remove DC and band-limit both to ``band`` (telephone band; removes hum and the
       pitch fundamental, which would otherwise make any two voices look alike).
    2. Global alignment: the lag maximising the cross-correlation normalised by the
       energy of the whole reference and of the recorded window under it (leading
       silence or other audio before/after the reference does not matter).
    3. The reference is cut into ``block_s`` blocks; starting from the loud block that
       fits the global alignment best, each block is matched against the recording within
       +/- ``max_drift_s`` of the lag of the last confidently matched loud block (absorbs
       jitter-buffer insertions/deletions and clock drift; a loud block that fits badly
       is retried within 3x that reach and the wider match kept only if above 0.8), and
       scored by its normalised cross-correlation peak (scale-invariant, so gain changes
       do not matter; G.711 quantisation noise costs ~0.01).
    4. The score is the energy-weighted mean of the block scores (negative correlations
       count as 0); parts of the reference missing from the recording count as 0.

    Typical values at 8 kHz (espeak-ng speech, tests/media/test_analysis.py): the same
    utterance after a G.711 round trip with leading silence and a gain change > 0.99;
    with a few 1-10 ms insertions/deletions > 0.9; a different utterance of a few
    seconds 0.1-0.35; noise < 0.05. A *short* reference (under ~1.5 s, e.g. one word)
    can reach 0.5-0.7 against unrelated speech, so assert "arrived" with a threshold
    of about 0.85 or more.
    """
    ref = to_float(reference).reshape(-1)
    rec = to_float(recorded).reshape(-1)
    if ref.size == 0 or rec.size == 0:
        return 0.0
    low, high = band
    high = min(high, rate / 2.0 * 0.98)
    ref = _bandpass(ref - ref.mean(), rate, low, high)
    rec = _bandpass(rec - rec.mean(), rate, low, high)
    e_ref = float(np.dot(ref, ref))
    e_rec = float(np.dot(rec, rec))
    if e_ref <= 1e-12 or e_rec <= 1e-12:
        return 0.0

    n, m = ref.size, rec.size
    # -- 2. global alignment -------------------------------------------------------------
    corr = _xcorr(ref, rec)  # index i <-> lag i - (n - 1)
    lags = np.arange(-(n - 1), m)
    csum = np.concatenate(([0.0], np.cumsum(rec * rec)))
    lo = np.clip(lags, 0, m)
    hi = np.clip(lags + n, 0, m)
    win_energy = csum[hi] - csum[lo]
    score = corr / np.sqrt(e_ref * np.maximum(win_energy, 1e-12))
    score[win_energy <= 1e-12] = 0.0
    lag0 = int(lags[int(np.argmax(score))])

    # -- 3. block refinement -------------------------------------------------------------
    block = max(16, int(round(block_s * rate)))
    drift = max(1, int(round(max_drift_s * rate)))
    pad = n + 2 * drift + abs(lag0) + block
    rec_pad = np.concatenate((np.zeros(pad), rec, np.zeros(pad)))
    csum_pad = np.concatenate(([0.0], np.cumsum(rec_pad * rec_pad)))

    blocks = []  # (start, segment, energy) of the non-silent reference blocks
    for start in range(0, n, block):
        seg = ref[start : start + block]
        e_seg = float(np.dot(seg, seg))
        if e_seg > 1e-12:
            blocks.append((start, seg, e_seg))
    if not blocks:
        return 0.0

    def match(i: int, center: int, reach: int) -> tuple[float, int]:
        start, seg, e_seg = blocks[i]
        b = seg.size
        first = pad + start + center - reach  # rec_pad index of the earliest candidate window
        window = rec_pad[first : first + b + 2 * reach]
        c = np.correlate(window, seg, mode="valid")  # 2*reach+1 values
        starts = first + np.arange(c.size)
        e_win = csum_pad[starts + b] - csum_pad[starts]
        ncc = np.where(e_win > 1e-12, c / np.sqrt(e_seg * np.maximum(e_win, 1e-12)), 0.0)
        best = int(np.argmax(ncc))
        return float(ncc[best]), center + best - reach

    # Blocks loud enough to steer the alignment (near-silent blocks match anything).
    mean_energy = sum(e for _, _, e in blocks) / len(blocks)
    steering = [e >= 0.1 * mean_energy for _, _, e in blocks]

    # Anchor on the loud block that fits the global alignment best, then follow the lag
    # outwards in both directions, so insertions/deletions anywhere are absorbed. A loud
    # block that fits badly is retried with a wider window (re-lock after several jumps
    # in quiet passages); the wider result counts only if it is a clear match.
    results: list[float] = [0.0] * len(blocks)
    anchor_scores = [match(i, lag0, drift) for i in range(len(blocks))]
    anchor = max(range(len(blocks)), key=lambda i: anchor_scores[i][0] * blocks[i][2])
    results[anchor], anchor_lag = anchor_scores[anchor]
    wide = 3 * drift
    for direction in (1, -1):
        lag = anchor_lag
        i = anchor + direction
        while 0 <= i < len(blocks):
            score_i, lag_i = match(i, lag, drift)
            if steering[i] and score_i < 0.5:
                wide_score, wide_lag = match(i, lag, wide)
                if wide_score > 0.8:
                    score_i, lag_i = wide_score, wide_lag
            results[i] = score_i
            if steering[i] and score_i > 0.6:
                lag = lag_i  # follow the drift only on loud blocks we are confident about
            i += direction
    total = sum(e * max(0.0, min(1.0, r)) for (_, _, e), r in zip(blocks, results))
    total_w = sum(e for _, _, e in blocks)
    if total_w == 0.0:
        return 0.0
    return float(total / total_w)
