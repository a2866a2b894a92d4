#!/usr/bin/env python3
"""Overload benchmark: offer new calls at 2x the rate the daemon sustains and show load shedding.

The daemon runs with ``admission.max_calls_per_second`` = --sustained (the call-set-up rate it
serves with a low set-up latency on this machine; burst --burst). sipp offers --factor x that
rate (default 2x) for --seconds; every call is routed to bench/handlers/ivr.py (PlayAudio of a
looping prompt, as in bench/concurrent_calls.py) and held --hold seconds. Calls above the rate
get 503 with Retry-After (the scenario ACKs them and counts them as refused).

Printed: per second of the run, INVITEs accepted (chimevoice_calls_total) and refused
(chimevoice_admission_refusals_total) from /metrics; then the totals, the refusal causes and
the INVITE->200 OK latency p50/p99 of the accepted calls (sipp's response-time trace; only
200 answers are timed). Goal: p99 of accepted calls <= 50 ms.

--no-admission runs the same traffic with admission off, to show what happens without shedding.

usage: .venv/bin/python bench/overload.py [--sustained 100] [--factor 2] [--seconds 10] [--hold 2]
Loopback only; every run is bounded by --seconds and --hold.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from concurrent_calls import ROOT, bench_prompt, free_port, start_daemon, stop_daemon, thread_cpu  # noqa: E402

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uac accepting 503">
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:+15105550101@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="503" optional="true" next="refused"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:+15105550101@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]>
  </send>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500">
    <![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:+15105550101@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]>
  </send>
  <recv response="200" crlf="true" next="done"/>
  <label id="refused"/>
  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:+15105550101@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]>
  </send>
  <label id="done"/>
  <ResponseTimeRepartition value="10, 20, 30, 40, 50, 100, 150, 200"/>
</scenario>
"""


def scrape(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        text = urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("chimevoice_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


class PerSecond(threading.Thread):
    """Samples /metrics once a second: accepted (calls_total) and refused (admission refusals)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.rows: list[tuple[float, float, float]] = []      # (t, accepted, refused) cumulative
        self.stop = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        while True:
            m = scrape(self.url)
            refused = sum(v for k, v in m.items() if k.startswith("chimevoice_admission_refusals_total"))
            self.rows.append((time.monotonic() - t0, m.get("chimevoice_calls_total", 0.0), refused))
            if self.stop.wait(1.0):
                return


def causes(url: str) -> dict[str, int]:
    return {k.split('"')[1]: int(v) for k, v in scrape(url).items()
            if k.startswith("chimevoice_admission_refusals_total")}


def percentile(values: list[float], p: float) -> float | None:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else None


def run(args, work: Path, admission: bool) -> dict:
    port, http_port = free_port(), free_port()
    prompts = work / "prompts"
    prompts.mkdir(exist_ok=True)
    shutil.copy(work / "prompt.wav", prompts / "prompt.wav")
    cfg = {
        "data_dir": str(work / f"data-{admission}"),
        "logging": {"level": "warning", "format": "json"},
        "sip": {"listeners": [{"transport": "udp", "address": "127.0.0.1", "port": port}],
                "rtp": {"port_start": 10000, "port_count": 20000}},
        "voice_connectors": [{"id": "vc-bench", "name": "bench", "host_name": "vc-bench.local",
                              "allow_list": ["127.0.0.0/8"], "phone_numbers": ["+15550100000"]}],
        "sip_media_applications": [{"id": "bench-ivr", "name": "bench-ivr", "handler": {
            "type": "python", "target": "ivr:handler", "python_path": [str(ROOT / "bench" / "handlers")],
            "workers": args.workers}}],
        "sip_rules": [{"id": "bench-rule", "name": "bench", "trigger_type": "ToPhoneNumber",
                       "trigger_value": "+15550100000",
                       "target_applications": [{"sip_media_application_id": "bench-ivr", "priority": 1}]}],
        "buckets": {"prompts": str(prompts)},
        "admission": ({"max_calls_per_second": args.sustained, "burst": args.burst, "max_concurrent_calls": "off"}
                      if admission else {"max_calls_per_second": "off", "max_concurrent_calls": "off"}),
    }
    daemon, url = start_daemon(cfg, work, http_port)
    scenario = work / "uac503.xml"
    scenario.write_text(SCENARIO.replace("{hold_ms}", str(int(args.hold * 1000))))
    rate = args.sustained * args.factor
    calls = int(rate * args.seconds)
    try:
        warm = ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-s", "+15550100000", "-i", "127.0.0.1",
                "-p", "0", "-m", "2", "-r", "2", "-nostdin", "-timeout", "30s"]
        subprocess.run(warm, cwd=work, capture_output=True)
        time.sleep(args.hold + 1)
        for f in work.glob("uac503_*"):
            f.unlink()
        base = scrape(url)
        threads0 = thread_cpu(daemon.pid)
        sampler = PerSecond(url)
        sampler.start()
        cmd = ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-s", "+15550100000", "-i", "127.0.0.1",
               "-p", "0", "-m", str(calls), "-l", str(calls), "-r", str(int(rate)), "-nostdin",
               "-trace_rtt", "-rtt_freq", "1", "-timeout", f"{int(args.seconds + args.hold + 60)}s",
               "-max_socket", "4096"]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        threads1 = thread_cpu(daemon.pid)
        time.sleep(1.2)
        sampler.stop.set()
        sampler.join()
        if daemon.poll() is not None:
            raise SystemExit("chimevoice exited during the run:\n" + (work / "daemon.log").read_text()[-3000:])
        rtts: list[float] = []
        by_second: dict[int, list[float]] = {}
        first: float | None = None
        for f in work.glob("uac503_*_rtt.csv"):
            for row in csv.DictReader(open(f), delimiter=";"):
                try:
                    rtt, at = float(row["response_time_ms"]), float(row["Date_ms"])
                except (KeyError, ValueError):
                    continue
                rtts.append(rtt)
                first = at if first is None else min(first, at)
                by_second.setdefault(int(at // 1000), []).append(rtt)
        end = scrape(url)
        accepted = end.get("chimevoice_calls_total", 0) - base.get("chimevoice_calls_total", 0)
        refused = sum(v for k, v in end.items() if k.startswith("chimevoice_admission_refusals_total")) - sum(
            v for k, v in base.items() if k.startswith("chimevoice_admission_refusals_total"))
        return {"admission": admission, "offered_per_s": rate, "calls": calls, "accepted": int(accepted),
                "refused": int(refused), "causes": causes(url), "rows": sampler.rows,
                "setup_ms_p50": percentile(rtts, 0.5), "setup_ms_p99": percentile(rtts, 0.99),
                "timed": len(rtts), "sipp_rc": proc.returncode,
                "p99_by_second": [percentile(v, 0.99) for _, v in sorted(by_second.items())],
                "cpu_s_by_thread": {k: round(v - threads0.get(k, 0.0), 2) for k, v in threads1.items()
                                    if v - threads0.get(k, 0.0) > 0.05}}
    finally:
        stop_daemon(daemon)


def report(r: dict, args) -> None:
    mode = f"admission {args.sustained}/s burst {args.burst}" if r["admission"] else "admission off"
    print(f"\n== {mode}: offered {r['offered_per_s']:.0f} new calls/s for {args.seconds} s, held {args.hold} s")
    print("  second  accepted/s  refused/s  set-up p99 ms of that second's accepted calls (sipp's clock)")
    rows = r["rows"]
    p99s = iter(r["p99_by_second"])
    for (t0, a0, f0), (_t1, a1, f1) in zip(rows, rows[1:]):
        if a1 - a0 or f1 - f0:
            print(f"  {t0:6.0f}  {a1 - a0:10.0f}  {f1 - f0:9.0f}  {next(p99s, '')}")
    p99 = r["setup_ms_p99"]
    verdict = "" if p99 is None else ("  (goal <= 50 ms: met)" if p99 <= 50 else "  (goal <= 50 ms: MISSED)")
    print(f"  total: {r['accepted']} accepted, {r['refused']} refused {r['causes']} of {r['calls']} offered; "
          f"accepted set-up INVITE->200 p50 {r['setup_ms_p50']} ms p99 {p99} ms ({r['timed']} timed){verdict}",
          flush=True)
    busy = sorted(r["cpu_s_by_thread"].items(), key=lambda kv: -kv[1])[:6]
    print("  daemon CPU s by thread over the run: " + ", ".join(f"{k} {v}" for k, v in busy), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sustained", type=float, default=100.0, help="the admission rate: new calls/s the daemon "
                    "sustains (default 100)")
    ap.add_argument("--burst", type=int, default=20, help="admission burst (default 20)")
    ap.add_argument("--factor", type=float, default=2.0, help="offered rate = factor x sustained (default 2)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the offered traffic (default 10)")
    ap.add_argument("--hold", type=float, default=2.0, help="seconds each accepted call is held (default 2)")
    ap.add_argument("--workers", type=int, default=2, help="handler worker processes (default 2)")
    ap.add_argument("--no-admission", action="store_true", help="also run the same traffic with admission off")
    args = ap.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is missing (Debian package sip-tester): run scripts/bootstrap", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="chimevoice-overload-") as tmp:
        work = Path(tmp)
        bench_prompt(work / "prompt.wav")
        results = [run(args, work, admission=True)]
        report(results[0], args)
        if args.no_admission:
            results.append(run(args, work, admission=False))
            report(results[1], args)
    p99 = results[0]["setup_ms_p99"]
    return 0 if p99 is not None and p99 <= 50 else 1


if __name__ == "__main__":
    sys.exit(main())
