"""RecordAudio silence detection (spec 03a §3.7): FreeSWITCH-style frame score, timer from the
start of the recording, reset by any louder frame, trailing silence kept."""

from __future__ import annotations

import numpy as np
import pytest

from chimevoice.media.silence import SilenceDetector, frame_scores, score_to_db_spl

RATE = 8000
FRAME = 160


def level(score: int, frames: int) -> np.ndarray:
    """Frames whose mean |sample| is exactly ``score`` (alternating ±score)."""
    x = np.full(frames * FRAME, score, dtype=np.int16)
    x[1::2] *= -1
    return x


def noise(score: float, seconds: float, rng) -> np.ndarray:
    """Gaussian noise whose mean |sample| is about ``score`` (E|x| = σ·√(2/π))."""
    sigma = score / np.sqrt(2 / np.pi)
    return np.clip(np.round(rng.standard_normal(int(seconds * RATE)) * sigma), -32768, 32767).astype(np.int16)


def feed_in_chunks(det: SilenceDetector, x: np.ndarray, chunk: int) -> int | None:
    """Feed x; return the sample offset of the chunk during which the detector fired."""
    for pos in range(0, x.size, chunk):
        if det.feed(x[pos : pos + chunk]):
            return pos
    return None


def test_frame_score_is_mean_absolute_sample():
    x = np.concatenate([level(100, 1), level(250, 2), np.zeros(50, dtype=np.int16)])
    np.testing.assert_array_equal(frame_scores(x), [100, 250, 250])  # the partial tail is ignored
    np.testing.assert_array_equal(frame_scores(x.tobytes()), [100, 250, 250])


@pytest.mark.parametrize("score, silent", [(199, True), (200, False), (201, False)])
def test_threshold_is_strict_less_than(score, silent):
    det = SilenceDetector(1, threshold=200)
    assert det.feed(level(score, 50)) is silent
    assert det.silent_run == (50 if silent else 0)


def test_stops_after_duration_of_silence_following_speech():
    rng = np.random.default_rng(1)
    speech = noise(3000, 1.0, rng)
    quiet = noise(40, 5.0, rng)  # room noise well under the default threshold 200
    x = np.concatenate([speech, quiet])
    det = SilenceDetector(2)  # SilenceDurationInSeconds 2, SilenceThreshold default 200
    fired_in = feed_in_chunks(det, x, 480)
    assert det.triggered
    assert det.stop_sample == 3 * RATE  # 1 s of speech + 2 s of silence, to the sample
    assert fired_in <= det.stop_sample <= fired_in + 480
    assert det.feed(speech[:160]) is True  # latched; later audio is not looked at


def test_timer_runs_from_the_start_of_the_recording():
    """A caller who never speaks: the recording ends after the silence duration (03a §6 C3)."""
    det = SilenceDetector(3, threshold=100)
    feed_in_chunks(det, np.zeros(10 * RATE, dtype=np.int16), 160)
    assert det.stop_sample == 3 * RATE


def test_a_single_loud_frame_resets_the_count():
    rng = np.random.default_rng(2)
    x = np.concatenate([noise(20, 1.5, rng), level(5000, 1), noise(20, 1.5, rng)])
    det = SilenceDetector(2)
    assert feed_in_chunks(det, x, 320) is None and not det.triggered
    assert det.silent_seconds == pytest.approx(1.5)
    det.feed(noise(20, 0.6, rng))
    assert det.stop_sample == int(1.5 * RATE) + FRAME + 2 * RATE


@pytest.mark.parametrize("chunk", [1, 100, 160, 333, 4000])
def test_chunking_does_not_change_the_result(chunk):
    rng = np.random.default_rng(3)
    x = np.concatenate([noise(800, 0.7, rng), noise(30, 0.3, rng), noise(900, 0.2, rng), noise(30, 2.0, rng)])
    det = SilenceDetector(1, threshold=150)
    fired = feed_in_chunks(det, x, chunk)
    assert fired is not None
    assert det.stop_sample == int(1.2 * RATE) + RATE


def test_from_parameters():
    assert SilenceDetector.from_parameters({"DurationInSeconds": "10"}) is None  # detection off
    assert SilenceDetector.from_parameters({"SilenceThreshold": 100}) is None  # threshold alone: ignored
    det = SilenceDetector.from_parameters({"SilenceDurationInSeconds": "3"})
    assert (det.silence_seconds, det.threshold, det.frames_needed) == (3.0, 200.0, 150)
    det = SilenceDetector.from_parameters({"SilenceDurationInSeconds": 3, "SilenceThreshold": "100"})
    assert det.threshold == 100.0
    for bad in ({"SilenceDurationInSeconds": 0}, {"SilenceDurationInSeconds": 1001},
                {"SilenceDurationInSeconds": 5, "SilenceThreshold": 0},
                {"SilenceDurationInSeconds": 5, "SilenceThreshold": 1001}):
        with pytest.raises(ValueError):
            SilenceDetector.from_parameters(bad)


def test_reset_starts_over():
    det = SilenceDetector(1)
    det.feed(np.zeros(RATE, dtype=np.int16))
    assert det.triggered
    det.reset()
    assert not det.triggered and det.frames_seen == 0
    assert det.feed(np.zeros(RATE - FRAME, dtype=np.int16)) is False


def test_threshold_scale_matches_the_guide_table():
    """0 dBFS ≈ 105 dB SPL: 1000 → ≈ 75 dB, 200 → ≈ 61 dB (03a §3.3, §3.7)."""
    assert score_to_db_spl(1000) == pytest.approx(74.7, abs=0.1)
    assert score_to_db_spl(200) == pytest.approx(60.7, abs=0.1)
    assert score_to_db_spl(0) == float("-inf")
