"""``chimevoice status`` and ``chimevoice drain``: talk to a running daemon over its ``--http``
address (``/status``, ``/health`` and ``POST /drain``, which the daemon accepts from loopback
only). docs/operations.md."""
from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from .top import TopError, call_line, fetch


def base_url(url: str) -> str:
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/").removesuffix("/status")


def _duration(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d" if d else "") + (f"{h}h" if d or h else "") + f"{m:02d}m{s:02d}s"


def summary_lines(snap: dict[str, Any], url: str) -> list[str]:
    """The readable summary ``chimevoice status`` prints for a ``/status`` document."""
    t = snap.get("totals", {})
    state = "accepting calls" if snap.get("accepting", True) else "DRAINING (new calls get 503)"
    lines = [f"chimevoice at {url}: {state}, up {_duration(snap.get('uptime_s', 0))}, "
             f"configuration reloads {snap.get('config_generation', 0)}",
             f"calls: {t.get('calls_active', 0)} active, {t.get('calls_total', 0)} since start, "
             f"{t.get('calls_rejected_total', 0)} refused ({t.get('admission_refusals_total', 0)} by admission "
             f"control), {t.get('handler_invocations_total', 0)} handler invocations"]
    listeners = ", ".join(f"{x['transport']} {x['address']}:{x['port']}" for x in snap.get("listeners", []))
    lines.append(f"listening: {listeners or '-'}")
    for w in snap.get("workers", []):
        extra = ", ".join(f"{k} {v}" for k, v in w.items()
                          if k not in ("sip_media_application", "name", "type", "workers"))
        lines.append(f"application {w.get('name')} ({w.get('sip_media_application')}): {w.get('type')} handler, "
                     f"{w.get('workers')} workers" + (f", {extra}" if extra else ""))
    calls = snap.get("calls", [])
    if calls:
        lines.append("calls in progress (longest first):")
        lines.extend("  " + call_line(c) for c in calls[:20])
        if len(calls) > 20:
            lines.append(f"  ... and {len(calls) - 20} more (chimevoice top shows them all)")
    return lines


def status(url: str, *, as_json: bool = False) -> int:
    base = base_url(url)
    try:
        snap = fetch(base)
    except TopError as exc:
        print(f"chimevoice status: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(snap, indent=2))
    else:
        print("\n".join(summary_lines(snap, base)))
    return 0


def drain(url: str, *, exit_when_idle: bool = False, resume: bool = False, wait: bool = False,
          timeout: float = 3600.0) -> int:
    base = base_url(url)
    query = "resume=1" if resume else ("exit=1" if exit_when_idle else "")
    req = urllib.request.Request(f"{base}/drain" + (f"?{query}" if query else ""), data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            answer = json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        print(f"chimevoice drain: {base}/drain: HTTP {exc.code} {body}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"chimevoice drain: cannot reach the daemon at {base}: {getattr(exc, 'reason', exc)}",
              file=sys.stderr)
        return 1
    if resume:
        print(f"accepting calls again ({answer['active_calls']} active)")
        return 0
    print(f"draining: new calls get 503; {answer['active_calls']} calls active"
          + ("; the daemon exits when they have ended" if answer.get("exit_when_idle") else ""))
    if not wait:
        return 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=3) as resp:
                active = json.loads(resp.read().decode())["active_calls"]
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            if exit_when_idle:
                print("drained: the daemon has exited")
                return 0
            print(f"chimevoice drain: lost the daemon at {base}: {exc}", file=sys.stderr)
            return 1
        if active == 0:
            print("drained: no calls active")
            return 0
        time.sleep(0.5)
    print("chimevoice drain: calls still active at --timeout", file=sys.stderr)
    return 1
