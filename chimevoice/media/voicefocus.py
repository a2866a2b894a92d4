"""VoiceFocus: per-leg streaming noise suppression for 8 kHz telephone audio (spec 04 §5).

Amazon Voice Focus is a proprietary model; this is the local substitute the spec recommends
(04 §5.4): the SpeexDSP preprocessor's noise suppressor (``speex_preprocess_run`` with denoise on,
AGC/VAD/dereverb off), called through ``ctypes`` on Debian's ``libspeexdsp1`` — the library the
pjsua2 server build already links, so it is present wherever the daemon runs. Why this one and not
RNNoise or WebRTC NS: ``docs/decisions.md`` ("VoiceFocus"); figures: ``docs/voicefocus.md`` and
``bench/voicefocus_snr.py``.

Contract:

- input and output are 16-bit mono PCM at 8 kHz (``bytes`` little-endian or an int16 array),
  whole 20 ms frames (160 samples) per call; output has the length and type of the input;
- **latency is exactly one frame (20 ms)**: output sample ``n`` is input sample ``n - 160``
  processed (speex's weighted overlap-add), whether suppression is on or off — :class:`VoiceFocus`
  delays by the same frame when disabled, so toggling never shifts the timeline;
- one instance per call leg and direction (the noise estimate is per stream); an instance may be
  used from any thread but by one at a time (a lock serialises calls); the C call releases the GIL;
- cost: about 20–35 µs of CPU per 20 ms frame on the development machine (``bench/voicefocus_snr.py``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

import numpy as np

__all__ = [
    "FRAME_SAMPLES",
    "LATENCY_SAMPLES",
    "RATE",
    "DEFAULT_SUPPRESS_DB",
    "VoiceFocusUnavailable",
    "available",
    "NoiseSuppressor",
    "VoiceFocus",
]

RATE = 8000
FRAME_SAMPLES = 160
LATENCY_SAMPLES = FRAME_SAMPLES
#: Maximum attenuation of noise (dB). speex's default is -15; -30 removes more noise for the same
#: speech distortion on telephone audio (docs/voicefocus.md).
DEFAULT_SUPPRESS_DB = -30

_SET_DENOISE = 0
_SET_AGC = 2
_SET_VAD = 4  # left at its default (off): setting it prints a warning on stderr
_SET_DEREVERB = 8
_SET_NOISE_SUPPRESS = 18

_lib: ctypes.CDLL | None = None
_lib_error: str | None = None
_lib_lock = threading.Lock()


class VoiceFocusUnavailable(RuntimeError):
    """libspeexdsp could not be loaded (the action then fails with ``SystemException``)."""


def _load() -> ctypes.CDLL:
    global _lib, _lib_error
    with _lib_lock:
        if _lib is not None:
            return _lib
        if _lib_error is not None:
            raise VoiceFocusUnavailable(_lib_error)
        names = [
            os.environ.get("CHIMEVOICE_LIBSPEEXDSP", ""),
            "libspeexdsp.so.1",
            ctypes.util.find_library("speexdsp") or "",
        ]
        errors = []
        for name in filter(None, names):
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError as exc:
                errors.append(f"{name}: {exc}")
        else:
            _lib_error = "libspeexdsp not found (Debian package libspeexdsp1): " + "; ".join(errors)
            raise VoiceFocusUnavailable(_lib_error)
        lib.speex_preprocess_state_init.restype = ctypes.c_void_p
        lib.speex_preprocess_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.speex_preprocess_state_destroy.restype = None
        lib.speex_preprocess_state_destroy.argtypes = [ctypes.c_void_p]
        lib.speex_preprocess_run.restype = ctypes.c_int
        lib.speex_preprocess_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.speex_preprocess_ctl.restype = ctypes.c_int
        lib.speex_preprocess_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        _lib = lib
        return lib


def available() -> bool:
    """True when the suppressor can run on this machine."""
    try:
        _load()
    except VoiceFocusUnavailable:
        return False
    return True


def _as_int16(samples: bytes | bytearray | memoryview | np.ndarray) -> tuple[np.ndarray, bool]:
    """(a writable C-contiguous int16 copy, input was bytes)."""
    if isinstance(samples, (bytes, bytearray, memoryview)):
        b = bytes(samples)
        if len(b) % 2:
            raise ValueError("odd number of bytes for 16-bit PCM")
        return np.frombuffer(b, dtype="<i2").astype(np.int16), True
    arr = np.asarray(samples)
    if arr.dtype != np.int16 or arr.ndim != 1:
        raise TypeError("samples must be mono int16 (1-D array) or bytes")
    return np.array(arr, dtype=np.int16, order="C", copy=True), False


class NoiseSuppressor:
    """The speex noise suppressor on one stream: always on, fixed latency of one frame."""

    def __init__(
        self, *, rate: int = RATE, frame_samples: int = FRAME_SAMPLES, suppress_db: int = DEFAULT_SUPPRESS_DB
    ) -> None:
        if frame_samples <= 0 or rate <= 0:
            raise ValueError("rate and frame_samples must be positive")
        if suppress_db > 0:
            raise ValueError("suppress_db is an attenuation: 0 or negative")
        self._lib = _load()
        self.rate = rate
        self.frame_samples = frame_samples
        self.latency_samples = frame_samples
        self._lock = threading.Lock()
        self._st = self._new_state(suppress_db)
        self.suppress_db = suppress_db

    def _new_state(self, suppress_db: int) -> int:
        st = self._lib.speex_preprocess_state_init(self.frame_samples, self.rate)
        if not st:
            raise VoiceFocusUnavailable("speex_preprocess_state_init failed")
        for req, value in ((_SET_DENOISE, 1), (_SET_AGC, 0), (_SET_DEREVERB, 0), (_SET_NOISE_SUPPRESS, suppress_db)):
            v = ctypes.c_int(value)
            self._lib.speex_preprocess_ctl(st, req, ctypes.byref(v))
        return st

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.rate

    def process(self, samples: bytes | np.ndarray) -> bytes | np.ndarray:
        """Suppress noise in whole frames; returns the same length and type (bytes or int16 array),
        delayed by ``latency_samples``."""
        x, was_bytes = _as_int16(samples)
        if x.size % self.frame_samples:
            raise ValueError(f"{x.size} samples is not a whole number of {self.frame_samples}-sample frames")
        self._run(x)
        return x.astype("<i2", copy=False).tobytes() if was_bytes else x

    def _run(self, x: np.ndarray) -> None:
        """In place on a C-contiguous int16 array of whole frames."""
        fs = self.frame_samples
        with self._lock:
            if not self._st:
                raise ValueError("NoiseSuppressor is closed")
            base = x.ctypes.data
            for off in range(0, x.size, fs):
                self._lib.speex_preprocess_run(self._st, base + 2 * off)

    def reset(self, prime: np.ndarray | None = None) -> None:
        """Forget the noise estimate and the overlap buffer. ``prime`` (one frame) is run through
        the fresh state and its output dropped, so the next output continues from it."""
        with self._lock:
            if self._st:
                self._lib.speex_preprocess_state_destroy(self._st)
            self._st = self._new_state(self.suppress_db)
        if prime is not None:
            p = np.array(prime, dtype=np.int16, order="C", copy=True)
            if p.size != self.frame_samples:
                raise ValueError("prime must be one frame")
            self._run(p)

    def close(self) -> None:
        with self._lock:
            if self._st:
                self._lib.speex_preprocess_state_destroy(self._st)
                self._st = 0

    def __del__(self) -> None:  # pragma: no cover - depends on GC timing
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self) -> "NoiseSuppressor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VoiceFocus:
    """A leg's VoiceFocus setting applied to its audio stream.

    :meth:`process` always delays by one frame (20 ms): through the suppressor when ``enabled``,
    through a one-frame delay line when not, so switching (the ``VoiceFocus`` action with
    ``Enable`` true/false) neither drops nor repeats audio. On a switch to enabled the suppressor
    starts fresh, primed with the frame in the delay line; its noise estimate settles within about
    half a second. ``seconds_enabled`` counts processed audio (``BillableVoiceFocusSeconds``).
    """

    def __init__(
        self,
        enabled: bool = False,
        *,
        rate: int = RATE,
        frame_samples: int = FRAME_SAMPLES,
        suppress_db: int = DEFAULT_SUPPRESS_DB,
    ) -> None:
        self.rate = rate
        self.frame_samples = frame_samples
        self.latency_samples = frame_samples
        self._suppress_db = suppress_db
        self._ns: NoiseSuppressor | None = None
        self._delay = np.zeros(frame_samples, dtype=np.int16)  # last input frame
        self._enabled = bool(enabled)  # state the stream is in (changes inside process)
        self._want = bool(enabled)  # state asked for
        self._started = False
        self._lock = threading.Lock()
        self.frames_enabled = 0
        if enabled:
            self._ns = NoiseSuppressor(rate=rate, frame_samples=frame_samples, suppress_db=suppress_db)

    @property
    def enabled(self) -> bool:
        return self._want

    @enabled.setter
    def enabled(self, value: bool) -> None:
        """Takes effect at the next :meth:`process` call; safe from any thread."""
        if value and self._ns is None:
            _load()  # raise VoiceFocusUnavailable now, where the action can report it
        self._want = bool(value)

    @property
    def seconds_enabled(self) -> float:
        return self.frames_enabled * self.frame_samples / self.rate

    def process(self, samples: bytes | np.ndarray) -> bytes | np.ndarray:
        x, was_bytes = _as_int16(samples)
        fs = self.frame_samples
        if x.size % fs:
            raise ValueError(f"{x.size} samples is not a whole number of {fs}-sample frames")
        with self._lock:
            want = self._want
            if want and not self._enabled:
                # Switching on: a fresh state, primed with the frame in the delay line once audio
                # has flowed, so the next output frame is that frame (no gap, no repeat).
                if self._ns is None:
                    self._ns = NoiseSuppressor(rate=self.rate, frame_samples=fs, suppress_db=self._suppress_db)
                    if self._started:
                        self._ns._run(self._delay.copy())
                else:
                    self._ns.reset(prime=self._delay if self._started else None)
            self._enabled = want
            if x.size:
                self._started = True
                last = x[-fs:].copy()
                if want:
                    self._ns._run(x)  # type: ignore[union-attr]
                    self.frames_enabled += x.size // fs
                else:
                    x = np.concatenate([self._delay, x[:-fs]])
                self._delay = last
        return x.astype("<i2", copy=False).tobytes() if was_bytes else x

    def close(self) -> None:
        with self._lock:
            if self._ns is not None:
                self._ns.close()
                self._ns = None
