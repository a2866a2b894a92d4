"""Media actions over real SIP calls on loopback: SendDigits (RFC 4733 and in-band),
in-band DTMF detection, RecordAudio, call recording (stereo, pause/resume), VoiceFocus,
and a recording cut short by kill -9. The handler is tests/handlers/media.py."""
from __future__ import annotations

import signal
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from chimevoice.media.analysis import dominant_frequency, goertzel_power
from chimevoice.media.audio import read_pcm
from chimevoice.media.dtmf import DtmfDetector
from tests.support.harness import (
    Daemon,
    free_port,
    handler_app,
    handler_events,
    metrics,
    module_daemon,
    number_rules,
    wait_handler_events,
    write_tone,
)

pytestmark = pytest.mark.sip

APP = "55555555-0000-4000-8000-000000000001"
N = "+155505000"                      # +15550500001 .. 13


def _config(d: Daemon, events: Path) -> None:
    numbers = [f"{N}{i:02d}" for i in range(1, 14)]
    d.write_config([handler_app(APP, "media", "media:handler", {"EVENTS_DIR": str(events)})],
                   rules=number_rules(numbers, APP, "66666666-0000-4000-8000", "media"), numbers=numbers)
    write_tone(d.prompts / "tone400.wav", 400, 1.0)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "media")
    d.http_port = free_port()
    _config(d, d.events)
    d.start()
    yield d
    code = d.stop()
    assert code == 0, d.log_path.read_text()[-3000:]


def events_for(d: Daemon, number: str) -> list[dict]:
    return handler_events(d.events / "media.jsonl", number)


def wait_events(d: Daemon, number: str, last: str = "HANGUP", timeout: float = 15) -> list[dict]:
    return wait_handler_events(d.events / "media.jsonl", number, last, timeout)


def kinds(evs: list[dict]) -> list[str]:
    return [e["InvocationEventType"] for e in evs]


def action_failed(d: Daemon, number: str) -> tuple[dict, list[dict], dict]:
    """Call *number*: the ActionData of the first ACTION_FAILED its handler got, every event, and
    the phone's result."""
    res = d.call(user=number, max_seconds=10)
    evs = wait_events(d, number)
    failed = [e for e in evs if e["InvocationEventType"] == "ACTION_FAILED"]
    assert failed, kinds(evs)
    return failed[0]["ActionData"], evs, res


def test_send_digits_rfc4733(daemon):
    res = daemon.call(user=f"{N}01", max_seconds=15)
    assert res["answered"], res
    got = res["dtmf_received"]
    assert "".join(d for _, d in got) == "12#", got
    t = [at for at, _ in got]
    # '1' (150 ms) + gap 100 ms, ',' 500 ms, '2' (150 ms) + gap 100 ms, '#'
    assert 0.65 <= t[1] - t[0] <= 0.9, got
    assert 0.17 <= t[2] - t[1] <= 0.4, got
    evs = wait_events(daemon, f"{N}01")
    assert kinds(evs) == ["NEW_INBOUND_CALL", "HANGUP"], kinds(evs)
    sent = daemon.wait_log("digits_sent", method="rfc4733")
    assert sent["CallId"] == evs[0]["CallDetails"]["Participants"][0]["CallId"]


def test_send_digits_inband_when_no_telephone_event(daemon, tmp_path):
    heard = tmp_path / "heard.wav"
    res = daemon.call(user=f"{N}01", max_seconds=15, record=heard, no_telephone_event=True)
    assert res["answered"], res
    assert res["dtmf_received"] == [], res        # nothing arrives as RFC 4733 events
    x, rate = read_pcm(heard)
    assert rate == 8000
    hits = DtmfDetector().feed(x)
    assert "".join(h.digit for h in hits) == "12#", hits
    assert 0.6 <= hits[1].start_s - hits[0].start_s <= 0.9, hits


def test_send_digits_bad_digits_fail(daemon):
    data, _, _ = action_failed(daemon, f"{N}08")
    assert (data["ErrorType"], data["ErrorMessage"]) == ("InvalidActionParameter", "Digits parameter value is invalid.")
    assert data["Parameters"]["Digits"] == "12x"


def test_inband_dtmf_reaches_receive_digits(daemon):
    res = daemon.call(user=f"{N}05", max_seconds=15, no_telephone_event=True, dtmf=["1.0:123#"],
                      dtmf_method="inband")
    assert res["answered"], res
    evs = wait_events(daemon, f"{N}05")
    got = [e for e in evs if e["InvocationEventType"] == "DIGITS_RECEIVED"]
    assert got and got[0]["ActionData"]["ReceivedDigits"] == "123#", kinds(evs)
    log = daemon.wait_log("dtmf_received", method="inband")
    assert log["digit"] in "123#"


def _recording(d: Daemon, ev: dict) -> Path:
    dest = ev["ActionData"]["RecordingDestination"]
    assert dest["Type"] == "S3" and dest["BucketName"] == "prompts"
    assert dest["Key"].startswith("rec/") and dest["Key"].endswith(".wav")
    return d.prompts / dest["Key"]


def test_record_audio_duration(daemon, tmp_path):
    tone = write_tone(tmp_path / "t1000.wav", 1000, 6.0)
    res = daemon.call(user=f"{N}02", max_seconds=15, play=tone)
    assert res["answered"], res
    evs = wait_events(daemon, f"{N}02")
    assert kinds(evs) == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"], kinds(evs)
    ok = evs[1]
    assert ok["ActionData"]["Type"] == "RecordAudio"
    assert "RecordingTerminatorUsed" not in ok["ActionData"]
    path = _recording(daemon, ok)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert abs(w.getnframes() / 8000 - 2.0) < 0.05, w.getnframes()
    x, _ = read_pcm(path)
    assert abs(dominant_frequency(x[4000:12000].astype(float), 8000) - 1000) < 10


def test_record_audio_terminator(daemon, tmp_path):
    tone = write_tone(tmp_path / "t1000.wav", 1000, 6.0)
    res = daemon.call(user=f"{N}02", max_seconds=15, play=tone, dtmf=["1.2:#"])
    assert res["answered"], res
    evs = wait_events(daemon, f"{N}02")
    ok = [e for e in evs if e["InvocationEventType"] == "ACTION_SUCCESSFUL"][-1]
    assert ok["ActionData"]["RecordingTerminatorUsed"] == "#"
    with wave.open(str(_recording(daemon, ok))) as w:
        assert 0.5 < w.getnframes() / 8000 < 1.5, w.getnframes()


def test_record_audio_to_unknown_bucket_fails_with_upload_error(daemon):
    data, evs, res = action_failed(daemon, f"{N}13")
    assert (data["ErrorType"], data["ErrorMessage"]) == (
        "InvalidActionParameter", "Error occurred while uploading recording to S3 bucket.")
    log = daemon.wait_log("recording_destination_failed", bucket="no-such-bucket")
    assert log["CallId"] == evs[0]["CallDetails"]["Participants"][0]["CallId"]
    assert res["answered"]          # RecordAudio answers first, as the service does


def test_record_audio_stops_on_silence(daemon):
    t0 = time.monotonic()
    res = daemon.call(user=f"{N}03", max_seconds=15)      # the phone sends silence
    assert res["answered"], res
    evs = wait_events(daemon, f"{N}03")
    ok = [e for e in evs if e["InvocationEventType"] == "ACTION_SUCCESSFUL"][-1]
    assert "RecordingTerminatorUsed" not in ok["ActionData"]
    with wave.open(str(_recording(daemon, ok))) as w:
        assert 0.9 <= w.getnframes() / 8000 <= 1.3, w.getnframes()
    assert time.monotonic() - t0 < 8


def test_call_recording_both_tracks_with_pause(daemon, tmp_path):
    tone = write_tone(tmp_path / "t1000.wav", 1000, 8.0)
    res = daemon.call(user=f"{N}04", max_seconds=15, play=tone)
    assert res["answered"], res
    evs = wait_events(daemon, f"{N}04")
    assert kinds(evs) == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"], kinds(evs)
    ok = evs[1]
    assert ok["ActionData"] == {"Type": "StartCallRecording", "Parameters": {
        "CallId": ok["ActionData"]["Parameters"]["CallId"], "Track": "BOTH",
        "Destination": {"Type": "S3", "Location": "prompts/calls"}}}
    # 02a §3.7: CallRecordingDestination at the top level, bucket/key.
    assert list(ok) == ["SchemaVersion", "Sequence", "InvocationEventType", "ActionData",
                        "CallRecordingDestination", "CallDetails"]
    assert ok["CallRecordingDestination"]["Type"] == "S3"
    bucket, _, key = ok["CallRecordingDestination"]["Location"].partition("/")
    assert bucket == "prompts"
    cid = evs[0]["CallDetails"]["Participants"][0]["CallId"]
    tx = evs[0]["CallDetails"]["TransactionId"]
    assert key.startswith("calls/") and key.endswith(f"_{tx}_{cid}.wav"), key
    parts = key.split("/")
    assert len(parts) == 5 and len(parts[1]) == 4 and len(parts[2]) == 2 and len(parts[3]) == 2, key
    path = daemon.prompts / key
    daemon.wait_log("recording_finished", reason="stopped")
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 8000)
        n = w.getnframes()
        data = np.frombuffer(w.readframes(n), dtype="<i2").reshape(-1, 2).astype(float)
    left, right = data[:, 0], data[:, 1]
    secs = n / 8000
    assert 2.7 < secs < 4.0, secs          # 0.5 + 1.0 (prompt) + 1.0 (paused) + 0.5
    # Left = what the caller sent (1 kHz) while recording, right = the 400 Hz prompt.
    seg = slice(int(0.6 * 8000), int(1.3 * 8000))
    assert goertzel_power(left[seg], 8000, 1000) > 100 * goertzel_power(left[seg], 8000, 400)
    assert goertzel_power(right[seg], 8000, 400) > 100 * goertzel_power(right[seg], 8000, 1000)
    # Paused: a marker tone, then silence on both channels; the caller's tone is gone.
    quiet = slice(int(2.0 * 8000), int(2.4 * 8000))
    assert np.abs(data[quiet]).max() < 50, np.abs(data[quiet]).max()
    # Resumed: the caller's tone is back on the left in the last part.
    tail = slice(n - int(0.3 * 8000), n - int(0.05 * 8000))
    assert goertzel_power(left[tail], 8000, 1000) > 1e3 * max(goertzel_power(left[quiet], 8000, 1000), 1.0)


def test_recording_survives_kill_9(tmp_path):
    """A recording cut short by kill -9 is a valid WAV at once, and complete after restart."""
    import subprocess
    import sys

    events = tmp_path / "events"
    events.mkdir()
    d = Daemon(tmp_path, free_port())
    d.events = events
    _config(d, events)
    d.start()
    tone = write_tone(tmp_path / "t1000.wav", 1000, 10.0)
    uri = f"sip:{N}09@127.0.0.1:{d.port}"
    phone = subprocess.Popen([sys.executable, "tests/support/phone.py", "--uri", uri, "--play", str(tone),
                              "--max-seconds", "8"], cwd=Path(__file__).resolve().parent.parent,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        d.wait_log("recording_started", timeout=10)
        time.sleep(2.5)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(5)
    finally:
        phone.kill()
        phone.wait(5)
    parts = list((d.prompts / "rec").glob("*.wav.part"))
    assert len(parts) == 1, list((d.prompts / "rec").iterdir())
    with wave.open(str(parts[0])) as w:             # valid as it is, up to the last header refresh
        assert w.getframerate() == 8000 and w.getnchannels() == 1
        before = w.getnframes()
    assert before >= 1.5 * 8000, before
    on_disk = (parts[0].stat().st_size - 44) // 2
    d.start()                                       # recovery runs at start, beside new calls
    try:
        final = parts[0].with_name(parts[0].name[:-len(".part")])
        d.wait_log("recording_recovered", path=str(final))
        assert final.exists() and not parts[0].exists()
        with wave.open(str(final)) as w:
            assert w.getnframes() == on_disk >= before
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
        assert abs(dominant_frequency(x[8000:16000], 8000) - 1000) < 10
    finally:
        assert d.stop() == 0


def _noisy_speech(tmp_path: Path) -> Path:
    import subprocess
    raw = tmp_path / "speech22k.wav"
    clean = tmp_path / "speech8k.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw),
                    "The quick brown fox jumps over the lazy dog. Please leave a message after the tone."],
                   check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(clean)], check=True, capture_output=True)
    x, _ = read_pcm(clean)
    x = x.astype(float)
    rng = np.random.default_rng(7)
    speech_rms = np.sqrt(np.mean(x[np.abs(x) > 300] ** 2))
    noise = rng.normal(0, speech_rms / 10 ** (10 / 20), len(x))          # 10 dB SNR white noise
    noisy = np.clip(x + noise, -32768, 32767).astype(np.int16)
    out = tmp_path / "noisy.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(noisy.tobytes())
    return out


def _peak_to_floor_db(path: Path) -> float:
    """Speech peaks over the noise floor: 90th over 10th percentile of 20 ms frame energy."""
    x, _ = read_pcm(path)
    x = x.astype(float)[1600:]                     # skip the suppressor's first 200 ms
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    energy = np.mean(frames ** 2, axis=1) + 1e-9
    return float(10 * np.log10(np.percentile(energy, 90) / np.percentile(energy, 10)))


def test_voice_focus_raises_snr_of_the_recording(daemon, tmp_path):
    noisy = _noisy_speech(tmp_path)
    ratios = {}
    for number, name in ((f"{N}07", "off"), (f"{N}06", "on")):
        res = daemon.call(user=number, max_seconds=12, play=noisy)
        assert res["answered"], res
        evs = wait_events(daemon, number)
        ok = [e for e in evs if e["InvocationEventType"] == "ACTION_SUCCESSFUL"
              and e["ActionData"]["Type"] == "RecordAudio"][-1]
        ratios[name] = _peak_to_floor_db(_recording(daemon, ok))
    evs = events_for(daemon, f"{N}06")
    assert evs[1]["ActionData"]["Type"] in ("VoiceFocus", "RecordAudio")
    daemon.wait_log("voice_focus", enabled=True)
    # White noise at 10 dB SNR: the floor between words drops by well over 6 dB with VoiceFocus.
    assert ratios["on"] - ratios["off"] > 6, ratios


def test_speak_bad_ssml_gets_spec_error(daemon):
    data, _, res = action_failed(daemon, f"{N}10")
    assert (data["Type"], data["ErrorType"], data["ErrorMessage"]) == (
        "Speak", "InvalidActionParameter", "Text parameter value is not valid SSML.")
    assert not res["answered"] or res["hangup_by"] == "remote", res


def test_speak_ssml_is_heard(daemon, tmp_path):
    heard = tmp_path / "heard.wav"
    res = daemon.call(user=f"{N}11", max_seconds=10, record=heard)
    assert res["answered"], res
    evs = wait_events(daemon, f"{N}11")
    assert kinds(evs) == ["NEW_INBOUND_CALL", "HANGUP"], kinds(evs)
    x, _ = read_pcm(heard)
    x = x.astype(float)
    voiced = [i for i in range(0, len(x) - 160, 160) if np.abs(x[i:i + 160]).max() > 1500]
    span = (voiced[-1] - voiced[0]) / 8000
    assert 0.9 < span < 3.5, span              # "Hello", a 300 ms break, "caller."
    # the break is there: a silent stretch of at least 250 ms inside the speech
    quiet = [b - a for a, b in zip(voiced, voiced[1:])]
    assert max(quiet) >= 0.25 * 8000, max(quiet) / 8000


def test_keys_sent_out_of_band_are_heard_in_the_call_recording(daemon):
    res = daemon.call(user=f"{N}12", max_seconds=10, dtmf=["1.5:5"])
    assert res["answered"], res
    wait_events(daemon, f"{N}12")
    started = [
        e for e in daemon.logs() if e.get("event") == "recording_started" and e.get("key", "").startswith("keys/")
    ]
    assert started, "no call recording started"
    daemon.wait_log("recording_finished", path=str(daemon.prompts / started[-1]["key"]))
    x, _ = read_pcm(daemon.prompts / started[-1]["key"])
    hits = DtmfDetector().feed(x)
    assert [h.digit for h in hits] == ["5"], hits      # the RFC 4733 key, rendered as its tone
    assert 1.0 < hits[0].start_s < 2.5, hits


def test_metrics_count_media_work(daemon):
    """/metrics counts digits sent and received by method, and recordings by how they ended."""
    assert daemon.call(user=f"{N}01", max_seconds=15)["answered"]                       # SendDigits
    assert daemon.call(user=f"{N}01", max_seconds=15, no_telephone_event=True)["answered"]
    assert daemon.call(user=f"{N}03", max_seconds=15)["answered"]                       # silence
    assert daemon.call(user=f"{N}05", max_seconds=15, no_telephone_event=True, dtmf=["1.0:123#"],
                       dtmf_method="inband")["answered"]
    daemon.wait_log("recording_finished", reason="silence")
    text = metrics(daemon)
    values = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        values[name] = float(value)
    assert values.get('chimevoice_digits_sent_total{method="rfc4733"}', 0) >= 1, text
    assert values.get('chimevoice_digits_sent_total{method="inband"}', 0) >= 1, text
    assert values.get('chimevoice_dtmf_digits_total{method="inband"}', 0) >= 4, text
    assert values.get('chimevoice_recordings_total{reason="silence"}', 0) >= 1, text
    assert values.get("chimevoice_media_frames_processed", 0) > 0, text
    assert values.get("chimevoice_recordings_open") == 0, text
