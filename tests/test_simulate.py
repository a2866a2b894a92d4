"""``chimevoice simulate``: a scripted call through the daemon's engine in virtual time
(chimevoice/simulate.py), its --check, and one real SIP call of the same script."""
from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from chimevoice.cli import main
from chimevoice.config import load_config
from chimevoice.simulate import load_script, simulate
from tests.support.harness import (
    APP_A,
    HANDLERS,
    Daemon,
    free_port,
    handler_app,
    module_daemon,
    wait_handler_events,
    write_tone,
)

SCRIPT = {"application": "simflow", "call": {"from": "+15105550101", "to": "+15550100000"},
          "steps": [{"at": 35.0, "dtmf": "12"}, {"at": 45.0, "dtmf": "34#"}, {"at": 60, "hangup": True}]}


def setup(tmp_path: Path, env: dict | None = None, python_path: list[str] | None = None) -> Path:
    d = Daemon(tmp_path, free_port())
    (tmp_path / "events").mkdir(exist_ok=True)
    extra = {"python_path": python_path} if python_path else {}
    cfg = d.write_config([handler_app(APP_A, "simflow", "simflow:handler",
                                      {"EVENTS_DIR": str(tmp_path / "events"), **(env or {})}, **extra)])
    write_tone(d.prompts / "welcome.wav", 1000, 2.0)
    write_tone(d.prompts / "prompt.wav", 400, 3.0)
    return cfg


def write_script(path: Path, script: dict) -> Path:
    path.write_text(yaml.safe_dump(script, sort_keys=False))
    return path


def run_sim(cfg: Path, script: Path):
    return [e.as_json() for e in asyncio.run(simulate(load_config(cfg), load_script(script)))]


def sequence(trace) -> list[tuple]:
    return [(e["event"]["InvocationEventType"], e["event"].get("ActionData", {}).get("Type"))
            for e in trace if e["kind"] == "invoke"]


def test_a_60_second_flow_simulates_in_well_under_a_second(tmp_path):
    cfg = setup(tmp_path)
    script = write_script(tmp_path / "flow.yaml", SCRIPT)
    t0 = time.monotonic()
    trace = run_sim(cfg, script)
    assert time.monotonic() - t0 < 1.0
    invokes = [e for e in trace if e["kind"] == "invoke"]
    assert sequence(trace) == [("NEW_INBOUND_CALL", None), ("ACTION_SUCCESSFUL", "PlayAudioAndGetDigits"),
                               ("DIGITS_RECEIVED", "ReceiveDigits"), ("HANGUP", "Hangup")]
    # answered at 0.05; 2 x 2 s prompt + 30 s pause; the 2nd key (250 ms after the 1st) ends the collection
    assert [e["t"] for e in invokes] == [0.0, 35.3, 46.55, 60.05]
    assert invokes[1]["event"]["ActionData"]["ReceivedDigits"] == "12"
    assert invokes[2]["event"]["ActionData"]["ReceivedDigits"] == "34#"     # + 1 s InBetweenDigits
    assert invokes[0]["reply"]["Actions"][0]["Type"] == "PlayAudio"
    assert [e["detail"] for e in trace if e["kind"] == "dtmf"] == list("1234#")


def test_a_missing_audio_file_fails_with_invalid_audio_source(tmp_path):
    cfg = setup(tmp_path)
    script = write_script(tmp_path / "missing.yaml", {"application": APP_A, "call": {"to": "+15550100007"}})
    trace = run_sim(cfg, script)
    failed = [e["event"] for e in trace if e["kind"] == "invoke"][1]
    assert failed["InvocationEventType"] == "ACTION_FAILED"
    assert failed["ActionData"]["Type"] == "PlayAudio"
    assert failed["ActionData"]["ErrorType"] == "InvalidAudioSource"
    assert sequence(trace)[-1][0] == "HANGUP"


def test_check_passes_on_the_stored_trace_and_fails_with_a_diff_when_the_handler_changes(tmp_path, capsys):
    mine = tmp_path / "handler"
    mine.mkdir()
    shutil.copy(HANDLERS / "simflow.py", mine / "simflow.py")
    cfg = setup(tmp_path, python_path=[str(mine), str(HANDLERS)])
    script = write_script(tmp_path / "flow.yaml", SCRIPT)
    expected = tmp_path / "expected.json"
    assert main(["simulate", "-c", str(cfg), str(script), "--write", str(expected)]) == 0
    out = capsys.readouterr().out
    assert "  0.000  -> NEW_INBOUND_CALL" in out and "DTMF 1" in out
    assert json.loads(expected.read_text())[0]["event"]["InvocationEventType"] == "NEW_INBOUND_CALL"
    assert main(["simulate", "-c", str(cfg), str(script), "--check", str(expected)]) == 0
    capsys.readouterr()
    code = (mine / "simflow.py").read_text().replace('play(cid, "welcome.wav", Repeat=2)',
                                                     'play(cid, "welcome.wav", Repeat=3)')
    (mine / "simflow.py").write_text(code)
    assert main(["simulate", "-c", str(cfg), str(script), "--check", str(expected), "--json"]) == 1
    captured = capsys.readouterr()
    json.loads(captured.out)                    # --json: the trace as JSON
    assert "-35.30 -> ACTION_SUCCESSFUL PlayAudioAndGetDigits" in captured.err
    assert captured.err.startswith(f"--- {expected}\n+++ simulated\n")   # a unified diff
    # the keys at 35 s now fall in the Pause (prompt 3 x 2 s): PlayAudioAndGetDigits takes 3 4 at 45 s
    assert "-46.55 -> DIGITS_RECEIVED ReceiveDigits" in captured.err
    assert "+45.30 -> ACTION_SUCCESSFUL PlayAudioAndGetDigits" in captured.err


@pytest.mark.sip
def test_a_real_sip_call_of_the_same_script_gives_the_same_event_sequence(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "simulate")
    env = {"EVENTS_DIR": str(d.events), "SIMFLOW_PAUSE_MS": "2000", "SIMFLOW_TAIL_MS": "5000"}
    cfg = d.write_config([handler_app(APP_A, "simflow", "simflow:handler", env)])
    write_tone(d.prompts / "welcome.wav", 1000, 1.0)
    write_tone(d.prompts / "prompt.wav", 400, 1.0)
    # prompt 2 x 1 s, pause 2 s, then PlayAudioAndGetDigits from 4 s: the keys barge in at 4.5 s
    script = {"application": "simflow", "call": {"from": "+15105550101", "to": "+15550100099"},
              "steps": [{"at": 4.5, "dtmf": "12"}, {"at": 5.5, "dtmf": "34#"}, {"at": 9.0, "hangup": True}]}
    simulated = sequence(run_sim(cfg, write_script(d.workdir / "script.yaml", script)))
    d.start()
    try:
        res = d.call(user="+15550100000", dtmf=["4.5:12", "5.5:34#"], hangup_after=9.0, max_seconds=15)
        assert res["answered"], res
        real = wait_handler_events(d.events / "simflow.jsonl", "+15550100000")
    finally:
        assert d.stop() == 0
    assert [(e["InvocationEventType"], e.get("ActionData", {}).get("Type")) for e in real] == simulated
    assert simulated == [("NEW_INBOUND_CALL", None), ("ACTION_SUCCESSFUL", "PlayAudioAndGetDigits"),
                         ("DIGITS_RECEIVED", "ReceiveDigits"), ("HANGUP", "Hangup")]


def test_a_node_application_simulates_too(tmp_path):
    """The simulator runs an application's own handler, whatever its runtime: here a Node.js one."""
    if shutil.which("node") is None:
        pytest.fail("node (Node.js 20) is required; run scripts/bootstrap")
    d = Daemon(tmp_path, free_port())
    (tmp_path / "events").mkdir()
    node_dir = Path(__file__).parent / "node_handlers"
    cfg = d.write_config([{"id": APP_A, "name": "greeter", "handler": {
        "type": "nodejs", "target": "calls.greeter", "code_dir": str(node_dir),
        "environment": {"EVENTS_DIR": str(tmp_path / "events"), "PROMPT_BUCKET": "prompts"}}}])
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    script = write_script(tmp_path / "s.yaml", {"application": "greeter",
                                                "call": {"from": "+15105550101", "to": "+15550100000"}})
    trace = run_sim(cfg, script)
    assert sequence(trace) == [("NEW_INBOUND_CALL", None), ("HANGUP", "Hangup")]
    assert [a["Type"] for a in trace[0]["reply"]["Actions"]] == ["Pause", "PlayAudio", "Pause", "Hangup"]
