"""Real SIP calls over loopback against the running daemon: pjsua2 phone and sipp, real RTP."""
from __future__ import annotations

import concurrent.futures
import shutil
import subprocess
import time

import numpy as np
import pytest

from chimevoice.media.analysis import dominant_frequency, goertzel_power, similarity
from chimevoice.media.audio import read_pcm
from tests.support.harness import (
    ROOT,
    Daemon,
    expect_status_scenario,
    free_port,
    handler_app,
    handler_events,
    read_events,
    self_signed_cert,
    sipp,
    wait_handler_events,
    write_tone,
)

pytestmark = pytest.mark.sip

N = "+1555010000"     # numbers +15550100000 .. +15550100009 are on the trunk
AUTH_NUMBER = "+15550100020"
APPS = {
    "greeter": "11111111-0000-4000-8000-000000000001",
    "slow": "11111111-0000-4000-8000-000000000002",
    "garbage": "11111111-0000-4000-8000-000000000003",
    "crasher": "11111111-0000-4000-8000-000000000004",
    "greeter-b": "11111111-0000-4000-8000-000000000005",
    "attributes": "11111111-0000-4000-8000-000000000006",
    "scripted": "11111111-0000-4000-8000-000000000007",
}


def rule(i: int, number: str, *apps: str) -> dict:
    return {"id": f"22222222-0000-4000-8000-{i:012d}", "name": f"rule-{i}", "trigger_type": "ToPhoneNumber",
            "trigger_value": number,
            "target_applications": [{"sip_media_application_id": APPS[a], "priority": p + 1}
                                    for p, a in enumerate(apps)]}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    if shutil.which("sipp") is None:
        pytest.fail("sipp (Debian package sip-tester) is required; run scripts/bootstrap")
    work = tmp_path_factory.mktemp("calls")
    events = work / "events"
    events.mkdir()
    cert, key = self_signed_cert(work)
    port = free_port()
    tls_port = free_port()
    d = Daemon(work, port, extra_listeners=[{"transport": "tls", "address": "127.0.0.1", "port": tls_port,
                                             "certificate": str(cert), "private_key": str(key)}])
    d.tls_port = tls_port
    d.events = events
    env = {"EVENTS_DIR": str(events), "PROMPT_BUCKET": "prompts"}
    # greeter-b is written in Lambda's own spelling (file.function, issue 10 item 2)
    apps = [handler_app(APPS[name], name, f"{mod}.handler" if name == "greeter-b" else f"{mod}:handler", env, **kw)
            for name, mod, kw in (
        ("greeter", "greeter", {}),
        ("slow", "slow", {"timeout_s": 1.5, "retry_after_s": 0.5}),
        ("garbage", "garbage", {}),
        ("crasher", "crasher", {}),
        ("greeter-b", "greeter", {}),
        ("attributes", "attributes", {}),
        ("scripted", "scripted", {}),
    )]
    rules = [rule(0, N + "0", "greeter"), rule(1, N + "1", "slow"), rule(2, N + "2", "garbage"),
             rule(3, N + "3", "crasher", "greeter-b"), rule(4, N + "4", "attributes"),
             *(rule(i, N + str(i), "scripted") for i in (5, 6, 7, 8)),
             *(rule(i, f"+155501000{i}", "scripted") for i in (10, 12, 13)),
             rule(20, AUTH_NUMBER, "greeter")]
    cfg = d.write_config(apps, rules=rules)
    # A second trunk that requires digest credentials.
    import yaml
    data = yaml.safe_load(cfg.read_text())
    data["voice_connectors"][0]["phone_numbers"] = [N + str(i) for i in range(10)] + [
        f"+155501000{i}" for i in (10, 12, 13)]
    data["voice_connectors"].append({"id": "vc-auth", "name": "auth trunk", "host_name": "vc-auth.local",
                                     "allow_list": ["127.0.0.1/32"], "phone_numbers": [AUTH_NUMBER],
                                     "credentials": {"username": "pbx1", "password": "s3cret"}})
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    subprocess.run([str(ROOT / "scripts" / "make-demo-audio"), str(work / "demo")], check=True, capture_output=True)
    shutil.copy(work / "demo" / "welcome.wav", d.prompts / "greeting.wav")
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    write_tone(d.prompts / "tone400.wav", 400, 0.5)
    d.start()
    yield d
    code = d.stop()
    assert code == 0, d.log_path.read_text()[-3000:]


def events_for(d: Daemon, app: str, number: str) -> list[dict]:
    return handler_events(d.events / f"{app}.jsonl", number)


def wait_events(d: Daemon, app: str, number: str, last: str, timeout: float = 10) -> list[dict]:
    return wait_handler_events(d.events / f"{app}.jsonl", number, last, timeout)


def test_greeting_reaches_the_caller_and_handler_sees_exact_events(daemon, tmp_path):
    rec = tmp_path / "heard.wav"
    res = daemon.call(user=N + "0", record=rec)
    assert res["answered"] and res["hangup_by"] == "remote", res
    greeting, rate = read_pcm(daemon.prompts / "greeting.wav")
    heard, hrate = read_pcm(rec)
    assert hrate == 8000
    assert similarity(greeting.astype(np.float64), heard.astype(np.float64), rate) > 0.85
    assert abs(res["connected_seconds"] - len(greeting) / rate - 1.5) < 0.6
    evs = wait_events(daemon, "greeter", N + "0", "HANGUP")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "HANGUP"]
    assert [e["Sequence"] for e in evs] == [1, 2]
    first, hangup = evs
    details = first["CallDetails"]
    assert list(first) == ["SchemaVersion", "Sequence", "InvocationEventType", "CallDetails"]
    assert list(details) == ["TransactionId", "AwsAccountId", "AwsRegion", "SipRuleId",
                             "SipMediaApplicationId", "SipApplicationId", "Participants"]
    assert details["SipRuleId"] == "22222222-0000-4000-8000-000000000000"
    assert details["SipMediaApplicationId"] == APPS["greeter"]
    leg = details["Participants"][0]
    assert leg["ParticipantTag"] == "LEG-A" and leg["Direction"] == "Inbound" and leg["Status"] == "Connected"
    assert leg["From"] == "+15105550101" and leg["To"] == N + "0"
    assert isinstance(leg["StartTimeInMilliseconds"], str) and len(leg["StartTimeInMilliseconds"]) == 13
    assert hangup["ActionData"] == {"Type": "Hangup", "Parameters": {
        "SipResponseCode": 0, "CallId": leg["CallId"], "ParticipantTag": "LEG-A"}}
    assert hangup["CallDetails"]["Participants"][0]["Status"] == "Disconnected"
    assert hangup["CallDetails"]["TransactionId"] == details["TransactionId"]
    # Every log line about the call carries both ids.
    routed = daemon.wait_log("call_routed", CallId=leg["CallId"])
    assert routed["TransactionId"] == details["TransactionId"]
    # One CDR per leg, in the Voice Connector CDR shape.
    deadline = time.monotonic() + 10
    while not any(c["CallId"] == leg["CallId"] for c in daemon.cdrs()) and time.monotonic() < deadline:
        time.sleep(0.05)
    cdr = next(c for c in daemon.cdrs() if c["CallId"] == leg["CallId"])
    assert cdr["TransactionId"] == details["TransactionId"]
    assert cdr["VoiceConnectorId"] == "vc-test" and cdr["Direction"] == "Inbound"
    assert cdr["SourcePhoneNumber"] == "+15105550101" and cdr["DestinationPhoneNumber"] == N + "0"
    assert cdr["Status"] == "Completed" and cdr["SipRuleId"] == details["SipRuleId"]
    assert cdr["SipApplicationId"] == APPS["greeter"] and cdr["CallLegTriggerType"] == "ToPhoneNumber"
    assert int(cdr["BillableDurationSeconds"]) == pytest.approx(res["connected_seconds"], abs=1.5)
    assert int(cdr["BillableDurationSeconds"]) >= 1


@pytest.mark.parametrize("transport,srtp", [("tcp", False), ("tls", False)])
def test_call_over_tcp_and_tls_hears_the_tone(daemon, tmp_path, transport, srtp):
    rec = tmp_path / "heard.wav"
    port = daemon.tls_port if transport == "tls" else daemon.port
    res = daemon.call(user=N + "5", record=rec, transport=transport, port=port, srtp=srtp)
    assert res["answered"] and res["hangup_by"] == "remote", res
    assert res["srtp"] is srtp                  # RTP/SAVP negotiated when the phone requires it
    heard, rate = read_pcm(rec)
    loud = np.nonzero(np.abs(heard) > 1000)[0]
    assert (loud[-1] - loud[0]) / rate == pytest.approx(1.0, abs=0.05)    # the whole 1 s tone
    assert dominant_frequency(heard.astype(np.float64), rate) == pytest.approx(1000, abs=15)
    daemon.wait_log("call_routed", transport=transport)


def test_source_outside_allow_list_gets_403_and_no_handler_call(daemon, tmp_path):
    before = len(read_events(daemon.events / "greeter.jsonl"))
    scen = expect_status_scenario(tmp_path / "403.xml", 403)
    res = sipp(scen, f"127.0.0.1:{daemon.port}", service=N + "0", bind="127.0.0.2", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    rejected = daemon.wait_log("call_rejected", sip_status=403)
    assert rejected["source"].startswith("127.0.0.2:")
    time.sleep(0.3)
    assert len(read_events(daemon.events / "greeter.jsonl")) == before


def test_number_without_rule_gets_404(daemon, tmp_path):
    scen = expect_status_scenario(tmp_path / "404.xml", 404)
    res = sipp(scen, f"127.0.0.1:{daemon.port}", service=N + "9", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    daemon.wait_log("call_rejected", sip_status=404)


def test_handler_timeout_rejects_with_480_and_other_calls_go_on(daemon, tmp_path):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(daemon.call, user=N + "1")
        time.sleep(0.3)
        ok = daemon.call(user=N + "0", record=tmp_path / "a.wav")
        slow_res = slow.result()
    assert ok["answered"], ok
    assert ok["setup_seconds"] < 1.0          # answered while the other handler hangs
    assert not slow_res["answered"] and slow_res["final_status"] == 480, slow_res
    failed = daemon.wait_log("handler_invocation_failed", kind="timeout")
    assert failed["TransactionId"] and failed["CallId"]
    # The retry at 0.5 s means the slow handler saw NEW_INBOUND_CALL twice, same Sequence.
    evs = events_for(daemon, "slow", N + "1")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "NEW_INBOUND_CALL"]
    assert evs[0]["Sequence"] == evs[1]["Sequence"] == 1


def test_garbage_response_yields_invalid_lambda_response(daemon):
    res = daemon.call(user=N + "2")
    assert not res["answered"] and res["final_status"] == 486, res
    evs = wait_events(daemon, "garbage", N + "2", "HANGUP")
    kinds = [e["InvocationEventType"] for e in evs]
    assert kinds == ["NEW_INBOUND_CALL", "INVALID_LAMBDA_RESPONSE", "HANGUP"]
    invalid = evs[1]
    assert invalid["ErrorType"] == "InvalidLambdaResponse"
    assert invalid["ErrorMessage"] == "Error reading the action list."
    assert evs[2]["ActionData"]["Parameters"]["SipResponseCode"] == 486


def test_invalid_reply_to_invalid_lambda_response_ends_the_call(daemon):
    """README reading 19: the handler answers INVALID_LAMBDA_RESPONSE with the same over-long
    list; the call gets 480 after two invocations, with one log line, not 1,000 invocations."""
    res = daemon.call(user="+15550100013")
    assert not res["answered"] and res["final_status"] == 480, res
    line = daemon.wait_log("invalid_reply_loop")
    assert line["TransactionId"] and line["CallId"] and line["invocations"] == 2
    daemon.wait_log("transaction_finished", TransactionId=line["TransactionId"])
    evs = events_for(daemon, "scripted", "+15550100013")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "INVALID_LAMBDA_RESPONSE"]
    assert evs[1]["ErrorMessage"] == "Too many actions specified in the response."
    assert len([e for e in daemon.logs() if e.get("event") == "invalid_reply_loop"]) == 1


def test_failover_to_second_priority_application(daemon, tmp_path):
    rec = tmp_path / "b.wav"
    res = daemon.call(user=N + "3", record=rec)
    assert res["answered"], res
    assert [e["InvocationEventType"] for e in events_for(daemon, "crasher", N + "3")] == ["NEW_INBOUND_CALL"]
    evs = wait_events(daemon, "greeter-b", N + "3", "HANGUP")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "HANGUP"]
    assert evs[0]["Sequence"] == 1
    assert evs[0]["CallDetails"]["SipMediaApplicationId"] == APPS["greeter-b"]
    crash = daemon.wait_log("handler_invocation_failed", kind="error")
    assert "database unavailable" in crash["error"]
    daemon.wait_log("handler_failover", sip_media_application_id=APPS["greeter-b"])


def test_transaction_attributes_round_trip(daemon):
    res = daemon.call(user=N + "4")
    assert res["answered"] and res["hangup_by"] == "remote", res
    evs = wait_events(daemon, "attributes", N + "4", "HANGUP")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"]
    assert "TransactionAttributes" not in evs[0]["CallDetails"]
    assert evs[1]["CallDetails"]["TransactionAttributes"] == {
        "step": "menu", "nested": {"tries": 2, "path": ["a", "b"]}, "unicode": "caf\u00e9"}
    assert list(evs[1]["CallDetails"])[:2] == ["TransactionId", "TransactionAttributes"]
    assert "TransactionAttributes" not in evs[2]["CallDetails"]       # cleared with {}
    assert evs[2]["ActionData"]["Parameters"]["SipResponseCode"] == 0   # 486 would mean a mismatch


def test_dtmf_terminator_stops_playback(daemon, tmp_path):
    rec = tmp_path / "t.wav"
    res = daemon.call(user=N + "6", record=rec, dtmf=["1.9:#"])
    assert res["answered"] and res["hangup_by"] == "remote", res
    assert res["connected_seconds"] < 4, res              # 20 plays of 1 s were cut short
    evs = wait_events(daemon, "scripted", N + "6", "HANGUP")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"]
    assert evs[1]["ActionData"]["Type"] == "Pause"
    heard, rate = read_pcm(rec)
    x = heard.astype(np.float64)
    # 20 ms blocks: the 1000 Hz tone comes first, then (after '#') the 400 Hz one.
    blocks = [x[i:i + 160] for i in range(0, len(x) - 160, 160)]
    kinds = [("1000" if goertzel_power(b, rate, 1000) > goertzel_power(b, rate, 400) else "400")
             for b in blocks if np.abs(b).max() > 2000]
    first_400 = kinds.index("400")
    assert kinds[:first_400] and set(kinds[:first_400]) == {"1000"}
    assert set(kinds[first_400:]) == {"400"} and 20 <= len(kinds[first_400:]) <= 27
    daemon.wait_log("dtmf_received", digit="#")


def test_missing_audio_file_fails_the_action(daemon):
    res = daemon.call(user=N + "7")
    assert res["final_status"] == 480, res
    evs = wait_events(daemon, "scripted", N + "7", "HANGUP")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "ACTION_FAILED", "HANGUP"]
    data = evs[1]["ActionData"]
    assert data["Type"] == "PlayAudio"
    assert data["ErrorType"] == "InvalidAudioSource"
    assert data["ErrorMessage"] == "Cannot access S3 bucket or audio file."
    daemon.wait_log("audio_source_failed", key="missing.wav")


def test_caller_hangs_up_mid_playback(daemon):
    res = daemon.call(user=N + "8", hangup_after=1.0)
    assert res["answered"] and res["hangup_by"] == "local", res
    evs = wait_events(daemon, "scripted", N + "8", "HANGUP")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "HANGUP"]
    assert evs[1]["CallDetails"]["Participants"][0]["Status"] == "Disconnected"
    assert evs[1]["ActionData"]["Parameters"]["SipResponseCode"] == 0


def test_trunk_with_credentials_challenges_and_accepts_digest(daemon, tmp_path):
    scen = expect_status_scenario(tmp_path / "401.xml", 401)
    res = sipp(scen, f"127.0.0.1:{daemon.port}", service=AUTH_NUMBER, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    res = sipp("uac", f"127.0.0.1:{daemon.port}", service=AUTH_NUMBER, cwd=tmp_path,
               extra=["-au", "pbx1", "-ap", "wrong"])
    assert res.returncode != 0
    res = sipp(ROOT / "tests" / "sipp" / "uac_auth.xml", f"127.0.0.1:{daemon.port}", service=AUTH_NUMBER,
               cwd=tmp_path, extra=["-au", "pbx1", "-ap", "s3cret"])
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]


def test_daemon_survives_malformed_sip(daemon, tmp_path):
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"\x00\xff garbage", b"INVITE sip:x SIP/2.0\r\nVia: broken\r\n\r\n",
                     b"INVITE sip:+15550100000@127.0.0.1 SIP/2.0\r\nContent-Length: 99999\r\n\r\nv=0"):
            s.sendto(junk, ("127.0.0.1", daemon.port))
    time.sleep(0.3)
    res = daemon.call(user=N + "5", record=tmp_path / "after.wav")
    assert res["answered"], res
    assert daemon.proc.poll() is None


def test_speak_synthesizes_and_plays_speech(daemon, tmp_path):
    rec = tmp_path / "speech.wav"
    res = daemon.call(user="+15550100010", record=rec)
    assert res["answered"] and res["hangup_by"] == "remote", res
    evs = wait_events(daemon, "scripted", "+15550100010", "HANGUP")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "HANGUP"]
    heard, rate = read_pcm(rec)
    x = heard.astype(np.float64)
    voiced = [i for i in range(0, len(x) - 160, 160) if np.abs(x[i:i + 160]).max() > 1500]
    speech_s = (voiced[-1] - voiced[0]) / rate
    assert 0.8 < speech_s < 4.0, speech_s          # "Hello from chimevoice." is about 1.5 s
    # It is the synthesized sentence: compare with the cached synthesis the daemon played.
    cached = sorted((daemon.data / "speech-cache").rglob("*.wav"), key=lambda p: p.stat().st_mtime)
    ref, _ = read_pcm(cached[-1])
    assert similarity(ref.astype(np.float64), x, rate) > 0.85


def test_speak_with_unknown_voice_fails_with_spec_error(daemon):
    res = daemon.call(user="+15550100012")
    assert res["final_status"] == 480, res
    evs = wait_events(daemon, "scripted", "+15550100012", "HANGUP")
    failed = evs[1]
    assert failed["InvocationEventType"] == "ACTION_FAILED"
    assert failed["ActionData"]["Type"] == "Speak"
    assert failed["ActionData"]["ErrorType"] == "InvalidActionParameter"
    assert failed["ActionData"]["ErrorMessage"] == "VoiceId parameter value is invalid."
