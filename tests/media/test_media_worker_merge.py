"""The media worker catches up on a backlog by merging the audio batches queued behind each
other (chimevoice/media/worker.py ``_merge``): each leg's track joined in order, other commands
kept in their place, and the recording it writes the same as batch by batch."""
from __future__ import annotations

import threading
import wave

import numpy as np

from chimevoice.media import worker
from chimevoice.media.worker import Audio, MediaWorker, RecordingStopped, StartRecording, StopRecording


def _pcm(start: int, n: int = 800) -> bytes:
    return (np.arange(start, start + n) % 30000).astype("<i2").tobytes()


def test_merge_joins_each_track_in_order_and_stops_at_the_next_command():
    w = MediaWorker(post=lambda e: None, set_taps=lambda *a: None)
    first = Audio([("A", "in", b"a1"), ("B", "out", b"b1")])
    w.send(Audio([("A", "in", b"a2"), ("A", "out", b"o2")]))
    w.send(Audio([("B", "out", b"b3"), ("A", "in", b"a3")]))
    stop = StopRecording("A", "r1")
    w.send(stop)
    w.send(Audio([("A", "in", b"a4")]))
    merged, nxt = w._merge(first)
    assert sorted(merged.batch) == sorted([("A", "in", b"a1a2a3"), ("B", "out", b"b1b3"), ("A", "out", b"o2")])
    assert nxt is stop
    assert w._q.get_nowait() == Audio([("A", "in", b"a4")])      # after the command: not merged
    # a merged track stays under 0.4 s: the next 0.1 s batch waits for the next round
    w.send(Audio([("C", "in", b"x" * 1600)]))
    merged, nxt = w._merge(Audio([("C", "in", b"y" * 5000)]))
    assert merged == Audio([("C", "in", b"y" * 5000)]) and nxt == Audio([("C", "in", b"x" * 1600)])
    merged, nxt = w._merge(Audio([("C", "in", b"y" * 3200)]))
    assert merged == Audio([("C", "in", b"y" * 3200)]) and nxt is worker._NOTHING     # nothing queued


def test_a_backlog_merged_records_the_same_audio(tmp_path):
    """Twenty batches queued before the worker runs (a worker that fell behind): the stereo
    recording holds every sample of both tracks, in order."""
    done = threading.Event()
    events: list = []

    def post(e):
        events.append(e)
        if isinstance(e, RecordingStopped):
            done.set()

    w = MediaWorker(post=post, set_taps=lambda *a: None)
    path = tmp_path / "both.wav"
    w.send(StartRecording("L", "r1", path, "BOTH"))
    for i in range(20):
        w.send(Audio([("L", "in", _pcm(i * 800)), ("L", "out", _pcm(10000 + i * 800))]))
    w.send(StopRecording("L", "r1"))
    w.start()
    try:
        assert done.wait(10), events
    finally:
        w.stop()
    with wave.open(str(path)) as f:
        assert f.getnchannels() == 2
        x = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").reshape(-1, 2)
    assert len(x) == 16000                          # 20 x 0.1 s, merged 4 at a time (0.4 s)
    assert np.array_equal(x[:, 0], np.arange(0, 16000) % 30000)
    assert np.array_equal(x[:, 1], np.arange(10000, 26000) % 30000)


def test_the_endpoint_reads_its_taps_again_only_once_the_worker_took_the_last_batch(tmp_path):
    """audio_ready() is the SIP endpoint's flow control: a worker that has not taken the last
    batch gets no new one (the audio waits in the taps and comes as one larger batch)."""
    taken = threading.Event()
    w = MediaWorker(post=lambda e: None, set_taps=lambda *a: None)
    assert w.audio_ready()
    w.on_audio([("L", "in", _pcm(0))])
    assert not w.audio_ready() and w.stats()["media_queue_audio_batches"] == 1
    w.on_audio([("L", "in", _pcm(800))])                 # a tap flush may still come behind it
    assert w.stats()["media_queue_audio_batches"] == 2
    w.send(StopRecording("L", "nothing"))                # a command queued behind the audio
    w.start()
    try:
        for _ in range(200):
            if w.audio_ready():
                taken.set()
                break
            threading.Event().wait(0.01)
        assert taken.is_set() and w.stats()["media_queue_audio_batches"] == 0
        w.on_audio([("L", "in", _pcm(1600))])
        for _ in range(200):
            if w.audio_ready():
                break
            threading.Event().wait(0.01)
        assert w.audio_ready()
    finally:
        w.stop()
