"""DTMF digit collection over real SIP calls on loopback: the daemon, the pjsua2 test phone
(RFC 4733, SIP INFO application/dtmf-relay, SIP INFO application/dtmf) and sipp playing
RFC 2833 events from a pcap. The handler (tests/handlers/digits.py) records every event."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chimevoice.media.analysis import goertzel_power
from chimevoice.media.audio import read_pcm
from tests.support.harness import (
    ROOT,
    Daemon,
    free_port,
    handler_app,
    handler_events,
    module_daemon,
    number_rules,
    sipp,
    wait_handler_events,
    write_tone,
)

pytestmark = pytest.mark.sip

APP = "33333333-0000-4000-8000-000000000001"
N = "+155503000"                      # +15550300001 .. 05
PCAPS = Path("/usr/share/sip-tester")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "digits")
    numbers = [f"{N}{i:02d}" for i in range(1, 6)]
    d.write_config([handler_app(APP, "digits", "digits:handler", {"EVENTS_DIR": str(d.events)})],
                   rules=number_rules(numbers, APP, "44444444-0000-4000-8000", "digits"), numbers=numbers)
    write_tone(d.prompts / "prompt3s.wav", 1000, 3.0)
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    write_tone(d.prompts / "failure400.wav", 400, 0.5)
    d.start()
    yield d
    code = d.stop()
    assert code == 0, d.log_path.read_text()[-3000:]


def events_for(d: Daemon, number: str) -> list[dict]:
    return handler_events(d.events / "digits.jsonl", number)


def wait_events(d: Daemon, number: str, last: str = "HANGUP", timeout: float = 10) -> list[dict]:
    return wait_handler_events(d.events / "digits.jsonl", number, last, timeout)


def tone_runs(path: Path) -> list[tuple[str, float, float]]:
    """(frequency, start s, end s) of the runs of 1000 Hz / 400 Hz tone heard, 20 ms blocks."""
    heard, rate = read_pcm(path)
    x = heard.astype(np.float64)
    runs: list[list] = []
    for i in range(0, len(x) - 160, 160):
        b = x[i:i + 160]
        if np.abs(b).max() < 2000:
            continue
        kind = "1000" if goertzel_power(b, rate, 1000) > goertzel_power(b, rate, 400) else "400"
        t = i / rate
        if runs and runs[-1][0] == kind and t - runs[-1][2] < 0.1:
            runs[-1][2] = t + 0.02
        else:
            runs.append([kind, t, t + 0.02])
    return [(k, round(s, 2), round(e, 2)) for k, s, e in runs]


@pytest.mark.parametrize("method", ["rfc4733", "info", "info-dtmf"])
def test_receive_digits_reports_exactly_the_digits_by_each_dtmf_method(daemon, method):
    number = N + "01"
    before = len(events_for(daemon, number))
    res = daemon.call(user=number, dtmf=["1.5:12#", "4.0:34#"], dtmf_method=method, max_seconds=15)
    assert res["answered"] and res["hangup_by"] == "remote", res
    assert [d for _, d in res["dtmf_sent"]] == (["12#", "34#"] if method == "rfc4733" else list("12#34#"))
    evs = wait_events(daemon, number)[before:]
    assert [e["InvocationEventType"] for e in evs] == [
        "NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "DIGITS_RECEIVED", "DIGITS_RECEIVED", "HANGUP"]
    cid = evs[0]["CallDetails"]["Participants"][0]["CallId"]
    params = {"CallId": cid, "InputDigitsRegex": "\\d{2}#$", "InBetweenDigitsDurationInMilliseconds": 1000,
              "FlushDigitsDurationInMilliseconds": 5000}
    assert evs[1]["ActionData"] == {"ReceivedDigits": "", "Type": "ReceiveDigits", "Parameters": params}
    assert list(evs[1]["ActionData"]) == ["ReceivedDigits", "Type", "Parameters"]
    assert evs[2]["ActionData"] == {"ReceivedDigits": "12#", "Type": "ReceiveDigits", "Parameters": params}
    assert evs[3]["ActionData"] == {"ReceivedDigits": "34#", "Type": "ReceiveDigits", "Parameters": params}
    assert list(evs[3]["ActionData"]) == ["ReceivedDigits", "Type", "Parameters"]
    assert [e["Sequence"] for e in evs] == [1, 2, 3, 4, 5]
    kind = {"rfc4733": "rfc4733", "info": "sip-info", "info-dtmf": "sip-info"}[method]
    assert any(e.get("event") == "dtmf_received" and e.get("CallId") == cid and e.get("method") == kind
               for e in daemon.logs())


def test_play_audio_and_get_digits_barge_in_digits_and_terminator(daemon, tmp_path):
    number = N + "02"
    rec = tmp_path / "heard.wav"
    res = daemon.call(user=number, record=rec, dtmf=["2.0:1234#"], max_seconds=15)
    assert res["answered"] and res["hangup_by"] == "remote", res
    evs = wait_events(daemon, number)
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"]
    cid = evs[0]["CallDetails"]["Participants"][0]["CallId"]
    assert evs[1]["ActionData"] == {"Type": "PlayAudioAndGetDigits", "Parameters": {
        "CallId": cid, "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "prompt3s.wav"},
        "FailureAudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "failure400.wav"},
        "InputDigitsRegex": "^\\d{4}$", "MinNumberOfDigits": 3, "MaxNumberOfDigits": 5, "TerminatorDigits": ["#"],
        "InBetweenDigitsDurationInMilliseconds": 2000, "Repeat": 2, "RepeatDurationInMilliseconds": 3000},
        "ReceivedDigits": "1234"}
    runs = tone_runs(rec)
    # Only the prompt was heard (from 0.7 s), cut by the first digit at 2 s (of 3 s); no failure tone.
    assert [k for k, _, _ in runs] == ["1000"], runs
    assert 0.9 < runs[0][2] - runs[0][1] < 1.8, runs


def test_play_audio_and_get_digits_timeout_plays_failure_audio_then_fails(daemon, tmp_path):
    number = N + "03"
    rec = tmp_path / "heard.wav"
    res = daemon.call(user=number, record=rec, max_seconds=20)
    assert res["answered"] and res["hangup_by"] == "remote", res
    evs = wait_events(daemon, number)
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "ACTION_FAILED", "HANGUP"]
    cid = evs[0]["CallDetails"]["Participants"][0]["CallId"]
    assert evs[1]["ActionData"] == {"Type": "PlayAudioAndGetDigits", "Parameters": {
        "CallId": cid, "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "tone1000.wav"},
        "FailureAudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "failure400.wav"},
        "MinNumberOfDigits": "1", "Repeat": "2", "RepeatDurationInMilliseconds": "1000"},
        "ErrorType": "InvalidDigitsReceived", "ErrorMessage": "Valid digits were not received."}
    assert list(evs[1]["ActionData"]) == ["Type", "Parameters", "ErrorType", "ErrorMessage"]
    runs = tone_runs(rec)
    # prompt, 1 s wait, failure tone; again (Repeat 2); the failure tone follows the last attempt too.
    assert [k for k, _, _ in runs] == ["1000", "400", "1000", "400"], runs
    assert [round(e - s, 1) for _, s, e in runs] == pytest.approx([1.0, 0.5, 1.0, 0.5], abs=0.15)
    assert runs[1][1] - runs[0][2] == pytest.approx(1.0, abs=0.25)       # RepeatDurationInMilliseconds
    assert runs[3][1] - runs[2][2] == pytest.approx(1.0, abs=0.25)


def test_speak_and_get_digits_collects_two_digits(daemon, tmp_path):
    number = N + "04"
    rec = tmp_path / "heard.wav"
    # The caller also talks (--play): the keys still get through.
    res = daemon.call(user=number, record=rec, dtmf=["3.5:42"], max_seconds=15,
                      play=daemon.prompts / "failure400.wav")
    assert res["answered"] and res["hangup_by"] == "remote" and res["played"], res
    evs = wait_events(daemon, number)
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"]
    assert evs[1]["ActionData"] == {"Type": "SpeakAndGetDigits", "Parameters": {
        "SpeechParameters": {"Text": "Please enter two digits.", "VoiceId": "Joanna"},
        "FailureSpeechParameters": {"Text": "Sorry."},
        "MinNumberOfDigits": 2, "MaxNumberOfDigits": 2, "RepeatDurationInMilliseconds": 4000},
        "ReceivedDigits": "42"}
    heard, rate = read_pcm(rec)
    voiced = np.nonzero(np.abs(heard.astype(np.float64)) > 1500)[0]
    assert len(voiced) and voiced[0] / rate < 1.0            # the prompt was spoken
    assert res["connected_seconds"] < 6, res                  # ended by the 2nd digit, no timeout


def test_sipp_rfc2833_dtmf_from_pcap_reaches_receive_digits(daemon, tmp_path):
    for name in ("dtmf_2833_1.pcap", "dtmf_2833_pound.pcap"):
        if not (PCAPS / name).exists():
            pytest.fail(f"{PCAPS / name} missing (Debian package sip-tester)")
    number = N + "05"
    res = sipp(ROOT / "tests" / "sipp" / "uac_rfc2833_dtmf.xml", f"127.0.0.1:{daemon.port}", service=number,
               cwd=tmp_path, timeout=25, extra=["-mp", str(free_port())])
    out = res.stdout[-3000:] + res.stderr[-3000:]
    if "Operation not permitted" in out or "raw socket" in out.lower():
        pytest.skip(f"sipp cannot open the raw socket play_pcap_audio needs: {out[-500:]}")
    assert res.returncode == 0, out
    evs = wait_events(daemon, number)
    assert [e["InvocationEventType"] for e in evs] == [
        "NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "DIGITS_RECEIVED", "HANGUP"]
    assert evs[2]["ActionData"]["ReceivedDigits"] == "1#"
    cid = evs[0]["CallDetails"]["Participants"][0]["CallId"]
    assert [e.get("digit") for e in daemon.logs() if e.get("event") == "dtmf_received" and e.get("CallId") == cid] \
        == ["1", "#"]
