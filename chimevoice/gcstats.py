"""What CPython's cyclic garbage collector does in the daemon, for /metrics and the log.

A full (generation 2) collection walks every tracked object the daemon holds and keeps the
GIL while it does: at 1000 calls that is tens of milliseconds during which no SIP event, tap
read or media-worker step runs. :class:`GcStats` counts collections per generation, the
objects they freed (objects freed only by the collector are reference cycles: code that makes
one per call shows up here as a count that grows with the call rate) and the pauses, and logs
each full collection that took long or freed much. It hooks ``gc.callbacks``; the callback runs
on whichever thread triggered the collection, so it only adds to plain counters.
"""
from __future__ import annotations

import gc
import time
from typing import Any

import structlog

log = structlog.get_logger("chimevoice.gc")

#: A full collection is logged when it pauses at least this long or frees this many objects.
LOG_PAUSE_S = 0.05
LOG_COLLECTED = 5000


class GcStats:
    """Counters of the cyclic collector, installed with :meth:`install` at start-up."""

    def __init__(self, *, log_pause_s: float = LOG_PAUSE_S, log_collected: int = LOG_COLLECTED) -> None:
        self.log_pause_s = log_pause_s
        self.log_collected = log_collected
        self.collections = [0, 0, 0]
        self.collected = [0, 0, 0]
        self.uncollectable = 0
        self.pause_s = [0.0, 0.0, 0.0]
        self.pause_max_s = 0.0
        self._started = 0.0

    def install(self) -> GcStats:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)
        return self

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        gen = info["generation"]
        self.collections[gen] += 1
        self.collected[gen] += info["collected"]
        self.uncollectable += info["uncollectable"]
        self.pause_s[gen] += pause
        self.pause_max_s = max(self.pause_max_s, pause)
        if gen == 2 and (pause >= self.log_pause_s or info["collected"] >= self.log_collected):
            log.info("gc_full_collection", pause_ms=round(pause * 1000, 1), collected=info["collected"],
                     uncollectable=info["uncollectable"])

    def stats(self) -> dict[str, float]:
        """Gauges for /metrics (totals since start-up)."""
        out: dict[str, float] = {}
        for gen in range(3):
            out[f"python_gc_collections_gen{gen}"] = self.collections[gen]
            out[f"python_gc_collected_objects_gen{gen}"] = self.collected[gen]
            out[f"python_gc_pause_seconds_gen{gen}"] = round(self.pause_s[gen], 6)
        out["python_gc_uncollectable_objects"] = self.uncollectable
        out["python_gc_pause_max_seconds"] = round(self.pause_max_s, 6)
        return out
