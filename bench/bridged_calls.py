#!/usr/bin/env python3
"""Bridged-call benchmark: N calls in, each bridged by CallAndBridge to a carrier (2N legs).

sipp places N calls (built-in uac scenario, RTP echoed back: ``-rtp_echo``) at the daemon;
its handler (bench/handlers/bridge.py, a Chime-style Lambda) bridges each to a second sipp
acting as the carrier (built-in uas scenario, RTP echoed too), through the PSTN gateway's
origination route. Both legs carry RTP both ways for the whole hold time. When sipp hangs up
LEG-A the handler hangs up LEG-B.

Then ../shared/bench/raw_uas.py holds 2N single legs (the same number of legs) of the same
sipp traffic on the same pjsua2 build, and the figures are compared.

Printed, for both: calls held, failed calls, CPU seconds and cores (daemon + handler
workers), steady-state cores, RSS, INVITE->200 OK p50/p99 on LEG-A (which includes LEG-B's
answer for chimevoice); and the CPU ratio (goal <= 1.6).

usage: .venv/bin/python bench/bridged_calls.py [--calls 500] [--rate 50] [--hold 60]
Loopback only; bounded by --calls and --hold.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import concurrent_calls as cc  # noqa: E402  (the shared measuring code)

ROOT = cc.ROOT
CARRIER = "+15550199001"


def start_carrier(port: int, work: Path, calls: int) -> subprocess.Popen[bytes]:
    """sipp as the carrier: answers every INVITE, echoes RTP, waits for our BYE."""
    return subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-mp", "40000", "-rtp_echo",
         "-nostdin", "-max_socket", "4096", "-m", str(calls + 2), "-timeout", "600s"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_chimevoice(args, work: Path) -> dict:
    port, http_port, carrier_port = cc.free_port(), cc.free_port(), cc.free_port()
    cfg = {
        "data_dir": str(work / "data"),
        "logging": {"level": args.log_level, "format": "json"},
        "sip": {"listeners": [{"transport": "udp", "address": "127.0.0.1", "port": port}],
                "rtp": {"port_start": 10000, "port_count": 20000}},
        "voice_connectors": [
            {"id": "vc-bench", "name": "bench", "host_name": "vc-bench.local",
             "allow_list": ["127.0.0.0/8"], "phone_numbers": ["+15550100000"]},
            {"id": "vc-carrier", "name": "carrier", "host_name": "carrier.local", "allow_list": ["127.0.0.0/8"],
             "origination": {"routes": [{"host": "127.0.0.1", "port": carrier_port, "protocol": "udp"}],
                             "options_interval_s": 0}}],
        "pstn": {"voice_connector": "vc-carrier"},
        "sip_media_applications": [{"id": "bench-bridge", "name": "bench-bridge", "handler": {
            "type": "python", "target": "bridge:handler", "python_path": [str(ROOT / "bench" / "handlers")],
            "workers": args.workers}}],
        "sip_rules": [{"id": "bench-rule", "name": "bench", "trigger_type": "ToPhoneNumber",
                       "trigger_value": "+15550100000",
                       "target_applications": [{"sip_media_application_id": "bench-bridge", "priority": 1}]}],
        "admission": {"max_calls_per_second": "off", "max_concurrent_calls": "off"},   # capacity, no shedding
    }
    carrier = start_carrier(carrier_port, work, args.calls)
    daemon, url = cc.start_daemon(cfg, work, http_port)
    try:
        cc.run_sipp(port, 2, 2, 1, work, extra=["-rtp_echo"])           # warm up the handler workers
        res = cc.daemon_figures(daemon, cc.measured_run(daemon.pid, url, args, port, work, extra=["-rtp_echo"]),
                                work)
        res["legs"] = 2 * res["peak_calls"]
        bridged = sum(1 for line in (work / "daemon.log").read_text().splitlines() if '"event": "bridged"' in line)
        res["bridged"] = bridged
        return res
    finally:
        cc.stop_daemon(daemon)
        carrier.kill()
        carrier.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=500, help="bridged calls (2 legs each; default 500)")
    ap.add_argument("--rate", type=int, default=50, help="new calls per second (default 50)")
    ap.add_argument("--hold", type=float, default=60.0, help="seconds each call is held (default 60)")
    ap.add_argument("--workers", type=int, default=2, help="handler worker processes (default 2)")
    ap.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    ap.add_argument("--skip-raw", action="store_true", help="do not run the raw_uas reference")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (logs, sipp traces)")
    args = ap.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is missing (Debian package sip-tester): run scripts/bootstrap", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="chimevoice-bridge-bench-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        cc.bench_prompt(work / "prompt.wav")
        print(f"benchmark: {args.calls} bridged calls ({2 * args.calls} legs) at {args.rate}/s held {args.hold} s, "
              f"{os.cpu_count()} cores", flush=True)
        ours = run_chimevoice(args, work)
        cc.report("chimevoice", ours, args.calls)
        print(f"{'':>11}  legs {ours['legs']}, bridged {ours['bridged']}", flush=True)
        result = {"chimevoice": ours, "args": vars(args)}
        if not args.skip_raw:
            raw_args = argparse.Namespace(**{**vars(args), "calls": 2 * args.calls, "rate": 2 * args.rate})
            raw = cc.run_raw_uas(raw_args, work, extra=["-rtp_echo"])
            cc.report("raw_uas", raw, raw_args.calls)
            result["raw_uas"] = raw
            ratio = (ours["cpu_s"] / ours["wall_s"]) / (raw["cpu_s"] / raw["wall_s"])
            result["cpu_ratio"] = round(ratio, 2)
            print(f"CPU ratio chimevoice ({2 * args.calls} bridged legs) / raw_uas ({raw_args.calls} legs) "
                  f"= {ratio:.2f} (target <= 1.6)", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if ours["failed"] == 0 and ours["bridged"] >= args.calls else 1


if __name__ == "__main__":
    sys.exit(main())
