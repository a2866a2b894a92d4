"""The sans-IO transaction engine against the spec's event JSON (no SIP, no handler)."""
from __future__ import annotations

import json

import pytest

from chimevoice.actions import REGISTRY
from chimevoice.engine import commands as c
from chimevoice.engine import inputs as I
from chimevoice.engine.events import Participant
from chimevoice.engine.transaction import Limits, Target, Transaction

A = "call-id-1"


def make_tx(targets=1, **limits) -> Transaction:
    leg = Participant(A, "LEG-A", "+12065551212", "+15105550101", "Inbound", 1597009588342,
                      sip_headers={"X-Account-Id": "42"})
    tgts = [Target(f"sma-{i}", "111122223333", "us-east-1") for i in range(1, targets + 1)]
    return Transaction(transaction_id="transaction-id", leg_a=leg, targets=tgts, sip_rule_id="sip-rule-id",
                       registry=REGISTRY, limits=Limits(**limits))


def of(cmds, kind):
    return [x for x in cmds if isinstance(x, kind)]


def invoked(cmds) -> dict:
    inv = of(cmds, c.Invoke)
    assert len(inv) == 1, cmds
    return inv[0].event


def respond(tx, actions=None, **extra):
    body = {"SchemaVersion": "1.0", "Actions": actions}
    body.update(extra)
    tx.handle(I.HandlerResponded(body))
    return tx.drain()


def play(key="welcome.wav", **params):
    return {"Type": "PlayAudio", "Parameters": {
        "AudioSource": {"Type": "S3", "BucketName": "bucket-name", "Key": key}, **params}}


def test_new_inbound_call_event_matches_spec_shape():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    cmds = tx.drain()
    assert of(cmds, c.Ring) == [c.Ring(A)]
    assert c.StartTimer("unanswered", 30.0) in cmds
    event = invoked(cmds)
    assert json.dumps(event) == json.dumps({
        "SchemaVersion": "1.0", "Sequence": 1, "InvocationEventType": "NEW_INBOUND_CALL",
        "CallDetails": {
            "TransactionId": "transaction-id", "AwsAccountId": "111122223333", "AwsRegion": "us-east-1",
            "SipRuleId": "sip-rule-id", "SipMediaApplicationId": "sma-1", "SipApplicationId": "sma-1",
            "Participants": [{"CallId": A, "ParticipantTag": "LEG-A", "To": "+12065551212",
                              "From": "+15105550101", "Direction": "Inbound",
                              "StartTimeInMilliseconds": "1597009588342", "Status": "Connected",
                              "SipHeaders": {"X-Account-Id": "42"}}]}})


def run_play_to_end(tx, cmds):
    prep = of(cmds, c.PrepareAudio)[0]
    tx.handle(I.AudioReady(prep.request_id, "/cache/x.wav", 1.0))
    cmds = tx.drain()
    if of(cmds, c.Answer):
        tx.handle(I.MediaReady(A))
        cmds = tx.drain()
    p = of(cmds, c.Play)[0]
    tx.handle(I.PlaybackFinished(A, p.play_id))
    return p, tx.drain()


def test_play_audio_answers_plays_and_reports_success_with_default_repeat():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [play(ParticipantTag="LEG-A")])
    prep = of(cmds, c.PrepareAudio)
    assert prep[0].bucket == "bucket-name" and prep[0].key == "welcome.wav"
    tx.handle(I.AudioReady(prep[0].request_id, "/cache/x.wav", 1.0))
    cmds = tx.drain()
    assert of(cmds, c.Answer) == [c.Answer(A)]
    assert not of(cmds, c.Play)          # waits for media
    tx.handle(I.MediaReady(A))
    cmds = tx.drain()
    p = of(cmds, c.Play)[0]
    assert (p.call_id, p.path, p.repeat) == (A, "/cache/x.wav", 1)
    assert c.CancelTimer("unanswered") in cmds
    tx.handle(I.PlaybackFinished(A, p.play_id))
    event = invoked(tx.drain())
    assert event["Sequence"] == 2
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert event["ActionData"] == {"Type": "PlayAudio", "Parameters": {
        "AudioSource": {"Type": "S3", "BucketName": "bucket-name", "Key": "welcome.wav"},
        "ParticipantTag": "LEG-A", "Repeat": 1}}


def test_one_success_event_for_a_list_carrying_the_last_action():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [play("a.wav"), {"Type": "Pause", "Parameters": {"DurationInMilliseconds": "3000"}}])
    _, cmds = run_play_to_end(tx, cmds)
    assert not of(cmds, c.Invoke)
    timer = of(cmds, c.StartTimer)[0]
    assert timer.seconds == 3.0                 # "3000" as a string is accepted
    tx.handle(I.TimerFired(timer.name))
    event = invoked(tx.drain())
    assert event["ActionData"] == {"Type": "Pause", "Parameters": {"DurationInMilliseconds": "3000"}}


def test_failure_drops_rest_of_list_and_reports_error_inside_action_data():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [play("missing.wav"), play("never.wav")])
    prep = of(cmds, c.PrepareAudio)[0]
    tx.handle(I.AudioFailed(prep.request_id, "InvalidAudioSource", "Cannot access S3 bucket or audio file."))
    cmds = tx.drain()
    event = invoked(cmds)
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert event["ActionData"]["ErrorType"] == "InvalidAudioSource"
    assert event["ActionData"]["ErrorMessage"] == "Cannot access S3 bucket or audio file."
    assert event["ActionData"]["Parameters"]["AudioSource"]["Key"] == "missing.wav"
    assert "ErrorType" not in event
    cmds = respond(tx, [])
    assert not of(cmds, c.PrepareAudio)        # never.wav was dropped


@pytest.mark.parametrize("params,message", [
    ({"DurationInMilliseconds": 50}, "Duration parameter is invalid."),
    ({"DurationInMilliseconds": "30001"}, "Duration parameter is invalid."),
    ({}, "Duration parameter is invalid."),
    ({"DurationInMilliseconds": 1000, "CallId": "nope"}, "CallId or ParticipantTag parameter for action is invalid."),
    ({"DurationInMilliseconds": 1000, "ParticipantTag": "LEG-B"},
     "CallId or ParticipantTag parameter for action is invalid."),
])
def test_pause_parameter_errors(params, message):
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    event = invoked(respond(tx, [{"Type": "Pause", "Parameters": params}]))
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert event["ActionData"]["ErrorType"] == "InvalidActionParameter"
    assert event["ActionData"]["ErrorMessage"] == message


def test_empty_call_id_and_tag_target_the_invoked_leg():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [{"Type": "Pause", "Parameters": {"CallId": "", "ParticipantTag": "",
                                                         "DurationInMilliseconds": 500}}])
    assert of(cmds, c.Answer) == [c.Answer(A)]


def test_hangup_on_unanswered_call_rejects_and_yields_only_hangup():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [{"Type": "Hangup", "Parameters": {"SipResponseCode": "486"}}])
    assert of(cmds, c.Reject) == [c.Reject(A, 486)]
    assert not of(cmds, c.Invoke)
    tx.handle(I.LegDisconnected(A, by_remote=False))
    event = invoked(tx.drain())
    assert event["InvocationEventType"] == "HANGUP"
    assert event["ActionData"] == {"Type": "Hangup", "Parameters": {
        "SipResponseCode": 486, "CallId": A, "ParticipantTag": "LEG-A"}}
    assert event["CallDetails"]["Participants"][0]["Status"] == "Disconnected"
    cmds = respond(tx, [play()])               # ignored: nobody is connected
    assert not of(cmds, c.PrepareAudio)
    assert of(cmds, c.Finished)


def test_hangup_code_zero_on_unanswered_leg_sends_480_and_answered_leg_gets_bye():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    assert of(respond(tx, [{"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]), c.Reject) == [c.Reject(A, 480)]
    tx2 = make_tx()
    tx2.handle(I.InboundCallRouted())
    tx2.drain()
    cmds = respond(tx2, [play(), {"Type": "Hangup", "Parameters": {}}])
    _, cmds = run_play_to_end(tx2, cmds)
    assert of(cmds, c.Disconnect) == [c.Disconnect(A, 0)]


def test_bad_hangup_code_fails():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    event = invoked(respond(tx, [{"Type": "Hangup", "Parameters": {"SipResponseCode": "404"}}]))
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert event["ActionData"]["ErrorType"] == "InvalidActionParameter"


def test_caller_hangs_up_mid_playback_only_hangup_is_sent():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [play(), play("second.wav")])
    prep = of(cmds, c.PrepareAudio)[0]
    tx.handle(I.AudioReady(prep.request_id, "/x.wav", 5.0))
    tx.drain()
    tx.handle(I.MediaReady(A))
    p = of(tx.drain(), c.Play)[0]
    tx.handle(I.LegDisconnected(A, by_remote=True))
    cmds = tx.drain()
    assert c.StopPlay(A, p.play_id) in cmds
    event = invoked(cmds)
    assert event["InvocationEventType"] == "HANGUP"
    assert event["ActionData"]["Parameters"]["SipResponseCode"] == 0
    tx.handle(I.PlaybackFinished(A, p.play_id))          # late event from the SIP side: ignored
    assert not of(tx.drain(), c.Invoke)
    assert of(respond(tx, []), c.Finished)


def test_playback_terminator_stops_and_succeeds():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [play(PlaybackTerminators=["#"], Repeat="3")])
    prep = of(cmds, c.PrepareAudio)[0]
    tx.handle(I.AudioReady(prep.request_id, "/x.wav", 5.0))
    tx.drain()
    tx.handle(I.MediaReady(A))
    p = of(tx.drain(), c.Play)[0]
    assert p.repeat == 3
    tx.handle(I.Dtmf(A, "1"))
    assert not tx.drain()
    tx.handle(I.Dtmf(A, "#"))
    cmds = tx.drain()
    assert c.StopPlay(A, p.play_id) in cmds
    assert invoked(cmds)["InvocationEventType"] == "ACTION_SUCCESSFUL"


@pytest.mark.parametrize("raw,message", [
    (None, "The response is blank or null."),
    ("not json", "Error reading the action list."),
    ({"SchemaVersion": "2.0", "Actions": []},
     "The schema version in the invocation request does not match the schema version in the response."),
    ({"SchemaVersion": "1.0", "Actions": [{"Type": "Dance"}]}, "Unsupported action name specified."),
    ({"SchemaVersion": "1.0", "Actions": [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 100}}] * 11},
     "Too many actions specified in the response."),
    ({"SchemaVersion": "1.0", "Actions": "PlayAudio"}, "Error reading the action list."),
])
def test_invalid_responses_yield_invalid_lambda_response(raw, message):
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    tx.handle(I.HandlerResponded(raw))
    event = invoked(tx.drain())
    assert event["InvocationEventType"] == "INVALID_LAMBDA_RESPONSE"
    assert event["ErrorType"] == "InvalidLambdaResponse"
    assert event["ErrorMessage"] == message
    assert "ActionData" not in event
    assert list(event)[-2:] == ["ErrorType", "ErrorMessage"]


def test_transaction_attributes_set_returned_replaced_cleared():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    nested = {"state": "menu", "ctx": {"tries": 2, "path": ["a", "b"]}}
    cmds = respond(tx, [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 100}}], TransactionAttributes=nested)
    tx.handle(I.MediaReady(A))
    timer = of(tx.drain(), c.StartTimer)[0]
    tx.handle(I.TimerFired(timer.name))
    event = invoked(tx.drain())
    details = event["CallDetails"]
    assert list(details)[:2] == ["TransactionId", "TransactionAttributes"]
    assert details["TransactionAttributes"] == nested
    # Omitted: unchanged.
    cmds = respond(tx, [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 100}}])
    tx.handle(I.TimerFired(of(cmds, c.StartTimer)[0].name))
    assert invoked(tx.drain())["CallDetails"]["TransactionAttributes"] == nested
    # Replaced by a different key set.
    cmds = respond(tx, [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 100}}],
                   TransactionAttributes={"NewKey1": "NewValue1"})
    tx.handle(I.TimerFired(of(cmds, c.StartTimer)[0].name))
    assert invoked(tx.drain())["CallDetails"]["TransactionAttributes"] == {"NewKey1": "NewValue1"}
    # {} clears; null does not.
    cmds = respond(tx, [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 100}}], TransactionAttributes={})
    tx.handle(I.TimerFired(of(cmds, c.StartTimer)[0].name))
    assert "TransactionAttributes" not in invoked(tx.drain())["CallDetails"]


def test_too_many_transaction_attributes():
    tx = make_tx(max_attributes=10)
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [play()], TransactionAttributes={f"key{i}": f"value{i}" for i in range(1, 12)})
    assert not of(cmds, c.PrepareAudio)          # rejected atomically
    event = invoked(cmds)
    assert event["InvocationEventType"] == "INVALID_LAMBDA_RESPONSE"
    assert event["ErrorType"] == "TransactionAttributesInvalidMapSize"
    assert event["ErrorMessage"] == "Transaction Attributes has too many mappings. Maximum number of mappings is 10"
    assert "TransactionAttributes" not in event["CallDetails"]


def test_oversized_transaction_attributes():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    event = invoked(respond(tx, [], TransactionAttributes={"big": "x" * 21000}))
    assert event["ErrorType"] == "TransactionAttributesInvalidMapSize"


def test_unimplemented_known_action_fails_naming_it():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    event = invoked(respond(tx, [{"Type": "JoinChimeMeeting", "Parameters": {}}]))
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert event["ActionData"]["Type"] == "JoinChimeMeeting"
    assert event["ActionData"]["ErrorType"] == "SystemException"
    assert "JoinChimeMeeting" in event["ActionData"]["ErrorMessage"]


def test_failover_to_next_priority_then_480():
    tx = make_tx(targets=2)
    tx.handle(I.InboundCallRouted())
    tx.drain()
    tx.handle(I.HandlerFailed("timeout", "no answer"))
    event = invoked(cmds := tx.drain())
    assert of(cmds, c.Invoke)[0].app_id == "sma-2"
    assert event["Sequence"] == 1
    assert event["CallDetails"]["SipMediaApplicationId"] == "sma-2"
    tx.handle(I.HandlerFailed("unreachable", "connection refused"))
    cmds = tx.drain()
    assert of(cmds, c.Reject) == [c.Reject(A, 480)]
    tx.handle(I.LegDisconnected(A, by_remote=False))
    cmds = tx.drain()
    assert not of(cmds, c.Invoke)
    assert of(cmds, c.Finished)


def test_handler_failure_mid_call_ends_the_call():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [play()])
    _, cmds = run_play_to_end(tx, cmds)
    invoked(cmds)
    tx.handle(I.HandlerFailed("timeout", "deadline"))
    assert of(tx.drain(), c.Disconnect) == [c.Disconnect(A, 480)]


def test_invocation_cap_ends_a_runaway_handler():
    tx = make_tx(max_invocations=5)
    tx.handle(I.InboundCallRouted())
    tx.drain()
    bad = [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 1}}]
    seqs = []
    for _ in range(10):
        cmds = respond(tx, bad)
        inv = of(cmds, c.Invoke)
        if not inv:
            break
        seqs.append(inv[0].event["Sequence"])
    assert seqs == [2, 3, 4, 5]
    assert of(cmds, c.Reject) == [c.Reject(A, 480)]


def test_empty_list_to_new_call_waits_for_unanswered_timeout():
    tx = make_tx(unanswered_timeout_s=3)
    tx.handle(I.InboundCallRouted())
    assert c.StartTimer("unanswered", 3) in tx.drain()
    cmds = respond(tx, [])
    assert not of(cmds, c.Answer) and not of(cmds, c.Invoke)
    tx.handle(I.TimerFired("unanswered"))
    assert of(tx.drain(), c.Reject) == [c.Reject(A, 480)]
    tx.handle(I.LegDisconnected(A, by_remote=False))
    event = invoked(tx.drain())
    assert event["ActionData"]["Parameters"]["SipResponseCode"] == 480


def _logs(cmds, event):
    return [x for x in of(cmds, c.Log) if x.event == event]


def test_invalid_reply_to_invalid_lambda_response_ends_the_call_after_two_invocations():
    """README reading 19: a warm handler whose reply grew past 10 actions answers
    INVALID_LAMBDA_RESPONSE with the same list; the call ends at once (480, never answered)."""
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    seen = tx.drain()
    too_long = [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 100}}] * 11
    for _ in range(5):
        if not of(seen, c.Invoke):
            break
        seen_now = respond(tx, too_long)
        seen = seen_now
        if of(seen_now, c.Reject):
            break
    all_cmds = seen
    assert of(all_cmds, c.Reject) == [c.Reject(A, 480)]
    assert tx.invocations == 2
    tx.handle(I.LegDisconnected(A, by_remote=False))
    cmds = tx.drain()
    assert not of(cmds, c.Invoke)               # not invoked again, not even for HANGUP
    assert of(cmds, c.Finished)
    assert tx.invocations == 2
    assert len(_logs(all_cmds + cmds, "invalid_reply_loop")) == 1


def test_invalid_reply_loop_on_an_answered_call_sends_bye():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [play()])
    _, cmds = run_play_to_end(tx, cmds)
    assert invoked(cmds)["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert invoked(respond(tx, "garbage"))["InvocationEventType"] == "INVALID_LAMBDA_RESPONSE"
    tx.handle(I.HandlerResponded(None))                   # still invalid: blank
    cmds = tx.drain()
    assert of(cmds, c.Disconnect) == [c.Disconnect(A, 480)]
    assert not of(cmds, c.Invoke)
    assert len(_logs(cmds, "invalid_reply_loop")) == 1
    tx.handle(I.LegDisconnected(A, by_remote=False))
    assert not of(tx.drain(), c.Invoke)
    assert tx.invocations == 3


def test_valid_reply_to_invalid_lambda_response_goes_on():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    assert invoked(respond(tx, "garbage"))["InvocationEventType"] == "INVALID_LAMBDA_RESPONSE"
    cmds = respond(tx, [{"Type": "Hangup", "Parameters": {"SipResponseCode": "486"}}])
    assert of(cmds, c.Reject) == [c.Reject(A, 486)]
    tx.handle(I.LegDisconnected(A, by_remote=False))
    assert invoked(tx.drain())["InvocationEventType"] == "HANGUP"


def test_invocation_limit_is_logged_once_per_call():
    tx = make_tx(max_invocations=3)
    tx.handle(I.InboundCallRouted())
    every = tx.drain()
    bad = [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 1}}]
    for _ in range(10):
        cmds = respond(tx, bad)
        every += cmds
        if not of(cmds, c.Invoke):
            break
    tx.handle(I.LegDisconnected(A, by_remote=False))
    every += tx.drain()
    assert of(every, c.Finished)
    assert len(_logs(every, "invocation_limit_reached")) == 1
    assert tx.invocations == 3
