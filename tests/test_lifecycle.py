"""Daemon lifecycle with a real call in progress: graceful shutdown loses nothing."""
from __future__ import annotations

import concurrent.futures
import time

import pytest

from tests.support.harness import APP_A, RULE, Daemon, free_port, handler_app, read_events, write_tone

pytestmark = pytest.mark.sip
NUMBER = "+15550100008"     # scripted.py: a long tone (30 x 1 s)


def test_sigterm_hangs_up_live_calls_writes_cdrs_and_exits_cleanly(tmp_path):
    events = tmp_path / "events"
    events.mkdir()
    d = Daemon(tmp_path, free_port())
    d.write_config([handler_app(APP_A, "scripted", "scripted:handler", {"EVENTS_DIR": str(events)})],
                   numbers=[NUMBER],
                   rules=[{"id": RULE, "name": "r", "trigger_type": "ToPhoneNumber", "trigger_value": NUMBER,
                           "target_applications": [{"sip_media_application_id": APP_A, "priority": 1}]}])
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    write_tone(d.prompts / "tone400.wav", 400, 0.5)
    d.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            call = pool.submit(d.call, user=NUMBER, max_seconds=25)
            d.wait_log("call_routed")
            time.sleep(1.5)
            t0 = time.monotonic()
            code = d.stop()
            stopped_in = time.monotonic() - t0
            res = call.result()
    finally:
        d.stop()
    assert code == 0, d.log_path.read_text()[-2000:]
    assert stopped_in < 10
    assert res["answered"] and res["hangup_by"] == "remote", res
    assert res["connected_seconds"] < 10                       # not the 30 s the handler asked for
    kinds = [e["InvocationEventType"] for e in read_events(events / "scripted.jsonl")]
    assert kinds == ["NEW_INBOUND_CALL", "HANGUP"]
    cdrs = d.cdrs()
    assert len(cdrs) == 1 and cdrs[0]["Status"] == "Completed"
    events_logged = [e["event"] for e in d.logs()]
    assert "shutting_down" in events_logged and "stopped" in events_logged
