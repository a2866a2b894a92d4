"""``chimevoice top``: the live calls of a running daemon in the terminal.

It reads ``/status`` of ``chimevoice run --http`` (docs/status.md) once per interval
and draws a table with :mod:`curses` (keys: ``s`` sort column, ``r`` reverse, ``q``
quit). When stdout is not a terminal, or with ``--once``, it prints plain lines
instead: a header line, then one line per call.
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, TextIO

DEFAULT_URL = "http://127.0.0.1:8080"
SORTS = ("elapsed", "app", "action", "latency")
_NUMERIC = {"elapsed", "latency"}           # largest first unless reversed


class TopError(Exception):
    """The daemon could not be read (the message says why)."""


def status_url(url: str) -> str:
    """``/status`` under the daemon's base *url* (``host:port`` alone means http)."""
    if "://" not in url:
        url = "http://" + url
    url = url.rstrip("/")
    return url if url.endswith("/status") else url + "/status"


def fetch(url: str, timeout: float = 3.0) -> dict[str, Any]:
    target = status_url(url)
    try:
        with urllib.request.urlopen(target, timeout=timeout) as resp:
            data = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise TopError(f"{target}: HTTP {exc.code} (is this chimevoice run --http?)") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TopError(f"cannot reach the daemon at {target}: {reason} "
                       "(start it with chimevoice run --http ADDR:PORT)") from None
    except ValueError as exc:
        raise TopError(f"{target}: not JSON ({exc})") from None
    if not isinstance(data, dict) or "calls" not in data:
        raise TopError(f"{target}: not a chimevoice status document")
    return data


@dataclass
class View:
    sort: str = "elapsed"
    reverse: bool = False

    def cycle(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.reverse = False

    def ordered(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        def key(c: dict[str, Any]) -> Any:
            if self.sort == "elapsed":
                return c.get("elapsed_s") or 0.0
            if self.sort == "latency":
                v = c.get("last_handler_latency_ms")
                return -1.0 if v is None else v
            if self.sort == "app":
                return (c.get("sip_media_application") or c.get("sip_media_application_id") or "").lower()
            return (c.get("action") or "~").lower()      # calls without an action last
        descending = self.sort in _NUMERIC
        return sorted(calls, key=key, reverse=descending != self.reverse)

    @property
    def label(self) -> str:
        descending = (self.sort in _NUMERIC) != self.reverse
        return f"{self.sort} {'v' if descending else '^'}"


def _clock(seconds: float) -> str:
    s = int(seconds)
    h, m, sec = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v:.1f}"


def header(snap: dict[str, Any], view: View | None = None) -> str:
    t = snap.get("totals", {})
    state = "accepting" if snap.get("accepting") else "draining"
    line = (f"chimevoice  {state}  up {_clock(snap.get('uptime_s', 0))}  active {t.get('calls_active', 0)}  "
            f"total {t.get('calls_total', 0)}  rejected {t.get('calls_rejected_total', 0)}  "
            f"invocations {t.get('handler_invocations_total', 0)}")
    return line + (f"  sort: {view.label}" if view is not None else "")


def listeners_line(snap: dict[str, Any]) -> str:
    lst = ", ".join(f"{x['transport']} {x['address']}:{x['port']}" for x in snap.get("listeners", []))
    wk = ", ".join(f"{w.get('name') or w['sip_media_application']} {w['type']}x{w['workers']}"
                   for w in snap.get("workers", []))
    return f"listeners: {lst or '-'}   workers: {wk or '-'}"


COLUMNS = f"{'TRANSACTION':<36}  {'SIP MEDIA APPLICATION':<22} {'ACTION':<18} {'LAST EVENT':<22} " \
          f"{'ELAPSED':>8} {'HANDLER MS':>10} {'INV':>4}"


def call_line(c: dict[str, Any]) -> str:
    app = c.get("sip_media_application") or c.get("sip_media_application_id", "")
    return (f"{c['transaction_id']:<36}  {app[:22]:<22} {(c.get('action') or '-')[:18]:<18} "
            f"{(c.get('last_event') or '-')[:22]:<22} {_clock(c.get('elapsed_s', 0)):>8} "
            f"{_ms(c.get('last_handler_latency_ms')):>10} {c.get('invocations', 0):>4}")


def leg_line(leg: dict[str, Any]) -> str:
    return (f"  {leg.get('tag', ''):<6} {leg.get('direction', ''):<8} {leg.get('from', '')} -> {leg.get('to', '')}"
            f"  {leg.get('status', '')}  {leg.get('call_id', '')}")


def plain_lines(snap: dict[str, Any], view: View) -> list[str]:
    """A header line, then one line per call (its legs at the end of the line)."""
    out = [f"{time.strftime('%H:%M:%S', time.localtime(snap.get('time', time.time())))} "
           f"{header(snap)}  {listeners_line(snap)}"]
    for c in view.ordered(snap.get("calls", [])):
        legs = "; ".join(f"{leg.get('tag')} {leg.get('from')}->{leg.get('to')} {leg.get('status')}"
                         for leg in c.get("legs", []))
        out.append(f"{call_line(c)}  legs: {legs or '-'}")
    return out


def screen_lines(snap: dict[str, Any] | None, view: View, error: str | None) -> list[tuple[str, str]]:
    """What the full-screen view shows: (text, style) with style ``header``, ``columns``,
    ``call``, ``leg``, ``error`` or ``""``."""
    out: list[tuple[str, str]] = []
    if snap is not None:
        out.append((header(snap, view), "header"))
        out.append((listeners_line(snap), ""))
    if error:
        out.append((f"! {error}", "error"))
    out.append(("", ""))
    out.append((COLUMNS, "columns"))
    calls = view.ordered(snap.get("calls", [])) if snap is not None else []
    for c in calls:
        out.append((call_line(c), "call"))
        for leg in c.get("legs", []):
            out.append((leg_line(leg), "leg"))
    if snap is not None and not calls:
        out.append(("(no live calls)", ""))
    return out


HELP = "s: sort column   r: reverse   q: quit"


def run_curses(url: str, interval: float, first: dict[str, Any]) -> int:
    import curses

    def main(stdscr: Any) -> int:
        try:
            curses.curs_set(0)
        except curses.error:
            pass
        curses.use_default_colors()
        stdscr.timeout(100)
        styles = {"header": curses.A_BOLD, "columns": curses.A_REVERSE, "error": curses.A_BOLD,
                  "leg": curses.A_DIM, "call": curses.A_NORMAL, "": curses.A_NORMAL}
        view = View()
        snap: dict[str, Any] | None = first
        error: str | None = None
        next_fetch = time.monotonic() + interval

        def draw() -> None:
            stdscr.erase()
            height, width = stdscr.getmaxyx()
            lines = screen_lines(snap, view, error)
            for y, (text, style) in enumerate(lines[:max(0, height - 1)]):
                try:
                    stdscr.addnstr(y, 0, text, width - 1, styles.get(style, curses.A_NORMAL))
                except curses.error:
                    pass
            try:
                stdscr.addnstr(height - 1, 0, HELP, width - 1, curses.A_DIM)
            except curses.error:
                pass
            stdscr.refresh()

        draw()
        while True:
            if time.monotonic() >= next_fetch:
                next_fetch = time.monotonic() + interval
                try:
                    snap, error = fetch(url), None
                except TopError as exc:
                    error = str(exc)           # keep the last table, say what is wrong, retry
                draw()
            ch = stdscr.getch()
            if ch == -1:
                continue
            if ch in (ord("q"), ord("Q"), 27):
                return 0
            if ch in (ord("s"), ord("S")):
                view.cycle()
            elif ch in (ord("r"), ord("R")):
                view.reverse = not view.reverse
            draw()

    for name in ("LINES", "COLUMNS"):    # a stale exported size would win over the terminal's own
        os.environ.pop(name, None)
    return int(curses.wrapper(main))


def run(url: str = DEFAULT_URL, *, interval: float = 1.0, once: bool = False,
        out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The ``chimevoice top`` command: 0 on quit, 1 when the daemon cannot be read."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        snap = fetch(url)
    except TopError as exc:
        print(f"chimevoice top: {exc}", file=err)
        return 1
    view = View()
    try:
        if not once and out.isatty() and sys.stdin.isatty():
            return run_curses(url, interval, snap)
        while True:
            for line in plain_lines(snap, view):
                print(line, file=out)
            out.flush()
            if once:
                return 0
            time.sleep(interval)
            try:
                snap = fetch(url)
            except TopError as exc:
                print(f"chimevoice top: {exc}", file=err)
                return 1
    except KeyboardInterrupt:
        return 0
