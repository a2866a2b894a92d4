"""Prompt files for PlayAudio (and the other audio-playing actions).

The SIP side (pjsua2) plays 16-bit signed little-endian mono PCM WAV files at the
conference clock rate (8000 Hz by default). Handlers' buckets may hold any WAV a
real bucket could hold (spec README reading 7): 8-bit unsigned, 16/24/32-bit
integer, 32/64-bit float, ``WAVE_FORMAT_EXTENSIBLE``, mono or stereo (any channel
count), any rate. :class:`AudioCache` converts such a file once (downmix by
averaging the channels, resample with FFmpeg's swresample through PyAV, convert
to s16) and keeps the result in a cache directory.

Validation and errors (spec 02c §4.2, §4.7; every failure is an
:class:`AudioSourceError` with ``error_type`` ``"InvalidAudioSource"``):

=====================================  =============================================  ==========
condition                              ``message``                                    ``reason``
=====================================  =============================================  ==========
bucket not configured, bad key /       ``Cannot access S3 bucket or audio file.``     ``access``
path traversal, object missing,
not a regular file, not readable
file larger than 52,428,800 bytes      ``Audio Source parameter value is invalid.``   ``too_large``
not RIFF/WAVE, no ``fmt``/``data``      ``Audio Source parameter value is invalid.``   ``not_wav``
compressed (format tag other than      ``Audio Source parameter value is invalid.``   ``compressed``
PCM 1, IEEE float 3, or EXTENSIBLE
0xFFFE with a PCM/float sub-format)
impossible header values (0 channels,  ``Audio Source parameter value is invalid.``   ``bad_format``
bit depth not 8/16/24/32 for PCM or
32/64 for float, rate outside
4,000..384,000 Hz)
no audio frames (zero duration)        ``Audio Source parameter value is invalid.``   ``empty``
FFmpeg cannot decode the data          ``Audio Source parameter value is invalid.``   ``decode_error``
=====================================  =============================================  ==========

Readings chosen here (the guide states only "uncompressed PCM WAV, <= 50 MB,
8 kHz mono recommended"):

* "50 MB" is 52,428,800 bytes of file size (spec 02c §7 item 33); a file of
  exactly that size is accepted.
* Sample rates from 4 kHz to 384 kHz are accepted (the lower bound keeps the
  converted file at most 4x the source size; 8-96 kHz is what reading 7 asks for).
* Multichannel files are downmixed by the arithmetic mean of the channels, so a
  full-scale stereo file stays full scale without clipping.
* The S3 ``ContentType`` metadata is not checked (spec 02c §7 item 33).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

import numpy as np

from chimevoice.engine.errors import INVALID_AUDIO_SOURCE, ActionError

from .storage import BucketStore, ObjectAccessError, atomic_writer

__all__ = [
    "MAX_AUDIO_BYTES",
    "INVALID_AUDIO_SOURCE",
    "MSG_INVALID_AUDIO_SOURCE",
    "MSG_CANNOT_ACCESS",
    "AudioSourceError",
    "audio_source_error_for",
    "parse_audio_source",
    "WavInfo",
    "inspect_wav",
    "PreparedAudio",
    "AudioCache",
    "read_pcm",
    "write_pcm16_wav",
]

MAX_AUDIO_BYTES = 52_428_800
MSG_INVALID_AUDIO_SOURCE = "Audio Source parameter value is invalid."
MSG_CANNOT_ACCESS = "Cannot access S3 bucket or audio file."

MIN_SOURCE_RATE = 4_000
MAX_SOURCE_RATE = 384_000

# Bump when the conversion changes so old cache entries are not reused.
_CONVERTER_VERSION = 1

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_* GUIDs are <format tag>-0000-0010-8000-00AA00389B71.
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


class AudioSourceError(ActionError):
    """An audio source cannot be played; maps directly to ``ACTION_FAILED`` fields.

    ``error_type`` / ``message`` go to ``ActionData.ErrorType`` / ``ErrorMessage``;
    ``reason`` and ``detail`` are for logs and tests only.
    """

    def __init__(self, error_type: str, message: str, *, reason: str = "", detail: str = "") -> None:
        super().__init__(error_type, message)
        self.reason = reason
        self.detail = detail
        self.args = (f"{error_type}: {message}" + (f" [{reason}: {detail}]" if reason or detail else ""),)

    @classmethod
    def invalid(cls, reason: str, detail: str = "") -> "AudioSourceError":
        return cls(INVALID_AUDIO_SOURCE, MSG_INVALID_AUDIO_SOURCE, reason=reason, detail=detail)

    @classmethod
    def access(cls, detail: str = "", reason: str = "access") -> "AudioSourceError":
        return cls(INVALID_AUDIO_SOURCE, MSG_CANNOT_ACCESS, reason=reason, detail=detail)

    def as_action_data(self) -> dict[str, str]:
        """``{"ErrorType": ..., "ErrorMessage": ...}`` for ``ActionData``."""
        return {"ErrorType": self.error_type, "ErrorMessage": self.message}


def audio_source_error_for(exc: BaseException) -> AudioSourceError:
    """Map any exception raised while locating/validating/converting an audio file.

    Access problems (``ObjectAccessError``, permission / missing-file ``OSError``) give
    "Cannot access S3 bucket or audio file."; everything else "Audio Source parameter
    value is invalid.". Both with ErrorType ``InvalidAudioSource``.
    """
    if isinstance(exc, AudioSourceError):
        return exc
    if isinstance(exc, ObjectAccessError):
        return AudioSourceError.access(str(exc), reason="access")
    if isinstance(exc, (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return AudioSourceError.access(str(exc), reason="access")
    return AudioSourceError.invalid("decode_error", f"{type(exc).__name__}: {exc}")


def parse_audio_source(audio_source: Any) -> tuple[str, str]:
    """Validate an ``AudioSource`` action parameter and return ``(bucket, key)``.

    ``Type`` must be ``"S3"``; ``BucketName`` and ``Key`` non-empty strings (spec 02c
    §4.4 and troubleshooting L14048) — otherwise "Audio Source parameter value is invalid.".
    """
    if not isinstance(audio_source, Mapping):
        raise AudioSourceError.invalid("bad_parameter", "AudioSource is not an object")
    if audio_source.get("Type") != "S3":
        raise AudioSourceError.invalid("bad_parameter", "AudioSource.Type must be S3")
    bucket = audio_source.get("BucketName")
    key = audio_source.get("Key")
    if not isinstance(bucket, str) or not bucket:
        raise AudioSourceError.invalid("bad_parameter", "AudioSource.BucketName missing or empty")
    if not isinstance(key, str) or not key:
        raise AudioSourceError.invalid("bad_parameter", "AudioSource.Key missing or empty")
    return bucket, key


# ---------------------------------------------------------------------------------------
# RIFF/WAVE header inspection
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WavInfo:
    """What the ``fmt `` and ``data`` chunks of a WAV file say."""

    format_tag: int  # effective tag: 1 PCM, 3 float (EXTENSIBLE resolved to its sub-format)
    extensible: bool
    channels: int
    sample_rate: int
    bits_per_sample: int
    block_align: int
    data_offset: int
    data_size: int  # bytes of sample data actually present in the file

    @property
    def frames(self) -> int:
        return self.data_size // self.block_align if self.block_align else 0

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def inspect_wav(fh: BinaryIO, file_size: int | None = None) -> WavInfo:
    """Parse the RIFF/WAVE header of an open binary file; raise AudioSourceError if unusable.

    The file position is left unspecified.
    """
    if file_size is None:
        file_size = os.fstat(fh.fileno()).st_size
    fh.seek(0)
    head = fh.read(12)
    if len(head) < 12 or head[0:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioSourceError.invalid("not_wav", "not a RIFF/WAVE file")
    fmt: bytes | None = None
    data_offset: int | None = None
    data_size: int | None = None
    pos = 12
    while pos + 8 <= file_size:
        fh.seek(pos)
        chunk = fh.read(8)
        if len(chunk) < 8:
            break
        cid, csize = chunk[:4], struct.unpack("<I", chunk[4:8])[0]
        body = pos + 8
        if cid == b"fmt ":
            if csize < 16 or csize > 4096:
                raise AudioSourceError.invalid("not_wav", f"bad fmt chunk size {csize}")
            fmt = fh.read(csize)
            if len(fmt) < 16:
                raise AudioSourceError.invalid("not_wav", "truncated fmt chunk")
        elif cid == b"data":
            data_offset = body
            data_size = max(0, min(csize, file_size - body))
            if csize in (0, 0xFFFFFFFF) and fmt is not None:
                # Streaming writers leave the size unset: the data runs to end of file.
                data_size = max(0, file_size - body)
            if fmt is not None:
                break
        pos = body + csize + (csize & 1)
    if fmt is None:
        raise AudioSourceError.invalid("not_wav", "no fmt chunk")
    if data_offset is None or data_size is None:  # (both are set together)
        raise AudioSourceError.invalid("not_wav", "no data chunk")

    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    extensible = False
    if tag == WAVE_FORMAT_EXTENSIBLE:
        extensible = True
        if len(fmt) < 40:
            raise AudioSourceError.invalid("not_wav", "short WAVE_FORMAT_EXTENSIBLE fmt chunk")
        guid = fmt[24:40]
        sub_tag = struct.unpack("<H", guid[:2])[0]
        if guid[2:] != _GUID_TAIL:
            raise AudioSourceError.invalid("compressed", f"unknown sub-format GUID {guid.hex()}")
        tag = sub_tag
    if tag not in (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT):
        raise AudioSourceError.invalid("compressed", f"format tag 0x{tag:04x} is not PCM or float")
    if channels < 1:
        raise AudioSourceError.invalid("bad_format", "zero channels")
    if tag == WAVE_FORMAT_PCM and bits not in (8, 16, 24, 32):
        raise AudioSourceError.invalid("bad_format", f"{bits}-bit PCM")
    if tag == WAVE_FORMAT_IEEE_FLOAT and bits not in (32, 64):
        raise AudioSourceError.invalid("bad_format", f"{bits}-bit float")
    if block_align != channels * bits // 8:
        raise AudioSourceError.invalid("bad_format", f"block align {block_align} for {channels}x{bits} bits")
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise AudioSourceError.invalid("bad_format", f"sample rate {rate} Hz")
    return WavInfo(
        format_tag=tag,
        extensible=extensible,
        channels=channels,
        sample_rate=rate,
        bits_per_sample=bits,
        block_align=block_align,
        data_offset=data_offset,
        data_size=data_size,
    )


# ---------------------------------------------------------------------------------------
# 16-bit mono WAV writing/reading
# ---------------------------------------------------------------------------------------


def pcm16_header(rate: int, data_bytes: int, channels: int = 1) -> bytes:
    """The canonical 44-byte header of a 16-bit PCM WAV holding *data_bytes* of audio."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        WAVE_FORMAT_PCM,
        channels,
        rate,
        rate * channels * 2,
        channels * 2,
        16,
        b"data",
        data_bytes,
    )


def write_pcm16_wav(path: str | os.PathLike[str], samples: np.ndarray, rate: int) -> Path:
    """Write a 16-bit PCM WAV (mono for a 1-D array, ``(frames, channels)`` otherwise), atomically.

    Float input is taken as [-1, 1] full scale and clipped; integer input must be int16.
    """
    arr = np.asarray(samples)
    if arr.dtype.kind == "f":
        arr = np.clip(np.round(arr * 32767.0), -32768, 32767).astype("<i2")
    elif arr.dtype != np.int16:
        raise TypeError("samples must be float or int16")
    channels = 1 if arr.ndim == 1 else arr.shape[1]
    data = arr.astype("<i2", copy=False).tobytes()
    path = Path(path)
    with atomic_writer(path) as fh:
        fh.write(pcm16_header(rate, len(data), channels))
        fh.write(data)
    return path


def read_pcm(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read any supported WAV as mono int16 at its own rate: ``(samples, rate)``.

    16-bit mono PCM files are read directly; anything else is decoded with PyAV and
    downmixed (channel mean). Raises AudioSourceError for files :class:`AudioCache` rejects.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        info = inspect_wav(fh, size)
        if info.format_tag == WAVE_FORMAT_PCM and info.bits_per_sample == 16 and info.channels == 1:
            fh.seek(info.data_offset)
            raw = fh.read(info.frames * 2)
            return np.frombuffer(raw, dtype="<i2").astype(np.int16), info.sample_rate
        chunks: list[np.ndarray] = []
        for block in _decode_mono(fh, info, info.sample_rate):
            chunks.append(block)
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return samples, info.sample_rate


def _decode_mono(fh: BinaryIO, info: WavInfo, rate: int) -> Iterator[np.ndarray]:
    """Yield int16 mono blocks at ``rate`` decoded from the open WAV file ``fh``."""
    import av  # imported lazily: only needed when converting

    fh.seek(0)
    try:
        container = av.open(fh, mode="r", format="wav")
    except Exception as exc:  # av.error.FFmpegError and friends
        raise AudioSourceError.invalid("decode_error", f"{type(exc).__name__}: {exc}") from exc
    try:
        if not container.streams.audio:
            raise AudioSourceError.invalid("decode_error", "no audio stream")
        stream = container.streams.audio[0]
        to_out = av.AudioResampler(format="s16", layout="mono", rate=rate)
        src_rate = stream.rate or info.sample_rate

        def emit(frame: av.AudioFrame | None) -> Iterator[np.ndarray]:
            for out in to_out.resample(frame):
                yield out.to_ndarray().reshape(-1).astype(np.int16, copy=False)

        if info.channels == 1:
            # Mono: swresample converts format and rate in one step.
            def frames() -> Iterator[np.ndarray]:
                for frame in container.decode(stream):
                    yield from emit(frame)

        else:
            # Several channels: average them ourselves (swresample's matrix depends on the
            # channel layout, which WAV files often leave unspecified), in batches.
            to_float = av.AudioResampler(format="fltp")  # keeps layout and rate
            batch = max(4096, src_rate // 4)

            def mono_frame(parts: list[np.ndarray]) -> av.AudioFrame:
                mono = np.concatenate(parts) if len(parts) > 1 else parts[0]
                mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0).astype(np.float32)
                mframe = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="fltp", layout="mono")
                mframe.sample_rate = src_rate
                return mframe

            def frames() -> Iterator[np.ndarray]:
                parts: list[np.ndarray] = []
                pending = 0
                for frame in container.decode(stream):
                    for planar in to_float.resample(frame):
                        arr = planar.to_ndarray()  # (channels, n) float32
                        if arr.shape[-1] == 0:
                            continue
                        parts.append(arr.mean(axis=0, dtype=np.float64))
                        pending += arr.shape[-1]
                        if pending >= batch:
                            yield from emit(mono_frame(parts))
                            parts, pending = [], 0
                if parts:
                    yield from emit(mono_frame(parts))

        try:
            yield from frames()
            yield from emit(None)  # flush the resampler
        except AudioSourceError:
            raise
        except Exception as exc:
            raise AudioSourceError.invalid("decode_error", f"{type(exc).__name__}: {exc}") from exc
    finally:
        container.close()


# ---------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedAudio:
    """A converted prompt: ``path`` is a 16-bit mono PCM WAV at ``rate`` Hz."""

    path: Path
    duration_s: float
    source: Path
    rate: int
    frames: int


class AudioCache:
    """Converts prompt files to s16 mono WAV at ``rate`` Hz, once per (path, size, mtime, rate).

    Thread-safe: concurrent ``prepare()`` calls for the same source convert it once; calls
    from several processes may both convert, but each result is written to a temporary
    file and renamed into place, so nobody ever sees a half-written file.
    """

    def __init__(self, cache_dir: str | os.PathLike[str], rate: int = 8000) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.cache_dir = Path(cache_dir)
        self.rate = int(rate)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._locks: "weakref.WeakValueDictionary[str, threading.Lock]" = weakref.WeakValueDictionary()
        self._locks_guard = threading.Lock()
        self.conversions = 0  # number of conversions this instance performed (observability/tests)

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = threading.Lock()
                self._locks[key] = lock
            return lock

    def cache_key(self, src: str | os.PathLike[str], st: os.stat_result) -> str:
        material = "\0".join(
            [f"v{_CONVERTER_VERSION}", os.path.abspath(src), str(st.st_size), str(st.st_mtime_ns), str(self.rate)]
        )
        return hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()

    def prepare(self, src: str | os.PathLike[str]) -> PreparedAudio:
        """Validate and convert ``src``; return the cached conversion if there is one.

        Raises :class:`AudioSourceError` (``InvalidAudioSource``) for any unusable file.
        """
        src_path = Path(os.path.abspath(src))
        try:
            fh = open(src_path, "rb")
        except OSError as exc:
            raise audio_source_error_for(exc) from exc
        with fh:
            try:
                st = os.fstat(fh.fileno())
            except OSError as exc:  # pragma: no cover
                raise audio_source_error_for(exc) from exc
            if not _is_regular(st):
                raise AudioSourceError.access(f"{src_path} is not a regular file")
            if st.st_size > MAX_AUDIO_BYTES:
                raise AudioSourceError.invalid("too_large", f"{st.st_size} bytes > {MAX_AUDIO_BYTES}")
            key = self.cache_key(src_path, st)
            out_path = self.cache_dir / f"{key}.wav"
            with self._lock_for(key):
                cached = self._load_cached(out_path, src_path)
                if cached is not None:
                    return cached
                try:
                    info = inspect_wav(fh, st.st_size)
                    frames = self._convert(fh, info, out_path)
                except AudioSourceError:
                    raise
                except Exception as exc:
                    raise audio_source_error_for(exc) from exc
                with self._locks_guard:
                    self.conversions += 1
                return PreparedAudio(
                    path=out_path, duration_s=frames / self.rate, source=src_path, rate=self.rate, frames=frames
                )

    def prepare_object(self, store: BucketStore, bucket: str, key: str) -> PreparedAudio:
        """Resolve ``s3://bucket/key`` in ``store`` and prepare it; every failure is an AudioSourceError."""
        try:
            path = store.resolve(bucket, key)
        except Exception as exc:
            raise audio_source_error_for(exc) from exc
        return self.prepare(path)

    async def prepare_object_async(self, store: BucketStore, bucket: str, key: str) -> PreparedAudio:
        """``prepare_object`` in a worker thread (for the asyncio event loop)."""
        return await asyncio.to_thread(self.prepare_object, store, bucket, key)

    # -- internals -----------------------------------------------------------------------
    def _load_cached(self, out_path: Path, src_path: Path) -> PreparedAudio | None:
        try:
            with open(out_path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                info = inspect_wav(fh, size)
        except (OSError, AudioSourceError):
            return None
        if (
            info.format_tag != WAVE_FORMAT_PCM
            or info.bits_per_sample != 16
            or info.channels != 1
            or info.sample_rate != self.rate
            or info.frames == 0
        ):
            return None
        return PreparedAudio(
            path=out_path, duration_s=info.frames / self.rate, source=src_path, rate=self.rate, frames=info.frames
        )

    def _convert(self, fh: BinaryIO, info: WavInfo, out_path: Path) -> int:
        frames = 0
        with atomic_writer(out_path) as out:
            out.write(pcm16_header(self.rate, 0))
            for block in _decode_mono(fh, info, self.rate):
                out.write(block.astype("<i2", copy=False).tobytes())
                frames += block.size
            if frames == 0:
                raise AudioSourceError.invalid("empty", "no audio frames")
            out.seek(0)
            out.write(pcm16_header(self.rate, frames * 2))
        return frames


def _is_regular(st: os.stat_result) -> bool:
    import stat as _stat

    return _stat.S_ISREG(st.st_mode)
