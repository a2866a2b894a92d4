"""API-originated calls and updates against the sans-IO engine (spec 01 §4.2, §4.3, §6.2–6.4,
§6.7, §6.11; README reading 11)."""
from __future__ import annotations

from typing import Any

from chimevoice.actions import REGISTRY
from chimevoice.engine import commands as c
from chimevoice.engine import inputs as I
from chimevoice.engine.events import Participant
from chimevoice.engine.transaction import Limits, Target, Transaction

A = "call-id-1"
TO = "+12065550100"
FROM = "+15105550199"


def of(cmds: list[Any], kind: type) -> list[Any]:
    return [x for x in cmds if isinstance(x, kind)]


def invoked(cmds: list[Any]) -> dict[str, Any]:
    inv = of(cmds, c.Invoke)
    assert len(inv) == 1, cmds
    return inv[0].event


def outbound_tx(**limits: Any) -> Transaction:
    leg = Participant(A, "LEG-A", TO, FROM, "Outbound", 1597009588342)
    return Transaction(transaction_id="transaction-id", leg_a=leg,
                       targets=[Target("sma-1", "111122223333", "us-east-1")], sip_rule_id=None,
                       registry=REGISTRY, limits=Limits(**limits))


def feed(tx: Transaction, inp: I.Input) -> list[Any]:
    tx.handle(inp)
    return tx.drain()


def reply(tx: Transaction, actions: list[dict[str, Any]] | None) -> list[Any]:
    return feed(tx, I.HandlerResponded({"SchemaVersion": "1.0", "Actions": actions}))


def play(key: str = "hold.wav") -> dict[str, Any]:
    return {"Type": "PlayAudio", "Parameters": {"CallId": A, "Repeat": "5",
                                                "AudioSource": {"Type": "S3", "BucketName": "b", "Key": key}}}


def started(**limits: Any) -> tuple[Transaction, list[Any]]:
    tx = outbound_tx(**limits)
    return tx, feed(tx, I.OutboundCallRequested({"Team": "support"}, (("X-Ticket", "9"),)))


def test_new_outbound_call_dials_and_carries_the_arguments():
    tx, cmds = started()
    assert of(cmds, c.Dial) == [c.Dial(A, "PSTN", TO, FROM, None, (("X-Ticket", "9"),))]
    assert c.StartTimer("unanswered", 30.0) in cmds
    event = invoked(cmds)
    assert event["InvocationEventType"] == "NEW_OUTBOUND_CALL" and event["Sequence"] == 1
    assert event["ActionData"] == {"Type": "CallCreateRequest", "Parameters": {"Arguments": {"Team": "support"}}}
    leg = event["CallDetails"]["Participants"][0]
    assert (leg["Direction"], leg["To"], leg["From"]) == ("Outbound", TO, FROM)
    assert "SipRuleId" not in event["CallDetails"]


def test_ringing_then_answered_then_the_reply_runs():
    tx, _ = started()
    assert not of(reply(tx, [play()]), c.PrepareAudio)          # NEW_OUTBOUND_CALL reply ignored
    assert invoked(feed(tx, I.LegRinging(A)))["InvocationEventType"] == "RINGING"
    assert not of(reply(tx, [play()]), c.PrepareAudio)          # RINGING reply ignored
    assert not of(feed(tx, I.LegRinging(A)), c.Invoke)          # one RINGING only
    feed(tx, I.MediaReady(A))
    cmds = feed(tx, I.LegAnswered(A, 1597009590000))
    assert c.CancelTimer("unanswered") in cmds
    event = invoked(cmds)
    assert event["InvocationEventType"] == "CALL_ANSWERED"
    assert event["CallDetails"]["Participants"][0]["Status"] == "Connected"
    cmds = reply(tx, [play()])
    prep = of(cmds, c.PrepareAudio)[0]
    cmds = feed(tx, I.AudioReady(prep.request_id, "/cache/hold.wav", 1.0))
    assert not of(cmds, c.Answer)                                # the far end answered it
    assert of(cmds, c.Play)[0].call_id == A


def test_not_answered_in_time_is_cancelled_and_yields_hangup():
    tx, _ = started(unanswered_timeout_s=20)
    reply(tx, [])
    cmds = feed(tx, I.TimerFired("unanswered"))
    assert of(cmds, c.Disconnect) == [c.Disconnect(A, 480)]      # CANCEL
    cmds = feed(tx, I.LegDisconnected(A, by_remote=False, status_code=487))
    assert invoked(cmds)["InvocationEventType"] == "HANGUP"
    assert of(reply(tx, [play()]), c.Finished)                   # no leg left: the reply is ignored


def test_busy_callee_yields_hangup():
    tx, _ = started()
    reply(tx, [])
    event = invoked(feed(tx, I.LegDisconnected(A, by_remote=True, status_code=486)))
    assert event["InvocationEventType"] == "HANGUP"
    assert event["ActionData"]["Parameters"]["CallId"] == A


def answered(tx: Transaction) -> None:
    reply(tx, [])
    feed(tx, I.MediaReady(A))
    feed(tx, I.LegAnswered(A, 1597009590000))


def test_update_interrupts_play_audio_and_replaces_the_list():
    tx, _ = started()
    answered(tx)
    cmds = reply(tx, [play(), play("after.wav")])
    cmds = feed(tx, I.AudioReady(of(cmds, c.PrepareAudio)[0].request_id, "/cache/hold.wav", 1.0))
    playing = of(cmds, c.Play)[0]
    event = invoked(feed(tx, I.UpdateRequested({"JoinToken": "abc"})))
    assert event["InvocationEventType"] == "CALL_UPDATE_REQUESTED"
    assert event["ActionData"] == {"Type": "CallUpdateRequest", "Parameters": {"Arguments": {"JoinToken": "abc"}}}
    cmds = reply(tx, [{"Type": "Pause", "Parameters": {"CallId": A, "DurationInMilliseconds": 500}}])
    assert c.StopPlay(A, playing.play_id) in cmds
    interrupted = invoked(cmds)
    assert interrupted["InvocationEventType"] == "ACTION_INTERRUPTED"
    assert interrupted["ActionData"]["Type"] == "PlayAudio"
    assert interrupted["ActionData"]["Parameters"]["AudioSource"]["Key"] == "hold.wav"
    cmds = reply(tx, [play("ignored.wav")])                      # ACTION_INTERRUPTED reply ignored
    assert not of(cmds, c.PrepareAudio)
    [timer] = [t for t in of(cmds, c.StartTimer) if t.name != "unanswered"]
    assert timer.seconds == 0.5                                  # the new list runs; after.wav is gone
    event = invoked(feed(tx, I.TimerFired(timer.name)))
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL" and event["ActionData"]["Type"] == "Pause"


def test_update_with_no_actions_leaves_the_running_action():
    tx, _ = started()
    answered(tx)
    cmds = reply(tx, [play()])
    feed(tx, I.AudioReady(of(cmds, c.PrepareAudio)[0].request_id, "/cache/hold.wav", 1.0))
    invoked(feed(tx, I.UpdateRequested({})))
    cmds = reply(tx, [])
    assert not of(cmds, c.StopPlay) and not of(cmds, c.Invoke)


def test_update_while_a_non_interruptible_action_runs_replaces_what_follows():
    tx, _ = started()
    answered(tx)
    digits = {"Type": "SendDigits", "Parameters": {"CallId": A, "Digits": "123"}}
    cmds = reply(tx, [digits, play()])
    send = of(cmds, c.SendDigits)[0]
    invoked(feed(tx, I.UpdateRequested({"x": "1"})))
    cmds = reply(tx, [{"Type": "Hangup", "Parameters": {"CallId": A}}])
    assert not of(cmds, c.StopDigits) and not of(cmds, c.Invoke)   # SendDigits goes on
    cmds = feed(tx, I.DigitsSent(A, send.send_id))
    assert of(cmds, c.Disconnect) == [c.Disconnect(A, 0)]            # then the new list: Hangup
    assert not of(cmds, c.PrepareAudio)
