"""Small WAV helpers for the speech layer: 8 kHz mono s16 output, atomic writes."""
from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from pathlib import Path

import av
import numpy as np

__all__ = [
    "OUTPUT_RATE",
    "wav_header",
    "pcm16_to_wav_bytes",
    "write_wav_atomic",
    "atomic_replace_bytes",
    "wav_is_complete",
    "parse_wav_bytes",
    "resample",
    "float_to_pcm16",
]

OUTPUT_RATE = 8000


def wav_header(rate: int, data_bytes: int, channels: int = 1, bits: int = 16) -> bytes:
    block = channels * bits // 8
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1,
                       channels, rate, rate * block, block, bits, b"data", data_bytes)


def pcm16_to_wav_bytes(pcm: bytes, rate: int = OUTPUT_RATE) -> bytes:
    """Raw little-endian s16 mono PCM -> a complete WAV file (odd trailing byte dropped)."""
    if len(pcm) % 2:
        pcm = pcm[:-1]
    return wav_header(rate, len(pcm)) + pcm


def float_to_pcm16(samples: np.ndarray) -> bytes:
    arr = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32767.0), -32768, 32767)
    return arr.astype("<i2").tobytes()


def atomic_replace_bytes(path: Path, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and ``os.replace`` it into place.

    Readers see the old file or the new one, never a partial one. ``fsync``: also flush
    to disk before the rename (durability across a power cut; not needed for a cache
    whose readers check completeness with :func:`wav_is_complete`).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_wav_atomic(path: Path, samples: np.ndarray, rate: int = OUTPUT_RATE, *, fsync: bool = False) -> Path:
    """int16 samples, or float samples in [-1, 1] -> 16-bit mono WAV at ``rate``, atomically."""
    arr = np.asarray(samples)
    pcm = arr.astype("<i2").tobytes() if arr.dtype == np.int16 else float_to_pcm16(arr)
    return atomic_replace_bytes(path, wav_header(rate, len(pcm)) + pcm, fsync=fsync)


def wav_is_complete(path: Path) -> bool:
    """True if ``path`` is a canonical 16-bit mono WAV whose size matches its header."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(44)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        return False
    if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE" or head[36:40] != b"data":
        return False
    (data_bytes,) = struct.unpack_from("<I", head, 40)
    return size == 44 + data_bytes


def parse_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """Decode a 16-bit PCM WAV held in memory (as espeak-ng writes to stdout, with
    placeholder sizes) into ``(int16 mono samples, rate)``."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE stream")
    pos = 12
    rate = channels = bits = None
    while pos + 8 <= len(data):
        cid = data[pos:pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if cid == b"fmt ":
            fmt_tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if fmt_tag != 1 or bits != 16 or not channels:
                raise ValueError(f"unsupported WAV format tag={fmt_tag} bits={bits} channels={channels}")
        elif cid == b"data":
            if rate is None or channels is None:
                raise ValueError("data chunk before fmt chunk")
            end = min(len(data), body + size)  # streamed WAVs carry a placeholder size
            raw = data[body:end]
            raw = raw[: len(raw) - (len(raw) % (2 * channels))]
            pcm = np.frombuffer(raw, dtype="<i2")
            if channels > 1:
                pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
            return pcm.astype(np.int16, copy=False), int(rate)
        pos = body + size + (size & 1)
    raise ValueError("no data chunk")


def resample(samples: np.ndarray, rate: int, out_rate: int = OUTPUT_RATE) -> np.ndarray:
    """Resample int16 mono samples with FFmpeg's swresample (anti-aliased); int16 out."""
    x = np.ascontiguousarray(samples, dtype=np.int16)
    if rate == out_rate or x.size == 0:
        return x
    frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=out_rate)
    out = resampler.resample(frame) + resampler.resample(None)
    if not out:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in out]).astype(np.int16, copy=False)
