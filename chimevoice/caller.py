"""``chimevoice call URI``: a test caller on our pjsua2 build (chimevoice/testphone.py).

It places one real SIP call, plays a WAV file as its voice (``--play``, looped from the
answer), sends digits at given times (``--dtmf AT:DIGITS``; RFC 4733 events, SIP INFO
``application/dtmf-relay``, SIP INFO ``application/dtmf`` or in-band tones), records what it
hears (``--record``; a temporary file otherwise, so that the summary can say how much audio
came), waits for the far end's BYE or hangs up after ``--hangup-after`` seconds (or gives up
after ``--max-seconds``), and prints a summary::

    answered after 0.02 s (200 OK); heard 1.5 s of audio (peak -6 dBFS); sent digits 3 4 #
    (RFC 4733); the far end hung up (BYE) after 2.9 s; SIP: 100 200

``--json`` prints the result as one JSON object instead. Exit status: 0 when the call was
answered (or, with ``--expect-status CODE``, when the INVITE's final status was CODE), 1
otherwise, 2 on bad arguments. pjsip's own log goes to stderr with ``-v``, never to stdout.

This module does not import pjsua2 (``chimevoice --help`` stays light); :func:`run` does,
through chimevoice/testphone.py, and ends the process with ``os._exit``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

DTMF_METHODS = ("rfc4733", "info", "info-dtmf", "inband")
METHOD_NAMES = {"rfc4733": "RFC 4733", "info": "SIP INFO application/dtmf-relay",
                "info-dtmf": "SIP INFO application/dtmf", "inband": "in-band tones"}
SILENCE_DBFS = -50.0          # a 20 ms frame quieter than this is not "audio heard"


# -- chimevoice call ------------------------------------------------------------------------------

def heard(path: str | os.PathLike[str]) -> tuple[float, float | None]:
    """Seconds of audio in the recording *path* (20 ms frames louder than SILENCE_DBFS) and its peak
    in dBFS (None when silent)."""
    import numpy as np

    from .media.audio import read_pcm
    try:
        samples, rate = read_pcm(path)
    except Exception:  # noqa: BLE001 - an empty or missing recording: nothing heard
        return 0.0, None
    x = samples.astype(np.float64) / 32768.0
    n = max(1, rate // 50)
    frames = x[: len(x) // n * n].reshape(-1, n)
    if frames.size == 0:
        return 0.0, None
    power = np.mean(frames * frames, axis=1)
    loud = int(np.count_nonzero(power > 10 ** (SILENCE_DBFS / 10)))
    peak = float(np.max(np.abs(x)))
    return round(loud * n / rate, 2), (round(20 * math.log10(peak), 1) if peak > 0 else None)


def summary(res: dict[str, Any]) -> str:
    """The human-readable line(s) of a result."""
    codes = " ".join(str(c) for c, _ in res["responses"]) or " ".join(str(c) for c in res["statuses"]) or "none"
    reasons = {c: r for c, r in res["responses"]}
    parts: list[str] = []
    if res["answered"]:
        parts.append(f"answered after {res['setup_seconds']:.2f} s ({res['invite_status']} "
                     f"{reasons.get(res['invite_status'], 'OK')})")
        secs, peak = res["heard_seconds"], res["heard_peak_dbfs"]
        parts.append(f"heard {secs:.1f} s of audio" + (f" (peak {peak:.0f} dBFS)" if peak is not None else ""))
        if res["dtmf_sent"]:
            digits = " ".join(ch for _, d in res["dtmf_sent"] for ch in d)
            parts.append(f"sent digits {digits} ({METHOD_NAMES[res['dtmf_method']]})")
        if res["dtmf_received"]:
            parts.append("received digits " + " ".join(d for _, d in res["dtmf_received"]))
        after = f"after {res['connected_seconds']:.1f} s"
        if res["hangup_by"] == "remote":
            parts.append(f"the far end hung up (BYE) {after}")
        elif res["hangup_reason"] == "hangup_after":
            parts.append(f"we hung up (--hangup-after) {after}")
        else:
            parts.append(f"we gave up and hung up (--max-seconds {res['max_seconds']:g}) {after}")
    else:
        code = res["invite_status"]
        if code:
            text = reasons.get(code) or res["reason"]
            parts.append(f"not answered: {code} {text}".rstrip())
        else:
            parts.append(f"not answered: no final response within --max-seconds {res['max_seconds']:g}")
    parts.append(f"SIP: {codes}")
    line = "; ".join(parts)
    if res.get("recording"):
        line += f"\nrecording: {res['recording']}"
    return line


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``chimevoice call``."""
    p.add_argument("uri", metavar="URI", help="whom to call, e.g. sip:+15550100000@127.0.0.1:5060")
    p.add_argument("--transport", default="udp", choices=("udp", "tcp", "tls"))
    p.add_argument("--from", dest="from_user", default="+15105550101", metavar="USER",
                   help="the caller's user part (default +15105550101)")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDR",
                   help="local address for SIP and RTP (default 127.0.0.1)")
    p.add_argument("--local-port", type=int, default=0, metavar="PORT", help="local SIP port (default: any)")
    p.add_argument("--play", default="", metavar="WAV", help="WAV file played as our voice, looped from the answer")
    p.add_argument("--record", default="", metavar="WAV", help="keep what we heard in this WAV file")
    p.add_argument("--dtmf", action="append", default=[], metavar="AT:DIGITS",
                   help="send DIGITS AT seconds after the answer, e.g. 1.5:34# (repeatable)")
    p.add_argument("--dtmf-method", default="rfc4733", choices=DTMF_METHODS,
                   help="rfc4733: RTP events (default); info: SIP INFO application/dtmf-relay; "
                        "info-dtmf: SIP INFO application/dtmf; inband: dual tones in the audio")
    p.add_argument("--dtmf-gap", type=float, default=0.25, metavar="S",
                   help="seconds between the digits of one --dtmf entry sent by SIP INFO (default 0.25)")
    p.add_argument("--hangup-after", type=float, default=0.0, metavar="S",
                   help="hang up S seconds after the answer (default: wait for the far end's BYE)")
    p.add_argument("--max-seconds", type=float, default=60.0, metavar="S",
                   help="give up (CANCEL or BYE) S seconds after the INVITE (default 60)")
    p.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="extra header on the INVITE (repeatable)")
    p.add_argument("--expect-status", type=int, metavar="CODE",
                   help="exit 0 when the INVITE's final status is CODE (e.g. 404) instead of when answered")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="pjsip's log on stderr (-v: level 3, -vv: 5)")


def _check(args: argparse.Namespace) -> str | None:
    if not args.uri.startswith(("sip:", "sips:")):
        args.uri = "sip:" + args.uri
    for entry in args.dtmf:
        at, sep, digits = entry.partition(":")
        try:
            float(at)
        except ValueError:
            return f"--dtmf {entry!r}: expected AT_SECONDS:DIGITS, e.g. 1.5:34#"
        if not sep or not digits or any(ch not in "0123456789*#ABCDabcd" for ch in digits):
            return f"--dtmf {entry!r}: DIGITS must be 0-9, *, # or A-D"
    if args.play and not Path(args.play).is_file():
        return f"--play {args.play}: no such file"
    if args.max_seconds <= 0:
        return "--max-seconds must be positive"
    return None


def run(args: argparse.Namespace) -> int:
    """``chimevoice call``: place the call, print the summary (or JSON), end the process."""
    err = _check(args)
    if err:
        print(f"chimevoice call: {err}", file=sys.stderr)
        return 2
    args.srtp = False
    args.no_telephone_event = False
    args.tls_cert = args.tls_key = ""
    keep = bool(args.record)
    tmp = None
    if not keep:
        fd, tmp = tempfile.mkstemp(prefix="chimevoice-call-", suffix=".wav")
        os.close(fd)
        args.record = tmp
    level = {0: 0, 1: 3}.get(args.verbose, 5)
    import pjsua2 as pj

    from .testphone import place_call
    try:
        res = place_call(args, log_level=level)
    except pj.Error as exc:
        print(f"chimevoice call: {exc.info()}", file=sys.stderr)
        sys.stderr.flush()
        if tmp:
            os.unlink(tmp)
        os._exit(1)
    secs, peak = heard(args.record)
    res.update(heard_seconds=secs, heard_peak_dbfs=peak, max_seconds=args.max_seconds,
               recording=args.record if keep else None)
    if tmp:
        os.unlink(tmp)
    if args.expect_status is not None:
        ok = res["invite_status"] == args.expect_status
    else:
        ok = bool(res["answered"])
    print(json.dumps(res) if args.json else summary(res), flush=True)
    sys.stderr.flush()
    os._exit(0 if ok else 1)
