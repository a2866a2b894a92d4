"""Real-time scheduling of a thread (chimevoice/osthread.py ``set_realtime``): allowed with
CAP_SYS_NICE or an RLIMIT_RTPRIO at least the priority (systemd's ``LimitRTPRIO=``), refused
with the reason otherwise, never raised (the daemon logs it and runs on)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

CHILD = ("import threading; from chimevoice.osthread import set_realtime; "
         "t = threading.get_native_id(); print(set_realtime(t, 10), '|', set_realtime(t, 11))")


def _as_nobody(*prefix: str) -> subprocess.CompletedProcess:
    out = subprocess.run([*prefix, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    if out.returncode != 0 and out.stderr.startswith("setpriv:"):
        pytest.skip(f"cannot drop to an unprivileged user here: {out.stderr.strip()}")
    return out


needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="dropping to an unprivileged user needs root and setpriv")


@needs_root
def test_an_unprivileged_thread_without_rtprio_is_refused_with_the_reason():
    out = _as_nobody()
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().split(" | ")
    assert "not permitted" in first and "not permitted" in second, out.stdout


@needs_root
def test_rlimit_rtprio_allows_exactly_up_to_its_priority():
    if subprocess.run(["prlimit", "--rtprio=10", "true"], capture_output=True).returncode != 0:
        pytest.skip("this machine does not let root raise RLIMIT_RTPRIO (no CAP_SYS_RESOURCE)")
    out = _as_nobody("prlimit", "--rtprio=10")
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().split(" | ")
    assert first == "None" and "not permitted" in second, out.stdout
