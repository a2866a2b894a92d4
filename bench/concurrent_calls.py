#!/usr/bin/env python3
"""Concurrent-call benchmark: N simultaneous sipp calls held against the running daemon.

Each call is routed to a Python handler (bench/handlers/ivr.py, a Chime-style
Lambda) that answers with PlayAudio of a 10 s WAV repeated, so media flows for
the whole hold time. The same sipp traffic is then sent to the reference
../shared/bench/raw_uas.py (the thinnest pjsua2 IVR: answer and loop a WAV) on
the same pjsua2 build, and both are compared.

Printed figures, for chimevoice and for raw_uas:
  calls held (peak concurrent), failed calls, CPU seconds and average cores over
  the run (daemon + its handler worker processes), RSS (peak, as the idle RSS plus a cost per call),
  INVITE->200 OK latency p50/p99 (from sipp's response-time trace).

usage: .venv/bin/python bench/concurrent_calls.py [--calls 1000] [--rate 100] [--hold 20] [--handler ivr|listen]
Loopback only; every run is bounded by --calls and --hold.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAW_UAS = ROOT.parent / "shared" / "bench" / "raw_uas.py"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = open(stat).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (summed over same-named threads) of a process tree."""
    out: dict[str, float] = {}
    for p in proc_tree(pid):
        for stat in glob.glob(f"/proc/{p}/task/[0-9]*/stat"):
            try:
                text = open(stat).read()
            except OSError:
                continue
            name = text[text.index("(") + 1:text.rindex(")")]
            tid = int(stat.split("/")[-2])
            name = "main" if tid == p else f"{name}/{tid}"
            fields = text.rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0.0) + sum(int(x) for x in fields[11:13]) / TICK
    return out


def cpu_and_rss(pid: int) -> tuple[float, float]:
    """(CPU seconds used so far incl. reaped children, RSS MB) of a process tree."""
    cpu = rss = 0.0
    for p in proc_tree(pid):
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime stime cutime cstime are fields 14-17 (1-based) => 11..14 after the ')' split
        cpu += sum(int(x) for x in fields[11:15]) / TICK
        rss += int(fields[21]) * PAGE / 1e6
    return cpu, rss


class Sampler(threading.Thread):
    """Samples RSS of a process tree and the daemon's active-call gauge while sipp runs,
    and the CPU used while every call is up (the steady state: media only)."""

    def __init__(self, pid: int, metrics_url: str | None = None, window: tuple[float, float] = (0, 0)) -> None:
        super().__init__(daemon=True)
        self.pid, self.url = pid, metrics_url
        self.window = window
        self.steady_cores: float | None = None
        self.steady_threads: dict[str, float] = {}
        self.peak_rss = 0.0
        self.peak_calls = 0
        self.stop = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        mark = None
        while not self.stop.wait(0.5):
            now = time.monotonic() - t0
            if mark is None and now >= self.window[0] and self.window[1] > self.window[0]:
                mark = (now, cpu_and_rss(self.pid)[0], thread_cpu(self.pid))
            elif mark is not None and self.steady_cores is None and now >= self.window[1]:
                self.steady_cores = (cpu_and_rss(self.pid)[0] - mark[1]) / (now - mark[0])
                after = thread_cpu(self.pid)
                self.steady_threads = {k: round((v - mark[2].get(k, 0.0)) / (now - mark[0]), 3)
                                       for k, v in after.items() if v - mark[2].get(k, 0.0) > 0}
            self.peak_rss = max(self.peak_rss, cpu_and_rss(self.pid)[1])
            if self.url:
                try:
                    text = urllib.request.urlopen(self.url, timeout=2).read().decode()
                    for line in text.splitlines():
                        if line.startswith("chimevoice_calls_active "):
                            self.peak_calls = max(self.peak_calls, int(float(line.split()[1])))
                except OSError:
                    pass


def steady_window(args) -> tuple[float, float]:
    """Seconds into the sipp run during which every call is up: after the ramp, before the
    first BYE (the first call ends *hold* seconds after the run starts). (0, 0) if none."""
    ramp = args.calls / args.rate
    start, end = ramp + 1, args.hold - 1
    return (start, end) if end - start >= 2 else (0, 0)


def run_sipp(port: int, calls: int, rate: int, hold_s: float, workdir: Path, extra: list[str] | None = None) -> dict:
    """Built-in uac scenario: INVITE, 200, ACK, hold, BYE. Returns sipp's counts and latencies."""
    for f in workdir.glob("uac_*"):
        f.unlink()
    cmd = ["sipp", f"127.0.0.1:{port}", "-sn", "uac", "-s", "+15550100000", "-i", "127.0.0.1", "-p", "0",
           "-m", str(calls), "-l", str(calls), "-r", str(rate), "-d", str(int(hold_s * 1000)),
           "-nostdin", "-trace_stat", "-fd", "1", "-trace_rtt", "-rtt_freq", "1",
           "-timeout", f"{int(hold_s + calls / rate + 60)}s", "-max_socket", "4096", *(extra or [])]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    wall = time.monotonic() - t0
    stats = list(csv.DictReader(open(next(workdir.glob("uac_*_.csv"))), delimiter=";"))
    last = stats[-1]
    rtts: list[float] = []
    for f in workdir.glob("uac_*_rtt.csv"):
        for row in csv.DictReader(open(f), delimiter=";"):
            try:
                rtts.append(float(row["response_time_ms"]))
            except (KeyError, ValueError):
                pass
    rtts.sort()

    def pct(p: float) -> float | None:
        return rtts[min(len(rtts) - 1, int(p * len(rtts)))] if rtts else None

    return {"successful": int(last["SuccessfulCall(C)"]), "failed": int(last["FailedCall(C)"]),
            "sipp_rc": proc.returncode, "wall_s": round(wall, 1),
            "setup_ms_p50": pct(0.50), "setup_ms_p99": pct(0.99), "samples": len(rtts)}


def measured_run(pid: int, metrics_url: str | None, args, port: int, work: Path,
                 extra: list[str] | None = None) -> dict:
    """The sipp run against *pid*, with its CPU, RSS and steady-state CPU measured from /proc."""
    sampler = Sampler(pid, metrics_url, steady_window(args))
    cpu0, rss0 = cpu_and_rss(pid)
    threads0 = thread_cpu(pid)
    t0 = time.monotonic()
    sampler.start()
    res = run_sipp(port, args.calls, args.rate, args.hold, work, extra)
    wall = time.monotonic() - t0
    cpu1, _ = cpu_and_rss(pid)
    threads1 = thread_cpu(pid)
    sampler.stop.set()
    sampler.join()
    res.update(cpu_s=round(cpu1 - cpu0, 1), wall_s=round(wall, 1), gauge_peak_calls=sampler.peak_calls,
               steady_cores=sampler.steady_cores and round(sampler.steady_cores, 3),
               steady_threads=sampler.steady_threads, peak_rss_mb=round(sampler.peak_rss),
               idle_rss_mb=round(rss0),
               run_threads={k: round(v - threads0.get(k, 0.0), 2) for k, v in threads1.items()
                            if v - threads0.get(k, 0.0) > 0.05})
    return res


def bench_prompt(path: Path) -> None:
    """A 10 s 8 kHz mono prompt (a few tones) shared by both servers."""
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", "2.5", "sine", "440",
                    "synth", "2.5", "sine", "660", ":", "synth", "2.5", "sine", "550", ":", "synth", "2.5",
                    "sine", "880", ":", "synth", "2.5", "sine", "330", "gain", "-6"], check=True,
                   capture_output=True)


def run_chimevoice(args, work: Path) -> dict:
    port, http_port = free_port(), free_port()
    prompts = work / "prompts"
    prompts.mkdir()
    shutil.copy(work / "prompt.wav", prompts / "prompt.wav")
    cfg = {
        "data_dir": str(work / "data"),
        "logging": {"level": args.log_level, "format": "json"},
        "sip": {"listeners": [{"transport": "udp", "address": "127.0.0.1", "port": port}],
                "rtp": {"port_start": 10000, "port_count": 20000}},   # below the ephemeral range
        "voice_connectors": [{"id": "vc-bench", "name": "bench", "host_name": "vc-bench.local",
                              "allow_list": ["127.0.0.0/8"], "phone_numbers": ["+15550100000"]}],
        "sip_media_applications": [{"id": "bench-ivr", "name": "bench-ivr", "handler": {
            "type": "python", "target": f"{args.handler}:handler", "python_path": [str(ROOT / "bench" / "handlers")],
            "workers": args.workers}}],
        "sip_rules": [{"id": "bench-rule", "name": "bench", "trigger_type": "ToPhoneNumber",
                       "trigger_value": "+15550100000",
                       "target_applications": [{"sip_media_application_id": "bench-ivr", "priority": 1}]}],
        "buckets": {"prompts": str(prompts)},
        # capacity is measured without load shedding (bench/overload.py measures that)
        "admission": {"max_calls_per_second": "off", "max_concurrent_calls": "off"},
    }
    wrap = os.environ.get("CHIMEVOICE_BENCH_WRAP", "").split()   # e.g. a profiler command ending in --
    daemon, url = start_daemon(cfg, work, http_port, wrap)
    try:
        # Warm up: one call starts the handler worker and converts the prompt.
        run_sipp(port, 2, 2, 1, work)
        return daemon_figures(daemon, measured_run(daemon.pid, url, args, port, work), work)
    finally:
        stop_daemon(daemon, wrap)


def start_daemon(cfg: dict, work: Path, http_port: int,
                 wrap: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """chimevoice with *cfg* (written as JSON, which is YAML) and --http; returns the process
    and its /metrics URL once that answers."""
    cfg_path = work / "bench.yaml"
    cfg_path.write_text(json.dumps(cfg))
    log = open(work / "daemon.log", "w")
    daemon = subprocess.Popen([*(wrap or []), sys.executable, "-m", "chimevoice", "run", "-c", str(cfg_path),
                               "--http", f"127.0.0.1:{http_port}", "--drain-seconds", "0"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{http_port}/metrics"
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    return daemon, url


def daemon_figures(daemon: subprocess.Popen, res: dict, work: Path) -> dict:
    """*res* of a measured run, checked (the daemon is still up) and completed with the
    handler workers' CPU and the peak call count."""
    if daemon.poll() is not None:
        raise SystemExit("chimevoice exited during the run:\n" + (work / "daemon.log").read_text()[-3000:])
    workers = [p for p in proc_tree(daemon.pid) if p != daemon.pid]
    res["worker_cpu_s"] = round(sum(cpu_and_rss(p)[0] for p in workers), 1)
    res["peak_calls"] = res.pop("gauge_peak_calls")
    return res


def stop_daemon(daemon: subprocess.Popen, wrap: list[str] | None = None) -> None:
    daemon.send_signal(signal.SIGINT if wrap else signal.SIGTERM)
    try:
        daemon.wait(30)
    except subprocess.TimeoutExpired:
        daemon.kill()


def patched_raw_uas(work: Path) -> Path:
    """raw_uas.py with one fix: it reads ``self.getInfo().media`` from a CallInfo temporary
    that Python frees at once, so the media status it reads is freed memory (this is the
    "CallMediaInfo.type reads garbage" quirk) and most calls never get their player. Keeping
    the CallInfo alive is the whole change; the server stays as thin as before."""
    lines = RAW_UAS.read_text().splitlines()
    for i, line in enumerate(lines):
        if "self.getInfo().media" in line:
            indent = line[:len(line) - len(line.lstrip())]
            lines[i] = indent + "ci = self.getInfo()\n" + line.replace("self.getInfo().media", "ci.media")
            break
    else:
        return RAW_UAS
    out = work / "raw_uas_fixed.py"
    out.write_text("\n".join(lines) + "\n")
    return out


def run_raw_uas(args, work: Path, extra: list[str] | None = None) -> dict:
    port = free_port()
    duration = args.calls / args.rate + args.hold + 12
    script = patched_raw_uas(work)
    raw = subprocess.Popen([sys.executable, str(script), str(port), str(work / "prompt.wav"), str(duration)],
                           stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        run_sipp(port, 2, 2, 1, work, extra)
        res = measured_run(raw.pid, None, args, port, work, extra)
        out = raw.communicate(timeout=duration + 30)[0]
    finally:
        if raw.poll() is None:
            raw.kill()
    line = next(ln for ln in out.splitlines() if ln.startswith("peak_calls"))
    kv = dict(zip(line.split()[::2], line.split()[1::2]))
    # CPU is measured from /proc over the sipp run, exactly as for chimevoice; raw_uas's own
    # figure covers its whole fixed-length run (idle tail included) and is reported alongside.
    res.update(peak_calls=int(kv["peak_calls"]), own_cpu_s=float(kv["cpu_s"]))
    return res


def report(name: str, r: dict, calls: int) -> None:
    cores = r["cpu_s"] / r["wall_s"] if r["wall_s"] else 0
    # RSS as the idle daemon (after the warm-up call, handler workers included) plus a cost per call
    per_call = (r["peak_rss_mb"] - r["idle_rss_mb"]) / max(1, r["peak_calls"])
    if "worker_cpu_s" in r:
        print(f"{'':>11}  (handler worker processes: {r['worker_cpu_s']} s CPU in total since start)")
    print(f"{name:>11}: held {r['peak_calls']:5d}  ok {r['successful']:5d}/{calls}  failed {r['failed']:3d}  "
          f"cpu {r['cpu_s']:6.1f} s ({cores:4.2f} cores avg over {r['wall_s']} s)  "
          f"steady {r.get('steady_cores')} cores  rss {r['peak_rss_mb']:5d} MB (idle {r['idle_rss_mb']} MB + "
          f"{per_call:4.2f} MB/call)  "
          f"INVITE->200 p50 {r['setup_ms_p50']} ms p99 {r['setup_ms_p99']} ms", flush=True)
    threads = sorted(r.get("steady_threads", {}).items(), key=lambda kv: -kv[1])
    if threads:
        print(f"{'':>11}  steady cores by thread: " + ", ".join(f"{k} {v}" for k, v in threads[:8]), flush=True)
    run = sorted(r.get("run_threads", {}).items(), key=lambda kv: -kv[1])
    if run:
        print(f"{'':>11}  CPU s by thread over the run: " + ", ".join(f"{k} {v}" for k, v in run[:10]), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=1000, help="simultaneous calls to place (default 1000)")
    ap.add_argument("--rate", type=int, default=100, help="new calls per second (default 100)")
    ap.add_argument("--hold", type=float, default=20.0, help="seconds each call is held (default 20)")
    ap.add_argument("--workers", type=int, default=2, help="handler worker processes (default 2)")
    ap.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    ap.add_argument("--skip-raw", action="store_true", help="do not run the raw_uas reference")
    ap.add_argument("--handler", default="ivr", choices=("ivr", "listen"),
                    help="ivr: PlayAudio only (default); listen: ReceiveDigits then PlayAudio, so every "
                         "call runs in-band DTMF detection (sipp offers no telephone-event)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is missing (Debian package sip-tester): run scripts/bootstrap", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="chimevoice-bench-") as tmp:
        work = Path(tmp)
        bench_prompt(work / "prompt.wav")
        print(f"benchmark: {args.calls} calls at {args.rate}/s held {args.hold} s, {os.cpu_count()} cores", flush=True)
        ours = run_chimevoice(args, work)
        report("chimevoice", ours, args.calls)
        result = {"chimevoice": ours, "args": vars(args)}
        if not args.skip_raw:
            raw = run_raw_uas(args, work)
            report("raw_uas", raw, args.calls)
            result["raw_uas"] = raw
            # Same traffic, same length of sipp run: compare CPU per second of sipp traffic.
            ratio = (ours["cpu_s"] / ours["wall_s"]) / (raw["cpu_s"] / raw["wall_s"])
            result["cpu_ratio"] = round(ratio, 2)
            print(f"CPU ratio chimevoice / raw_uas = {ratio:.2f} (target <= 1.5)", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if ours["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
