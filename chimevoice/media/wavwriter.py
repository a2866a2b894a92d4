"""Crash-safe incremental WAV writer for recordings, crash recovery, stereo interleaving.

File format: RIFF/WAVE, ``WAVE_FORMAT_PCM``, 16-bit signed little-endian, 1 or 2 channels
(stereo: channel 0 = left = ``INCOMING``, channel 1 = right = ``OUTGOING``, spec 02a §2.4), 8000 Hz
by default. The header is the canonical 44 bytes (``RIFF``, ``fmt `` of 16 bytes, ``data``) and
the ``data`` chunk is always the last chunk, so the audio runs from byte 44 to the end of the file.

Crash safety (see ``docs/recording.md``):

- While recording, the file is ``<path>.part`` (``part_suffix``); :meth:`WavWriter.close` finalises
  the header, fsyncs the file, renames it to ``<path>`` and fsyncs the directory. A complete
  recording therefore appears under its final name atomically; a ``.part`` file is always a crash
  leftover (or a recording in progress).
- The header (with zero sizes) is written when the file is created, so the file is a valid WAV
  from its first byte on.
- Audio is written with ``os.write`` on an unbuffered descriptor: once :meth:`WavWriter.append`
  returns, the bytes are in the kernel's page cache and survive ``kill -9`` of the process.
- Every ``refresh_s`` seconds of audio (default 0.5 s) the RIFF and data sizes are rewritten in
  place (``os.pwrite``), *after* the audio they cover was written. After ``kill -9`` the file opens
  with any WAV reader and holds at least the audio up to the last refresh; :func:`recover` then
  extends the sizes to all the audio on disk. With ``durable=True`` each refresh also fsyncs, so
  the same holds after a power loss (costs one fsync per refresh per recording).

:func:`recover` runs at daemon start over the recordings directory (never on files being
written): it sets the sizes to the real data length, cuts a trailing partial sample frame, and
renames ``.part`` files to their final name.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .audio import pcm16_header

__all__ = [
    "HEADER_BYTES",
    "PART_SUFFIX",
    "WavWriter",
    "RecoveredFile",
    "recover",
    "interleave",
    "StereoInterleaver",
    "marker_tone",
]

HEADER_BYTES = 44
PART_SUFFIX = ".part"
_MAX_DATA = 0xFFFFFFFF - (HEADER_BYTES - 8)  # RIFF size field is 32 bits


def _header(rate: int, channels: int, data_bytes: int) -> bytes:
    return pcm16_header(rate, data_bytes, channels)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _as_pcm_bytes(samples: bytes | bytearray | memoryview | np.ndarray, channels: int) -> bytes:
    """Little-endian int16 bytes of ``samples`` (bytes as they are; arrays must be int16)."""
    if isinstance(samples, (bytes, bytearray, memoryview)):
        data = bytes(samples)
    else:
        arr = np.asarray(samples)
        if arr.dtype != np.int16:
            raise TypeError(f"samples must be int16, not {arr.dtype}")
        if arr.ndim == 2:
            if arr.shape[1] != channels:
                raise ValueError(f"array has {arr.shape[1]} channels, writer has {channels}")
        elif arr.ndim != 1:
            raise ValueError("samples must be 1-D (interleaved) or (frames, channels)")
        data = arr.astype("<i2", copy=False).tobytes()
    if len(data) % (2 * channels):
        raise ValueError(f"{len(data)} bytes is not a whole number of {channels}-channel 16-bit frames")
    return data


class WavWriter:
    """Append-only 16-bit PCM WAV file, safe against ``kill -9`` (module docstring).

    Thread-safe: ``append`` (media thread) and ``close`` (any thread) may race; appends after
    ``close`` raise ``ValueError``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        channels: int = 1,
        rate: int = 8000,
        refresh_s: float = 0.5,
        durable: bool = False,
        part_suffix: str | None = PART_SUFFIX,
    ) -> None:
        if channels not in (1, 2):
            raise ValueError("channels must be 1 or 2")
        if rate <= 0:
            raise ValueError("rate must be positive")
        if refresh_s <= 0:
            raise ValueError("refresh_s must be positive")
        self.path = Path(path)
        self.channels = channels
        self.rate = rate
        self.block_align = 2 * channels
        self.durable = durable
        self.part_path = self.path.with_name(self.path.name + part_suffix) if part_suffix else self.path
        self._refresh_bytes = max(1, int(round(refresh_s * rate))) * self.block_align
        self._lock = threading.Lock()
        self._data_bytes = 0  # written to the file
        self._header_bytes = 0  # data size the header on disk claims
        self._closed = False
        self._fd = os.open(self.part_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(self._fd, _header(rate, channels, 0))
            if durable:
                os.fsync(self._fd)
                _fsync_dir(self.part_path.parent)
        except BaseException:
            os.close(self._fd)
            raise

    # -- properties -------------------------------------------------------------------------

    @property
    def frames(self) -> int:
        """Sample frames written so far."""
        return self._data_bytes // self.block_align

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    @property
    def frames_in_header(self) -> int:
        """Sample frames the header on disk currently declares (what a reader sees after a crash)."""
        return self._header_bytes // self.block_align

    @property
    def closed(self) -> bool:
        return self._closed

    # -- writing ----------------------------------------------------------------------------

    def append(self, samples: bytes | bytearray | memoryview | np.ndarray) -> None:
        """Append 16-bit PCM: bytes (interleaved little-endian), or an int16 array that is 1-D
        (mono, or interleaved stereo) or ``(frames, channels)``."""
        data = _as_pcm_bytes(samples, self.channels)
        if not data:
            return
        with self._lock:
            if self._closed:
                raise ValueError("append to a closed WavWriter")
            if self._data_bytes + len(data) > _MAX_DATA:
                raise OverflowError("WAV data would exceed 4 GiB")
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self._data_bytes += len(data)
            if self._data_bytes - self._header_bytes >= self._refresh_bytes:
                self._write_sizes()
                if self.durable:
                    os.fsync(self._fd)

    def append_silence(self, frames: int) -> None:
        """Append ``frames`` sample frames of digital silence (pauses, gaps without RTP)."""
        if frames > 0:
            self.append(bytes(frames * self.block_align))

    def refresh(self) -> None:
        """Rewrite the header sizes now (normally done every ``refresh_s`` of audio)."""
        with self._lock:
            if not self._closed:
                self._write_sizes()

    def _write_sizes(self) -> None:
        n = self._data_bytes
        os.pwrite(self._fd, struct.pack("<I", 36 + n), 4)
        os.pwrite(self._fd, struct.pack("<I", n), 40)
        self._header_bytes = n

    def close(self) -> Path:
        """Finalise the header, fsync, rename ``.part`` to the final name, fsync the directory.

        Returns the final path. Idempotent.
        """
        with self._lock:
            if self._closed:
                return self.path
            try:
                self._write_sizes()
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._closed = True
            if self.part_path != self.path:
                os.replace(self.part_path, self.path)
            _fsync_dir(self.path.parent)
            return self.path

    def abort(self) -> None:
        """Close and delete the file (a recording that must not be kept)."""
        with self._lock:
            if not self._closed:
                os.close(self._fd)
                self._closed = True
            try:
                os.unlink(self.part_path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "WavWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------
# recovery
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecoveredFile:
    """What :func:`recover` did to one file."""

    path: Path  # where the file is now
    original_path: Path  # where it was found (differs when a .part file was renamed)
    declared_data_bytes: int  # data size the header claimed (0xFFFFFFFF kept as is)
    data_bytes: int  # data size now (whole sample frames)
    trimmed_bytes: int  # bytes of a partial sample frame cut from the end
    renamed: bool
    error: str = ""  # non-empty: the file was left alone (not a WAV we can repair)

    @property
    def frames_recovered(self) -> int:
        return self.data_bytes


def _parse_header(fh) -> tuple[int, int, int, int, int]:
    """(riff_size, block_align, data_offset, declared_data_bytes, fmt_tag) of a RIFF/WAVE file.

    Walks the chunks up to ``data``; raises ValueError when it is not a WAV file.
    """
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    riff_size = struct.unpack("<I", head[4:8])[0]
    block_align = 0
    fmt_tag = 0
    pos = 12
    while True:
        fh.seek(pos)
        ch = fh.read(8)
        if len(ch) < 8:
            raise ValueError("no data chunk")
        cid, size = ch[:4], struct.unpack("<I", ch[4:8])[0]
        if cid == b"fmt ":
            fmt = fh.read(min(size, 16))
            if len(fmt) < 16:
                raise ValueError("short fmt chunk")
            fmt_tag, _channels, _rate, _bps, block_align, _bits = struct.unpack("<HHIIHH", fmt)
        elif cid == b"data":
            if block_align <= 0:
                raise ValueError("data chunk before a valid fmt chunk")
            return riff_size, block_align, pos + 8, size, fmt_tag
        pos += 8 + size + (size & 1)


def _repair(path: Path) -> tuple[int, int, int, bool]:
    """Fix one file in place: (declared, data_bytes_now, trimmed, changed)."""
    with open(path, "r+b") as fh:
        file_size = os.fstat(fh.fileno()).st_size
        riff_size, block_align, data_offset, declared, _tag = _parse_header(fh)
        available = max(0, file_size - data_offset)
        # The data chunk is the last chunk in files this writer makes; for a file where valid
        # chunks follow the declared data, keep the declared size (nothing to recover).
        declared_end = data_offset + declared + (declared & 1)
        if declared != 0xFFFFFFFF and declared <= available and _chunks_follow(fh, declared_end, file_size):
            data = declared
            trimmed = 0
            final_size = file_size
        else:
            data = available - available % block_align
            trimmed = available - data
            final_size = data_offset + data
        changed = False
        if trimmed:
            fh.truncate(data_offset + data)
            changed = True
        new_riff = final_size - 8
        if declared != data or riff_size != new_riff:
            fh.seek(4)
            fh.write(struct.pack("<I", new_riff & 0xFFFFFFFF))
            fh.seek(data_offset - 4)
            fh.write(struct.pack("<I", data))
            changed = True
        if changed:
            fh.flush()
            os.fsync(fh.fileno())
        return declared, data, trimmed, changed


# Chunks other writers put after ``data``; anything else after the declared data is audio.
_TRAILING_CHUNKS = {
    b"LIST", b"id3 ", b"ID3 ", b"cue ", b"smpl", b"bext", b"JUNK", b"junk",
    b"PAD ", b"fact", b"inst", b"acid", b"plst", b"labl", b"note", b"ltxt",
}


def _chunks_follow(fh, pos: int, file_size: int) -> bool:
    """True when the bytes from ``pos`` to the end are nothing, or a sequence of known chunks
    ending exactly at the end of the file (then the declared data size is right)."""
    while pos < file_size:
        if file_size - pos < 8:
            return False
        fh.seek(pos)
        ch = fh.read(8)
        cid, size = ch[:4], struct.unpack("<I", ch[4:8])[0]
        if cid not in _TRAILING_CHUNKS or pos + 8 + size > file_size:
            return False
        pos += 8 + size + (size & 1)
    return True


def _candidates(target: Path, part_suffix: str) -> Iterable[Path]:
    if target.is_dir():
        for p in sorted(target.rglob("*")):
            if p.is_file() and (p.name.lower().endswith(".wav") or p.name.lower().endswith(".wav" + part_suffix)):
                yield p
    else:
        yield target


def recover(
    path_or_dir: str | os.PathLike[str],
    *,
    part_suffix: str = PART_SUFFIX,
    rename_parts: bool = True,
) -> list[RecoveredFile]:
    """Repair WAV files left by a crash; returns one :class:`RecoveredFile` per file it changed,
    renamed or could not repair. Files that were already correct are not listed.

    A directory is searched recursively for ``*.wav`` and ``*.wav<part_suffix>`` files. For each:
    the data size becomes the bytes actually on disk after the data chunk (cut to whole sample
    frames, a trailing partial frame is truncated away), and the RIFF size follows. A ``.part``
    file is renamed to its final name when ``rename_parts`` is true and that name is free (else it
    keeps its name and is still repaired). Must not run on files still being written.
    """
    target = Path(path_or_dir)
    results: list[RecoveredFile] = []
    for p in _candidates(target, part_suffix):
        try:
            declared, data, trimmed, changed = _repair(p)
        except (OSError, ValueError, struct.error) as exc:
            results.append(RecoveredFile(p, p, 0, 0, 0, False, error=str(exc) or type(exc).__name__))
            continue
        final = p
        renamed = False
        if rename_parts and part_suffix and p.name.endswith(part_suffix):
            dest = p.with_name(p.name[: -len(part_suffix)])
            if not dest.exists():
                os.replace(p, dest)
                final, renamed = dest, True
        if renamed:
            _fsync_dir(p.parent)
        if changed or renamed:
            results.append(RecoveredFile(final, p, declared, data, trimmed, renamed))
    return results


# ---------------------------------------------------------------------------------------
# stereo
# ---------------------------------------------------------------------------------------


def _mono(samples: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    if isinstance(samples, (bytes, bytearray, memoryview)):
        b = bytes(samples)
        if len(b) % 2:
            raise ValueError("odd number of bytes for 16-bit PCM")
        return np.frombuffer(b, dtype="<i2").astype(np.int16)
    arr = np.asarray(samples)
    if arr.dtype != np.int16 or arr.ndim != 1:
        raise TypeError("mono samples must be a 1-D int16 array or bytes")
    return arr


def interleave(left: bytes | np.ndarray, right: bytes | np.ndarray) -> np.ndarray:
    """Two mono tracks as one ``(frames, 2)`` int16 array; the shorter one is padded with silence.

    Left = ``INCOMING`` (from the leg's remote party), right = ``OUTGOING`` (to it), spec 02a §2.4.
    """
    lt, rt = _mono(left), _mono(right)
    n = max(lt.size, rt.size)
    out = np.zeros((n, 2), dtype=np.int16)
    out[: lt.size, 0] = lt
    out[: rt.size, 1] = rt
    return out


class StereoInterleaver:
    """Streaming interleaving of two tracks that arrive independently.

    ``push_left`` / ``push_right`` take mono int16 PCM as it arrives; :meth:`pop` returns the
    ``(frames, 2)`` block both tracks cover so far. When one track runs more than ``max_lag_s``
    ahead (the other has no RTP, or stalled), the lagging track is padded with silence so that
    at most ``max_lag_s`` stays buffered: the channels keep a common timeline (spec 02a §8).
    Audio arriving later for a padded track is placed after the padding (it is treated as a
    gap that ended, not as late audio to squeeze in). :meth:`flush` pads the shorter track at
    the end. Not thread-safe by itself; feed it from one thread or guard it.
    """

    def __init__(self, *, rate: int = 8000, max_lag_s: float = 0.5) -> None:
        self.rate = rate
        self.max_lag = max(0, int(round(max_lag_s * rate)))
        self._q: tuple[deque[np.ndarray], deque[np.ndarray]] = (deque(), deque())
        self._n = [0, 0]
        self.padded_frames = [0, 0]  # silence inserted per track (left, right)

    @property
    def buffered(self) -> tuple[int, int]:
        return self._n[0], self._n[1]

    def push_left(self, samples: bytes | np.ndarray) -> None:
        self._push(0, samples)

    def push_right(self, samples: bytes | np.ndarray) -> None:
        self._push(1, samples)

    def _push(self, ch: int, samples: bytes | np.ndarray) -> None:
        arr = _mono(samples)
        if arr.size:
            self._q[ch].append(arr.copy())
            self._n[ch] += arr.size

    def _take(self, ch: int, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.int16)
        got = 0
        q = self._q[ch]
        while got < n and q:
            head = q[0]
            k = min(n - got, head.size)
            out[got : got + k] = head[:k]
            got += k
            if k == head.size:
                q.popleft()
            else:
                q[0] = head[k:]
        self._n[ch] -= got
        if got < n:
            self.padded_frames[ch] += n - got
        return out

    def pop(self) -> np.ndarray:
        """Interleaved frames ready to write (possibly zero frames)."""
        lead = max(self._n)
        common = min(self._n)
        n = max(common, lead - self.max_lag)
        if n <= 0:
            return np.zeros((0, 2), dtype=np.int16)
        out = np.empty((n, 2), dtype=np.int16)
        out[:, 0] = self._take(0, n)
        out[:, 1] = self._take(1, n)
        return out

    def flush(self) -> np.ndarray:
        """Everything left, the shorter track padded with silence."""
        n = max(self._n)
        out = np.empty((n, 2), dtype=np.int16)
        out[:, 0] = self._take(0, n)
        out[:, 1] = self._take(1, n)
        return out


# ---------------------------------------------------------------------------------------
# pause / resume marker tones (spec 02a §2.5; parameters are our choice, docs/recording.md)
# ---------------------------------------------------------------------------------------

_MARKERS = {"pause": (880.0, 660.0), "resume": (660.0, 880.0)}


def marker_tone(
    kind: str, *, rate: int = 8000, beep_ms: int = 120, gap_ms: int = 40, level_dbfs: float = -12.0
) -> np.ndarray:
    """The tone written into a recording at a pause (descending 880→660 Hz) or a resume
    (ascending 660→880 Hz): two beeps of ``beep_ms`` with ``gap_ms`` between, mono int16."""
    try:
        freqs = _MARKERS[kind]
    except KeyError:
        raise ValueError(f"kind must be 'pause' or 'resume', not {kind!r}") from None
    amp = 32767.0 * 10.0 ** (level_dbfs / 20.0)
    n = int(rate * beep_ms / 1000)
    t = np.arange(n) / rate
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / max(1, int(rate * 0.005)))
    parts = []
    for i, f in enumerate(freqs):
        if i:
            parts.append(np.zeros(int(rate * gap_ms / 1000)))
        parts.append(amp * ramp * np.sin(2 * np.pi * f * t))
    return np.round(np.concatenate(parts)).astype(np.int16)
