"""The live view of a running daemon: ``/status``, ``/status/history`` and the page at ``/``.

:class:`StatusService` reads what the daemon already keeps - the call registry
(``manager.calls``: every live :class:`~chimevoice.calls.driver.CallDriver`, its
transaction, legs and current action) and the :class:`~chimevoice.metrics.Metrics`
counters - so there is no second bookkeeping of calls. The per-minute history (calls
started, handler latency p50/p95) is made from the deltas of the ``calls_total``
counter and the ``handler_latency_seconds`` histogram at each minute boundary; the
percentiles are estimated from the histogram's buckets the way Prometheus'
``histogram_quantile`` does. docs/status.md documents the JSON.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

from .metrics import Metrics

if TYPE_CHECKING:
    from .calls.driver import CallDriver
    from .calls.manager import CallManager

HISTORY_MINUTES = 60
LATENCY = "handler_latency_seconds"


def histogram_quantile(q: float, counts: list[int], bounds: tuple[float, ...]) -> float | None:
    """The *q* quantile of a histogram with *counts* per bucket (upper *bounds*, then +Inf),
    interpolated linearly inside its bucket; None when the histogram is empty."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    acc = 0
    lower = 0.0
    for i, n in enumerate(counts):
        if i >= len(bounds):               # +Inf bucket: the highest finite bound is all we know
            return bounds[-1] if bounds else None
        upper = bounds[i]
        if n and acc + n >= rank:
            return lower + (upper - lower) * (rank - acc) / n
        acc += n
        lower = upper
    return bounds[-1] if bounds else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class StatusService:
    """Snapshots of the daemon's live calls and a per-minute history of the last hour.

    *clock* is Unix time (the history's minute starts, ``time`` in the snapshot) and
    *monotonic* the clock of ``CallDriver.started_at`` (elapsed times, uptime); both are
    injectable for tests. :meth:`tick` closes finished minutes; :meth:`start` runs it
    every second on the loop (snapshot and history requests tick too)."""

    def __init__(self, manager: CallManager, *, listeners: Iterable[tuple[str, str, int]] = (),
                 invokers: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 history_minutes: int = HISTORY_MINUTES) -> None:
        self.manager = manager
        self.listeners = [{"transport": t, "address": a, "port": p} for t, a, p in listeners]
        self._invokers = invokers
        self.clock = clock
        self.monotonic = monotonic
        self.started = monotonic()
        self.history_minutes = history_minutes
        self._closed: deque[dict[str, Any]] = deque(maxlen=history_minutes)
        self._minute = self._minute_of(clock())
        self._base_calls, self._base_hist = self._sample()
        self._task: asyncio.Task[None] | None = None

    # -- the per-minute history ----------------------------------------------------
    @property
    def invokers(self) -> dict[str, Any]:
        """The handler invokers new calls use (after a reload, the new configuration's)."""
        return self._invokers if self._invokers is not None else _invokers(self.manager)

    @property
    def metrics(self) -> Metrics:
        return self.manager.metrics

    @staticmethod
    def _minute_of(t: float) -> int:
        return int(t // 60) * 60

    def _sample(self) -> tuple[float, list[int]]:
        m = self.metrics
        return m.counter("calls_total"), m.histogram(LATENCY)

    def _entry(self, minute: int, calls: float, hist: list[int]) -> dict[str, Any]:
        dcounts = [max(0, a - b) for a, b in zip(hist, self._base_hist)]
        bounds = Metrics._BUCKETS
        return {"t": minute, "calls": int(max(0.0, calls - self._base_calls)),
                "handler_invocations": sum(dcounts),
                "handler_p50_ms": _ms(histogram_quantile(0.5, dcounts, bounds)),
                "handler_p95_ms": _ms(histogram_quantile(0.95, dcounts, bounds))}

    def tick(self) -> None:
        """Close the current minute if the clock has left it (minutes without a tick are
        recorded as empty; what happened in them is counted in the minute that was open)."""
        minute = self._minute_of(self.clock())
        if minute <= self._minute:
            return
        calls, hist = self._sample()
        self._closed.append(self._entry(self._minute, calls, hist))
        skipped = min((minute - self._minute) // 60 - 1, self.history_minutes)
        for k in range(skipped, 0, -1):
            self._closed.append({"t": minute - 60 * k, "calls": 0, "handler_invocations": 0,
                                 "handler_p50_ms": None, "handler_p95_ms": None})
        self._minute = minute
        self._base_calls, self._base_hist = calls, hist

    def history(self) -> dict[str, Any]:
        """``{"minutes": [...]}``: the closed minutes, oldest first, then the current one so far
        (at most *history_minutes* entries)."""
        self.tick()
        calls, hist = self._sample()
        minutes = [*self._closed, self._entry(self._minute, calls, hist)]
        return {"minutes": minutes[-self.history_minutes:]}

    # -- the snapshot ------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        self.tick()
        manager = self.manager
        m = self.metrics
        names = {app.id: app.name for app in manager.cfg.sip_media_applications}
        now = self.monotonic()
        calls = [self._call(d, names, now) for d in manager.calls]
        calls.sort(key=lambda c: -c["elapsed_s"])
        return {
            "time": round(self.clock(), 3),
            "uptime_s": round(now - self.started, 1),
            "accepting": manager.accepting,
            "totals": {
                "calls_active": len(manager.calls),
                "calls_total": int(m.counter("calls_total")),
                "calls_rejected_total": int(_sum(m, "calls_rejected_total")),
                "handler_invocations_total": int(_sum(m, "handler_invocations_total")),
                "admission_refusals_total": int(_sum(m, "admission_refusals_total")),
            },
            "config_generation": getattr(manager, "generation", 0),
            "listeners": list(self.listeners),
            "workers": self._workers(),
            "calls": calls,
        }

    def _call(self, d: CallDriver, names: dict[str, str], now: float) -> dict[str, Any]:
        tx = d.tx
        app_id = tx.info.sip_media_application_id
        current = tx.current
        return {
            "transaction_id": tx.transaction_id,
            "sip_media_application_id": app_id,
            "sip_media_application": names.get(app_id, ""),
            "elapsed_s": round(max(0.0, now - d.started_at), 1),
            "action": current.type_name if current is not None else None,
            "last_event": d.last_event_type,
            "last_handler_latency_ms": _ms(d.last_handler_latency_s),
            "invocations": tx.invocations,
            "legs": _legs(d),
        }

    def _workers(self) -> list[dict[str, Any]]:
        out = []
        for app in self.manager.cfg.sip_media_applications:
            row: dict[str, Any] = {"sip_media_application": app.id, "name": app.name,
                                   "type": app.handler.type, "workers": app.handler.workers}
            stats = getattr(self.invokers.get(app.id), "pool_stats", None)
            if callable(stats):            # an invoker that can tell more (live, busy workers)
                try:
                    row.update(stats())
                except Exception:  # noqa: BLE001 - the view must not fail for a pool's sake
                    pass
            out.append(row)
        return out

    # -- the ticker ------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.tick()


def _legs(d: CallDriver) -> list[dict[str, Any]]:
    """Every leg of the call: the transaction's listed participants (their tag and status),
    then legs the driver knows that are not listed (an outbound leg being dialled)."""
    listed = {p.call_id: p for p in d.tx.info.participants}
    out = []
    for p in listed.values():
        out.append({"call_id": p.call_id, "tag": p.tag, "direction": p.direction,
                    "from": p.from_, "to": p.to, "status": p.status})
    for call_id, rec in d.legs.items():
        if call_id in listed:
            continue
        status = "Disconnected" if rec.end_ms is not None else ("Connected" if rec.answer_ms else "Dialing")
        out.append({"call_id": call_id, "tag": "LEG-A" if call_id == d.tx.leg_a else "LEG-B",
                    "direction": rec.direction, "from": rec.source_number, "to": rec.destination_number,
                    "status": status})
    return out


def _sum(m: Metrics, name: str) -> float:
    return sum(v for (n, _labels), v in m.counters.items() if n == name)


def _invokers(manager: Any) -> dict[str, Any]:
    services = getattr(manager, "services", None)
    return dict(getattr(services, "invokers", None) or {})


def page() -> str:
    """The status page (chimevoice/web/status.html, package data)."""
    return resources.files("chimevoice").joinpath("web/status.html").read_text(encoding="utf-8")


def add_routes(app: Any, service: StatusService) -> list[str]:
    """``/``, ``/status`` and ``/status/history`` on an aiohttp application; the service's
    ticker runs while the application does. Returns the paths."""
    from aiohttp import web

    try:
        html = page()
    except OSError:                    # an install without the package data: the JSON still works
        html = "<!DOCTYPE html><title>chimevoice</title><p>status page missing; see <a href=status>/status</a>"

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-cache"})

    async def status(_request: web.Request) -> web.Response:
        return web.json_response(service.snapshot(), headers={"Cache-Control": "no-store"})

    async def history(_request: web.Request) -> web.Response:
        return web.json_response(service.history(), headers={"Cache-Control": "no-store"})

    async def ticker(_app: web.Application) -> Any:
        service.start()
        yield
        await service.stop()

    app.router.add_get("/", index)
    app.router.add_get("/status", status)
    app.router.add_get("/status/history", history)
    app.cleanup_ctx.append(ticker)
    return ["/", "/status", "/status/history"]
