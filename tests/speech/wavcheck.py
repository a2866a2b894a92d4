"""Reads the synthesizers' WAV output with the standard library and measures it.

Independent of chimevoice's own WAV code (uses :mod:`wave` and numpy only).
"""
from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Wav:
    rate: int
    channels: int
    sampwidth: int
    samples: np.ndarray  # float64 in [-1, 1)

    @property
    def duration(self) -> float:
        return self.samples.size / self.rate


def read_wav(path: str | Path) -> Wav:
    with wave.open(str(path), "rb") as w:
        rate, channels, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        raw = w.readframes(n)
    assert width == 2, f"sample width {width}"
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    return Wav(rate, channels, width, x)


def frame_rms(x: np.ndarray, rate: int, ms: int = 20) -> np.ndarray:
    n = rate * ms // 1000
    frames = x[: x.size // n * n].reshape(-1, n)
    return np.sqrt(np.mean(frames ** 2, axis=1)) if frames.size else np.zeros(0)


def dbfs(v: np.ndarray | float) -> np.ndarray | float:
    return 20 * np.log10(np.maximum(v, 1e-12))


def longest_silence(x: np.ndarray, rate: int, threshold_db: float = -50.0) -> float:
    """Longest run of 10 ms frames quieter than ``threshold_db``, in seconds."""
    quiet = dbfs(frame_rms(x, rate, 10)) < threshold_db
    best = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        best = max(best, run)
    return best * 0.010


def voiced_pitch(x: np.ndarray, rate: int) -> np.ndarray:
    """Pitch (Hz) of each clearly periodic 40 ms frame (normalized autocorrelation > 0.5
    at a lag in the 70-400 Hz voice range)."""
    n = rate * 40 // 1000
    lo, hi = rate // 400, rate // 70
    out = []
    for i in range(0, x.size - n, n // 2):
        f = x[i:i + n] - np.mean(x[i:i + n])
        energy = float(np.dot(f, f))
        if energy < n * (10 ** (-40 / 20)) ** 2:
            continue
        ac = np.array([np.dot(f[:-lag], f[lag:]) for lag in range(lo, hi + 1)]) / energy
        k = int(np.argmax(ac))
        if ac[k] > 0.5:
            out.append(rate / (lo + k))
    return np.array(out)


def speech_evidence(w: Wav) -> dict[str, float]:
    """Numbers that separate speech from silence, a steady tone or noise."""
    rms = frame_rms(w.samples, w.rate)
    active = rms[dbfs(rms) > -45]
    pitch = voiced_pitch(w.samples, w.rate)
    hop_frames = max(1, (w.samples.size - w.rate * 40 // 1000) // (w.rate * 20 // 1000))
    return {
        "peak_dbfs": float(dbfs(np.max(np.abs(w.samples)))) if w.samples.size else -240.0,
        "rms_dbfs": float(dbfs(np.sqrt(np.mean(w.samples ** 2)))) if w.samples.size else -240.0,
        "active_fraction": float(active.size / max(1, rms.size)),
        # syllables: the loudness of active frames varies a lot
        "envelope_variation": float(np.std(active) / np.mean(active)) if active.size else 0.0,
        "voiced_fraction": float(pitch.size / hop_frames),
        "median_pitch_hz": float(np.median(pitch)) if pitch.size else 0.0,
    }
