"""The SIP endpoint's flow control of tap audio (chimevoice/sip/endpoint.py, ``audio_ready``):
while the consumer has not taken the last batch the taps are not read, the audio waits in them
and comes as one larger batch; a consumer more than a tap's 5 s behind loses the oldest audio,
which the endpoint counts (``sip_tap_dropped_bytes``) and logs with the leg id. A real call:
the endpoint in a child process (pjsua2 starts once per process), a bare UAC sending RTP."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from tests.support.bare_uac import BareUac
from tests.support.harness import free_port, rtp_start

pytest.importorskip("pjsua2")

SCRIPT = textwrap.dedent('''
    import json, sys, threading, time
    import structlog
    from chimevoice.config import Listener
    from chimevoice.sip import commands as sc, events as ev
    from chimevoice.sip.endpoint import EndpointSettings, SipEndpoint
    port, rtp, hold_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    state = {"tapped": None, "until": None}
    batches, done = [], threading.Event()
    def post(events):
        for e in events:
            if isinstance(e, ev.IncomingCall):
                ep.send(sc.Answer(e.leg_id))
            elif isinstance(e, ev.MediaReady) and state["tapped"] is None:
                ep.send(sc.Tap(e.leg_id, True, False))
                state["tapped"] = time.monotonic()
                state["until"] = state["tapped"] + hold_s
            elif isinstance(e, ev.CallDisconnected):
                done.set()
    def on_audio(batch):
        batches.append((time.monotonic() - state["tapped"], sum(len(p) for _, _, p in batch)))
    def ready():
        return state["until"] is None or time.monotonic() >= state["until"]
    ep = SipEndpoint(EndpointSettings(listeners=(Listener("udp", "127.0.0.1", port),),
                                      rtp_port_start=rtp, rtp_port_count=100),
                     post, on_audio=on_audio, audio_ready=ready)
    with structlog.testing.capture_logs() as logs:
        ep.start()
        print("ready", flush=True)
        done.wait(30)
        time.sleep(1.0)                          # the last RTP round counts the released tap
        stats = ep.stats()
        ep.stop()
    print(json.dumps({"batches": batches, "dropped": stats.get("sip_tap_dropped_bytes"),
                      "logs": [e for e in logs if e["event"] == "tap_audio_dropped"]}), flush=True)
''')


def _call(hold_s: float, rtp_s: float) -> dict:
    port = free_port()
    child = subprocess.Popen([sys.executable, "-c", SCRIPT, str(port), str(rtp_start(port)), str(hold_s)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        uac = BareUac(port, "+12065551212")
        try:
            uac.invite()
            time.sleep(0.3)                      # MediaReady and the tap are in place
            uac.send_rtp(rtp_s)
            assert uac.bye() == 200
        finally:
            uac.close()
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def test_a_consumer_behind_gets_the_held_audio_as_one_batch_and_nothing_is_lost():
    r = _call(hold_s=1.5, rtp_s=3.0)
    batches = r["batches"]
    assert batches and batches[0][0] >= 1.5, batches             # not read while not ready
    assert batches[0][1] >= 16000 * 1.2, batches                  # the 1.5 s held, in one batch
    assert all(n <= 16000 * 0.4 for _, n in batches[1:-1]), batches  # then 100 ms reads again
    total_s = sum(n for _, n in batches) / 16000
    assert 2.6 <= total_s <= 3.6, (total_s, batches)              # what the call sent: all of it
    assert r["dropped"] == 0 and r["logs"] == []


def test_a_consumer_more_than_five_seconds_behind_loses_the_oldest_audio_counted_and_logged():
    r = _call(hold_s=6.5, rtp_s=6.0)
    batches = r["batches"]
    assert batches and batches[0][0] >= 5.5, batches
    assert 16000 * 4.5 <= batches[0][1] <= 16000 * 5.0, batches   # the newest 5 s the tap holds
    assert r["dropped"] >= 16000 * 0.5, r                         # the rest dropped, and counted
    assert len(r["logs"]) == 1 and r["logs"][0]["track"] == "in" and r["logs"][0]["dropped_s"] >= 0.5, r
