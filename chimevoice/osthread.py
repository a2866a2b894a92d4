"""Name the current OS thread (visible in ``top -H``, ``ps -L``, /proc/<pid>/task/*/comm)."""
from __future__ import annotations

import ctypes
import ctypes.util

_PR_SET_NAME = 15
_libc = None


def set_os_thread_name(name: str) -> None:
    """Best effort: Linux truncates names to 15 bytes; elsewhere this does nothing."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass
