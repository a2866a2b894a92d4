#!/usr/bin/env python3
"""Idle footprint: where the resident memory of an idle chimevoice daemon goes.

Starts the daemon with a one-application config (a Python handler, no aws_local), waits until it
is ready and settled, and breaks its RSS down from /proc/<pid>/smaps:

  * _pjsua2 (the pjsua2 server build): its code and its static tables (the .bss right after the
    library's mappings: pjsua's table of PJSUA_MAX_CALLS calls is most of it);
  * the heap and other anonymous memory (the Python objects of chimevoice and its imports,
    pjsip's pools, thread stacks);
  * shared libraries and Python extension modules (numpy, av, OpenSSL, ...), file-backed.

Then one call is placed so the handler's worker process starts, and its RSS is reported too.
Compare with ``python -c "import chimevoice.daemon"`` (the import cost alone).

usage: .venv/bin/python bench/footprint.py [--settle 3]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from concurrent_calls import ROOT, bench_prompt, free_port, proc_tree, start_daemon, stop_daemon  # noqa: E402

HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$")


def breakdown(pid: int) -> dict[str, float]:
    """RSS MB by mapping kind; anonymous memory right after a library's mappings is its .bss."""
    out: dict[str, float] = defaultdict(float)
    name, prev_end, prev_file = "", -1, ""
    for line in open(f"/proc/{pid}/smaps"):
        m = HEADER.match(line)
        if m:
            start, end, path = int(m.group(1), 16), int(m.group(2), 16), m.group(3).strip()
            if path.startswith("/"):
                name = "_pjsua2 (code, data)" if "_pjsua2" in path else "libraries and extension modules"
                prev_file = name
            elif not path and start == prev_end and prev_file.startswith("_pjsua2"):
                name = "_pjsua2 static tables (.bss)"
            elif path in ("[heap]", "") or path.startswith("[anon"):
                name, prev_file = "heap and anonymous (Python objects, pjsip pools)", ""
            elif path.startswith("[stack"):
                name, prev_file = "stacks", ""
            else:
                name, prev_file = "other", ""
            prev_end = end
        elif line.startswith("Rss:"):
            out[name] += int(line.split()[1]) / 1024
    return dict(out)


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def import_cost() -> float:
    code = ("import chimevoice.daemon, chimevoice.sip.endpoint, pjsua2\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds to wait once ready (default 3)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="chimevoice-footprint-") as tmp:
        work = Path(tmp)
        (work / "prompts").mkdir()
        bench_prompt(work / "prompts" / "prompt.wav")
        port, http_port = free_port(), free_port()
        cfg = {
            "data_dir": str(work / "data"), "logging": {"level": "warning", "format": "json"},
            "sip": {"listeners": [{"transport": "udp", "address": "127.0.0.1", "port": port}]},
            "voice_connectors": [{"id": "vc", "name": "vc", "host_name": "vc.local", "allow_list": ["127.0.0.0/8"],
                                  "phone_numbers": ["+15550100000"]}],
            "sip_media_applications": [{"id": "ivr", "name": "ivr", "handler": {
                "type": "python", "target": "ivr:handler", "python_path": [str(ROOT / "bench" / "handlers")]}}],
            "sip_rules": [{"id": "r", "name": "r", "trigger_type": "ToPhoneNumber", "trigger_value": "+15550100000",
                           "target_applications": [{"sip_media_application_id": "ivr", "priority": 1}]}],
            "buckets": {"prompts": str(work / "prompts")},
        }
        daemon, _ = start_daemon(cfg, work, http_port)
        try:
            time.sleep(args.settle)
            idle = rss_mb(daemon.pid)
            parts = breakdown(daemon.pid)
            subprocess.run(["sipp", f"127.0.0.1:{port}", "-sn", "uac", "-s", "+15550100000", "-i", "127.0.0.1",
                            "-p", "0", "-m", "1", "-d", "500", "-nostdin", "-timeout", "15s"],
                           cwd=work, capture_output=True)
            time.sleep(1)
            workers = [p for p in proc_tree(daemon.pid) if p != daemon.pid]
            worker_mb = sum(rss_mb(p) for p in workers)
            after_call = rss_mb(daemon.pid)
        finally:
            stop_daemon(daemon)
    imports = import_cost()
    print(f"idle daemon RSS: {idle:.0f} MB (after one call: {after_call:.0f} MB)")
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<52} {v:7.1f} MB")
    print(f"import of chimevoice.daemon + pjsua2 alone (no endpoint): {imports:.0f} MB")
    print(f"handler worker processes: {len(workers)}, {worker_mb:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps({"idle_mb": idle, "after_call_mb": after_call, "parts": parts,
                                               "import_mb": imports, "workers_mb": worker_mb}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
