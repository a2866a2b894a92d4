"""glibc malloc settings for a long-running daemon with many threads (docs/decisions.md,
"glibc malloc arenas").

By default glibc gives each thread that allocates its own arena, up to 8 per core, and raises
its mmap threshold each time a large block is freed. In a soak at 1000 calls that held about
700 MB in eleven 64 MB arenas (the pjsua2 media thread, the media worker, the recording
closers, the executor threads), and RSS kept the high-water mark of each. Two arenas and a
fixed mmap threshold (large buffers -- audio frames, WAV chunks -- are mapped and returned
whole) keep it flat. Set once, at start-up, before the threads exist; the environment
(``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``) wins when it sets them.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

ARENA_MAX = 2
"""Arenas for the whole process (glibc's default: 8 per core)."""
MMAP_THRESHOLD = 256 * 1024
"""Blocks this large or larger are mapped on their own and unmapped on free (fixed: glibc's
dynamic threshold climbs to 32 MB and then keeps such blocks in the arenas)."""
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
"""Free memory at the top of the main heap beyond this is returned to the system."""


@dataclass(frozen=True)
class MallocTuning:
    """What :func:`tune_malloc` set."""

    applied: bool
    """Whether glibc's ``mallopt`` was called (False off glibc)."""
    arena_max: int | None
    """The arena limit set, or None where the environment or the platform decided."""
    mmap_threshold: int | None
    """The mmap threshold set in bytes, or None where the environment or the platform decided."""


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, loaded once (``find_library`` runs ``ldconfig``: not on every scrape)."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def tune_malloc(env: Mapping[str, str] | None = None) -> MallocTuning:
    """Apply :data:`ARENA_MAX` and :data:`MMAP_THRESHOLD` unless ``env`` (default: the process
    environment) sets glibc's own variables for them. Best effort: off glibc it does nothing."""
    env = os.environ if env is None else env
    try:
        mallopt = _libc().mallopt
    except (OSError, AttributeError):
        return MallocTuning(False, None, None)
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    arena = None
    if "MALLOC_ARENA_MAX" not in env and mallopt(_M_ARENA_MAX, ARENA_MAX) == 1:
        arena = ARENA_MAX
    mmap = None
    if "MALLOC_MMAP_THRESHOLD_" not in env and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1:
        mmap = MMAP_THRESHOLD
        if "MALLOC_TRIM_THRESHOLD_" not in env:
            mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return MallocTuning(True, arena, mmap)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def malloc_usage() -> dict[str, int]:
    """glibc's ``mallinfo2()`` over all arenas, for /metrics: ``malloc_in_use_bytes`` (what is
    allocated, mapped blocks included) and ``malloc_held_bytes`` (what the arenas and mapped
    blocks hold from the system). In use growing is a leak; held growing while in use stays is
    fragmentation. {} off glibc (or before 2.33)."""
    try:
        fn = _libc().mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _MallInfo2
    info = fn()
    return {"malloc_in_use_bytes": info.uordblks + info.hblkhd, "malloc_held_bytes": info.arena + info.hblkhd}
