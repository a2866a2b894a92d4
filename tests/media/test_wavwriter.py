"""Crash-safe WAV writer: round trips, header refresh, real kill -9, recovery, stereo, marker tones.

Expected file contents are checked with Python's ``wave`` module and raw bytes, independently of
the code under test.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from chimevoice.media.analysis import dominant_frequency
from chimevoice.media.wavwriter import (
    HEADER_BYTES,
    StereoInterleaver,
    WavWriter,
    interleave,
    marker_tone,
    recover,
)

ROOT = Path(__file__).resolve().parents[2]


def pattern(start: int, n: int) -> np.ndarray:
    """Deterministic int16 samples: sample i of the stream is ((i * 37) % 30001) - 15000."""
    i = np.arange(start, start + n, dtype=np.int64)
    return ((i * 37) % 30001 - 15000).astype(np.int16)


def read_wav(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        raw = w.readframes(params.nframes)
    return params, np.frombuffer(raw, dtype="<i2")


def declared_data_bytes(path: Path) -> int:
    with open(path, "rb") as fh:
        fh.seek(40)
        return struct.unpack("<I", fh.read(4))[0]


# ----------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------


def test_mono_round_trip_via_part_file(tmp_path):
    path = tmp_path / "rec.wav"
    w = WavWriter(path, refresh_s=0.25)
    assert w.part_path == tmp_path / "rec.wav.part"
    assert w.part_path.exists() and not path.exists()
    x = pattern(0, 8000 + 77)
    pos = 0
    for k, size in enumerate([160, 320, 1, 1000, 4000]):
        chunk = x[pos : pos + size]
        w.append(chunk.tobytes() if k % 2 else chunk)  # bytes and arrays both accepted
        pos += size
    w.append(x[pos:])
    assert w.frames == x.size
    assert w.close() == path
    assert not w.part_path.exists()
    params, got = read_wav(path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    np.testing.assert_array_equal(got, x)
    assert os.path.getsize(path) == HEADER_BYTES + 2 * x.size
    w.close()  # idempotent
    with pytest.raises(ValueError):
        w.append(x[:160])


def test_direct_write_without_part_suffix(tmp_path):
    path = tmp_path / "direct.wav"
    with WavWriter(path, part_suffix=None) as w:
        assert w.part_path == path
        w.append(pattern(0, 400))
    _, got = read_wav(path)
    np.testing.assert_array_equal(got, pattern(0, 400))


def test_empty_recording_is_a_valid_wav(tmp_path):
    path = tmp_path / "empty.wav"
    WavWriter(path).close()
    params, got = read_wav(path)
    assert params.nframes == 0 and got.size == 0
    assert os.path.getsize(path) == HEADER_BYTES


def test_header_is_refreshed_every_interval_and_readable_while_open(tmp_path):
    w = WavWriter(tmp_path / "r.wav", refresh_s=0.5)
    w.append(pattern(0, 3999))
    assert w.frames_in_header == 0  # not yet 0.5 s
    params, _ = read_wav(w.part_path)
    assert params.nframes == 0
    w.append(pattern(3999, 1))  # reaches 0.5 s of unrefreshed audio
    assert w.frames_in_header == 4000
    w.append(pattern(4000, 3000))
    assert w.frames_in_header == 4000  # 3000 frames since the refresh: < 0.5 s
    params, got = read_wav(w.part_path)
    assert params.nframes == 4000
    np.testing.assert_array_equal(got, pattern(0, 4000))
    assert os.path.getsize(w.part_path) == HEADER_BYTES + 2 * 7000  # the rest is on disk already
    w.close()


def test_rejects_partial_frames_and_wrong_types(tmp_path):
    w = WavWriter(tmp_path / "s.wav", channels=2)
    with pytest.raises(ValueError):
        w.append(b"\x00\x00")  # half a stereo frame
    with pytest.raises(TypeError):
        w.append(np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError):
        w.append(np.zeros((4, 3), dtype=np.int16))
    w.abort()
    assert not w.part_path.exists() and not w.path.exists()


def test_stereo_frames_array_and_append_silence(tmp_path):
    path = tmp_path / "st.wav"
    left, right = pattern(0, 500), pattern(10_000, 500)
    with WavWriter(path, channels=2) as w:
        w.append(np.stack([left, right], axis=1))
        w.append_silence(100)
    params, got = read_wav(path)
    assert params.nchannels == 2 and params.nframes == 600
    frames = got.reshape(-1, 2)
    np.testing.assert_array_equal(frames[:500, 0], left)
    np.testing.assert_array_equal(frames[:500, 1], right)
    assert not frames[500:].any()


# ----------------------------------------------------------------------------------------
# kill -9
# ----------------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from chimevoice.media.wavwriter import WavWriter

    path, mode = sys.argv[1], sys.argv[2]
    def pattern(start, n):
        i = np.arange(start, start + n, dtype=np.int64)
        return ((i * 37) % 30001 - 15000).astype(np.int16)

    w = WavWriter(path, refresh_s=0.5)
    pos = 0
    if mode == "fixed":
        # 1.3 s at once in 20 ms frames, then wait to be killed: the header says 1.0 s.
        while pos < 10400:
            w.append(pattern(pos, 160)); pos += 160
        print(pos, w.frames_in_header, flush=True)
        time.sleep(60)
    else:
        # continuous stream, 20 ms frames, a little faster than real time
        while True:
            w.append(pattern(pos, 160)); pos += 160
            print(pos, w.frames_in_header, flush=True)
            time.sleep(0.002)
    """
)


def _spawn(tmp_path: Path, mode: str) -> tuple[subprocess.Popen, Path]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    target = tmp_path / "rec" / "call.wav"
    target.parent.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(target), mode], stdout=subprocess.PIPE, text=True, env=env
    )
    return proc, target


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def test_kill_9_after_known_amount_then_recover(tmp_path):
    proc, target = _spawn(tmp_path, "fixed")
    try:
        line = proc.stdout.readline()
        written, in_header = map(int, line.split())
    finally:
        _kill(proc)
    assert (written, in_header) == (10400, 8000)
    part = target.with_name(target.name + ".part")
    assert part.exists() and not target.exists()

    # As left by the crash: a valid WAV with exactly what the last refresh declared.
    params, got = read_wav(part)
    assert params.nframes == 8000
    np.testing.assert_array_equal(got, pattern(0, 8000))
    assert os.path.getsize(part) == HEADER_BYTES + 2 * 10400  # every append reached the file

    fixed = recover(target.parent)
    assert len(fixed) == 1
    r = fixed[0]
    assert (r.path, r.original_path, r.renamed) == (target, part, True)
    assert (r.declared_data_bytes, r.data_bytes, r.trimmed_bytes) == (16000, 20800, 0)
    params, got = read_wav(target)
    assert params.nframes == 10400
    np.testing.assert_array_equal(got, pattern(0, 10400))
    assert recover(target.parent) == []  # nothing left to fix


def test_kill_9_while_streaming(tmp_path):
    proc, target = _spawn(tmp_path, "stream")
    last = (0, 0)
    try:
        deadline = time.monotonic() + 30
        while last[0] < 8000 * 2 and time.monotonic() < deadline:  # at least 2 s of audio
            line = proc.stdout.readline()
            if not line:
                break
            last = tuple(map(int, line.split()))
    finally:
        _kill(proc)
    written, in_header = last
    assert written >= 16000 and in_header >= 12000
    part = target.with_name(target.name + ".part")
    on_disk = (os.path.getsize(part) - HEADER_BYTES) // 2

    params, got = read_wav(part)
    assert params.nframes >= in_header  # the child may have refreshed again after its last line
    assert params.nframes % 160 == 0 and params.nframes <= on_disk
    np.testing.assert_array_equal(got, pattern(0, params.nframes))

    recover(target.parent)
    params, got = read_wav(target)
    assert params.nframes == on_disk >= written
    np.testing.assert_array_equal(got, pattern(0, on_disk))


# ----------------------------------------------------------------------------------------
# recover
# ----------------------------------------------------------------------------------------


def _raw_wav(path: Path, data: bytes, declared: int, channels: int = 1, riff: int | None = None) -> None:
    hdr = struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + declared if riff is None else riff, b"WAVE", b"fmt ", 16, 1,
        channels, 8000, 16000 * channels, 2 * channels, 16, b"data", declared,
    )
    path.write_bytes(hdr + data)


def test_recover_directory(tmp_path):
    d = tmp_path / "recordings"
    (d / "sub").mkdir(parents=True)
    good = d / "good.wav"
    _raw_wav(good, pattern(0, 100).tobytes(), 200)
    torn = d / "torn.wav"  # stereo, a sample and a half after the last whole frame
    _raw_wav(torn, pattern(0, 200).tobytes() + b"\x01\x02\x03\x04\x05\x06", 100, channels=2)
    streamed = d / "sub" / "streamed.wav"  # placeholder sizes, as espeak-ng --stdout writes
    _raw_wav(streamed, pattern(0, 300).tobytes(), 0xFFFFFFFF, riff=0xFFFFFFFF)
    clash = d / "clash.wav.part"  # its final name is taken: repaired, not renamed
    _raw_wav(clash, pattern(0, 50).tobytes(), 0)
    _raw_wav(d / "clash.wav", b"", 0)
    bogus = d / "notawav.wav"
    bogus.write_bytes(b"hello")
    other = d / "notes.txt"
    other.write_bytes(b"RIFF")
    with_list = d / "list.wav"  # a well-formed chunk after the data: the declared size is right
    list_chunk = b"LIST" + struct.pack("<I", 4) + b"INFO"
    _raw_wav(with_list, pattern(0, 10).tobytes() + list_chunk, 20, riff=36 + 20 + len(list_chunk))

    before = good.read_bytes(), with_list.read_bytes()
    results = {r.original_path.name: r for r in recover(d)}
    assert set(results) == {"torn.wav", "streamed.wav", "clash.wav.part", "notawav.wav"}
    assert (good.read_bytes(), with_list.read_bytes()) == before

    r = results["torn.wav"]
    assert (r.data_bytes, r.trimmed_bytes, r.renamed) == (404, 2, False)
    params, got = read_wav(torn)
    assert params.nframes == 101
    np.testing.assert_array_equal(got[:200], pattern(0, 200))

    r = results["streamed.wav"]
    assert r.declared_data_bytes == 0xFFFFFFFF and r.data_bytes == 600
    _, got = read_wav(streamed)
    np.testing.assert_array_equal(got, pattern(0, 300))
    with open(streamed, "rb") as fh:
        assert struct.unpack("<I", fh.read(8)[4:])[0] == 36 + 600

    r = results["clash.wav.part"]
    assert r.renamed is False and r.path == clash and r.data_bytes == 100
    assert read_wav(clash)[0].nframes == 50

    assert results["notawav.wav"].error
    assert bogus.read_bytes() == b"hello"


def test_recover_single_file_path(tmp_path):
    p = tmp_path / "x.wav.part"
    _raw_wav(p, pattern(0, 10).tobytes(), 0)
    (r,) = recover(p)
    assert r.renamed and r.path == tmp_path / "x.wav" and not p.exists()
    assert declared_data_bytes(r.path) == 20


# ----------------------------------------------------------------------------------------
# stereo interleaving
# ----------------------------------------------------------------------------------------


def test_interleave_pads_shorter_track():
    left, right = pattern(0, 300), pattern(5000, 200)
    out = interleave(left.tobytes(), right)
    assert out.shape == (300, 2) and out.dtype == np.int16
    np.testing.assert_array_equal(out[:, 0], left)
    np.testing.assert_array_equal(out[:200, 1], right)
    assert not out[200:, 1].any()


def test_stereo_interleaver_independent_arrival():
    st = StereoInterleaver(max_lag_s=0.1)  # 800 samples
    a, b = pattern(0, 2000), pattern(50_000, 2000)
    st.push_left(a[:480])  # INCOMING three frames ahead
    assert st.pop().shape == (0, 2)
    st.push_right(b[:160])
    out1 = st.pop()
    assert out1.shape == (160, 2)
    st.push_right(b[160:640])  # now OUTGOING is ahead
    out2 = st.pop()
    assert out2.shape == (320, 2)
    got = np.concatenate([out1, out2])
    np.testing.assert_array_equal(got[:, 0], a[:480])
    np.testing.assert_array_equal(got[:, 1], b[:480])
    assert st.buffered == (0, 160)
    assert st.padded_frames == [0, 0]


def test_stereo_interleaver_pads_a_stalled_track():
    st = StereoInterleaver(max_lag_s=0.1)
    a = pattern(0, 4000)
    st.push_left(a[:2000])  # OUTGOING sends nothing: its channel becomes silence
    out = st.pop()
    assert out.shape == (1200, 2)  # 800 samples (max lag) stay buffered
    np.testing.assert_array_equal(out[:, 0], a[:1200])
    assert not out[:, 1].any()
    assert st.padded_frames == [0, 1200]
    st.push_right(pattern(9000, 100).tobytes())  # the stalled track resumes: placed after the gap
    rest = st.flush()
    assert rest.shape == (800, 2)
    np.testing.assert_array_equal(rest[:, 0], a[1200:2000])
    np.testing.assert_array_equal(rest[:100, 1], pattern(9000, 100))
    assert not rest[100:, 1].any()


def test_stereo_interleaver_feeds_writer(tmp_path):
    path = tmp_path / "both.wav"
    st = StereoInterleaver()
    rng = np.random.default_rng(3)
    a, b = pattern(0, 8000), pattern(20_000, 8000)
    pa = pb = 0
    with WavWriter(path, channels=2) as w:
        while pa < a.size or pb < b.size:  # frames arrive in a random order per track
            if pb >= b.size or (pa < a.size and rng.random() < 0.5):
                st.push_left(a[pa : pa + 160])
                pa += 160
            else:
                st.push_right(b[pb : pb + 160])
                pb += 160
            w.append(st.pop())
        w.append(st.flush())
    params, got = read_wav(path)
    assert params.nchannels == 2 and params.nframes == 8000
    np.testing.assert_array_equal(got.reshape(-1, 2)[:, 0], a)
    np.testing.assert_array_equal(got.reshape(-1, 2)[:, 1], b)


def test_marker_tones_differ_by_direction():
    pause, resume = marker_tone("pause"), marker_tone("resume")
    n = int(0.12 * 8000)
    assert pause.dtype == np.int16 and pause.size == resume.size == 2 * n + int(0.04 * 8000)
    assert abs(dominant_frequency(pause[:n], 8000) - 880) < 10
    assert abs(dominant_frequency(pause[-n:], 8000) - 660) < 10
    assert abs(dominant_frequency(resume[:n], 8000) - 660) < 10
    assert abs(dominant_frequency(resume[-n:], 8000) - 880) < 10
    with pytest.raises(ValueError):
        marker_tone("stop")
