"""Nothing lost to kill -9 (issue 11 item 7): the CDR journal (chimevoice/calls/journal.py) and its
recovery, first as a unit, then on a real daemon killed with SIGKILL while calls are up — the calls
that were up get their CDRs at the restart, the recording cut short is a valid WAV, and the
restarted daemon serves a new call at once."""
from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chimevoice.calls.journal import CdrJournal, recover, replay
from chimevoice.cdr import CdrWriter
from chimevoice.media.audio import read_pcm
from tests.support.harness import Daemon, free_port, handler_app, number_rules, write_tone


class _Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict]] = []

    def warning(self, event: str, **kw) -> None:
        self.lines.append((event, kw))

    error = warning


def _fields(tx: str, call: str, start: int, answer: int | None = None, end: int | None = None) -> dict:
    return dict(aws_account_id="111122223333", transaction_id=tx, call_id=call, voice_connector_id="vc",
                source_phone_number="+15105550101", destination_phone_number="+15550100000",
                direction="Inbound", region="us-east-1", sip_rule_id="r", sip_application_id="a",
                call_leg_trigger_type="ToPhoneNumber", start_ms=start, answer_ms=answer, end_ms=end,
                sip_response_code=200 if end else 0, hangup_source="caller" if end else "system")


def test_recover_writes_the_legs_a_killed_run_left_open(tmp_path: Path) -> None:
    t0 = 1_780_000_000_000
    j = CdrJournal(tmp_path / "j", max_bytes=1500)
    j.open()
    j.leg("t1/c1", _fields("t1", "c1", t0))
    j.leg("t1/c1", _fields("t1", "c1", t0, t0 + 500))                 # answered, still up at the crash
    j.leg("t2/c2", _fields("t2", "c2", t0, t0 + 100, t0 + 900))       # ended, CDR not yet on disk
    j.leg("t3/c3", _fields("t3", "c3", t0, t0 + 100, t0 + 900))
    j.done("t3/c3")                                                   # its CDR was written
    for i in range(20):                                               # compaction keeps the open legs
        j.leg(f"x/{i}", _fields("x", str(i), t0))
        j.done(f"x/{i}")
    assert j.path is not None and set(replay(j.path)) == {"t1/c1", "t2/c2"}
    with open(j.path, "ab") as fh:
        fh.write(b'{"k":"t9/c9","f":{"torn')                          # the line being written at the kill
    crash_s = (t0 + 4000) / 1000
    os.utime(j.path, (crash_s, crash_s))                              # the last heartbeat
    log = _Log()
    writer = CdrWriter(tmp_path / "data")
    assert recover(tmp_path / "j", writer, log) == 2
    assert list((tmp_path / "j").iterdir()) == []                     # replayed journals go
    records = {json.loads(p.read_text())["CallId"]: json.loads(p.read_text())
               for p in (tmp_path / "data").rglob("*.json")}
    assert set(records) == {"c1", "c2"}
    up, ended = records["c1"], records["c2"]
    assert up["EndTimeEpochMilliseconds"] == t0 + 4000 and up["HangupSource"] == "system"
    assert up["Status"] == "Completed" and up["BillableDurationSeconds"] == "4"
    assert ended["EndTimeEpochMilliseconds"] == t0 + 900 and ended["HangupSource"] == "caller"
    assert [e for e, _ in log.lines] == ["cdr_recovered", "cdr_recovered"]
    assert recover(tmp_path / "j", writer, log) == 0                  # nothing twice


def test_a_clean_stop_leaves_no_journal(tmp_path: Path) -> None:
    j = CdrJournal(tmp_path)
    j.open()
    j.leg("t/c", _fields("t", "c", 1))
    j.done("t/c")
    j.close()
    assert list(tmp_path.iterdir()) == []


APP = "cdcdcdcd-0000-4000-8000-000000000001"
SHORT, LONG1, LONG2 = "+15550100502", "+15550100509", "+15550100609"   # media.py "02" (2 s), "09" (30 s)


@pytest.mark.sip
def test_kill_9_mid_call_loses_no_cdr_and_no_recording(tmp_path: Path) -> None:
    d = Daemon(tmp_path, free_port())
    d.events = tmp_path / "events"
    d.events.mkdir()
    numbers = [SHORT, LONG1, LONG2]
    d.write_config([handler_app(APP, "media", "media:handler", {"EVENTS_DIR": str(d.events),
                                                                 "PROMPT_BUCKET": "prompts"})],
                   rules=number_rules(numbers, APP, "cdcdcdcd-0000-4000-8001", "kill"), numbers=numbers)
    write_tone(tmp_path / "voice.wav", 800, 30)
    d.start()
    try:
        done = d.call(user=SHORT, play=tmp_path / "voice.wav", max_seconds=10)    # RecordAudio 2 s, hang-up
        assert done["answered"], done
        deadline = time.monotonic() + 5
        while len(d.cdrs()) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        pool = ThreadPoolExecutor(2)
        held = [pool.submit(d.call, user=n, play=tmp_path / "voice.wav", max_seconds=8, timeout=30)
                for n in (LONG1, LONG2)]                                 # 30 s recordings, killed after ~3 s
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(list(d.prompts.rglob("*.part"))) < 2:
            time.sleep(0.1)                                               # both recordings running
        time.sleep(2.0)
        assert d.proc is not None
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        killed_at_ms = int(time.time() * 1000)
        assert len(d.cdrs()) == 1                                         # the two held calls: none yet
        d.start()                                                         # the restart recovers them
        after = d.call(user=SHORT, play=tmp_path / "voice.wav", max_seconds=10)
        assert after["answered"], after                                   # serving at once
        assert all(f.result()["answered"] for f in held)              # they were up when killed
        pool.shutdown(wait=True)
    finally:
        d.stop()
    cdrs = d.cdrs()
    long = [c for c in cdrs if c["DestinationPhoneNumber"] in (LONG1, LONG2)]
    assert len(long) == 2 and len(cdrs) == 4, cdrs
    for c in long:
        assert c["Status"] == "Completed" and c["HangupSource"] == "system", c
        assert abs(c["EndTimeEpochMilliseconds"] - killed_at_ms) < 2500, (c, killed_at_ms)
        assert int(c["BillableDurationSeconds"]) >= 2
    recovered = [e for e in d.logs() if e.get("event") == "cdr_recovered"]
    assert len(recovered) == 2, recovered
    cut = [p for p in d.prompts.rglob("*.wav") if "rec" in p.parts]
    assert len(cut) == 4 and not list(d.prompts.rglob("*.part")), cut   # 2 complete, 2 cut short, repaired
    for path in cut:
        pcm, rate = read_pcm(path)                                        # each one a valid WAV
        assert rate == 8000 and len(pcm) >= rate, path
