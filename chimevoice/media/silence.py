"""Streaming silence detection for ``RecordAudio`` (spec 03a §3.3, §3.7, §6 C1–C3, C20).

The action's parameters are ``SilenceDurationInSeconds`` (1–1000; absent ⇒ silence detection is
off) and ``SilenceThreshold`` (1–1000, default 200; ignored without a duration). The threshold is
not in decibels: following FreeSWITCH's ``record`` (which the action mirrors, 03a §5.3) it is
compared with a per-frame *score*:

- frames of 20 ms of 16-bit PCM at 8 kHz (160 samples);
- score = mean of ``|sample|`` over the frame;
- a frame is silent when ``score < SilenceThreshold``;
- silent frames are counted **from the start of the recording** (a caller who never speaks ends
  the recording after the duration); any non-silent frame resets the count;
- when the count reaches ``SilenceDurationInSeconds × 50`` frames the recording stops, the
  trailing silence is kept in the file.

With 0 dBFS ≈ 105 dB SPL the scale matches the guide's table within about 5 dB:
1000 → ≈ 75 dB, 200 → ≈ 61 dB, 100 → ≈ 55 dB, 1 → ≈ 15 dB (:func:`score_to_db_spl`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

__all__ = [
    "DEFAULT_THRESHOLD",
    "FRAME_SAMPLES",
    "SilenceDetector",
    "frame_scores",
    "score_to_db_spl",
]

RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
DEFAULT_THRESHOLD = 200
MIN_VALUE, MAX_VALUE = 1, 1000
FULL_SCALE_DB_SPL = 105.0


def _pcm(samples: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    if isinstance(samples, (bytes, bytearray, memoryview)):
        b = bytes(samples)
        if len(b) % 2:
            raise ValueError("odd number of bytes for 16-bit PCM")
        return np.frombuffer(b, dtype="<i2")
    arr = np.asarray(samples)
    if arr.dtype != np.int16 or arr.ndim != 1:
        raise TypeError("samples must be mono int16 (1-D array) or bytes")
    return arr


def frame_scores(samples: bytes | np.ndarray, frame_samples: int = FRAME_SAMPLES) -> np.ndarray:
    """Score (mean ``|sample|``) of each whole frame of ``samples``; a partial tail is ignored."""
    x = _pcm(samples)
    k = x.size // frame_samples
    if k == 0:
        return np.zeros(0)
    return np.abs(x[: k * frame_samples].astype(np.int32)).reshape(k, frame_samples).mean(axis=1)


def score_to_db_spl(score: float) -> float:
    """Approximate acoustic level (dB SPL) of a frame score, taking 0 dBFS as 105 dB SPL."""
    if score <= 0:
        return -math.inf
    return FULL_SCALE_DB_SPL + 20.0 * math.log10(score / 32768.0)


class SilenceDetector:
    """Feed 16-bit mono PCM (any length; whole 20 ms frames are scored, the rest waits for the
    next call); :meth:`feed` returns True once the silence condition is met and stays True.

    ``stop_sample`` is then the number of samples since the start of the recording that belong
    in the file: everything up to the end of the frame that completed the silent run (the
    trailing silence is kept). Audio fed after that point must not be recorded.
    """

    def __init__(
        self,
        silence_seconds: float,
        threshold: float = DEFAULT_THRESHOLD,
        *,
        rate: int = RATE,
        frame_ms: int = 20,
    ) -> None:
        if not (silence_seconds > 0):
            raise ValueError("silence_seconds must be > 0")
        if not (threshold > 0):
            raise ValueError("threshold must be > 0")
        self.silence_seconds = float(silence_seconds)
        self.threshold = float(threshold)
        self.rate = rate
        # The score is a mean per sample, so it does not depend on the frame length; FreeSWITCH
        # normalises to 8 kHz the same way. Frame = 20 ms at any rate.
        self.frame_samples = rate * frame_ms // 1000
        self.frames_needed = max(1, int(math.ceil(self.silence_seconds * 1000 / frame_ms - 1e-9)))
        self._pending = np.zeros(0, dtype=np.int16)
        self.frames_seen = 0
        self.silent_run = 0  # consecutive silent frames so far
        self.last_score: float | None = None
        self.stop_sample: int | None = None

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any], **kwargs: Any) -> "SilenceDetector | None":
        """Detector for RecordAudio ``Parameters`` (validated by the action; numbers may be
        strings), or None when ``SilenceDurationInSeconds`` is absent (detection off)."""
        duration = params.get("SilenceDurationInSeconds")
        if duration is None or duration == "":
            return None
        threshold = params.get("SilenceThreshold")
        if threshold is None or threshold == "":
            threshold = DEFAULT_THRESHOLD
        duration, threshold = float(duration), float(threshold)
        for name, value in (("SilenceDurationInSeconds", duration), ("SilenceThreshold", threshold)):
            if not MIN_VALUE <= value <= MAX_VALUE:
                raise ValueError(f"{name} must be between {MIN_VALUE} and {MAX_VALUE}")
        return cls(duration, threshold, **kwargs)

    @property
    def triggered(self) -> bool:
        return self.stop_sample is not None

    @property
    def silent_seconds(self) -> float:
        """Length of the current silent run."""
        return self.silent_run * self.frame_samples / self.rate

    def feed(self, samples: bytes | np.ndarray) -> bool:
        if self.stop_sample is not None:
            return True
        x = _pcm(samples)
        if self._pending.size:
            x = np.concatenate([self._pending, x])
        scores = frame_scores(x, self.frame_samples)
        used = scores.size * self.frame_samples
        self._pending = x[used:].copy()
        if scores.size == 0:
            return False
        silent = scores < self.threshold
        self.last_score = float(scores[-1])
        for i, s in enumerate(silent):
            self.silent_run = self.silent_run + 1 if s else 0
            if self.silent_run >= self.frames_needed:
                self.frames_seen += i + 1
                self.stop_sample = self.frames_seen * self.frame_samples
                self._pending = np.zeros(0, dtype=np.int16)
                return True
        self.frames_seen += scores.size
        return False

    def reset(self) -> None:
        """Start over (a new recording)."""
        self._pending = np.zeros(0, dtype=np.int16)
        self.frames_seen = 0
        self.silent_run = 0
        self.last_score = None
        self.stop_sample = None
