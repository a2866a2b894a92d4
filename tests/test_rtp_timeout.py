"""The RTP timeout (``sip.rtp.timeout_s``): an answered call whose far end stops sending RTP
without a BYE -- a crashed PBX, a BYE lost on the way -- is hung up by the daemon (BYE with
``Reason: SIP;cause=408``, CDR ``HangupSource: system``), while a caller that sends RTP, or that
holds the call with ``a=inactive``, keeps it. A bare SIP UAC over real UDP on loopback, sending
real RTP packets (or none)."""
from __future__ import annotations

import threading
import time

import pytest
import yaml

from tests.support.bare_uac import BareUac
from tests.support.harness import (
    APP_A,
    free_port,
    handler_app,
    metric,
    metrics,
    module_daemon,
    number_rules,
    wait_handler_events,
    write_tone,
)

pytestmark = pytest.mark.sip
LONG = "+15550100008"          # scripted.py: a 1000 Hz tone, 30 x 1 s; the caller hangs up
TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "rtp_timeout")
    d.http_port = free_port()
    path = d.write_config([handler_app(APP_A, "scripted", "scripted:handler", {"EVENTS_DIR": str(d.events)})],
                          rules=number_rules([LONG], APP_A, "cccccccc-0000-4000-8000", "long"), numbers=[LONG])
    data = yaml.safe_load(path.read_text())
    data["sip"]["rtp"].update(stats_interval_s=0.5, timeout_s=TIMEOUT_S)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    write_tone(d.prompts / "tone400.wav", 400, 0.5)
    d.start()
    yield d
    d.stop()


def _cdr(d, sip_call_id: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in d.cdrs():
            if rec.get("SipCallId") == sip_call_id:
                return rec
        time.sleep(0.1)
    raise AssertionError(f"no CDR for {sip_call_id}")


def test_a_caller_gone_without_a_bye_is_hung_up_after_the_rtp_timeout(daemon):
    before = metric(metrics(daemon), "errors_total", type="rtp_timeout")
    uac = BareUac(daemon.port, LONG)
    try:
        uac.invite()
        answered = time.monotonic()
        byes = uac.watch_for_bye(TIMEOUT_S + 6)       # no RTP at all from here on
    finally:
        uac.close()
    assert byes, "the daemon kept a call whose caller sent no RTP"
    at, headers = byes[0]
    assert at - answered >= TIMEOUT_S - 0.1, f"hung up {at - answered:.1f} s after the answer"
    assert headers.get("reason") == "SIP;cause=408", headers
    cdr = _cdr(daemon, uac.call_id)
    assert cdr["HangupSource"] == "system", cdr
    timed_out = daemon.wait_log("rtp_timeout", call_id=cdr["CallId"])
    assert timed_out["silent_s"] >= TIMEOUT_S and timed_out["TransactionId"] == cdr["TransactionId"]
    events = wait_handler_events(daemon.events / "scripted.jsonl", LONG)
    mine = [e["InvocationEventType"] for e in events
            if e["CallDetails"]["Participants"][0]["CallId"] == cdr["CallId"]]
    assert mine[0] == "NEW_INBOUND_CALL" and mine[-1] == "HANGUP", mine
    assert metric(metrics(daemon), "errors_total", type="rtp_timeout") == before + 1


def test_a_caller_that_sends_rtp_keeps_its_call(daemon):
    uac = BareUac(daemon.port, LONG)
    try:
        uac.invite()
        sender = threading.Thread(target=uac.send_rtp, args=(TIMEOUT_S * 2.5,))
        sender.start()
        byes = uac.watch_for_bye(TIMEOUT_S * 2.5)
        sender.join()
        assert not byes, f"the daemon hung up a call that sent RTP: {byes}"
        assert uac.bye() == 200
    finally:
        uac.close()
    assert _cdr(daemon, uac.call_id)["HangupSource"] == "caller"


def test_a_call_on_hold_with_inactive_media_keeps_its_call(daemon):
    uac = BareUac(daemon.port, LONG)
    try:
        uac.invite()
        uac.send_rtp(1.0)
        uac.invite("inactive")                        # hold: neither side sends
        byes = uac.watch_for_bye(TIMEOUT_S * 2.5)
        assert not byes, f"the daemon hung up a call on hold: {byes}"
        uac.invite()                                  # resumed: the RTP totals go on from before the hold
        uac.send_rtp(1.0)
        assert uac.bye() == 200
    finally:
        uac.close()
    cdr = _cdr(daemon, uac.call_id)
    assert cdr["HangupSource"] == "caller"
    stats = daemon.wait_log("rtp_stats", call_id=cdr["CallId"])
    assert stats["rx_packets"] >= 80, stats          # 2 x 1 s of 20 ms packets, over three streams
