#!/usr/bin/env python3
"""Hostile-input benchmark: 100,000 seeded, mutated SIP messages at the running daemon.

The daemon (started here on loopback, like tests/test_hostile_sip.py) serves the suite's
handler (tests/handlers/hostile.py: 486 for the fuzz target, a tone for the real-call
number). The fuzzer (tests/support/sipfuzz.py) sends our torture messages once and then
INVITEs broken at the grammar level (non-UTF-8 bytes in every header in turn, huge headers,
bad Content-Length, bad SDP, ...) and the byte level, over UDP (4/5) and TCP (1/5), in
rounds; a real call is placed during every round and must hear its tone.

Printed: messages sent, distinct responses by class, daemon crashes (0 or 1: it must still
run), real calls placed/answered with their tone, calls created vs CDRs written, calls
left in the registry, cdr_write_failed lines, RSS before and after (and after each round).

usage: .venv/bin/python bench/fuzz_sip.py [--messages 100000] [--seed 1] [--rate 1500] [--rounds 10]
Loopback only; bounded by --messages.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import sipfuzz as F  # noqa: E402
from tests.support.harness import Daemon, free_port, handler_app, write_tone  # noqa: E402

APP = "dddddddd-0000-4000-8000-000000000001"
REAL = "+15550100066"
TARGET = "+15550100001"


def start_daemon(work: Path) -> Daemon:
    d = Daemon(work, free_port())
    d.http_port = free_port()
    (work / "events").mkdir()
    rules = [{"id": f"eeeeeeee-0000-4000-8000-{i:012d}", "name": f"fuzz-{i}", "trigger_type": "ToPhoneNumber",
              "trigger_value": n, "target_applications": [{"sip_media_application_id": APP, "priority": 1}]}
             for i, n in enumerate((REAL, TARGET))]
    d.write_config([handler_app(APP, "hostile", "hostile:handler", {"EVENTS_DIR": str(work / "events")})],
                   rules=rules, numbers=[REAL, TARGET],
                   # The fuzz INVITEs come faster than the default max_calls_per_second, and the
                   # real call placed in each round would share their 503s: shedding a flood is
                   # bench/overload.py's measure, parsing hostile input is this one's.
                   extra={"admission": {"max_calls_per_second": "off"}})
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    d.start()
    return d


def totals(d: Daemon) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/status", timeout=10) as r:
        return json.loads(r.read())["totals"]


def real_call(d: Daemon, rec: Path, out: list) -> None:
    from chimevoice.media.analysis import dominant_frequency
    from chimevoice.media.audio import read_pcm
    try:
        res = d.call(user=REAL, record=rec, hangup_after=4.0, timeout=60)
        heard, rate = read_pcm(rec) if res.get("answered") else (None, 8000)
        tone = heard is not None and abs(dominant_frequency(heard.astype(float), rate) - 1000) < 15
        out.append((bool(res.get("answered")), tone))
    except Exception as exc:  # noqa: BLE001 - counted, not fatal to the bench
        out.append((False, False))
        print(f"real call failed: {exc!r}", file=sys.stderr)


def torture_round(d: Daemon) -> F.Tally:
    tally = F.Tally()
    host = f"127.0.0.1:{d.port}"
    for i, name in enumerate(sorted(F.torture_cases())):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            data = F.load_torture(name, n=TARGET, host=host, me=f"127.0.0.1:{s.getsockname()[1]}",
                                  serial=f"b{i}-{uuid.uuid4().hex[:8]}")
            tally.merge(F.send_udp(("127.0.0.1", d.port), [data], sock=s, linger_s=0.05,
                                   ack_ruri=f"sip:{TARGET}@{host}".encode()))
    return tally


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=1500.0, help="messages per second")
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fuzz-sip-"))
    d = start_daemon(work)
    host = f"127.0.0.1:{d.port}"
    t_start = time.monotonic()
    try:
        t0 = totals(d)
        rss_start = F.rss_kb(d.proc.pid)
        tally = torture_round(d)
        kinds: Counter = Counter()
        calls: list = []
        per_round = max(1, (args.messages - tally.sent) // args.rounds)
        rss_rounds = []
        for r in range(args.rounds):
            if d.proc.poll() is not None:
                break
            n = per_round if r < args.rounds - 1 else args.messages - tally.sent
            n_tcp = n // 5
            caller = threading.Thread(target=real_call, args=(d, work / f"real{r}.wav", calls))
            caller.start()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
                fz = F.Fuzzer(args.seed * 1000 + r, number=TARGET, host=host, me=f"127.0.0.1:{s.getsockname()[1]}")
                msgs = [fz.message(i) for i in range(n - n_tcp)]
                kinds.update(m.kind.split(":")[0] for m in msgs)
                tally.merge(F.send_udp(("127.0.0.1", d.port), (m.data for m in msgs), rate=args.rate, sock=s,
                                       linger_s=0.5, ack_ruri=f"sip:{TARGET}@{host}".encode()))
            fz = F.Fuzzer(args.seed * 1000 + 500 + r, number=TARGET, host=host, me="127.0.0.1:5999", transport="TCP")
            msgs = [fz.message(i) for i in range(n_tcp)]
            kinds.update("tcp-" + m.kind.split(":")[0] for m in msgs)
            tally.merge(F.send_tcp(("127.0.0.1", d.port), (m.data for m in msgs), per_connection=50,
                                   rate=args.rate * 2, linger_s=0.2))
            caller.join(90)
            rss_rounds.append(F.rss_kb(d.proc.pid) if d.proc.poll() is None else 0)
            print(f"round {r + 1}/{args.rounds}: sent {tally.sent}, RSS {rss_rounds[-1]} kB", flush=True)
        crashed = d.proc.poll() is not None
        # A real call whose BYE the flood pushed out of the socket buffer ends by the RTP timeout
        # (sip.rtp.timeout_s, 60 s, noticed at the 10 s RTP samples): wait that long for it.
        deadline = time.monotonic() + 90
        t1 = totals(d) if not crashed else {}
        while not crashed and t1["calls_active"] and time.monotonic() < deadline:
            time.sleep(0.5)
            t1 = totals(d)
        created = t1.get("calls_total", 0) - t0["calls_total"]
        deadline = time.monotonic() + 20
        cdrs = 0
        while time.monotonic() < deadline:
            cdrs = len(list(d.data.rglob("Amazon-Chime-SMADRs/**/*.json")))
            if cdrs >= created:
                break
            time.sleep(0.2)
        rss_end = F.rss_kb(d.proc.pid) if not crashed else 0
        logs = d.logs()
        failed = sum(1 for e in logs if e.get("event") == "cdr_write_failed")
        timed_out = sum(1 for e in logs if e.get("event") == "rtp_timeout")
        elapsed = time.monotonic() - t_start
    finally:
        d.stop()
    print("\n== bench/fuzz_sip.py ==")
    print(f"messages sent:         {tally.sent} in {elapsed:.0f} s (seed {args.seed}; torture + fuzz; "
          f"UDP and TCP)")
    print(f"mutations:             {dict(sorted(kinds.items()))}")
    print(f"responses by class:    {dict(sorted(tally.by_class.items()))} (distinct; "
          f"{tally.datagrams} response messages in all)")
    print(f"top codes:             {dict(tally.by_code.most_common(10))}")
    print(f"daemon crashes:        {1 if crashed else 0}")
    print(f"real calls:            {len(calls)} placed, {sum(a for a, _ in calls)} answered, "
          f"{sum(t for _, t in calls)} heard their tone")
    print(f"calls created / CDRs:  {created} / {cdrs}  (cdr_write_failed: {failed})")
    print(f"calls left live:       {t1.get('calls_active', 'n/a')}  (ended by the RTP timeout: {timed_out})")
    print(f"RSS before / after:    {rss_start} kB / {rss_end} kB  (after each round: {rss_rounds})")
    ok = not crashed and cdrs == created and not failed and t1.get("calls_active") == 0 \
        and all(a and t for a, t in calls)
    print("result:                " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
