"""Our build's FrameTap (scripts/pjsua2/frametap.i), the port the recorder and the media
worker read a leg's audio from, on pjmedia's conference clock in a child process (pjsua2
cannot be started twice in one process). A tap nobody reads for longer than its capture
window keeps the newest audio and counts what it dropped; the drop is O(1) per frame (the
soak at 1000 echoed calls hung when each frame of 2,000 full taps memmoved the buffer)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pj = pytest.importorskip("pjsua2")

SCRIPT = textwrap.dedent('''
    import json, os, sys, time
    import numpy as np
    import pjsua2 as pj
    ep = pj.Endpoint(); ep.libCreate()
    cfg = pj.EpConfig(); cfg.uaConfig.threadCnt = 0; cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 0; cfg.logConfig.consoleLevel = 0
    cfg.medConfig.clockRate = 8000; cfg.medConfig.sndClockRate = 8000
    ep.libInit(cfg); ep.audDevManager().setNullDev(); ep.libStart()
    adm = ep.audDevManager(); adm.getCaptureDevMedia().startTransmit(adm.getPlaybackDevMedia())
    def run(s):
        t = time.monotonic() + s
        while time.monotonic() < t:
            ep.libHandleEvents(10)
    def rms(b):
        x = np.frombuffer(b, dtype="<i2").astype(float)
        return round(float(np.sqrt(np.mean(x ** 2))) if len(x) else -1.0, 1)
    run(0.3)
    tap = pj.FrameTap(); tap.createTap(8000, 160, 200, 200)       # a 200 ms capture window
    tone = pj.ToneGenerator(); tone.createToneGenerator(8000, 1)
    tv = pj.ToneDescVector(); d = pj.ToneDesc()
    d.freq1 = 440; d.freq2 = 0; d.on_msec = 1000; d.off_msec = 0; d.volume = 0
    tv.append(d); tone.play(tv, False)                            # 1 s of tone, then silence
    tone.startTransmit(tap)
    run(0.1); steady = tap.read()
    run(0.7); tone_window = tap.read()                            # 700 ms unread: the newest 200
    run(1.2); quiet_window = tap.read()                           # the tone ended 0.8 s ago
    cap, drop = tap.capturedBytes(), tap.droppedBytes()
    run(0.1); after = tap.read()
    print(json.dumps({"steady": len(steady), "tone_bytes": len(tone_window), "tone_rms": rms(tone_window),
                      "quiet_bytes": len(quiet_window), "quiet_rms": rms(quiet_window),
                      "captured": cap, "dropped": drop, "read": len(steady) + len(tone_window)
                      + len(quiet_window), "after": len(after)}))
    sys.stdout.flush(); os._exit(0)
''')


def test_a_tap_nobody_reads_keeps_its_newest_window_and_counts_the_rest_dropped():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    window = 200 * 16                                    # 200 ms of 8 kHz 16-bit mono
    assert 0 < r["steady"] <= window                     # read in time: what arrived, nothing lost
    # unread for longer than the window: exactly the window is kept, and it is the newest audio
    assert r["tone_bytes"] == window and r["tone_rms"] > 1000, r
    assert r["quiet_bytes"] == window and r["quiet_rms"] == 0, r      # newest = after the tone
    assert r["dropped"] == r["captured"] - r["read"] and r["dropped"] >= 16 * 1400, r
    assert 0 < r["after"] <= 16 * 300, r            # and it goes on capturing after a read
