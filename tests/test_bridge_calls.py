"""CallAndBridge over real SIP: a phone calls in, the handler bridges it to a second
phone acting as the carrier (the PSTN gateway's origination route), real RTP both ways."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml

from chimevoice.media.analysis import dominant_frequency
from chimevoice.media.audio import read_pcm
from tests.support.harness import (
    PHONE,
    ROOT,
    ListeningPhone,
    free_port,
    handler_app,
    module_daemon,
    number_rules,
    read_events,
    write_tone,
)

pytestmark = pytest.mark.sip

APP = "dddddddd-0000-4000-8000-000000000001"
NUMBERS = ["+15550100100", "+15550100101", "+15550100102", "+15550100103", "+15550100104", "+15550100105",
           "+15550100106", "+15550100107", "+15550100108", "+15550100109", "+15550100110", "+15550100111"]
CARRIER = "+15550199001"


class Carrier:
    """A pjsua2 phone in answering mode (tests/support/phone.py --listen) on its own port."""

    def __init__(self, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(PHONE), "--listen", f"127.0.0.1:{self.port}", *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = ""
        while self.proc.stdout is not None and '"listening"' not in line:   # pjlib prints first
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(self.proc.stderr.read() if self.proc.stderr else "carrier exited")

    def result(self, timeout: float = 30) -> dict:
        out, err = self.proc.communicate(timeout=timeout)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        assert lines, f"carrier printed no result:\n{out[-2000:]}\n{err[-2000:]}"
        return json.loads(lines[-1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "bridge")
    carrier_port, dead_port, second_port = free_port(), free_port(), free_port()
    dead3_port, live3_port, auth_port = free_port(), free_port(), free_port()
    apps = [handler_app(APP, "bridger", "bridger:handler",
                        {"EVENTS_DIR": str(d.events), "CARRIER_VC": "vc-carrier2", "SELF_SMA": APP})]
    cfg = d.write_config(apps, rules=number_rules(NUMBERS, APP, "eeeeeeee-0000-4000-8000", "bridge"),
                         numbers=NUMBERS)
    data = yaml.safe_load(cfg.read_text())
    data["voice_connectors"] += [
        {"id": "vc-carrier", "name": "carrier", "host_name": "carrier.chimevoice.local",
         "allow_list": ["127.0.0.1/32"],
         "origination": {"routes": [{"host": "127.0.0.1", "port": carrier_port, "protocol": "udp"}]}},
        {"id": "vc-carrier2", "name": "carrier with a dead first host", "host_name": "carrier2.chimevoice.local",
         "allow_list": ["127.0.0.1/32"],
         "origination": {"routes": [
             {"host": "127.0.0.1", "port": dead_port, "protocol": "udp", "priority": 1},
             {"host": "127.0.0.1", "port": second_port, "protocol": "udp", "priority": 2}]}},
        {"id": "vc-carrier3", "name": "carrier probed with OPTIONS", "host_name": "carrier3.chimevoice.local",
         "allow_list": ["127.0.0.1/32"],
         "origination": {"options_interval_s": 1, "routes": [
             {"host": "127.0.0.1", "port": dead3_port, "protocol": "udp", "priority": 1},
             {"host": "127.0.0.1", "port": live3_port, "protocol": "udp", "priority": 2}]}},
        {"id": "vc-carrier-auth", "name": "carrier with digest", "host_name": "carrier-auth.chimevoice.local",
         "allow_list": ["127.0.0.1/32"],
         "origination": {"options_interval_s": 0, "credentials": {"username": "chime", "password": "s3cret"},
                         "routes": [{"host": "127.0.0.1", "port": auth_port, "protocol": "udp"}]}},
    ]
    data["pstn"] = {"voice_connector": "vc-carrier"}
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    write_tone(d.prompts / "tone400.wav", 400, 1.0)
    d.carrier_port, d.second_port = carrier_port, second_port
    d.dead3, d.live3, d.auth_port = dead3_port, live3_port, auth_port
    d.start()
    yield d
    d.stop()


def events(d, number: str) -> list[dict]:
    return [e for e in read_events(d.events / "bridger.jsonl")
            if any(p["ParticipantTag"] == "LEG-A" and p["To"] == number
                   for p in e["CallDetails"]["Participants"])
            or e["CallDetails"]["Participants"][0]["To"] == number]


def wait_for(d, number: str, count: int, timeout: float = 15) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        evs = events(d, number)
        if len(evs) >= count:
            return evs
        time.sleep(0.1)
    raise AssertionError([e["InvocationEventType"] for e in events(d, number)])


def test_bridge_carries_audio_both_ways_and_b_hangup_reaches_the_handler(setup, tmp_path):
    d = setup
    tone_a, tone_b = write_tone(tmp_path / "a.wav", 1000, 1.0), write_tone(tmp_path / "b.wav", 400, 1.0)
    heard_by_b, heard_by_a = tmp_path / "heard-b.wav", tmp_path / "heard-a.wav"
    carrier = Carrier("--ring", "--answer-after", "0.5", "--hangup-after", "3", "--play", str(tone_b),
                      "--record", str(heard_by_b), "--max-seconds", "20", port=d.carrier_port)
    try:
        res = d.call(user=NUMBERS[0], play=tone_a, record=heard_by_a, max_seconds=15)
        far = carrier.result()
    finally:
        carrier.stop()
    assert res["answered"] and res["hangup_by"] == "remote", res       # the server hung LEG-A up
    call = far["calls"][0] if "calls" in far else far
    assert call["answered"], far
    assert call["request_user"] == CARRIER and call["from_user"] == "+15105550101", call
    # Audio: each side hears the other's tone.
    pcm_a, rate_a = read_pcm(heard_by_a)
    pcm_b, rate_b = read_pcm(heard_by_b)
    assert abs(dominant_frequency(pcm_a[int(rate_a * 0.5):], rate_a) - 400) < 25
    assert abs(dominant_frequency(pcm_b[int(rate_b * 0.5):], rate_b) - 1000) < 25
    evs = wait_for(d, NUMBERS[0], 4)
    kinds = [e["InvocationEventType"] for e in evs]
    assert kinds == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP", "HANGUP"], kinds
    ok = evs[1]
    assert ok["ActionData"]["Type"] == "CallAndBridge"
    parts = ok["CallDetails"]["Participants"]
    assert [(p["ParticipantTag"], p["Status"], p["Direction"]) for p in parts] == [
        ("LEG-A", "Connected", "Inbound"), ("LEG-B", "Connected", "Outbound")]
    assert parts[1]["To"] == CARRIER and parts[1]["From"] == "+15105550101"
    assert ok["ActionData"]["Parameters"]["CallId"] == parts[0]["CallId"]
    hb = evs[2]["ActionData"]["Parameters"]
    assert (hb["ParticipantTag"], hb["CallId"]) == ("LEG-B", parts[1]["CallId"])
    assert evs[3]["ActionData"]["Parameters"]["ParticipantTag"] == "LEG-A"
    # One CDR per leg, each with its own direction.
    d.wait_log("transaction_finished", TransactionId=ok["CallDetails"]["TransactionId"])
    time.sleep(0.3)
    cdrs = [c for c in d.cdrs() if c["TransactionId"] == ok["CallDetails"]["TransactionId"]]
    assert sorted((c["Direction"], c["CallLegTriggerType"]) for c in cdrs) == [
        ("Inbound", "ToPhoneNumber"), ("Outbound", "CallAndBridge")], cdrs


def test_no_answer_within_call_timeout_fails_with_call_not_answered(setup):
    d = setup
    carrier = Carrier("--ring", "--no-answer", "--max-seconds", "15", port=d.carrier_port)
    try:
        res = d.call(user=NUMBERS[1], max_seconds=15)
        far = carrier.result()
    finally:
        carrier.stop()
    assert not res["answered"] and res["final_status"] == 480, res
    call = far["calls"][0] if "calls" in far else far
    assert call.get("cancelled") is True, far
    evs = wait_for(d, NUMBERS[1], 3)
    kinds = [e["InvocationEventType"] for e in evs]
    assert kinds == ["NEW_INBOUND_CALL", "ACTION_FAILED", "HANGUP"], kinds
    failed = evs[1]["ActionData"]
    assert (failed["ErrorType"], failed["ErrorMessage"]) == ("CallNotAnswered", "Call not answered")
    assert [p["ParticipantTag"] for p in evs[1]["CallDetails"]["Participants"]] == ["LEG-A"]


def test_first_origination_host_down_the_second_answers(setup, tmp_path):
    d = setup
    carrier = Carrier("--answer-after", "0.2", "--hangup-after", "1", "--max-seconds", "25", port=d.second_port)
    try:
        res = d.call(user=NUMBERS[2], max_seconds=20)
        far = carrier.result()
    finally:
        carrier.stop()
    assert res["answered"], res
    call = far["calls"][0] if "calls" in far else far
    assert call["answered"] and call["request_user"] == "5550", call
    d.wait_log("outbound_failover")
    evs = wait_for(d, NUMBERS[2], 2)
    assert evs[1]["InvocationEventType"] == "ACTION_SUCCESSFUL", [e["InvocationEventType"] for e in evs]


def test_sip_headers_and_ringback_reach_the_carrier_and_the_caller(setup, tmp_path):
    d = setup
    heard_by_a = tmp_path / "heard-a.wav"
    carrier = Carrier("--ring", "--answer-after", "2.5", "--hangup-after", "0.5", "--max-seconds", "20",
                      port=d.carrier_port)
    try:
        res = d.call(user=NUMBERS[3], record=heard_by_a, max_seconds=15)
        far = carrier.result()
    finally:
        carrier.stop()
    call = far["calls"][0] if "calls" in far else far
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert headers.get("x-ticket") == "T-42" and headers.get("user-to-user") == "00ff;encoding=hex", call
    assert 183 in res["statuses"], res                  # early media for the ringback
    pcm, rate = read_pcm(heard_by_a)
    ringing = pcm[int(rate * 0.5):int(rate * 2.0)]       # before the carrier answered
    assert len(ringing) and abs(dominant_frequency(ringing, rate) - 400) < 25


@pytest.mark.parametrize("number", [NUMBERS[4], NUMBERS[6]], ids=["own-number", "own-sma"])
def test_bridge_to_this_server_hairpins_into_the_target(setup, tmp_path, number):
    """README reading 14 (a number of ours) and a SIP media application of ours (AWS endpoint
    with an SMA ARN): the target gets NEW_INBOUND_CALL from the caller id; the caller hears it."""
    d = setup
    heard = tmp_path / "heard.wav"
    before = len(events(d, NUMBERS[5]))
    res = d.call(user=number, record=heard, max_seconds=15)
    assert res["answered"], res
    evs = wait_for(d, number, 2)
    assert evs[1]["InvocationEventType"] == "ACTION_SUCCESSFUL", [e["InvocationEventType"] for e in evs]
    target = events(d, NUMBERS[5])[before:]
    assert target and target[0]["InvocationEventType"] == "NEW_INBOUND_CALL"
    leg = target[0]["CallDetails"]["Participants"][0]
    assert leg["From"] == "+15105550101" and leg["To"] == NUMBERS[5], leg
    assert not any(k.lower() == "x-chimevoice-hairpin" for k in (leg.get("SipHeaders") or {}))
    if number == NUMBERS[6]:
        assert "SipRuleId" not in target[0]["CallDetails"]
    pcm, rate = read_pcm(heard)
    assert abs(dominant_frequency(pcm[int(rate * 1.0):int(rate * 3.0)], rate) - 400) < 25


def test_options_probing_skips_a_dead_host_without_waiting(setup):
    """vc-carrier3 is probed every second: its dead first host is marked down, so the call
    goes straight to the second host (no attempt timeout, no failover)."""
    d = setup
    with ListeningPhone(["--answer-after", "0.2", "--hangup-after", "0.5", "--max-seconds", "20"],
                        port=d.live3) as phone:
        d.wait_log("origination_route_down", route=f"udp:127.0.0.1:{d.dead3}", timeout=15)
        d.wait_log("origination_route_up", route=f"udp:127.0.0.1:{d.live3}", timeout=15)
        t0 = time.monotonic()
        res = d.call(user=NUMBERS[7], max_seconds=15)
        setup_s = time.monotonic() - t0
        far = phone.result()
    assert res["answered"] and far["answered"] and far["request_user"] == "5551", (res, far)
    evs = wait_for(d, NUMBERS[7], 2)
    tx = evs[0]["CallDetails"]["TransactionId"]
    attempts = [e for e in d.logs() if e.get("event") == "outbound_attempt" and e.get("TransactionId") == tx]
    assert [a["uri"] for a in attempts] == [f"sip:5551@127.0.0.1:{d.live3};transport=udp"], attempts
    assert not [e for e in d.logs() if e.get("event") == "outbound_failover" and e.get("TransactionId") == tx]
    assert setup_s < 4, setup_s                      # the 4 s attempt timeout was never waited for


def _noisy_speech(tmp_path) -> Path:
    raw, clean = tmp_path / "speech22k.wav", tmp_path / "speech8k.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw),
                    "The quick brown fox jumps over the lazy dog. Please leave a message after the tone."],
                   check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(clean)], check=True,
                   capture_output=True)
    x = read_pcm(clean)[0].astype(float)
    speech_rms = np.sqrt(np.mean(x[np.abs(x) > 300] ** 2))
    noise = np.random.default_rng(7).normal(0, speech_rms / 10 ** (10 / 20), len(x))   # 10 dB SNR
    out = tmp_path / "noisy.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.clip(x + noise, -32768, 32767).astype(np.int16).tobytes())
    return out


def _peak_to_floor_db(x: np.ndarray) -> float:
    """Speech peaks over the noise floor: 90th over 10th percentile of 20 ms frame energy."""
    x = x.astype(float)[1600:]
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    energy = np.mean(frames ** 2, axis=1) + 1e-9
    return float(10 * np.log10(np.percentile(energy, 90) / np.percentile(energy, 10)))


def test_voice_focus_on_a_bridged_leg_raises_the_far_sides_speech_to_noise(setup, tmp_path):
    d = setup
    noisy = _noisy_speech(tmp_path)
    ratios = {}
    for number, name in ((NUMBERS[9], "off"), (NUMBERS[8], "on")):
        heard = tmp_path / f"heard-{name}.wav"
        carrier = Carrier("--answer-after", "0.2", "--record", str(heard), "--max-seconds", "20",
                          port=d.carrier_port)
        try:
            res = d.call(user=number, play=noisy, hangup_after=6, max_seconds=15)
            carrier.result()
        finally:
            carrier.stop()
        assert res["answered"], res
        ratios[name] = _peak_to_floor_db(read_pcm(heard)[0])
    print(f"far side speech-peak-to-floor: VoiceFocus off {ratios['off']:.1f} dB, on {ratios['on']:.1f} dB")
    assert ratios["on"] - ratios["off"] > 5, ratios


def _lag_ms(reference: np.ndarray, delayed: np.ndarray, rate: int, max_ms: int = 300) -> float:
    """The delay of *delayed* behind *reference* (cross-correlation peak), in ms."""
    ref = reference.astype(float) - reference.mean()
    dly = delayed.astype(float) - delayed.mean()
    best, best_lag = -1.0, 0
    for lag in range(0, int(rate * max_ms / 1000)):
        n = min(len(ref), len(dly) - lag)
        score = float(np.dot(ref[:n], dly[lag:lag + n]))
        if score > best:
            best, best_lag = score, lag
    return best_lag * 1000 / rate


def test_voice_focus_on_a_bridged_leg_adds_at_most_one_frame_of_delay(setup, tmp_path):
    """LEG-B's carrier echoes what it hears; LEG-B's call recording has what it is sent
    (right) and the echo (left). The echo's lag grows by the suppressor's delay when
    VoiceFocus goes on, halfway through the same call."""
    d = setup
    noisy = _noisy_speech(tmp_path)
    sipp_log = tmp_path / "sipp-uas"
    sipp_log.mkdir()
    carrier = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(d.carrier_port),
                                "-mp", str(free_port()), "-rtp_echo", "-m", "1", "-nostdin", "-timeout", "30s"],
                               cwd=sipp_log, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        res = d.call(user=NUMBERS[10], play=noisy, max_seconds=20)
    finally:
        carrier.kill()
        carrier.wait()
    assert res["answered"], res
    evs = wait_for(d, NUMBERS[10], 4)
    rec = [e for e in evs if e.get("CallRecordingDestination")]
    assert rec, [e["InvocationEventType"] for e in evs]
    location = rec[0]["CallRecordingDestination"]["Location"]
    path = d.prompts / location.split("/", 1)[1]
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        both = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).reshape(-1, 2)
    echo, sent = both[:, 0], both[:, 1]
    # The echo path holds the daemon's adaptive jitter buffer, which grows for a while when the
    # machine is loaded (CI once saw 25 ms become 85 ms). It only ever adds delay, so each half's
    # lag is the least one measured over its 0.6 s windows: the path's floor, which VoiceFocus
    # raises by its own delay.
    def floor_lag(start_s: float, end_s: float) -> float:
        starts = np.arange(start_s, end_s - 0.6 + 1e-9, 0.4)
        return min(_lag_ms(sent[int(rate * t):int(rate * (t + 0.6))], echo[int(rate * t):int(rate * (t + 0.9))], rate)
                   for t in starts)
    lag_off, lag_on = floor_lag(0.5, 2.8), floor_lag(3.5, 5.8)
    added = lag_on - lag_off
    print(f"echo lag without VoiceFocus {lag_off:.1f} ms, with {lag_on:.1f} ms: VoiceFocus adds {added:.1f} ms")
    assert 0 <= added <= 21, (lag_off, lag_on)


def _wait_udp_bound(port: int, timeout: float = 5.0) -> None:
    """Until something has bound UDP *port* on 127.0.0.1 (our own bind then fails)."""
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.05)


def test_origination_credentials_answer_the_carriers_digest_challenge(setup, tmp_path):
    """The carrier (sipp, tests/sipp/uas_digest.xml) answers the first INVITE 401 and checks
    the credentials of the retried one (user chime, password s3cret) before it answers."""
    d = setup
    carrier = subprocess.Popen(
        ["sipp", "-sf", str(ROOT / "tests" / "sipp" / "uas_digest.xml"), "-i", "127.0.0.1",
         "-p", str(d.auth_port), "-mp", str(free_port()), "-m", "1", "-nostdin", "-timeout", "30s",
         "-timeout_error"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_udp_bound(d.auth_port)        # else, on a loaded machine, the INVITE can beat sipp's bind
        res = d.call(user=NUMBERS[11], hangup_after=1.5, max_seconds=15)
        _, err = carrier.communicate(timeout=30)
    finally:
        if carrier.poll() is None:
            carrier.kill()
    assert res["answered"], res
    evs = wait_for(d, NUMBERS[11], 2)
    assert evs[1]["InvocationEventType"] == "ACTION_SUCCESSFUL", [e["InvocationEventType"] for e in evs]
    assert carrier.returncode == 0, err[-2000:]
