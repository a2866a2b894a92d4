"""SendDigits, RecordAudio, call recording and VoiceFocus in the sans-IO engine: parameter
validation with the spec's errors, the commands asked of the driver, the events sent."""
from __future__ import annotations

import pytest

from chimevoice.actions.call_recording import recording_key
from chimevoice.engine import commands as c
from chimevoice.engine import inputs as I
from tests.test_engine import A, invoked, make_tx, of, respond


def answered_tx():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    respond(tx, [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 100}}])
    tx.handle(I.MediaReady(A))
    t = of(tx.drain(), c.StartTimer)[0]
    tx.handle(I.TimerFired(t.name))
    assert invoked(tx.drain())["InvocationEventType"] == "ACTION_SUCCESSFUL"
    return tx


def failed(cmds) -> dict:
    ev = invoked(cmds)
    assert ev["InvocationEventType"] == "ACTION_FAILED", ev
    return ev["ActionData"]


# -- SendDigits ------------------------------------------------------------------------------
def test_send_digits_sends_then_succeeds_with_parameters_echoed():
    tx = answered_tx()
    params = {"CallId": A, "Digits": ",,*1234,56,7890ABCD#", "ToneDurationInMilliseconds": "100"}
    cmds = respond(tx, [{"Type": "SendDigits", "Parameters": params}])
    send = of(cmds, c.SendDigits)[0]
    assert (send.call_id, send.digits, send.tone_ms, send.gap_ms) == (A, ",,*1234,56,7890ABCD#", 100, 100)
    assert not of(cmds, c.Invoke)
    tx.handle(I.DigitsSent(A, send.send_id))
    ev = invoked(tx.drain())
    assert ev["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert ev["ActionData"] == {"Type": "SendDigits", "Parameters": params}


@pytest.mark.parametrize("params, error_type, message", [
    ({"Digits": "12", "ToneDurationInMilliseconds": 20000000}, "InvalidActionParameter",
     "ToneDuration parameter value is invalid."),
    ({"Digits": "12", "ToneDurationInMilliseconds": 49}, "InvalidActionParameter",
     "ToneDuration parameter value is invalid."),
    ({"Digits": ",, *1234"}, "InvalidActionParameter", "Digits parameter value is invalid."),   # 03b D1
    ({"Digits": "12a"}, "InvalidActionParameter", "Digits parameter value is invalid."),
    ({"Digits": ""}, "InvalidActionParameter", "Digits parameter value is invalid."),
    ({"Digits": "1" * 51}, "InvalidActionParameter", "Digits parameter value is invalid."),
    ({}, "MissingRequiredActionParameter", "Missing required action parameter."),
])
def test_send_digits_errors(params, error_type, message):
    tx = answered_tx()
    data = failed(respond(tx, [{"Type": "SendDigits", "Parameters": {"CallId": A, **params}}]))
    assert (data["ErrorType"], data["ErrorMessage"]) == (error_type, message)


def test_send_digits_fails_when_the_sip_side_cannot_send():
    tx = answered_tx()
    cmds = respond(tx, [{"Type": "SendDigits", "Parameters": {"CallId": A, "Digits": "1"}}])
    tx.handle(I.CommandFailed(of(cmds, c.SendDigits)[0], "leg has no media"))
    data = failed(tx.drain())
    assert (data["ErrorType"], data["ErrorMessage"]) == ("SystemException", "System error while running action")


def test_send_digits_does_not_answer_an_unanswered_call():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [{"Type": "SendDigits", "Parameters": {"CallId": A, "Digits": "1"}}])
    assert not of(cmds, c.Answer) and not of(cmds, c.SendDigits)
    assert failed(cmds)["ErrorType"] == "InvalidActionParameter"


# -- RecordAudio -----------------------------------------------------------------------------
def record(**params):
    return {"Type": "RecordAudio", "Parameters": {
        "CallId": A, "RecordingDestination": {"Type": "S3", "BucketName": "b", "Prefix": "voicemail/"},
        **params}}


def test_record_audio_answers_records_and_reports_the_key():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [record(DurationInSeconds="10", SilenceDurationInSeconds=3, SilenceThreshold=100,
                               RecordingTerminators=["#"]), {"Type": "Hangup", "Parameters": {}}])
    assert of(cmds, c.Answer)
    tx.handle(I.MediaReady(A))
    start = of(tx.drain(), c.StartRecording)[0]
    assert (start.bucket, start.track, start.max_s, start.silence_s, start.silence_threshold) == (
        "b", "INCOMING", 10.0, 3.0, 100)
    assert start.key.startswith("voicemail/") and start.key.endswith(".wav") and len(start.key) - 10 <= 45
    tx.handle(I.Dtmf(A, "5"))                                       # not a terminator: nothing
    assert not of(tx.drain(), c.StopRecording)
    tx.handle(I.Dtmf(A, "#"))
    stop = of(tx.drain(), c.StopRecording)[0]
    assert (stop.record_id, stop.reason) == (start.record_id, "terminator")
    tx.handle(I.RecordingStopped(A, start.record_id, "terminator"))
    ev = invoked(tx.drain())
    # reported at once although Hangup is left in the list (README reading 6)
    assert ev["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert ev["ActionData"]["RecordingDestination"] == {"Type": "S3", "BucketName": "b", "Key": start.key}
    assert ev["ActionData"]["RecordingTerminatorUsed"] == "#"
    assert list(ev["ActionData"]) == ["Type", "Parameters", "RecordingDestination", "RecordingTerminatorUsed"]


def test_record_audio_duration_end_has_no_terminator_field():
    tx = answered_tx()
    cmds = respond(tx, [record(DurationInSeconds=2)])
    start = of(cmds, c.StartRecording)[0]
    tx.handle(I.RecordingStopped(A, start.record_id, "duration"))
    data = invoked(tx.drain())["ActionData"]
    assert "RecordingTerminatorUsed" not in data


def test_record_audio_store_failure_is_the_upload_error():
    tx = answered_tx()
    start = of(respond(tx, [record()]), c.StartRecording)[0]
    tx.handle(I.RecordingStopped(A, start.record_id, "error", "no such bucket"))
    data = failed(tx.drain())
    assert (data["ErrorType"], data["ErrorMessage"]) == (
        "InvalidActionParameter", "Error occurred while uploading recording to S3 bucket.")


@pytest.mark.parametrize("params, message", [
    ({"RecordingDestination": {"Type": "S4", "BucketName": "b"}}, "RecordingDestination parameter value is invalid."),
    ({"RecordingDestination": {"Type": "S3", "BucketName": ""}}, "RecordingDestination parameter value is invalid."),
    ({"RecordingDestination": {"Type": "S3", "BucketName": "b", "Prefix": "a b"}},
     "RecordingDestination parameter value is invalid."),
    ({"RecordingDestination": {"Type": "S3", "BucketName": "b", "Prefix": "p" * 980}},
     "RecordingDestination parameter value is invalid."),
    ({"DurationInSeconds": None}, "DurationInSeconds parameter value is invalid."),
    ({"DurationInSeconds": 0}, "DurationInSeconds parameter value is invalid."),
    ({"SilenceDurationInSeconds": 1001}, "SilenceDurationInSeconds parameter value is invalid."),
    ({"SilenceThreshold": 0}, "SilenceThreshold parameter value is invalid."),
    ({"RecordingTerminators": ["A"]}, "RecordingTerminators parameter value is invalid."),
])
def test_record_audio_parameter_errors(params, message):
    tx = answered_tx()
    action = record()
    action["Parameters"].update(params)
    data = failed(respond(tx, [action]))
    assert (data["ErrorType"], data["ErrorMessage"]) == ("InvalidActionParameter", message)


def test_record_audio_caller_hang_up_keeps_the_file_and_sends_only_hangup():
    tx = answered_tx()
    start = of(respond(tx, [record()]), c.StartRecording)[0]
    tx.handle(I.LegDisconnected(A, by_remote=True))
    cmds = tx.drain()
    assert of(cmds, c.StopRecording)[0].record_id == start.record_id
    assert invoked(cmds)["InvocationEventType"] == "HANGUP"


# -- call recording --------------------------------------------------------------------------
def start_recording(tx, **params):
    params = {"CallId": A, "Track": "BOTH", "Destination": {"Type": "S3", "Location": "bucket"}, **params}
    return respond(tx, [{"Type": "StartCallRecording", "Parameters": params}])


def test_start_call_recording_reports_destination_at_top_level():
    tx = answered_tx()
    cmds = start_recording(tx)
    start = of(cmds, c.StartRecording)[0]
    assert start.track == "BOTH" and start.bucket == "bucket"
    assert start.key == recording_key("Amazon-Chime-SMA-Call-Recordings", 1597009588342, "transaction-id", A)
    assert start.key == (f"Amazon-Chime-SMA-Call-Recordings/2020/08/09/2020-08-09-21-46-28-342"
                         f"_transaction-id_{A}.wav")
    assert dict(start.metadata) == {"transaction-id": "transaction-id", "call-id": A,
                                    "recording-audio-file-format": "audio/wav"}
    assert not of(cmds, c.Invoke)                      # success only once capture has begun
    tx.handle(I.RecordingStarted(A, start.record_id))
    ev = invoked(tx.drain())
    assert list(ev) == ["SchemaVersion", "Sequence", "InvocationEventType", "ActionData",
                        "CallRecordingDestination", "CallDetails"]
    assert ev["CallRecordingDestination"] == {"Type": "S3", "Location": f"bucket/{start.key}"}


def test_call_recording_state_machine():
    tx = answered_tx()
    start = of(start_recording(tx, Destination={"Type": "S3", "Location": "bucket/support/en"}), c.StartRecording)[0]
    assert start.key.startswith("support/en/2020/08/09/")
    tx.handle(I.RecordingStarted(A, start.record_id))
    tx.drain()
    pause = {"Type": "PauseCallRecording", "Parameters": {"CallId": A}}
    resume = {"Type": "ResumeCallRecording", "Parameters": {"CallId": A}}
    stop = {"Type": "StopCallRecording", "Parameters": {"CallId": A}}
    cmds = respond(tx, [pause, pause, resume, resume])
    assert [x.paused for x in of(cmds, c.PauseRecording)] == [True, False]   # repeats change nothing
    assert invoked(cmds)["InvocationEventType"] == "ACTION_SUCCESSFUL"
    cmds = respond(tx, [stop])
    assert of(cmds, c.StopRecording)[0].record_id == start.record_id
    # a leg is recorded once: no restart, no stop/pause/resume after the stop
    for action in (stop, pause, resume):
        data = failed(respond(tx, [action]))
        assert (data["ErrorType"], data["ErrorMessage"]) == ("InvalidActionParameter",
                                                             "CallId parameter for action is invalid.")
    data = failed(start_recording(tx))
    assert data["ErrorType"] == "InvalidActionParameter"


@pytest.mark.parametrize("params, message", [
    ({"Track": "BOTHS"}, "Invalid recording track. Choose INCOMING, OUTGOING or BOTH."),
    ({"Destination": {"Type": "S3", "Location": ""}}, "Destination parameter value is invalid."),
    ({"Destination": {"Type": "GCS", "Location": "b"}}, "Destination parameter value is invalid."),
    ({"CallId": "no-such-call"}, "CallId parameter for action is invalid."),
])
def test_start_call_recording_errors(params, message):
    tx = answered_tx()
    data = failed(start_recording(tx, **params))
    assert (data["ErrorType"], data["ErrorMessage"]) == ("InvalidActionParameter", message)


def test_start_call_recording_unwritable_destination():
    tx = answered_tx()
    start = of(start_recording(tx), c.StartRecording)[0]
    tx.handle(I.RecordingStopped(A, start.record_id, "error", "no such bucket"))
    data = failed(tx.drain())
    assert (data["ErrorType"], data["ErrorMessage"]) == ("NoAccessToDestination", "Error while accessing destination")


# -- VoiceFocus ------------------------------------------------------------------------------
def test_voice_focus_switches_the_leg_and_succeeds():
    tx = answered_tx()
    cmds = respond(tx, [{"Type": "VoiceFocus", "Parameters": {"Enable": "true", "CallId": A}}])
    assert of(cmds, c.SetVoiceFocus) == [c.SetVoiceFocus(A, True)]
    ev = invoked(cmds)
    assert ev["ActionData"] == {"Type": "VoiceFocus", "Parameters": {"Enable": "true", "CallId": A}}
    data = failed(respond(tx, [{"Type": "VoiceFocus", "Parameters": {"Enable": "maybe", "CallId": A}}]))
    assert data["ErrorType"] == "InvalidActionParameter"
