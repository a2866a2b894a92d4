"""The media worker: one thread that does everything the daemon does with audio frames.

Audio of a leg reaches Python only while something needs it: the SIP endpoint taps
the leg (pjsua2 ``FrameTap``) when the worker asks, and hands the captured PCM over
once per poll (:meth:`MediaWorker.on_audio`, called on the pjsua2 thread). Control
commands (typed values, :class:`MediaCommand`) come from the asyncio loop through
:meth:`MediaWorker.send`. Both go through one queue and one dispatch table, so all
state below is owned by the worker thread and needs no locks.

Per leg the worker runs

* in-band DTMF detection (Q.24 detector, :mod:`chimevoice.media.dtmf`) on the raw
  incoming audio, when the far end did not negotiate RFC 4733;
* VoiceFocus noise suppression on the incoming audio (:mod:`chimevoice.media.voicefocus`),
  which then feeds the recordings;
* recordings: RecordAudio (incoming track, duration and silence limits) and call
  recording (INCOMING / OUTGOING / BOTH as stereo, pause and resume with marker tones),
  written by the crash-safe :class:`~chimevoice.media.wavwriter.WavWriter`.

Results go back to the loop as small event objects through *post*.
"""
from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from ..osthread import set_os_thread_name
from .dtmf import DtmfDetector, dtmf_tone
from .silence import SilenceDetector
from .wavwriter import PART_SUFFIX, StereoInterleaver, WavWriter, marker_tone, recover

log = structlog.get_logger("chimevoice.media")

RATE = 8000
FRAME = 160                                   # 20 ms at 8 kHz
# The DTMF detector's cost is mostly per call of feed(): give it 200 ms at a time
# (a key is then reported at most 200 ms after its minimum duration; docs/media.md).
INBAND_CHUNK = 1600


# -- events to the loop --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InbandDigit:
    leg_id: str
    digit: str


@dataclass(frozen=True, slots=True)
class RecordingStarted:
    leg_id: str
    record_id: str


@dataclass(frozen=True, slots=True)
class RecordingStopped:
    leg_id: str
    record_id: str
    reason: str                      # stopped | terminator | duration | silence | hangup | abandoned | error
    path: str
    duration_s: float
    error: str | None = None


MediaEvent = InbandDigit | RecordingStarted | RecordingStopped


_NOTHING = object()       # the worker holds no command taken from the queue
_MERGE_MAX_BYTES = 6400   # a merged track at most 0.4 s: below the stereo interleaver's 0.5 s lag


def _span(batch: list[tuple[str, str, bytes]]) -> int:
    """The longest track of an audio batch, in bytes."""
    return max((len(pcm) for _, _, pcm in batch), default=0)


# -- commands from the loop (and audio from the pjsua2 thread) ------------------------
@dataclass(frozen=True, slots=True)
class Audio:
    """Captured PCM of tapped legs, one poll's worth (from the SIP endpoint)."""

    batch: list[tuple[str, str, bytes]]
    """``(leg_id, track, pcm)``: *track* ``in`` (from the far end) or ``out`` (what it hears);
    *pcm* 16-bit little-endian mono at 8 kHz."""


@dataclass(frozen=True, slots=True)
class SetInband:
    """In-band DTMF detection on a leg's incoming audio on or off."""

    leg_id: str
    """The leg."""

    enabled: bool
    """On or off."""


@dataclass(frozen=True, slots=True)
class SetVoiceFocus:
    """Noise suppression on a leg's incoming audio on or off."""

    leg_id: str
    """The leg."""

    enabled: bool
    """On or off."""


@dataclass(frozen=True, slots=True)
class StartRecording:
    """Record a leg into *path* (a crash-safe WAV); ``RecordingStarted`` or
    ``RecordingStopped`` (error) follows."""

    leg_id: str
    """The leg."""

    record_id: str
    """The caller's id of this recording."""

    path: Path
    """The final file name (written as ``<path>.part`` until closed)."""

    track: str = "INCOMING"
    """``INCOMING``, ``OUTGOING`` or ``BOTH`` (stereo, INCOMING left)."""

    max_s: float | None = None
    """Stop after this many seconds (None: no limit)."""

    silence_s: float | None = None
    """Stop after this much silence (None: never)."""

    silence_threshold: float = 200
    """Silence level (RecordAudio's SilenceThreshold)."""

    metadata: tuple[tuple[str, str], ...] = ()
    """Stored as ``user.*`` extended attributes of the file."""

    render_keys: bool = False
    """Keys the leg sends out of band are mixed into the INCOMING audio as tones
    (call recording, 02a §2.3)."""


@dataclass(frozen=True, slots=True)
class StopRecording:
    """Close a recording (``RecordingStopped`` with *reason* follows)."""

    leg_id: str
    """The leg."""

    record_id: str
    """The recording."""

    reason: str = "stopped"
    """Reported back in ``RecordingStopped``."""


@dataclass(frozen=True, slots=True)
class PauseRecording:
    """Pause (marker tone, then silence) or resume (marker tone, then live audio)."""

    leg_id: str
    """The leg."""

    record_id: str
    """The recording."""

    paused: bool
    """Pause (True) or resume (False)."""


@dataclass(frozen=True, slots=True)
class LegEnded:
    """The leg hung up: finish its recordings and forget it."""

    leg_id: str
    """The leg."""


@dataclass(frozen=True, slots=True)
class KeyPressed:
    """A key the leg sent out of band (RFC 4733, SIP INFO): its tone goes into the leg's
    call recordings, as the caller's keys are heard in Chime's (02a §2.3)."""

    leg_id: str
    """The leg."""

    digit: str
    """The key."""


@dataclass(frozen=True, slots=True)
class CloseAll:
    """Finish every open recording (at shutdown)."""


MediaCommand = (Audio | SetInband | SetVoiceFocus | StartRecording | StopRecording | PauseRecording
                | LegEnded | KeyPressed | CloseAll)


@dataclass(slots=True, eq=False)
class _Recording:
    record_id: str
    leg_id: str
    path: Path
    track: str                                 # INCOMING | OUTGOING | BOTH
    writer: WavWriter
    max_samples: int | None
    silence: SilenceDetector | None
    journal: Path | None
    paused: bool = False
    marker: np.ndarray | None = None           # tone still to write over the audio
    render_keys: bool = False
    key_tone: np.ndarray | None = None         # an out-of-band key, still to mix into INCOMING
    written: int = 0                           # samples per channel
    # BOTH: the two tracks arrive separately; never more than 200 ms of one held back.
    stereo: StereoInterleaver = field(default_factory=lambda: StereoInterleaver(rate=RATE, max_lag_s=0.2))

    @property
    def wants_in(self) -> bool:
        return self.track in ("INCOMING", "BOTH")

    @property
    def wants_out(self) -> bool:
        return self.track in ("OUTGOING", "BOTH")


@dataclass(slots=True, eq=False)
class _Leg:
    leg_id: str
    inband: DtmfDetector | None = None
    inband_buf: list[np.ndarray] = field(default_factory=list)
    inband_n: int = 0
    focus: Any = None                          # a VoiceFocus suppressor, or None
    recordings: dict[str, _Recording] = field(default_factory=dict)


class MediaWorker:
    def __init__(self, post: Callable[[MediaEvent], None], set_taps: Callable[[str, bool, bool], None],
                 *, journal_dir: Path | None = None,
                 voice_focus_factory: Callable[..., Any] | None = None) -> None:
        """*post* hands an event to the loop (thread-safe); *set_taps(leg, in, out)* asks the
        SIP endpoint for a leg's audio; *journal_dir* keeps one file per open recording so
        that recordings cut short by a crash are repaired at the next start."""
        self._post = post
        self._set_taps = set_taps
        self._journal = journal_dir
        self._focus_factory = voice_focus_factory
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._legs: dict[str, _Leg] = {}
        self._taps: dict[str, tuple[bool, bool]] = {}
        self._thread: threading.Thread | None = None
        # Finished recordings are closed here (header, fsync, rename, fsync of the directory),
        # not on the media thread: a wave of hangups would stall every leg's audio behind fsyncs.
        self._closer: ThreadPoolExecutor | None = None
        self._closing = 0               # handed to the closers, not yet final (a gauge)
        self._closing_lock = threading.Lock()
        self.frames_processed = 0
        self.busy_s = 0.0
        # Audio batches handed over (written by the pjsua2 thread only) and taken off the
        # queue (by the worker only): audio_ready() compares them, no lock needed.
        self._audio_put = 0
        self._audio_taken = 0

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        if self._journal is not None:
            self._journal.mkdir(parents=True, exist_ok=True)
        self._closer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cv-rec-close",
                                          initializer=set_os_thread_name, initargs=("cv-rec-close",))
        self._thread = threading.Thread(target=self._run, name="media", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish every open recording (fsynced), then end the thread."""
        if self._thread is None:
            return
        self._q.put(CloseAll())
        self._q.put(None)
        self._thread.join(timeout)
        self._thread = None
        if self._closer is not None:
            self._closer.shutdown(wait=True)          # every finished recording is on disk
            self._closer = None

    def stats(self) -> dict[str, float]:
        """Gauges for /metrics (read from another thread: a snapshot, not exact)."""
        legs = list(self._legs.values())
        return {"media_worker_busy_seconds": round(self.busy_s, 3),
                "media_frames_processed": self.frames_processed,
                "media_queue_commands": self._q.qsize(),
                "media_queue_audio_batches": self._audio_put - self._audio_taken,
                "media_legs_tapped": len(self._taps),
                "media_inband_detectors": sum(1 for leg in legs if leg.inband is not None),
                "media_voice_focus_legs": sum(1 for leg in legs if leg.focus is not None and leg.focus.enabled),
                "recordings_open": sum(len(leg.recordings) for leg in legs),
                "recordings_closing": self._closing}

    # -- inputs (any thread) ----------------------------------------------------------
    def send(self, cmd: MediaCommand) -> None:
        """Queue a command for the worker thread (returns at once)."""
        self._q.put(cmd)

    def on_audio(self, batch: list[tuple[str, str, bytes]]) -> None:
        """The SIP endpoint's audio callback (on the pjsua2 thread)."""
        self._audio_put += 1
        self._q.put(Audio(batch))

    def audio_ready(self) -> bool:
        """No audio batch is waiting in the queue: the SIP endpoint reads its taps only then
        (any thread). Behind, the worker then gets one batch of all the audio the taps
        gathered meanwhile, instead of a queue of 100 ms batches whose audio would pile up
        in Python memory (the 1000-call soak held up to 200 MB that way); the taps hold up
        to 5 s each (``droppedBytes`` counts beyond that)."""
        return self._audio_taken >= self._audio_put

    # -- the thread ---------------------------------------------------------------------
    def _run(self) -> None:
        set_os_thread_name("cv-media")
        held: Any = _NOTHING
        while True:
            cmd, held = (self._q.get() if held is _NOTHING else held), _NOTHING
            if cmd is None:
                return
            if type(cmd) is Audio:
                self._audio_taken += 1
                cmd, held = self._merge(cmd)
            t0 = time.perf_counter()
            try:
                self._dispatch[type(cmd)](self, cmd)
            except Exception:  # noqa: BLE001 - the media thread must survive any one leg
                log.exception("media_worker_failed", command=type(cmd).__name__)
            self.busy_s += time.perf_counter() - t0

    def _merge(self, first: Audio) -> tuple[Audio, Any]:
        """*first* and the audio batches queued right behind it as one batch, each leg's track
        joined in order, and the command that stopped the merge (or ``_NOTHING``). A worker
        that fell behind then pays its per-leg cost once for all it catches up on, not once per
        100 ms poll, so a backlog shrinks instead of holding ever more audio (the 1000-call
        soak held about 200 MB of it). A merged track stays under 0.4 s, so a BOTH recording's
        interleaver still gets both sides within its 0.5 s lag. Commands other than audio keep
        their place: the merge stops at the first one."""
        batches, nxt = [first.batch], _NOTHING
        span = _span(first.batch)
        while span < _MERGE_MAX_BYTES:
            try:
                cmd = self._q.get_nowait()
            except queue.Empty:
                break
            more = _span(cmd.batch) if type(cmd) is Audio else 0
            if type(cmd) is not Audio or span + more > _MERGE_MAX_BYTES:
                nxt = cmd
                break
            self._audio_taken += 1
            batches.append(cmd.batch)
            span += more
        if len(batches) == 1:
            return first, nxt
        parts: dict[tuple[str, str], list[bytes]] = {}
        for batch in batches:
            for leg_id, track, pcm in batch:
                parts.setdefault((leg_id, track), []).append(pcm)
        return Audio([(leg_id, track, b"".join(pcms)) for (leg_id, track), pcms in parts.items()]), nxt

    def _on_audio(self, cmd: Audio) -> None:
        # a leg's two tracks of the same span together: a BOTH recording gets both sides
        # before it interleaves (one side alone would run ahead of the other by the span)
        legs: dict[str, list[bytes]] = {}
        for leg_id, track, pcm in cmd.batch:
            pair = legs.setdefault(leg_id, [b"", b""])
            pair[track != "in"] += pcm
        for leg_id, (pin, pout) in legs.items():
            self._audio(leg_id, pin, pout)

    #: The one dispatch point of the media-worker boundary: command type -> handler.
    _dispatch: dict[type, Callable[[MediaWorker, Any], None]] = {
        Audio: _on_audio,
        SetInband: lambda self, c: self._set_inband(c.leg_id, c.enabled),
        SetVoiceFocus: lambda self, c: self._set_focus(c.leg_id, c.enabled),
        StartRecording: lambda self, c: self._start_recording(
            c.leg_id, c.record_id, Path(c.path), c.track, c.max_s, c.silence_s, c.silence_threshold,
            dict(c.metadata), c.render_keys),
        StopRecording: lambda self, c: self._stop_recording(c.leg_id, c.record_id, c.reason),
        PauseRecording: lambda self, c: self._pause_recording(c.leg_id, c.record_id, c.paused),
        LegEnded: lambda self, c: self._leg_ended(c.leg_id),
        KeyPressed: lambda self, c: self._key_pressed(c.leg_id, c.digit),
        CloseAll: lambda self, c: self._close_all(),
    }

    def _leg(self, leg_id: str) -> _Leg:
        leg = self._legs.get(leg_id)
        if leg is None:
            leg = self._legs[leg_id] = _Leg(leg_id)
        return leg

    def _update_taps(self, leg: _Leg) -> None:
        want_in = leg.inband is not None or any(r.wants_in for r in leg.recordings.values())
        want_out = any(r.wants_out for r in leg.recordings.values())
        if self._taps.get(leg.leg_id, (False, False)) != (want_in, want_out):
            self._taps[leg.leg_id] = (want_in, want_out)
            self._set_taps(leg.leg_id, want_in, want_out)
        if not (want_in or want_out) and leg.focus is None:
            self._taps.pop(leg.leg_id, None)
            self._legs.pop(leg.leg_id, None)

    def _set_inband(self, leg_id: str, enabled: bool) -> None:
        leg = self._leg(leg_id)
        if enabled and leg.inband is None:
            leg.inband = DtmfDetector(RATE)
        elif not enabled:
            leg.inband = None
            leg.inband_buf, leg.inband_n = [], 0
        self._update_taps(leg)

    def _set_focus(self, leg_id: str, enabled: bool) -> None:
        """One VoiceFocus per leg, switched on and off in place: its constant one-frame
        delay means a switch never shifts the leg's audio (docs/voicefocus.md)."""
        leg = self._leg(leg_id)
        if leg.focus is None and enabled and self._focus_factory is not None:
            leg.focus = self._focus_factory(enabled=True)
        elif leg.focus is not None:
            leg.focus.enabled = enabled
        self._update_taps(leg)

    def _audio(self, leg_id: str, pcm_in: bytes, pcm_out: bytes) -> None:
        """One span of a leg's audio: *pcm_in* from the far end, *pcm_out* what it heard."""
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        xin = np.frombuffer(pcm_in, dtype="<i2") if len(pcm_in) >= 2 else None
        xout = np.frombuffer(pcm_out, dtype="<i2") if len(pcm_out) >= 2 else None
        self.frames_processed += (len(pcm_in) + len(pcm_out)) // (2 * FRAME)
        if xin is not None and leg.inband is not None:
            leg.inband_buf.append(xin)
            leg.inband_n += len(xin)
            if leg.inband_n >= INBAND_CHUNK:
                chunk = np.concatenate(leg.inband_buf) if len(leg.inband_buf) > 1 else leg.inband_buf[0]
                leg.inband_buf, leg.inband_n = [], 0
                for hit in leg.inband.feed(chunk):
                    self._post(InbandDigit(leg_id, hit.digit))
        if not leg.recordings:
            return
        clean = leg.focus.process(xin) if xin is not None and leg.focus is not None else xin
        for rec in list(leg.recordings.values()):
            a = clean if rec.wants_in else None
            b = xout if rec.wants_out else None
            if a is not None or b is not None:
                self._feed(leg, rec, a, b)

    # -- recordings ---------------------------------------------------------------------
    def _start_recording(self, leg_id: str, record_id: str, path: Path, track: str,
                         max_s: float | None, silence_s: float | None, threshold: float,
                         metadata: dict[str, str], render_keys: bool = False) -> None:
        leg = self._leg(leg_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = WavWriter(path, channels=2 if track == "BOTH" else 1, rate=RATE)
        except OSError as exc:
            log.error("recording_open_failed", leg_id=leg_id, path=str(path), error=str(exc))
            self._post(RecordingStopped(leg_id, record_id, "error", str(path), 0.0, str(exc)))
            self._update_taps(leg)
            return
        journal = None
        if self._journal is not None:
            journal = self._journal / f"{record_id}-{leg_id}.json"
            _write_json(journal, {"path": str(path), "metadata": metadata})
        _set_metadata(writer.part_path, metadata)
        rec = _Recording(record_id, leg_id, path, track, writer,
                         None if max_s is None else int(max_s * RATE),
                         None if silence_s is None else SilenceDetector(silence_s, threshold, rate=RATE),
                         journal, render_keys=render_keys)
        leg.recordings[record_id] = rec
        self._update_taps(leg)
        self._post(RecordingStarted(leg_id, record_id))

    def _feed(self, leg: _Leg, rec: _Recording, xin: np.ndarray | None, xout: np.ndarray | None) -> None:
        if xin is not None and rec.key_tone is not None:
            xin = _mix_in(xin, rec.key_tone[:len(xin)])
            rec.key_tone = rec.key_tone[len(xin):] if len(rec.key_tone) > len(xin) else None
        if rec.track == "BOTH":
            if xin is not None:
                rec.stereo.push_left(xin)
            if xout is not None:
                rec.stereo.push_right(xout)
            block = rec.stereo.pop()
            if len(block) == 0:
                return
            detect = block[:, 0]
        else:
            mono = xin if xin is not None else xout
            if mono is None:
                return
            block = detect = mono
        self._write(leg, rec, block, detect)

    def _write(self, leg: _Leg, rec: _Recording, block: np.ndarray, detect: np.ndarray) -> None:
        n = len(block)
        if rec.max_samples is not None and rec.written + n >= rec.max_samples:
            n = rec.max_samples - rec.written
            block, detect = block[:n], detect[:n]
        silent = False
        if rec.silence is not None and not rec.paused and rec.silence.feed(detect):
            # SilenceDurationInSeconds reached inside this block: keep the audio up to there.
            silent = True
            stop = rec.silence.stop_sample
            assert stop is not None                  # feed() returned True
            n = max(0, min(n, stop - rec.written))
            block = block[:n]
        out = block
        if rec.paused or rec.marker is not None:
            out = np.zeros_like(block) if rec.paused else block.copy()
            if rec.marker is not None:
                m = rec.marker[:n]
                rec.marker = rec.marker[n:] if len(rec.marker) > n else None
                if out.ndim == 2:
                    out[:len(m), :] = m[:, None]
                else:
                    out[:len(m)] = m
        if n > 0:
            rec.writer.append(out)
            rec.written += n
        if silent:
            self._finish(leg, rec, "silence")
        elif rec.max_samples is not None and rec.written >= rec.max_samples:
            self._finish(leg, rec, "duration")

    def _key_pressed(self, leg_id: str, digit: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        try:
            tone = dtmf_tone(digit)
        except ValueError:
            return
        for rec in leg.recordings.values():
            if rec.wants_in and rec.render_keys:
                rec.key_tone = tone

    def _pause_recording(self, leg_id: str, record_id: str, paused: bool) -> None:
        leg = self._legs.get(leg_id)
        rec = leg.recordings.get(record_id) if leg else None
        if rec is None or rec.paused == paused:
            return
        rec.paused = paused
        rec.marker = marker_tone("pause" if paused else "resume", rate=RATE)

    def _stop_recording(self, leg_id: str, record_id: str, reason: str) -> None:
        leg = self._legs.get(leg_id)
        rec = leg.recordings.get(record_id) if leg else None
        if leg is not None and rec is not None:
            self._finish(leg, rec, reason)

    def _finish(self, leg: _Leg, rec: _Recording, reason: str) -> None:
        leg.recordings.pop(rec.record_id, None)
        if rec.track == "BOTH":
            # What one side still holds, the other side padded with silence.
            rest = rec.stereo.flush()
            if rec.max_samples is not None:
                rest = rest[:max(0, rec.max_samples - rec.written)]
            if len(rest):
                rec.writer.append(rest)
                rec.written += len(rest)
        if self._closer is not None:
            with self._closing_lock:
                self._closing += 1
            self._closer.submit(self._close, leg.leg_id, rec, reason)
        else:
            self._close(leg.leg_id, rec, reason)
        self._update_taps(leg)

    def _close(self, leg_id: str, rec: _Recording, reason: str) -> None:
        """Make a finished recording final and tell the loop (on a closer thread)."""
        try:
            self._close_file(leg_id, rec, reason)
        except Exception:  # noqa: BLE001 - a closer thread must report, never die silently
            log.exception("recording_close_failed", leg_id=leg_id, path=str(rec.path))
            self._post(RecordingStopped(leg_id, rec.record_id, reason, str(rec.path), rec.written / RATE,
                                        "internal error"))
        finally:
            with self._closing_lock:
                self._closing -= 1

    def _close_file(self, leg_id: str, rec: _Recording, reason: str) -> None:
        error = None
        try:
            rec.writer.close()
        except OSError as exc:
            error = str(exc)
            log.error("recording_close_failed", leg_id=leg_id, path=str(rec.path), error=error)
        if rec.journal is not None:
            try:
                rec.journal.unlink()
            except OSError:
                pass
        duration = rec.written / RATE
        _set_metadata(rec.path, {"recording-duration": f"{duration:.3f}"})
        log.info("recording_finished", leg_id=leg_id, record_id=rec.record_id, reason=reason,
                 path=str(rec.path), duration_s=round(duration, 3))
        self._post(RecordingStopped(leg_id, rec.record_id, reason, str(rec.path), duration, error))

    def _leg_ended(self, leg_id: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        for rec in list(leg.recordings.values()):
            self._finish(leg, rec, "hangup")
        self._legs.pop(leg_id, None)
        if self._taps.pop(leg_id, None) is not None:
            self._set_taps(leg_id, False, False)

    def _close_all(self) -> None:
        for leg_id in list(self._legs):
            self._leg_ended(leg_id)


def _mix_in(x: np.ndarray, tone: np.ndarray) -> np.ndarray:
    out = x.astype(np.int32)
    out[:len(tone)] += tone
    return np.clip(out, -32768, 32767).astype(np.int16)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        # json.dumps, not json.dump: dump streams through the pure-Python encoder, whose
        # nested closures are a reference cycle per call (left to the cyclic collector)
        fh.write(json.dumps(data))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _set_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Object metadata (02a §3.5) as user extended attributes; best effort."""
    for name, value in metadata.items():
        try:
            os.setxattr(path, f"user.{name}", str(value).encode())
        except OSError:
            return


def open_recordings(journal_dir: Path) -> list[Path]:
    """Journal entries of the recordings an earlier run left open (see MediaWorker journal_dir).

    A snapshot taken before this run records anything: entries written later belong to this
    run's own recordings, which :func:`recover_recordings` must not touch."""
    return sorted(journal_dir.glob("*.json")) if journal_dir.is_dir() else []


def recover_recordings(entries: list[Path]) -> list[str]:
    """Repair the recordings of *entries* (from :func:`open_recordings`); returns their paths.

    Each entry is removed once its recording is repaired, so a repair cut short by another
    crash resumes at the next start. Blocking file I/O with an fsync per file: the daemon runs
    it off the event loop, beside new calls."""
    fixed: list[str] = []
    for entry in entries:
        try:
            data = json.loads(entry.read_text())
            path = Path(data["path"])
            part = path.with_name(path.name + PART_SUFFIX)
            if part.exists() or path.exists():
                recover(part if part.exists() else path)
                fixed.append(str(path))
        except Exception:  # noqa: BLE001 - a bad journal entry must not stop the daemon
            log.exception("recording_recover_failed", journal=str(entry))
        try:
            entry.unlink()
        except OSError:
            pass
    return fixed
