#!/usr/bin/env python3
"""Soak: N concurrent recorded IVR calls for M minutes, then kill -9 mid-call and a restart.

The daemon answers every call with the demo IVR (chimevoice/demo/handler.py, the example
config's handler) with RECORDING_DESTINATION set: StartCallRecording of both tracks, the
welcome and goodbye prompts (--hold/2 seconds each here), Hangup. sipp places the calls
(tests/sipp/uac_wait_bye.xml: it waits for the daemon's BYE; ``-rtp_echo``: the prompts come
back as the caller's audio, so both tracks of each recording hold sound), N at a time, for
--minutes; each call lasts about --hold seconds. While it runs,
the daemon's RSS (main process and handler workers), open file descriptors, threads and
active calls are sampled every --sample seconds.

At the end sipp stops placing calls (SIGUSR1) and, with the last N calls still up, the daemon
is killed with SIGKILL. It is started again at once; the time until it answers a new call is
measured, and 20 more calls are placed. Then it is stopped (SIGTERM) and everything is
checked:

  * every call sipp created has exactly one CDR (by SIP Call-ID), but for the INVITEs still
    in flight at the kill (the numbers after the last one the daemon took in); every call sipp
    completed has a CDR that ended normally; the calls cut by the kill have the CDR the
    journal recovers (HangupSource system);
  * every call has its recording (but calls killed before StartCallRecording ran); no
    ``.part`` file is left; every recording opens as a
    WAV whose header matches its size; a completed call's recording lasts as long as the
    call (within 1.5 s); a sample of recordings holds sound on both tracks;
  * after warm-up (--warmup seconds) RSS stays within 5 % of its first value and the
    file descriptors beyond those of the calls up (a linear fit) grow by at most 8.

usage: .venv/bin/python bench/soak.py [--calls 1000] [--minutes 10] [--hold 30]
The full run (1000 calls, 10 minutes) takes about 13 minutes and wants a quiet machine.
Loopback only; bounded by --minutes. Exit status 0 when every check holds.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from concurrent_calls import ROOT, free_port, proc_tree, start_daemon, stop_daemon  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
WORKER_SETTLE_S = 5.0        # a handler worker younger than this may still be importing


def rss_mb(pid: int) -> float:
    try:
        return int(open(f"/proc/{pid}/statm").read().split()[1]) * PAGE / 1e6
    except OSError:
        return 0.0


def age_s(pid: int) -> float:
    """Seconds since *pid* started (0 when it is gone): /proc/PID/stat field 22, in clock ticks."""
    try:
        start = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])
        uptime = float(open("/proc/uptime").read().split()[0])
    except (OSError, IndexError, ValueError):
        return 0.0
    return uptime - start / os.sysconf("SC_CLK_TCK")


def count(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return 0


def gauges(url: str) -> dict[str, float]:
    """The daemon's unlabelled /metrics values ({} when it does not answer)."""
    try:
        text = urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#") and "{" not in parts[0]:
            try:
                out[parts[0].removeprefix("chimevoice_")] = float(parts[1])
            except ValueError:
                pass
    return out


def active_calls(url: str) -> int | None:
    value = gauges(url).get("calls_active")
    return None if value is None else int(value)


class Sampler(threading.Thread):
    """Every *every* seconds: (t, daemon RSS MB, handler workers' RSS MB, fds, threads, calls)."""

    def __init__(self, pid: int, url: str, every: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.url, self.every = pid, url, every
        self.rows: list[dict] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while True:
            workers = {p: (round(rss_mb(p), 1), round(age_s(p), 1)) for p in proc_tree(self.pid) if p != self.pid}
            g = gauges(self.url)
            self.rows.append({"t": round(time.monotonic() - self.t0), "rss_mb": round(rss_mb(self.pid), 1),
                              "workers_rss_mb": round(sum(rss for rss, _ in workers.values()), 1),
                              "workers": len(workers),
                              "worker_rss": workers,
                              "fds": count(f"/proc/{self.pid}/fd"), "threads": count(f"/proc/{self.pid}/task"),
                              "calls": int(g["calls_active"]) if "calls_active" in g else None,
                              "media_queue": int(g.get("media_queue_commands", -1)),
                              "media_busy_s": g.get("media_worker_busy_seconds"),
                              "recordings_open": g.get("recordings_open"),
                              "recordings_closing": g.get("recordings_closing"),
                              "py_blocks": g.get("python_allocated_blocks"), "tasks": g.get("asyncio_tasks"),
                              "malloc_in_use_mb": round(g.get("malloc_in_use_bytes", 0) / 1e6, 1),
                              "malloc_held_mb": round(g.get("malloc_held_bytes", 0) / 1e6, 1),
                              "conf_ports": g.get("sip_conference_ports"), "sip_legs": g.get("sip_legs"),
                              "players": g.get("sip_players"),
                              "full_gcs": g.get("python_gc_collections_gen2"),
                              "gc_max_ms": round(g.get("python_gc_pause_max_seconds", 0) * 1000, 1),
                              "tap_dropped_s": round(g.get("sip_tap_dropped_bytes", 0) / 16000, 2)})
            if self.stop.wait(self.every):
                return


def _n(value: float | None) -> str:
    return "-" if value is None else str(int(value))


def config(work: Path, port: int, workers: int, echo: bool = True) -> dict:
    prompts, recordings = work / "prompts", work / "recordings"
    prompts.mkdir(exist_ok=True)
    recordings.mkdir(exist_ok=True)
    for name in ("welcome.wav", "goodbye.wav"):
        shutil.copy(work / name, prompts / name)
    return {
        "data_dir": str(work / "data"),
        "logging": {"level": "info", "format": "json"},
        "sip": {"listeners": [{"transport": "udp", "address": "127.0.0.1", "port": port}],
                # --no-echo: sipp sends no RTP, so the RTP timeout would end calls held past it
                "rtp": {"port_start": 10000, "port_count": 20000, **({} if echo else {"timeout_s": 0})}},
        "voice_connectors": [{"id": "vc-soak", "name": "soak", "host_name": "vc-soak.local",
                              "allow_list": ["127.0.0.0/8"], "phone_numbers": ["+15550100000"]}],
        "sip_media_applications": [{"id": "soak-ivr", "name": "soak-ivr", "handler": {
            "type": "python", "target": "chimevoice.demo.handler:handler", "workers": workers,
            "environment": {"GREETING_BUCKET": "prompts", "RECORDING_DESTINATION": "recordings/soak"}}}],
        "sip_rules": [{"id": "soak-rule", "name": "soak", "trigger_type": "ToPhoneNumber",
                       "trigger_value": "+15550100000",
                       "target_applications": [{"sip_media_application_id": "soak-ivr", "priority": 1}]}],
        "buckets": {"prompts": str(prompts), "recordings": str(recordings)},
        "admission": {"max_calls_per_second": "off", "max_concurrent_calls": "off"},
    }


def prompts(work: Path, hold_s: float) -> None:
    """The demo IVR's two prompts, --hold/2 seconds of tones each (its call: both, then Hangup)."""
    for name, tones in (("welcome.wav", ("440", "660")), ("goodbye.wav", ("550", "880"))):
        half = f"{hold_s / 4:.3f}"
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(work / name), "synth", half,
                        "sine", tones[0], ":", "synth", half, "sine", tones[1], "gain", "-6"],
                       check=True, capture_output=True)


def scenario(work: Path, hold_s: float) -> Path:
    """tests/sipp/uac_wait_bye.xml, waiting for the BYE longer than a call lasts."""
    text = (ROOT / "tests" / "sipp" / "uac_wait_bye.xml").read_text(encoding="latin-1")
    assert 'request="BYE" timeout="60000"' in text
    path = work / "soak_uac.xml"
    path.write_text(text.replace('timeout="60000"', f'timeout="{int((hold_s + 30) * 1000)}"'), encoding="latin-1")
    return path


def sipp_cmd(port: int, scenario: Path, *, limit: int, rate: int, period_ms: int, total: int,
             echo: bool = True) -> list[str]:
    """One of the soak's sipp processes: *limit* calls at a time, *rate* new calls per *period_ms*."""
    media = ["-mp", str(free_port()), "-rtp_echo"] if echo else []
    return ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-s", "+15550100000", "-i", "127.0.0.1",
            "-p", "0", *media, "-m", str(total), "-l", str(limit), "-r", str(rate),
            "-rp", str(period_ms), "-nostdin", "-trace_stat", "-fd", "1",
            "-max_socket", "4096", "-timeout", "3600s"]


def last_stats(workdir: Path) -> dict:
    files = list(workdir.glob("*_.csv"))
    if not files:
        return {}
    rows = list(csv.DictReader(open(files[0]), delimiter=";"))
    return rows[-1] if rows else {}


def one_call(port: int, workdir: Path, hold_ms: int = 500) -> bool:
    workdir.mkdir(exist_ok=True)
    proc = subprocess.run(["sipp", f"127.0.0.1:{port}", "-sn", "uac", "-s", "+15550100000", "-i", "127.0.0.1",
                           "-p", "0", "-m", "1", "-d", str(hold_ms), "-nostdin", "-timeout", "10s",
                           "-recv_timeout", "3000"], cwd=workdir, capture_output=True, text=True)
    return proc.returncode == 0


def calls(port: int, workdir: Path, n: int) -> tuple[int, int]:
    """n calls at 10/s held 2 s: (successful, failed)."""
    workdir.mkdir(exist_ok=True)
    subprocess.run(["sipp", f"127.0.0.1:{port}", "-sn", "uac", "-s", "+15550100000", "-i", "127.0.0.1",
                    "-p", "0", "-m", str(n), "-r", "10", "-d", "2000", "-nostdin", "-timeout", "60s",
                    "-trace_stat", "-fd", "1"], cwd=workdir, capture_output=True, text=True)
    row = last_stats(workdir)
    return int(row.get("SuccessfulCall(C)", 0)), int(row.get("FailedCall(C)", n))


def wait_log(path: Path, event: str, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if f'"event": "{event}"' in line or f'"event":"{event}"' in line:
                try:
                    return json.loads(line)
                except ValueError:
                    return {}
        time.sleep(0.2)
    return None


def wav_check(path: Path) -> tuple[float, bool, str]:
    """(seconds, header matches size, error)."""
    try:
        with wave.open(str(path)) as w:
            frames, width, ch, rate = w.getnframes(), w.getsampwidth(), w.getnchannels(), w.getframerate()
    except (wave.Error, EOFError, OSError) as exc:
        return 0.0, False, str(exc)
    data = path.stat().st_size - 44
    return frames / rate, data == frames * width * ch, ""


def has_sound(path: Path) -> tuple[float, float]:
    """RMS of each track (dBFS) over the recording."""
    with wave.open(str(path)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
        ch = w.getnchannels()
    x = x.reshape(-1, ch) if ch > 1 else np.stack([x, x], axis=1)
    rms = np.sqrt(np.mean(x ** 2, axis=0)) + 1e-9
    return tuple(round(float(20 * np.log10(r / 32768)), 1) for r in rms[:2])  # type: ignore[return-value]


def check(work: Path, created: dict[str, int], successful: int, report: dict,
          echo: bool = True) -> list[str]:
    """The nothing-lost checks; returns the failures. *created*: calls created by each sipp (by pid)."""
    failures: list[str] = []
    pat = re.compile(rf"^(\d+)-({'|'.join(created)})@")
    cdrs: dict[tuple[str, int], list[dict]] = {}
    for f in (work / "data" / "Amazon-Chime-SMADRs").rglob("*.json"):
        rec = json.loads(f.read_text())
        m = pat.match(rec.get("SipCallId", ""))
        if m:
            cdrs.setdefault((m.group(2), int(m.group(1))), []).append(rec)
    # INVITEs a sipp sent in the last instant that the daemon had not taken in when it was killed
    # (never answered, nothing to record): that sipp's numbers after its last one with a CDR.
    in_flight, missing = 0, []
    for pid, n_created in created.items():
        last = max((n for p, n in cdrs if p == pid), default=0)
        in_flight += n_created - last
        missing += [(pid, n) for n in range(1, last + 1) if (pid, n) not in cdrs]
    doubled = [n for n, v in cdrs.items() if len(v) > 1]
    recovered = [v[0] for v in cdrs.values() if v[0].get("HangupSource") == "system"]
    normal = [v[0] for v in cdrs.values() if v[0].get("HangupSource") != "system"]
    report.update(cdrs=len(cdrs), cdrs_missing=len(missing), cdrs_doubled=len(doubled),
                  cdrs_ended_normally=len(normal), cdrs_recovered=len(recovered),
                  invites_in_flight_at_kill=in_flight)
    if missing:
        failures.append(f"{len(missing)} calls without a CDR (first: {missing[:5]})")
    if doubled:
        failures.append(f"{len(doubled)} calls with more than one CDR")
    # A call whose BYE pjsip answered in the instant before the kill, before the daemon journaled
    # the leg's end, has the recovered CDR (HangupSource system): it has its CDR, with the crash time.
    report["completed_with_recovered_cdr"] = max(0, successful - len(normal))
    if successful - len(normal) > 5:
        failures.append(f"{successful} calls completed but only {len(normal)} CDRs ended normally")

    recs = {p.name.split("_")[1]: p for p in (work / "recordings").rglob("*.wav")}
    parts = list((work / "recordings").rglob("*.part"))
    report.update(recordings=len(recs), recordings_part_left=len(parts))
    if parts:
        failures.append(f"{len(parts)} .part recordings left after restart")
    bad, short, without = [], [], []
    cut_before_recording = 0
    for v in cdrs.values():
        rec = v[0]
        path = recs.get(rec["TransactionId"])
        if path is None:
            if rec.get("HangupSource") == "system":
                cut_before_recording += 1         # killed before its StartCallRecording ran
            else:
                without.append(rec["TransactionId"])
            continue
        seconds, consistent, err = wav_check(path)
        if err or not consistent:
            bad.append((path.name, err or "header does not match size"))
        elif rec.get("HangupSource") != "system" and rec.get("AnswerTimeEpochMilliseconds"):
            # from the recording's start (its key: the UTC time StartCallRecording ran) to the hangup
            started = datetime.datetime.strptime(path.name[:23], "%Y-%m-%d-%H-%M-%S-%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            talk = rec["EndTimeEpochMilliseconds"] / 1000 - started
            if seconds < talk - 1.0:
                short.append((path.name, seconds, round(talk, 2)))
        elif seconds <= 0:
            short.append((path.name, seconds, None))
    report.update(recordings_missing=len(without), recordings_invalid=len(bad), recordings_short=len(short),
                  cut_before_recording_started=cut_before_recording,
                  recordings_short_max_s=max((round(t - sec, 2) for _, sec, t in short if t), default=0))
    if without:
        failures.append(f"{len(without)} calls without a recording")
    if bad:
        failures.append(f"{len(bad)} invalid recordings (first: {bad[:3]})")
    if short:
        failures.append(f"{len(short)} recordings shorter than their call (first: {short[:3]})")
    ours = sorted(recs[v[0]["TransactionId"]] for v in cdrs.values() if v[0]["TransactionId"] in recs)
    sample = ours[:: max(1, len(ours) // 20)][:20]       # soak calls only: they echo the prompt
    quiet = [(p.name, db) for p in sample for db in [has_sound(p)] if (min(db) if echo else db[1]) < -50]
    report["recordings_sampled_for_sound"] = len(sample)
    if quiet:
        failures.append(f"{len(quiet)} of {len(sample)} sampled recordings have a silent track: {quiet[:3]}")
    return failures


def steady(rows: list[dict], warmup: float, report: dict) -> list[str]:
    after = [r for r in rows if r["t"] >= warmup]
    if len(after) < 2:
        return [f"no samples after the {warmup} s warm-up"]
    base = after[0]
    drift = max(abs(r["rss_mb"] - base["rss_mb"]) for r in after) / base["rss_mb"] * 100
    # Per handler worker, by pid: the pool starts a worker when calls need it, which may be
    # after the warm-up, and a worker still importing its handler is not yet its own size, so
    # each worker is measured from its first sample taken WORKER_SETTLE_S after it started.
    wdrift = 0.0
    for pid in {pid for r in after for pid in r.get("worker_rss", {})}:
        sizes = [r["worker_rss"][pid][0] for r in after
                 if pid in r.get("worker_rss", {}) and r["worker_rss"][pid][1] >= WORKER_SETTLE_S]
        if len(sizes) >= 2:
            wdrift = max(wdrift, max(abs(w - sizes[0]) for w in sizes) / max(1.0, sizes[0]) * 100)
    report.update(rss_after_warmup_mb=base["rss_mb"], rss_max_mb=max(r["rss_mb"] for r in after),
                  rss_end_mb=after[-1]["rss_mb"], rss_drift_pct=round(drift, 2),
                  workers_rss_drift_pct=round(wdrift, 2), fds_after_warmup=base["fds"],
                  fds_end=after[-1]["fds"], fds_max=max(r["fds"] for r in after))
    out = []
    if drift > 5:
        out.append(f"daemon RSS moved {drift:.1f} % after warm-up (limit 5 %)")
    if wdrift > 5:
        out.append(f"handler workers' RSS moved {wdrift:.1f} % after warm-up (limit 5 %)")
    # Descriptors follow the calls up (RTP, RTCP, the recording): fit fds = base + k * calls over
    # the samples after warm-up; what must not grow is the rest (the base), first third to last.
    pts = [(r["calls"], r["fds"]) for r in after if r["calls"] is not None]
    n = len(pts)
    mx, my = sum(c for c, _ in pts) / n, sum(f for _, f in pts) / n
    var = sum((c - mx) ** 2 for c, _ in pts)
    k = sum((c - mx) * (f - my) for c, f in pts) / var if var else 0.0
    rest = [f - k * c for c, f in pts]
    third = max(1, n // 3)
    first, last = sum(rest[:third]) / third, sum(rest[-third:]) / third
    report.update(fds_per_call=round(k, 3), fds_base_first=round(first, 1), fds_base_last=round(last, 1))
    if last > first + 8:
        out.append(f"file descriptors beyond the calls' grew from {first:.0f} to {last:.0f}")
    # audio the taps dropped because the media worker fell more than their 5 s behind
    dropped = max((r.get("tap_dropped_s") or 0) for r in rows)
    report.update(tap_dropped_s=dropped, gc_full_collections=rows[-1].get("full_gcs"),
                  gc_pause_max_ms=rows[-1].get("gc_max_ms"))
    if dropped:
        out.append(f"the taps dropped {dropped} s of audio (the media worker fell behind)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=1000, help="concurrent calls (default 1000)")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the soak before the kill (default 10)")
    ap.add_argument("--hold", type=float, default=30.0, help="seconds each call lasts (default 30)")
    ap.add_argument("--warmup", type=float, default=120.0, help="seconds before RSS must hold (default 120)")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between samples (default 10)")
    ap.add_argument("--workers", type=int, default=2, help="handler worker processes (default 2)")
    ap.add_argument("--sipps", type=int, default=0,
                    help="sipp processes placing the calls (default: one per 250 calls; each echoes RTP "
                         "in one thread)")
    ap.add_argument("--no-echo", dest="echo", action="store_false",
                    help="sipp sends no RTP: the recordings' caller track is then silence, and not checked for sound")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--keep", metavar="DIR", help="keep the work directory (recordings, CDRs, logs) in DIR")
    args = ap.parse_args()
    args.sipps = args.sipps or max(1, -(-args.calls // 250))
    if not 1 <= args.sipps <= args.calls:
        ap.error(f"--sipps must be between 1 and --calls ({args.calls})")
    if shutil.which("sipp") is None:
        print("sipp is missing (Debian package sip-tester): run scripts/bootstrap", file=sys.stderr)
        return 2
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="chimevoice-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return soak(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def soak(args, work: Path) -> int:
    prompts(work, args.hold)
    port, http_port = free_port(), free_port()
    cfg = config(work, port, args.workers, echo=args.echo)
    hold_ms = int(args.hold * 1000)
    total = int(args.calls * (args.minutes * 60 / args.hold + 2))    # more than fit: sipp is stopped
    print(f"soak: {args.calls} concurrent calls held {args.hold} s for {args.minutes} min, recorded; "
          f"then kill -9 and restart ({os.cpu_count()} cores, {args.sipps} sipp)", flush=True)
    daemon, url = start_daemon(cfg, work, http_port)
    report: dict = {"args": vars(args)}
    # sipp's -rtp_echo is one thread per process: the calls are spread over --sipps processes
    shares = [args.calls // args.sipps + (i < args.calls % args.sipps) for i in range(args.sipps)]
    sipp_dirs = [work / f"sipp{i}" for i in range(args.sipps)]
    for d in sipp_dirs:
        d.mkdir()
    if not one_call(port, work / "warm"):
        stop_daemon(daemon)
        print("the warm-up call failed:\n" + (work / "daemon.log").read_text()[-3000:], file=sys.stderr)
        return 1
    sampler = Sampler(daemon.pid, url, args.sample)
    sampler.start()
    uac = scenario(work, args.hold)
    sipps = [subprocess.Popen(sipp_cmd(port, uac, limit=n, rate=n, period_ms=hold_ms,
                                       total=int(total * n / args.calls) + 1, echo=args.echo),
                              cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for n, d in zip(shares, sipp_dirs)]
    print(f"{'t s':>6} {'calls':>6} {'RSS MB':>8} {'workers MB':>11} {'fds':>6} {'threads':>8} "
          f"{'media queue':>12} {'media busy':>11} {'rec open':>9} {'rec closing':>12} {'py blocks':>10} "
          f"{'tasks':>6} {'malloc used':>12} {'malloc held':>12} {'ports':>6} {'legs':>5} {'players':>8} "
          f"{'full gcs':>9} {'gc max ms':>10} {'tap drop s':>11}", flush=True)
    shown = 0
    deadline = time.monotonic() + args.minutes * 60
    while time.monotonic() < deadline:
        time.sleep(1)
        for i in range(shown, len(sampler.rows)):
            r, prev = sampler.rows[i], sampler.rows[max(0, i - 1)]
            busy = ((r["media_busy_s"] or 0) - (prev["media_busy_s"] or 0)) / max(1e-9, r["t"] - prev["t"]) \
                if i else 0.0
            print(f"{r['t']:>6} {r['calls']!s:>6} {r['rss_mb']:>8} {r['workers_rss_mb']:>11} {r['fds']:>6} "
                  f"{r['threads']:>8} {r['media_queue']:>12} {busy:>10.0%} {_n(r['recordings_open']):>9} "
                  f"{_n(r['recordings_closing']):>12} {_n(r['py_blocks']):>10} {_n(r['tasks']):>6} "
                  f"{r['malloc_in_use_mb']:>12} {r['malloc_held_mb']:>12} {_n(r['conf_ports']):>6} "
                  f"{_n(r['sip_legs']):>5} {_n(r['players']):>8} {_n(r['full_gcs']):>9} {r['gc_max_ms']:>10} "
                  f"{r['tap_dropped_s']:>11}", flush=True)
        shown = len(sampler.rows)
        if daemon.poll() is not None or any(p.poll() is not None for p in sipps):
            break
    sampler.stop.set()
    sampler.join()
    report["samples"] = sampler.rows
    failures = steady(sampler.rows, args.warmup, report)
    if daemon.poll() is not None:
        print("chimevoice exited during the soak:\n" + (work / "daemon.log").read_text()[-3000:], file=sys.stderr)
        for p in sipps:
            p.kill()
        return 1

    # Stop new calls, let the stats settle, then kill -9 with the last calls up.
    for p in sipps:
        p.send_signal(signal.SIGUSR1)
    time.sleep(2.5)
    before = [last_stats(d) for d in sipp_dirs]
    up = active_calls(url)
    daemon.send_signal(signal.SIGKILL)
    daemon.wait()
    time.sleep(1.5)
    at_kill = [last_stats(d) for d in sipp_dirs]
    for p in sipps:
        p.kill()
        p.wait()
    # Call-IDs are <n>-<sipp pid>@...: the pid in each stats file's name tells the processes apart
    pids = [re.search(r"_(\d+)_\.csv$", next(d.glob("*_.csv")).name).group(1)  # type: ignore[union-attr]
            for d in sipp_dirs]
    by_pid = {pid: int(st["TotalCallCreated"]) for pid, st in zip(pids, at_kill)}
    created, successful = sum(by_pid.values()), sum(int(st["SuccessfulCall(C)"]) for st in at_kill)
    failed_before = sum(int(st.get("FailedCall(C)", 0)) for st in before)
    report.update(calls_created=created, calls_completed=successful, calls_failed_before_kill=failed_before,
                  calls_up_at_kill=up)
    print(f"kill -9 with {up} calls up: sipp created {created} calls, {successful} completed, "
          f"{failed_before} failed before the kill", flush=True)
    if failed_before:
        failures.append(f"{failed_before} calls failed before the kill")
    (work / "daemon.log").rename(work / "daemon-killed.log")

    # Restart: how soon is a new call answered, with the recovery to do?
    t0 = time.monotonic()
    daemon, url = start_daemon(cfg, work, http_port)
    ready_s = time.monotonic() - t0
    tries = 0
    while not one_call(port, work / "first", hold_ms=200):
        tries += 1
        if tries > 20 or daemon.poll() is not None:
            failures.append("the restarted daemon did not answer a call")
            break
    first_call_s = time.monotonic() - t0
    ok, bad = calls(port, work / "after", 20)
    rec = wait_log(work / "daemon.log", "cdrs_recovered", 1) or {}
    done = wait_log(work / "daemon.log", "recordings_recovered", 300) or {}
    stop_daemon(daemon)
    # a recovered CDR is of a call cut by the kill, or of one that had ended (its end journaled)
    # with its CDR not yet written: the second kind counts as ended normally below
    ended_before = sum(1 for line in (work / "daemon.log").read_text(errors="replace").splitlines()
                       if '"cdr_recovered"' in line and '"ended_by_crash": false' in line)
    report.update(restart_metrics_s=round(ready_s, 2), restart_first_call_s=round(first_call_s, 2),
                  restart_cdrs_recovered=rec.get("count", 0), restart_recordings_repaired=done.get("count", 0),
                  calls_after_restart_ok=ok, calls_after_restart_failed=bad)
    print(f"restart: /metrics after {ready_s:.2f} s, first new call answered after {first_call_s:.2f} s; "
          f"{rec.get('count', 0)} CDRs recovered ({ended_before} of calls that had ended), "
          f"{done.get('count', 0)} recordings repaired; "
          f"then {ok}/20 calls ok", flush=True)
    if ok != 20:
        failures.append(f"{bad} of 20 calls after the restart failed")
    failures += check(work, by_pid, successful, report, echo=args.echo)
    keys = ("cdrs", "cdrs_missing", "cdrs_doubled", "cdrs_ended_normally", "cdrs_recovered",
            "completed_with_recovered_cdr", "invites_in_flight_at_kill", "recordings",
            "recordings_missing", "cut_before_recording_started", "recordings_invalid", "recordings_short",
            "recordings_short_max_s", "recordings_part_left",
            "rss_after_warmup_mb", "rss_max_mb", "rss_end_mb", "rss_drift_pct", "workers_rss_drift_pct",
            "fds_after_warmup", "fds_end", "fds_max", "fds_per_call", "fds_base_first", "fds_base_last",
            "tap_dropped_s", "gc_full_collections", "gc_pause_max_ms")
    print("  ".join(f"{k} {report.get(k)}" for k in keys), flush=True)
    report["failures"] = failures
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    for f in failures:
        print(f"FAIL: {f}", flush=True)
    print("soak: all checks hold" if not failures else f"soak: {len(failures)} checks failed", flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
