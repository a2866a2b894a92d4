"""OS threads: names (visible in ``top -H``, ``ps -L``, /proc/<pid>/task/*/comm) and the
real-time scheduling of the threads pjmedia starts (Linux; elsewhere these do nothing)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os

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


def thread_ids() -> set[int]:
    """The ids of this process's threads now (empty off Linux)."""
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def name_thread(tid: int, name: str) -> None:
    """Name another thread of this process (best effort, 15 bytes)."""
    try:
        with open(f"/proc/self/task/{tid}/comm", "w") as fh:
            fh.write(name[:15])
    except OSError:
        pass


def set_realtime(tid: int, priority: int) -> str | None:
    """Schedule thread *tid* of this process SCHED_RR at *priority*; None when done, else why
    not (no CAP_SYS_NICE and an RLIMIT_RTPRIO below *priority*: systemd's ``LimitRTPRIO=``)."""
    try:
        os.sched_setscheduler(tid, os.SCHED_RR, os.sched_param(priority))
    except (OSError, AttributeError) as exc:
        return str(exc)
    return None
