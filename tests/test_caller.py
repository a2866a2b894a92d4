"""``chimevoice call`` (chimevoice/caller.py, chimevoice/testphone.py) against a real daemon, and
the README's first call: ``chimevoice call`` and sipp with tests/sipp/uac_wait_bye.xml against
the demo IVR run from a copy of config/example.yaml."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.support.harness import (
    ROOT,
    SIPP_DIR,
    Daemon,
    free_port,
    handler_app,
    handler_events,
    module_daemon,
    number_rules,
    rtp_start,
    sipp,
    wait_handler_events,
    write_tone,
)

pytestmark = pytest.mark.sip

GREETER = "77777777-0000-4000-8000-000000000001"
DIGITS = "77777777-0000-4000-8000-000000000002"
TONE = "+15550700000"           # greeter: 0.7 s pause, a 2 s tone, 0.8 s pause, Hangup
LISTENER = "+15550700001"       # digits.py "01": ReceiveDigits \d{2}#$, hangs up on 34#
NO_RULE = "+15550700009"        # on the trunk, no SIP rule: 404


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "caller")
    env = {"EVENTS_DIR": str(d.events), "PROMPT_BUCKET": "prompts"}
    d.write_config([handler_app(GREETER, "greeter", "greeter:handler", env),
                    handler_app(DIGITS, "digits", "digits:handler", env)],
                   rules=[*number_rules([TONE], GREETER, "88888888-0000-4000-8000", "tone"),
                          *number_rules([LISTENER], DIGITS, "99999999-0000-4000-8000", "digits")],
                   numbers=[TONE, LISTENER, NO_RULE])
    write_tone(d.prompts / "greeting.wav", 440, 2.0)
    d.start()
    yield d
    code = d.stop()
    assert code == 0, d.log_path.read_text()[-3000:]


def chimevoice_call(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chimevoice", "call", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def uri(d: Daemon, number: str) -> str:
    return f"sip:{number}@127.0.0.1:{d.port}"


def test_summary_says_answered_audio_heard_and_the_far_end_hung_up(daemon):
    res = chimevoice_call(uri(daemon, TONE), "--max-seconds", "20")
    assert res.returncode == 0, (res.stdout, res.stderr)
    lines = res.stdout.splitlines()
    assert len(lines) == 1, res.stdout                   # the summary only: no pjlib log on stdout
    out = lines[0]
    assert out.startswith("answered after ") and "(200 OK)" in out, out
    assert "the far end hung up (BYE)" in out, out
    heard = float(re.search(r"heard ([\d.]+) s of audio", out).group(1))
    assert 1.0 < heard < 3.0, out                        # the 2 s tone, nothing much else
    assert re.search(r"SIP: (100 )?(180 )?200$", out), out


def test_json_result_parses(daemon):
    res = chimevoice_call(uri(daemon, TONE), "--json", "--max-seconds", "20")
    assert res.returncode == 0, (res.stdout, res.stderr)
    r = json.loads(res.stdout)
    assert r["answered"] and r["hangup_by"] == "remote" and r["invite_status"] == 200, r
    assert r["heard_seconds"] > 1.0 and r["heard_peak_dbfs"] > -12, r
    assert [200, "OK"] in r["responses"] and r["setup_seconds"] < 5, r
    assert 2.5 < r["connected_seconds"] < 8, r


@pytest.mark.parametrize("method,name", [("rfc4733", "RFC 4733"), ("info", "SIP INFO application/dtmf-relay")])
def test_digits_are_sent_and_received_by_the_handler(daemon, method, name):
    before = len(handler_events(daemon.events / "digits.jsonl", LISTENER))
    res = chimevoice_call(uri(daemon, LISTENER), "--dtmf", "1.0:34#", "--dtmf-method", method,
                          "--max-seconds", "20")
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert f"sent digits 3 4 # ({name})" in res.stdout, res.stdout
    assert "the far end hung up (BYE)" in res.stdout, res.stdout    # the handler hangs up on 34#
    evs = wait_handler_events(daemon.events / "digits.jsonl", LISTENER)[before:]
    got = [e["ActionData"]["ReceivedDigits"] for e in evs if e["InvocationEventType"] == "DIGITS_RECEIVED"]
    assert got == ["34#"], [e["InvocationEventType"] for e in evs]


def test_we_hang_up_after_hangup_after(daemon):
    res = chimevoice_call(uri(daemon, TONE), "--hangup-after", "1", "--json")
    assert res.returncode == 0, (res.stdout, res.stderr)
    r = json.loads(res.stdout)
    assert r["answered"] and r["hangup_by"] == "local" and r["hangup_reason"] == "hangup_after", r
    assert 0.9 < r["connected_seconds"] < 2, r


def test_unanswered_call_exits_1_and_shows_the_status(daemon):
    res = chimevoice_call(uri(daemon, NO_RULE))
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert res.stdout.startswith("not answered: 404 Not Found"), res.stdout
    assert re.search(r"SIP: (100 )?404$", res.stdout.strip()), res.stdout


def test_expect_status_makes_the_refusal_a_success(daemon):
    res = chimevoice_call(uri(daemon, NO_RULE), "--expect-status", "404", "--json")
    assert res.returncode == 0, (res.stdout, res.stderr)
    r = json.loads(res.stdout)
    assert not r["answered"] and r["invite_status"] == 404, r
    res = chimevoice_call(uri(daemon, TONE), "--expect-status", "404", "--hangup-after", "0.5")
    assert res.returncode == 1 and res.stdout.startswith("answered"), (res.stdout, res.stderr)


@pytest.mark.parametrize("args", [["--dtmf", "soon:1"], ["--dtmf", "1:x"], ["--play", "/nonexistent.wav"],
                                  ["--no-such-option"], ["--max-seconds", "0"]])
def test_bad_arguments_exit_2(args):
    res = chimevoice_call("sip:+15550100000@127.0.0.1:9", *args, timeout=20)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stdout == "", res.stdout


# -- the README's first call: the demo IVR of config/example.yaml ---------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """config/example.yaml as scripts/demo runs it, on a free port, with its own data and prompts."""
    if shutil.which("sipp") is None:
        pytest.fail("sipp (Debian package sip-tester) is required; run scripts/bootstrap")
    work = tmp_path_factory.mktemp("demo")
    subprocess.run([str(ROOT / "scripts" / "make-demo-audio"), str(work / "prompts")], check=True,
                   capture_output=True)
    port = free_port()
    cfg = yaml.safe_load((ROOT / "config" / "example.yaml").read_text())
    cfg["data_dir"] = str(work / "data")
    cfg["logging"] = {"level": "info", "format": "json"}
    for listener in cfg["sip"]["listeners"]:
        listener["port"] = port
    cfg["sip"]["rtp"] = {"port_start": rtp_start(port), "port_count": 100}
    cfg["buckets"] = {"demo-prompts": str(work / "prompts")}
    cfg["bots"]["local"] = {k: str(ROOT / "config" / v) for k, v in cfg["bots"]["local"].items()}
    if "aws_local" in cfg:                    # the demo's embedded AWS endpoint, on free ports too
        cfg["aws_local"]["dynamodb"]["listen"] = f"127.0.0.1:{free_port()}"
        cfg["aws_local"]["s3"]["listen"] = f"127.0.0.1:{free_port()}"
        cfg["aws_local"]["polly"]["listen"] = f"127.0.0.1:{free_port()}"
        cfg["aws_local"]["lex_runtime"]["listen"] = f"127.0.0.1:{free_port()}"
    d = Daemon(work, port)
    d.config_path = work / "example.yaml"
    d.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    d.start()
    yield d
    code = d.stop()
    assert code == 0, d.log_path.read_text()[-3000:]


def demo_call_ended_well(d: Daemon, before: int) -> None:
    """One more CDR than *before*: a completed call the application (the demo's Hangup) ended; no
    error logged."""
    import time
    deadline = time.monotonic() + 10
    while len(d.cdrs()) <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    cdrs = d.cdrs()
    assert len(cdrs) == before + 1, cdrs
    new = max(cdrs, key=lambda c: c["StartTimeEpochMilliseconds"])
    assert new["Status"] == "Completed" and new["HangupSource"] == "application", new
    errors = [e for e in d.logs() if e.get("level") == "error"]
    assert not errors, errors


def test_readme_first_call_succeeds_at_both_ends(demo):
    before = len(demo.cdrs())
    res = chimevoice_call(f"sip:+15550100000@127.0.0.1:{demo.port}", "--max-seconds", "30")
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert res.stdout.startswith("answered") and "the far end hung up (BYE)" in res.stdout, res.stdout
    heard = float(re.search(r"heard ([\d.]+) s of audio", res.stdout).group(1))
    assert heard > 1.0, res.stdout                        # the spoken welcome and goodbye
    demo_call_ended_well(demo, before)


def test_sipp_scenario_waits_for_the_demos_bye(demo):
    before = len(demo.cdrs())
    res = sipp(SIPP_DIR / "uac_wait_bye.xml", f"127.0.0.1:{demo.port}", service="+15550100000", timeout=40)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    demo_call_ended_well(demo, before)
