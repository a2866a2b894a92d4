"""CallAndBridge and Hangup on two legs, against the sans-IO engine (spec 02b §1, §2;
README readings 4, 6, 12, 13, 14, 15; 04 §2.3 for SipHeaders)."""
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from chimevoice.actions import REGISTRY
from chimevoice.engine import commands as c
from chimevoice.engine import inputs as I
from chimevoice.engine.directory import Directory
from chimevoice.engine.errors import ActionError
from chimevoice.engine.events import Participant
from chimevoice.engine.transaction import Limits, Target, Transaction

A = "call-id-1"
A_FROM = "+15105550101"
A_TO = "+12065551212"
OUR_OTHER_NUMBER = "+12065550100"
B_NUM = "+15555550100"
B_START = 1700000000123
VC_ID = "abcdefghijklm2nopq3rs"
VC_ARN = f"arn:aws:chime:us-east-1:0123456789101:vc/{VC_ID}"
DIRECTORY = Directory(phone_numbers=frozenset({A_TO, OUR_OTHER_NUMBER}),
                      voice_connectors=frozenset({VC_ID}),
                      sip_media_applications=frozenset({"sma-9"}))
DROP = object()        # cab_params(X=DROP) leaves X out

MSG_BAD_LEG = "CallId or ParticipantTag parameter for action is invalid."
E2 = ("InvalidAudioSource", "Cannot access the S3 bucket or audio file.")
E3 = ("InvalidAudioSource", "Ringtone parameter value is invalid.")
E4 = ("InvalidActionParameter", "Invalid number of endpoints provided.")
E5 = ("InvalidActionParameter", "Endpoint parameter is invalid.")
E6 = ("InvalidActionParameter", "Invalid caller ID.")
E7 = ("InvalidActionParameter", "Caller ID not defined.")
E8 = ("InvalidActionParameter",
      "MaxCallTimeout parameter is invalid. Timeout must be between 0 and 120 seconds.")
E9 = ("InvalidActionParameter", "Invalid caller ID number provided. The number must be owned by this "
      "AWS account or be the From number of LEG-A.")


def e10(*names: str) -> tuple[str, str]:
    return ("InvalidActionParameter", "Invalid SIP header(s) provided: " + ", ".join(names))


# -- helpers ----------------------------------------------------------------------------

def make_tx(**limits: Any) -> Transaction:
    leg = Participant(A, "LEG-A", A_TO, A_FROM, "Inbound", 1597009588342, sip_headers={"X-Account-Id": "42"})
    return Transaction(transaction_id="transaction-id", leg_a=leg,
                       targets=[Target("sma-1", "111122223333", "us-east-1")], sip_rule_id="sip-rule-id",
                       registry=REGISTRY, limits=Limits(**limits), directory=DIRECTORY)


def leg_a_json(status: str = "Connected") -> dict[str, Any]:
    return {"CallId": A, "ParticipantTag": "LEG-A", "To": A_TO, "From": A_FROM, "Direction": "Inbound",
            "StartTimeInMilliseconds": "1597009588342", "Status": status, "SipHeaders": {"X-Account-Id": "42"}}


def leg_b_json(call_id: str, status: str = "Connected", to: str = B_NUM, from_: str = A_FROM,
               start: int = B_START) -> dict[str, Any]:
    return {"CallId": call_id, "ParticipantTag": "LEG-B", "To": to, "From": from_, "Direction": "Outbound",
            "StartTimeInMilliseconds": str(start), "Status": status}


def details(*participants: dict[str, Any]) -> dict[str, Any]:
    return {"TransactionId": "transaction-id", "AwsAccountId": "111122223333", "AwsRegion": "us-east-1",
            "SipRuleId": "sip-rule-id", "SipMediaApplicationId": "sma-1", "SipApplicationId": "sma-1",
            "Participants": list(participants)}


def of(cmds: list[Any], kind: type) -> list[Any]:
    return [x for x in cmds if isinstance(x, kind)]


def work(cmds: list[Any]) -> list[Any]:
    """Every command but log lines and ActionEnded (a metric)."""
    return [x for x in cmds if not isinstance(x, (c.Log, c.ActionEnded))]


def invoked(cmds: list[Any]) -> dict[str, Any]:
    inv = of(cmds, c.Invoke)
    assert len(inv) == 1, cmds
    return inv[0].event


def respond(tx: Transaction, actions: Any) -> list[Any]:
    tx.handle(I.HandlerResponded({"SchemaVersion": "1.0", "Actions": actions}))
    return tx.drain()


def respond_raw(tx: Transaction, body: dict[str, Any]) -> list[Any]:
    tx.handle(I.HandlerResponded(body))
    return tx.drain()


def feed(tx: Transaction, inp: Any) -> list[Any]:
    tx.handle(inp)
    return tx.drain()


def cab_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"CallerIdNumber": A_FROM,
                              "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": B_NUM}]}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not DROP}


def cab(**overrides: Any) -> dict[str, Any]:
    return {"Type": "CallAndBridge", "Parameters": cab_params(**overrides)}


def aws_endpoint(uri: str = "5550", arn: Any = VC_ARN) -> list[dict[str, Any]]:
    return [{"BridgeEndpointType": "AWS", "Arn": arn, "Uri": uri}]


def echo(params: dict[str, Any], call_id: str = A) -> dict[str, Any]:
    """What CallAndBridge echoes: the request, CallTimeoutSeconds 30 unless given, CallId of LEG-A."""
    out = dict(params)
    out.setdefault("CallTimeoutSeconds", 30)
    out["CallId"] = call_id
    return out


def play(key: str = "prompt.wav", **params: Any) -> dict[str, Any]:
    return {"Type": "PlayAudio", "Parameters": {
        "AudioSource": {"Type": "S3", "BucketName": "bucket-name", "Key": key}, **params}}


def receive(**params: Any) -> dict[str, Any]:
    base = {"InputDigitsRegex": "^\\d{2}$", "InBetweenDigitsDurationInMilliseconds": 1000,
            "FlushDigitsDurationInMilliseconds": 10000}
    base.update(params)
    return {"Type": "ReceiveDigits", "Parameters": base}


def new_call() -> Transaction:
    """LEG-A rings; the handler has NEW_INBOUND_CALL in flight."""
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    return tx


def answered_call() -> Transaction:
    """LEG-A answered by a PlayAudio; the handler has its ACTION_SUCCESSFUL in flight."""
    tx = new_call()
    cmds = respond(tx, [play()])
    tx.handle(I.AudioReady(of(cmds, c.PrepareAudio)[0].request_id, "/cache/prompt.wav", 1.0))
    assert of(tx.drain(), c.Answer) == [c.Answer(A)]
    p = of(feed(tx, I.MediaReady(A)), c.Play)[0]
    assert invoked(feed(tx, I.PlaybackFinished(A, p.play_id)))["ActionData"]["Type"] == "PlayAudio"
    return tx


def dial_of(cmds: list[Any]) -> c.Dial:
    (dial,) = of(cmds, c.Dial)
    return dial


def bridge_timer(cmds: list[Any]) -> c.StartTimer:
    (timer,) = [t for t in of(cmds, c.StartTimer) if t.name != "unanswered"]
    return timer


def bridged_call(*, idle: bool = False) -> tuple[Transaction, str]:
    """A answered and bridged to B (B's media up). The bridge's ACTION_SUCCESSFUL is in
    flight, or (*idle*) answered with [] so that nothing is."""
    tx = answered_call()
    b = dial_of(respond(tx, [cab()])).call_id
    event = invoked(feed(tx, I.LegAnswered(b, B_START)))
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert work(feed(tx, I.MediaReady(b))) == []
    if idle:
        assert work(respond(tx, [])) == []
    return tx, b


def leg_id(n: int) -> str:
    """The CallId of the transaction's n-th outbound leg."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"chimevoice:transaction-id/{n}"))


# -- validation: E2–E10 ----------------------------------------------------------------------

LONG = "v" * 2049

VALIDATION_CASES = [
    # E4
    ("endpoints-missing", cab_params(Endpoints=DROP), E4),
    ("endpoints-null", cab_params(Endpoints=None), E4),
    ("endpoints-empty", cab_params(Endpoints=[]), E4),
    ("endpoints-two", cab_params(Endpoints=[{"BridgeEndpointType": "PSTN", "Uri": B_NUM}] * 2), E4),
    ("endpoints-not-a-list", cab_params(Endpoints={"BridgeEndpointType": "PSTN", "Uri": B_NUM}), E4),
    # E5
    ("uri-missing", cab_params(Endpoints=[{"BridgeEndpointType": "PSTN"}]), E5),
    ("pstn-uri-not-e164", cab_params(Endpoints=[{"BridgeEndpointType": "PSTN", "Uri": "5550"}]), E5),
    ("pstn-with-arn", cab_params(Endpoints=[{"BridgeEndpointType": "PSTN", "Uri": B_NUM, "Arn": VC_ARN}]), E5),
    ("unknown-type", cab_params(Endpoints=[{"BridgeEndpointType": "SIP", "Uri": B_NUM}]), E5),
    ("type-missing", cab_params(Endpoints=[{"Uri": B_NUM}]), E5),
    ("aws-without-arn", cab_params(Endpoints=[{"BridgeEndpointType": "AWS", "Uri": "5550"}]), E5),
    ("aws-unknown-vc", cab_params(Endpoints=aws_endpoint(arn="arn:aws:chime:us-east-1:0123456789101:vc/nope")), E5),
    ("aws-uri-31-chars", cab_params(Endpoints=aws_endpoint(uri="a" * 31)), E5),
    ("aws-uri-comma", cab_params(Endpoints=aws_endpoint(uri="55,50")), E5),
    ("aws-arn-not-an-arn", cab_params(Endpoints=aws_endpoint(arn="vc/" + VC_ID)), E5),
    # E7
    ("caller-missing", cab_params(CallerIdNumber=DROP), E7),
    ("caller-empty", cab_params(CallerIdNumber=""), E7),
    ("caller-null", cab_params(CallerIdNumber=None), E7),
    # E6
    ("caller-no-plus", cab_params(CallerIdNumber="15105550101"), E6),
    ("caller-leading-zero", cab_params(CallerIdNumber="+05105550101"), E6),
    ("caller-too-long", cab_params(CallerIdNumber="+1234567890123456"), E6),
    ("caller-number", cab_params(CallerIdNumber=15105550101), E6),
    # E9
    ("caller-not-owned", cab_params(CallerIdNumber="+19995550100"), E9),
    # E8
    ("timeout-0", cab_params(CallTimeoutSeconds=0), E8),
    ("timeout-121", cab_params(CallTimeoutSeconds=121), E8),
    ("timeout-string-121", cab_params(CallTimeoutSeconds="121"), E8),
    ("timeout-negative", cab_params(CallTimeoutSeconds=-5), E8),
    ("timeout-not-a-number", cab_params(CallTimeoutSeconds="soon"), E8),
    # E10
    ("header-x-amzn", cab_params(SipHeaders={"X-AMZN": "String"}), e10("X-AMZN")),
    ("header-x-amzn-prefix", cab_params(SipHeaders={"x-amzn-trace": "1"}), e10("x-amzn-trace")),
    ("header-x-vc-foo", cab_params(SipHeaders={"x-vc-foo": "1"}), e10("x-vc-foo")),
    ("header-x-vine", cab_params(SipHeaders={"X-Vine": "1"}), e10("X-Vine")),
    ("header-not-x", cab_params(SipHeaders={"P-Asserted-Identity": "<sip:+1@x>"}), e10("P-Asserted-Identity")),
    ("header-2049-chars", cab_params(SipHeaders={"X-Long": LONG}), e10("X-Long")),
    ("header-newline", cab_params(SipHeaders={"X-Split": "a\r\nVia: x"}), e10("X-Split")),
    ("header-several", cab_params(SipHeaders={"X-AMZN": "a", "X-Fine": "b", "Contact": "c"}), e10("X-AMZN", "Contact")),
    # E3
    ("ringback-type", cab_params(RingbackTone={"Type": "HTTP", "BucketName": "b", "Key": "k"}), E3),
    ("ringback-no-key", cab_params(RingbackTone={"Type": "S3", "BucketName": "b"}), E3),
    ("ringback-empty-bucket", cab_params(RingbackTone={"Type": "S3", "BucketName": "", "Key": "k"}), E3),
    ("ringback-null-key", cab_params(RingbackTone={"Type": "S3", "BucketName": "b", "Key": None}), E3),
    # two errors at once: the first in 02b §1.4's order wins (E4 E5 E7 E6 E9 E8 E10 E3)
    ("E4-before-E7", cab_params(Endpoints=[], CallerIdNumber=DROP), E4),
    ("E5-before-E7", cab_params(Endpoints=[{"BridgeEndpointType": "PSTN", "Uri": "x"}], CallerIdNumber=DROP), E5),
    ("E5-before-E6", cab_params(Endpoints=[{"BridgeEndpointType": "PSTN"}], CallerIdNumber="123"), E5),
    ("E7-before-E8", cab_params(CallerIdNumber=DROP, CallTimeoutSeconds=0), E7),
    ("E6-before-E8", cab_params(CallerIdNumber="abc", CallTimeoutSeconds=121), E6),
    ("E9-before-E8", cab_params(CallerIdNumber="+19995550100", CallTimeoutSeconds=0), E9),
    ("E8-before-E10", cab_params(CallTimeoutSeconds=121, SipHeaders={"X-AMZN": "a"}), E8),
    ("E10-before-E3", cab_params(SipHeaders={"X-AMZN": "a"}, RingbackTone={"Type": "S3"}), e10("X-AMZN")),
    ("E9-before-E3", cab_params(CallerIdNumber="+19995550100", RingbackTone={"Type": "S3"}), E9),
    ("E4-before-everything", cab_params(Endpoints=None, CallerIdNumber="x", CallTimeoutSeconds=0,
                                        SipHeaders={"X-AMZN": "a"}, RingbackTone={}), E4),
]


@pytest.mark.parametrize("params,error", [pytest.param(p, e, id=i) for i, p, e in VALIDATION_CASES])
def test_validation_errors(params, error):
    tx = new_call()
    cmds = respond(tx, [{"Type": "CallAndBridge", "Parameters": params}])
    assert not of(cmds, c.Dial)
    assert not of(cmds, c.PrepareAudio)
    assert not of(cmds, c.Answer) and not of(cmds, c.EarlyMedia)
    event = invoked(cmds)
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert event["ActionData"] == {"Type": "CallAndBridge", "Parameters": echo(params),
                                   "ErrorType": error[0], "ErrorMessage": error[1]}
    assert event["CallDetails"] == details(leg_a_json())
    assert "ErrorType" not in event


def test_bridging_a_leg_that_is_already_bridged_fails_without_dialling():
    tx, b = bridged_call()
    cmds = respond(tx, [cab()])
    assert not of(cmds, c.Dial)
    event = invoked(cmds)
    assert event["ActionData"]["ErrorType"] == "InvalidActionParameter"
    assert event["ActionData"]["ErrorMessage"] == "CallAndBridge cannot run on a leg that is already bridged."
    assert [p["CallId"] for p in event["CallDetails"]["Participants"]] == [A, b]


def test_failed_ringback_prepare_is_e2_and_nothing_is_dialled():
    tx = new_call()
    params = cab_params(RingbackTone={"Type": "S3", "BucketName": "bucket-name", "Key": "ring.wav"})
    cmds = respond(tx, [{"Type": "CallAndBridge", "Parameters": params}])
    (prep,) = of(cmds, c.PrepareAudio)
    assert (prep.bucket, prep.key) == ("bucket-name", "ring.wav")
    assert not of(cmds, c.Dial) and not of(cmds, c.Invoke)
    cmds = feed(tx, I.AudioFailed(prep.request_id, "InvalidAudioSource", "NoSuchKey"))
    assert not of(cmds, c.Dial) and not of(cmds, c.EarlyMedia) and not of(cmds, c.Answer)
    event = invoked(cmds)
    assert event["ActionData"] == {"Type": "CallAndBridge", "Parameters": echo(params),
                                   "ErrorType": E2[0], "ErrorMessage": E2[1]}
    assert event["CallDetails"]["Participants"] == [leg_a_json()]


# -- validation: what is accepted ----------------------------------------------------------

def test_user_to_user_diversion_and_x_headers_are_accepted_and_sent_on_the_invite():
    tx = new_call()
    headers = {"X-Test-Value": "String",
               "User-to-User": "616d617a6f6e5f6368696d655f636f6e6e6563745f696e746567726174696f6e;encoding=hex",
               "Diversion": "sip:+11234567891@public.test.com;reason=unconditional",
               "x-lower": "v" * 2048}
    dial = dial_of(respond(tx, [cab(SipHeaders=headers)]))
    assert dial.sip_headers == tuple(headers.items())


@pytest.mark.parametrize("caller", [A_FROM, A_TO, OUR_OTHER_NUMBER])
def test_pstn_caller_id_from_of_leg_a_or_one_of_our_numbers_is_accepted(caller):
    tx = new_call()
    dial = dial_of(respond(tx, [cab(CallerIdNumber=caller)]))
    assert (dial.endpoint_type, dial.uri, dial.caller_id, dial.arn) == ("PSTN", B_NUM, caller, None)


@pytest.mark.parametrize("caller", ["+19995550100", A_FROM])
def test_aws_endpoint_takes_any_e164_caller_id(caller):
    # README reading 13: the ownership rule applies to PSTN endpoints only.
    tx = new_call()
    dial = dial_of(respond(tx, [cab(CallerIdNumber=caller, Endpoints=aws_endpoint("5550"),
                                    SipHeaders={"x-String": "String"})]))
    assert dial == c.Dial(leg_id(1), "AWS", "5550", caller, VC_ID, (("x-String", "String"),))


@pytest.mark.parametrize("value,seconds", [("30", 30.0), (1, 1.0), (120, 120.0), ("120", 120.0), (45, 45.0)])
def test_call_timeout_seconds_accepted_including_strings(value, seconds):
    tx = new_call()
    cmds = respond(tx, [cab(CallTimeoutSeconds=value)])
    dial_of(cmds)
    assert bridge_timer(cmds).seconds == seconds
    tx.handle(I.LegAnswered(leg_id(1), B_START))
    tx.handle(I.MediaReady(A))
    event = invoked(tx.drain())
    assert event["ActionData"]["Parameters"]["CallTimeoutSeconds"] == value      # echoed as sent


def test_pstn_endpoint_with_null_arn_and_aws_uri_with_every_allowed_character():
    tx = new_call()
    dial = dial_of(respond(tx, [cab(Endpoints=[{"BridgeEndpointType": "PSTN", "Uri": B_NUM, "Arn": None}])]))
    assert (dial.endpoint_type, dial.uri, dial.arn) == ("PSTN", B_NUM, None)
    tx = new_call()
    uri = "aZ09&=+$/%-_!~*()."
    dial = dial_of(respond(tx, [cab(Endpoints=aws_endpoint(uri))]))
    assert (dial.endpoint_type, dial.uri, dial.arn) == ("AWS", uri, VC_ID)
    tx = new_call()
    dial = dial_of(respond(tx, [cab(Endpoints=aws_endpoint("a" * 30))]))
    assert dial.uri == "a" * 30


@pytest.mark.parametrize("call_id", [A, ""])
def test_call_id_of_leg_a_or_empty_is_accepted_and_echoed_as_leg_a(call_id):
    tx = answered_call()
    params = cab_params(CallId=call_id)
    b = dial_of(respond(tx, [{"Type": "CallAndBridge", "Parameters": params}])).call_id
    event = invoked(feed(tx, I.LegAnswered(b, B_START)))
    assert event["ActionData"]["Parameters"] == {**params, "CallTimeoutSeconds": 30, "CallId": A}


def test_unknown_call_id_fails_with_the_leg_error_and_is_echoed_as_sent():
    # Not in 02b: the leg error of every action (chimevoice's choice), after E6 and before E9.
    tx = new_call()
    params = cab_params(CallId="call-id-9")
    cmds = respond(tx, [{"Type": "CallAndBridge", "Parameters": params}])
    assert not of(cmds, c.Dial)
    assert invoked(cmds)["ActionData"] == {"Type": "CallAndBridge", "Parameters": {**params, "CallTimeoutSeconds": 30},
                                           "ErrorType": "InvalidActionParameter", "ErrorMessage": MSG_BAD_LEG}


def test_bridging_to_one_of_our_numbers_is_a_pstn_dial_of_that_number():
    # README reading 14: the driver hairpins it into that number's SIP rule.
    tx = new_call()
    dial = dial_of(respond(tx, [cab(Endpoints=[{"BridgeEndpointType": "PSTN", "Uri": OUR_OTHER_NUMBER}])]))
    assert (dial.endpoint_type, dial.uri) == ("PSTN", OUR_OTHER_NUMBER)


# -- success ------------------------------------------------------------------------------

def test_unanswered_leg_a_is_answered_only_when_leg_b_answers_then_bridged():
    tx = new_call()
    params = cab_params()
    cmds = respond(tx, [{"Type": "CallAndBridge", "Parameters": params}])
    b = leg_id(1)
    timer = bridge_timer(cmds)
    assert work(cmds) == [c.CancelTimer("unanswered"), c.Dial(b, "PSTN", B_NUM, A_FROM, None, ()),
                          c.StartTimer(timer.name, 30.0)]
    assert b != A
    # LEG-B alerts: nothing for LEG-A (it keeps its 180), no event.
    assert work(feed(tx, I.LegRinging(b))) == []
    # LEG-B answers: the answer propagates to LEG-A; the bridge waits for LEG-A's media.
    assert work(feed(tx, I.LegAnswered(b, B_START))) == [c.CancelTimer(timer.name), c.Answer(A)]
    cmds = feed(tx, I.MediaReady(A))
    assert work(cmds)[:-1] == [c.CancelTimer("unanswered"), c.LinkAudio(A, b), c.LinkAudio(b, A)]
    event = invoked(cmds)
    assert json.dumps(event) == json.dumps({
        "SchemaVersion": "1.0", "Sequence": 2, "InvocationEventType": "ACTION_SUCCESSFUL",
        "ActionData": {"Type": "CallAndBridge", "Parameters": {
            "CallerIdNumber": A_FROM, "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": B_NUM}],
            "CallTimeoutSeconds": 30, "CallId": A}},
        "CallDetails": details(leg_a_json(), leg_b_json(b))})
    assert params == cab_params()                   # the request itself was not modified
    assert work(feed(tx, I.MediaReady(b))) == []    # B's media: nothing more to do


def test_already_answered_leg_a_is_bridged_as_soon_as_leg_b_answers():
    tx = answered_call()
    cmds = respond(tx, [cab(CallTimeoutSeconds=20)])
    b = dial_of(cmds).call_id
    timer = bridge_timer(cmds)
    assert timer.seconds == 20.0
    assert not of(cmds, c.Answer) and not of(cmds, c.EarlyMedia) and not of(cmds, c.Invoke)
    assert work(feed(tx, I.LegRinging(b))) == []
    cmds = feed(tx, I.LegAnswered(b, B_START))
    assert work(cmds)[:-1] == [c.CancelTimer(timer.name), c.LinkAudio(A, b), c.LinkAudio(b, A)]
    event = invoked(cmds)
    assert event["Sequence"] == 3
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert event["ActionData"] == {"Type": "CallAndBridge", "Parameters": echo(cab_params(CallTimeoutSeconds=20))}
    assert event["CallDetails"]["Participants"] == [leg_a_json(), leg_b_json(b)]


def test_aws_endpoint_leg_b_shows_uri_as_to_and_caller_id_as_from():
    tx = answered_call()
    b = dial_of(respond(tx, [cab(CallerIdNumber="+18005550122", Endpoints=aws_endpoint("5550"))])).call_id
    event = invoked(feed(tx, I.LegAnswered(b, 42)))
    assert event["CallDetails"]["Participants"][1] == leg_b_json(b, to="5550", from_="+18005550122", start=42)


@pytest.mark.parametrize("reply", [{"SchemaVersion": "1.0"}, {"SchemaVersion": "1.0", "Actions": []},
                                   {"SchemaVersion": "1.0", "Actions": None}], ids=["no-actions", "empty", "null"])
def test_success_is_sent_at_once_mid_list_and_the_rest_goes_on(reply):
    # README reading 6.
    tx = answered_call()
    cmds = respond(tx, [cab(), {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 500}}])
    b = dial_of(cmds).call_id
    cmds = feed(tx, I.LegAnswered(b, B_START))
    assert invoked(cmds)["ActionData"]["Type"] == "CallAndBridge"
    assert not [t for t in of(cmds, c.StartTimer) if t.seconds == 0.5]     # Pause waits for the reply
    cmds = respond_raw(tx, reply)
    (pause,) = of(cmds, c.StartTimer)
    assert pause.seconds == 0.5
    event = invoked(feed(tx, I.TimerFired(pause.name)))
    assert event["ActionData"] == {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 500}}
    assert event["CallDetails"]["Participants"] == [leg_a_json(), leg_b_json(b)]


def test_a_reply_with_actions_to_the_mid_list_success_replaces_the_rest():
    tx = answered_call()
    b = dial_of(respond(tx, [cab(), {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 500}}])).call_id
    invoked(feed(tx, I.LegAnswered(b, B_START)))
    cmds = respond(tx, [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 700}}])
    assert [t.seconds for t in of(cmds, c.StartTimer)] == [0.7]
    event = invoked(feed(tx, I.TimerFired(of(cmds, c.StartTimer)[0].name)))
    assert event["ActionData"]["Parameters"] == {"DurationInMilliseconds": 700}
    assert work(respond(tx, [])) == []               # the 500 ms Pause was replaced


# -- ringback and early media ----------------------------------------------------------------

RINGBACK = {"Type": "S3", "BucketName": "bucket-name", "Key": "ring.wav"}


def test_ringback_on_unanswered_leg_a_early_media_looped_then_stopped_when_b_answers():
    tx = new_call()
    cmds = respond(tx, [cab(RingbackTone=RINGBACK)])
    (prep,) = of(cmds, c.PrepareAudio)
    assert not of(cmds, c.Dial)                      # the file is read before dialling
    cmds = feed(tx, I.AudioReady(prep.request_id, "/cache/ring.wav", 2.5))
    b = leg_id(1)
    timer = bridge_timer(cmds)
    assert work(cmds) == [c.CancelTimer("unanswered"), c.Dial(b, "PSTN", B_NUM, A_FROM, None, ()),
                          c.StartTimer(timer.name, 30.0), c.EarlyMedia(A)]
    assert not of(cmds, c.Answer)
    cmds = feed(tx, I.MediaReady(A))                 # 183 with SDP: LEG-A's audio is up, unanswered
    (ring,) = of(cmds, c.Play)
    assert work(cmds) == [ring]
    assert (ring.call_id, ring.path, ring.repeat, ring.duration_s) == (A, "/cache/ring.wav", 1000, 2.5)
    assert work(feed(tx, I.LegRinging(b))) == []
    cmds = feed(tx, I.LegAnswered(b, B_START))
    assert work(cmds)[:-1] == [c.CancelTimer(timer.name), c.StopPlay(A, ring.play_id), c.Answer(A),
                               c.CancelTimer("unanswered"), c.LinkAudio(A, b), c.LinkAudio(b, A)]
    event = invoked(cmds)
    assert event["ActionData"]["Parameters"] == echo(cab_params(RingbackTone=RINGBACK))
    assert event["CallDetails"]["Participants"] == [leg_a_json(), leg_b_json(b)]


def test_ringback_on_answered_leg_a_plays_right_after_dialling():
    tx = answered_call()
    prep = of(respond(tx, [cab(RingbackTone=RINGBACK)]), c.PrepareAudio)[0]
    cmds = feed(tx, I.AudioReady(prep.request_id, "/cache/ring.wav", 2.0))
    dial_of(cmds)
    assert not of(cmds, c.EarlyMedia)
    (ring,) = of(cmds, c.Play)
    assert (ring.call_id, ring.repeat) == (A, 1000)
    assert cmds.index(dial_of(cmds)) < cmds.index(ring)


def test_ringback_stops_when_leg_b_fails():
    tx = answered_call()
    prep = of(respond(tx, [cab(RingbackTone=RINGBACK)]), c.PrepareAudio)[0]
    cmds = feed(tx, I.AudioReady(prep.request_id, "/cache/ring.wav", 2.0))
    b = dial_of(cmds).call_id
    ring = of(cmds, c.Play)[0]
    cmds = feed(tx, I.LegDisconnected(b, by_remote=True, status_code=486))
    assert c.StopPlay(A, ring.play_id) in cmds
    assert invoked(cmds)["ActionData"]["ErrorType"] == "CallNotAnswered"


def test_early_media_of_leg_b_is_relayed_to_unanswered_leg_a():
    tx = new_call()
    cmds = respond(tx, [cab()])
    b = dial_of(cmds).call_id
    timer = bridge_timer(cmds)
    assert work(feed(tx, I.LegRinging(b))) == []                      # 183 ...
    assert work(feed(tx, I.MediaReady(b))) == [c.EarlyMedia(A)]       # ... with SDP
    assert work(feed(tx, I.MediaReady(A))) == [c.LinkAudio(b, A)]     # LEG-A hears LEG-B's early media
    cmds = feed(tx, I.LegAnswered(b, B_START))
    assert work(cmds)[:-1] == [c.CancelTimer(timer.name), c.UnlinkAudio(b, A), c.Answer(A),
                               c.CancelTimer("unanswered"), c.LinkAudio(A, b), c.LinkAudio(b, A)]
    assert invoked(cmds)["CallDetails"]["Participants"] == [leg_a_json(), leg_b_json(b)]


def test_early_media_of_leg_b_is_relayed_to_answered_leg_a_without_early_media():
    tx = answered_call()
    b = dial_of(respond(tx, [cab()])).call_id
    assert work(feed(tx, I.MediaReady(b))) == []                      # no 18x yet: a 200's SDP
    assert work(feed(tx, I.LegRinging(b))) == [c.LinkAudio(b, A)]


def test_early_media_relay_stops_when_leg_b_times_out():
    tx = new_call()
    cmds = respond(tx, [cab()])
    b = dial_of(cmds).call_id
    feed(tx, I.LegRinging(b))
    feed(tx, I.MediaReady(b))
    feed(tx, I.MediaReady(A))
    cmds = feed(tx, I.TimerFired(bridge_timer(cmds).name))
    assert work(cmds)[:-1] == [c.UnlinkAudio(b, A), c.Disconnect(b, 0), c.StartTimer("unanswered", 30.0)]
    assert invoked(cmds)["ActionData"]["ErrorType"] == "CallNotAnswered"


# -- no answer -----------------------------------------------------------------------------

def test_timeout_cancels_leg_b_and_fails_call_not_answered():
    tx = new_call()
    params = cab_params(CallTimeoutSeconds=15)
    cmds = respond(tx, [{"Type": "CallAndBridge", "Parameters": params}])
    b = dial_of(cmds).call_id
    timer = bridge_timer(cmds)
    assert timer.seconds == 15.0
    feed(tx, I.LegRinging(b))
    cmds = feed(tx, I.TimerFired(timer.name))
    assert work(cmds)[:-1] == [c.Disconnect(b, 0), c.StartTimer("unanswered", 30.0)]
    assert not of(cmds, c.Answer)
    assert json.dumps(invoked(cmds)) == json.dumps({
        "SchemaVersion": "1.0", "Sequence": 2, "InvocationEventType": "ACTION_FAILED",
        "ActionData": {"Type": "CallAndBridge", "Parameters": echo(params),
                       "ErrorType": "CallNotAnswered", "ErrorMessage": "Call not answered"},
        "CallDetails": details(leg_a_json())})
    # The CANCEL completes: no event for a leg the handler never saw.
    assert work(feed(tx, I.LegDisconnected(b, by_remote=False, status_code=487))) == []
    # LEG-A is still unanswered; its unanswered timer rejects it if the handler does nothing.
    assert work(respond(tx, [])) == []
    assert work(feed(tx, I.TimerFired("unanswered"))) == [c.Reject(A, 480)]


def test_a_late_timer_or_cancel_completion_after_the_timeout_does_nothing():
    tx = new_call()
    cmds = respond(tx, [cab()])
    b = dial_of(cmds).call_id
    timer = bridge_timer(cmds)
    invoked(feed(tx, I.TimerFired(timer.name)))
    assert work(feed(tx, I.TimerFired(timer.name))) == []
    assert work(feed(tx, I.LegDisconnected(b, by_remote=False))) == []
    assert work(respond(tx, [])) == []


@pytest.mark.parametrize("code", [486, 404, 503, 603, 408])
def test_final_error_response_of_leg_b_fails_call_not_answered(code):
    tx = new_call()
    cmds = respond(tx, [cab()])
    b = dial_of(cmds).call_id
    timer = bridge_timer(cmds)
    feed(tx, I.LegRinging(b))
    cmds = feed(tx, I.LegDisconnected(b, by_remote=True, status_code=code))
    assert work(cmds)[:-1] == [c.CancelTimer(timer.name), c.StartTimer("unanswered", 30.0)]
    assert not of(cmds, c.Disconnect)                # nothing left to cancel
    event = invoked(cmds)
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert (event["ActionData"]["ErrorType"], event["ActionData"]["ErrorMessage"]) == (
        "CallNotAnswered", "Call not answered")
    assert event["CallDetails"]["Participants"] == [leg_a_json()]


def test_call_not_answered_on_answered_leg_a_keeps_it_up_and_a_new_bridge_works():
    tx = answered_call()
    cmds = respond(tx, [cab(), play("never.wav")])
    b1 = dial_of(cmds).call_id
    cmds = feed(tx, I.LegDisconnected(b1, by_remote=True, status_code=486))
    assert not of(cmds, c.Disconnect)
    assert not [t for t in of(cmds, c.StartTimer) if t.name == "unanswered"]     # A is answered
    event = invoked(cmds)
    assert event["ActionData"]["ErrorType"] == "CallNotAnswered"
    assert event["CallDetails"]["Participants"] == [leg_a_json()]
    cmds = respond(tx, [cab()])                      # try again
    assert not of(cmds, c.PrepareAudio)              # never.wav was dropped with the failure
    b2 = dial_of(cmds).call_id
    assert b2 == leg_id(2) and b2 not in (A, b1)
    event = invoked(feed(tx, I.LegAnswered(b2, B_START)))
    assert event["CallDetails"]["Participants"] == [leg_a_json(), leg_b_json(b2)]


def test_leg_a_hangs_up_while_leg_b_rings():
    tx = new_call()
    cmds = respond(tx, [cab(), play()])
    b = dial_of(cmds).call_id
    timer = bridge_timer(cmds)
    feed(tx, I.LegRinging(b))
    cmds = feed(tx, I.LegDisconnected(A, by_remote=True))
    assert c.CancelTimer(timer.name) in cmds
    assert of(cmds, c.Disconnect) == [c.Disconnect(b, 0)]           # CANCEL
    event = invoked(cmds)
    assert event["InvocationEventType"] == "HANGUP"
    assert event["ActionData"] == {"Type": "Hangup", "Parameters": {
        "SipResponseCode": 0, "CallId": A, "ParticipantTag": "LEG-A"}}
    assert event["CallDetails"]["Participants"] == [leg_a_json("Disconnected")]
    cmds = respond(tx, [play()])                     # ignored: no leg is connected
    assert not of(cmds, c.PrepareAudio) and not of(cmds, c.Invoke)
    cmds += feed(tx, I.LegDisconnected(b, by_remote=False, status_code=487))
    assert not of(cmds, c.Invoke)
    assert len(of(cmds, c.Finished)) == 1


def test_leg_a_hangs_up_while_waiting_for_ringback_file():
    tx = new_call()
    prep = of(respond(tx, [cab(RingbackTone=RINGBACK)]), c.PrepareAudio)[0]
    cmds = feed(tx, I.LegDisconnected(A, by_remote=True))
    assert invoked(cmds)["InvocationEventType"] == "HANGUP"
    cmds = feed(tx, I.AudioReady(prep.request_id, "/cache/ring.wav", 1.0))
    assert not of(cmds, c.Dial) and not of(cmds, c.Play)


# -- after the bridge: independent legs, hang-ups ----------------------------------------------

def test_leg_b_hangs_up_then_the_reply_to_hangup_is_executed():
    tx, b = bridged_call(idle=True)
    cmds = feed(tx, I.LegDisconnected(b, by_remote=True))
    assert not of(cmds, c.Disconnect)                # LEG-A stays up (02b §1.8)
    event = invoked(cmds)
    assert json.dumps(event) == json.dumps({
        "SchemaVersion": "1.0", "Sequence": 4, "InvocationEventType": "HANGUP",
        "ActionData": {"Type": "Hangup", "Parameters": {"SipResponseCode": 0, "CallId": b,
                                                        "ParticipantTag": "LEG-B"}},
        "CallDetails": details(leg_a_json(), leg_b_json(b, "Disconnected"))})
    cmds = respond(tx, [{"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}])
    assert work(cmds) == [c.Disconnect(A, 0)]
    event = invoked(feed(tx, I.LegDisconnected(A, by_remote=False)))
    assert event["InvocationEventType"] == "HANGUP"
    assert event["ActionData"]["Parameters"] == {"SipResponseCode": 0, "CallId": A, "ParticipantTag": "LEG-A"}
    assert event["CallDetails"]["Participants"] == [leg_a_json("Disconnected")]     # reading 12
    assert of(respond(tx, []), c.Finished)


def test_after_leg_b_hangs_up_later_events_list_only_leg_a():
    tx, b = bridged_call(idle=True)
    invoked(feed(tx, I.LegDisconnected(b, by_remote=True)))
    cmds = respond(tx, [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 100}}])
    event = invoked(feed(tx, I.TimerFired(of(cmds, c.StartTimer)[0].name)))
    assert event["ActionData"]["Type"] == "Pause"
    assert event["CallDetails"]["Participants"] == [leg_a_json()]


def test_leg_a_hangs_up_on_a_bridged_call_leg_b_stays_and_the_reply_runs():
    tx, b = bridged_call(idle=True)
    cmds = feed(tx, I.LegDisconnected(A, by_remote=True))
    assert not of(cmds, c.Disconnect)                # LEG-B is not hung up automatically
    event = invoked(cmds)
    assert event["ActionData"] == {"Type": "Hangup", "Parameters": {
        "SipResponseCode": 0, "CallId": A, "ParticipantTag": "LEG-A"}}
    assert event["CallDetails"]["Participants"] == [leg_a_json("Disconnected"), leg_b_json(b)]
    cmds = respond(tx, [{"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B"}}])
    assert work(cmds) == [c.Disconnect(b, 0)]
    event = invoked(feed(tx, I.LegDisconnected(b, by_remote=False)))
    assert event["ActionData"]["Parameters"] == {"SipResponseCode": 0, "CallId": b, "ParticipantTag": "LEG-B"}
    assert event["CallDetails"]["Participants"] == [leg_b_json(b, "Disconnected")]   # reading 12
    assert of(respond(tx, []), c.Finished)


def test_play_to_leg_b_after_leg_a_hung_up():
    tx, b = bridged_call(idle=True)
    invoked(feed(tx, I.LegDisconnected(A, by_remote=True)))
    cmds = respond(tx, [play(ParticipantTag="LEG-B")])
    tx.handle(I.AudioReady(of(cmds, c.PrepareAudio)[0].request_id, "/cache/bye.wav", 1.0))
    (p,) = of(tx.drain(), c.Play)
    assert p.call_id == b
    event = invoked(feed(tx, I.PlaybackFinished(b, p.play_id)))
    assert event["CallDetails"]["Participants"] == [leg_b_json(b)]


def _collect_two_events(tx: Transaction, first_cmds: list[Any], b: str) -> dict[str, dict[str, Any]]:
    """The ACTION_SUCCESSFUL of a Hangup of LEG-B and LEG-B's HANGUP, in whichever order."""
    events = [invoked(first_cmds)]
    tx.handle(I.LegDisconnected(b, by_remote=False))
    later = of(tx.drain(), c.Invoke)
    if not later:
        later = of(respond(tx, []), c.Invoke)
    assert len(later) == 1
    events.append(later[0].event)
    by_type = {e["InvocationEventType"]: e for e in events}
    assert set(by_type) == {"ACTION_SUCCESSFUL", "HANGUP"}
    return by_type


@pytest.mark.parametrize("target", ["tag", "tag-lower", "call-id"])
def test_hangup_of_leg_b_keeps_the_call_and_a_new_bridge_works(target):
    # README reading 12.
    tx, b = bridged_call()
    params = {"tag": {"ParticipantTag": "LEG-B", "SipResponseCode": "486"},
              "tag-lower": {"ParticipantTag": "leg-b", "SipResponseCode": 486},
              "call-id": {"CallId": b, "SipResponseCode": "486"}}[target]
    cmds = respond(tx, [{"Type": "Hangup", "Parameters": params}])
    assert of(cmds, c.Disconnect) == [c.Disconnect(b, 486)]
    events = _collect_two_events(tx, cmds, b)
    assert events["ACTION_SUCCESSFUL"]["ActionData"] == {"Type": "Hangup", "Parameters": params}
    hangup = events["HANGUP"]
    assert hangup["ActionData"] == {"Type": "Hangup", "Parameters": {
        "SipResponseCode": 486, "CallId": b, "ParticipantTag": "LEG-B"}}
    assert hangup["CallDetails"]["Participants"] == [leg_a_json(), leg_b_json(b, "Disconnected")]
    # The reply to HANGUP is executed: a new CallAndBridge on LEG-A.
    cmds = respond(tx, [cab(CallerIdNumber=A_TO, Endpoints=[{"BridgeEndpointType": "PSTN",
                                                              "Uri": "+15555550199"}])])
    b2 = dial_of(cmds).call_id
    assert b2 == leg_id(2) and b2 not in (A, b)
    event = invoked(feed(tx, I.LegAnswered(b2, B_START + 5000)))
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert event["ActionData"]["Type"] == "CallAndBridge"
    assert event["CallDetails"]["Participants"] == [
        leg_a_json(), leg_b_json(b2, to="+15555550199", from_=A_TO, start=B_START + 5000)]


def test_reply_to_the_hangup_success_may_bridge_again_before_leg_b_is_gone():
    # README reading 12: the reply to the Hangup's ACTION_SUCCESSFUL is executed, even when
    # it comes before LEG-B's BYE has completed.
    tx, b = bridged_call()
    cmds = respond(tx, [{"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B"}}])
    assert of(cmds, c.Disconnect) == [c.Disconnect(b, 0)]
    assert invoked(cmds)["ActionData"]["Type"] == "Hangup"
    cmds = respond(tx, [cab(Endpoints=[{"BridgeEndpointType": "PSTN", "Uri": "+15555550199"}])])
    assert not of(cmds, c.Invoke)
    b2 = dial_of(cmds).call_id
    assert b2 == leg_id(2)
    hangup = invoked(feed(tx, I.LegDisconnected(b, by_remote=False)))
    assert hangup["InvocationEventType"] == "HANGUP"
    assert hangup["ActionData"]["Parameters"] == {"SipResponseCode": 0, "CallId": b, "ParticipantTag": "LEG-B"}
    assert hangup["CallDetails"]["Participants"] == [leg_a_json(), leg_b_json(b, "Disconnected")]
    assert not of(respond(tx, None), c.Invoke)        # Actions null: the bridge goes on
    event = invoked(feed(tx, I.LegAnswered(b2, B_START + 1)))
    assert event["ActionData"]["Type"] == "CallAndBridge"
    assert event["CallDetails"]["Participants"] == [leg_a_json(), leg_b_json(b2, to="+15555550199",
                                                                            start=B_START + 1)]


def test_hangup_of_leg_b_mid_list_lets_the_list_go_on():
    tx, b = bridged_call()
    cmds = respond(tx, [{"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B"}},
                        {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 300, "ParticipantTag": "LEG-A"}}])
    assert of(cmds, c.Disconnect) == [c.Disconnect(b, 0)]
    assert [t.seconds for t in of(cmds, c.StartTimer)] == [0.3]
    assert not of(cmds, c.Invoke)


def test_hangup_of_leg_a_on_a_bridged_call_succeeds_too():
    tx, b = bridged_call()
    cmds = respond(tx, [{"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-A"}}])
    assert of(cmds, c.Disconnect) == [c.Disconnect(A, 0)]
    assert invoked(cmds)["ActionData"] == {"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-A"}}


@pytest.mark.parametrize("bridged", [False, True])
def test_hangup_naming_an_unknown_call_id_fails(bridged):
    # README reading 15.
    if bridged:
        tx, _ = bridged_call()
    else:
        tx = answered_call()
    params = {"CallId": "call-id-9", "SipResponseCode": "0"}
    cmds = respond(tx, [{"Type": "Hangup", "Parameters": params}])
    assert not of(cmds, c.Disconnect) and not of(cmds, c.Reject)
    event = invoked(cmds)
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert event["ActionData"] == {"Type": "Hangup", "Parameters": params,
                                   "ErrorType": "InvalidActionParameter", "ErrorMessage": MSG_BAD_LEG}


def test_hangup_of_a_leg_b_that_already_hung_up_fails():
    tx, b = bridged_call(idle=True)
    invoked(feed(tx, I.LegDisconnected(b, by_remote=True)))
    for params in ({"CallId": b}, {"ParticipantTag": "LEG-B"}):
        cmds = respond(tx, [{"Type": "Hangup", "Parameters": params}])
        assert not of(cmds, c.Disconnect)
        event = invoked(cmds)
        assert (event["ActionData"]["ErrorType"], event["ActionData"]["ErrorMessage"]) == (
            "InvalidActionParameter", MSG_BAD_LEG)


def test_hangup_of_leg_b_on_a_single_leg_call_fails():
    tx = answered_call()
    event = invoked(respond(tx, [{"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B"}}]))
    assert event["ActionData"]["ErrorMessage"] == MSG_BAD_LEG


def test_the_ringing_leg_b_cannot_be_addressed():
    """LEG-B is not in Participants until it answers: no action can name it yet."""
    tx = answered_call()
    b = dial_of(respond(tx, [cab()])).call_id
    for params in ({"CallId": b}, {"ParticipantTag": "LEG-B"}):
        with pytest.raises(ActionError) as err:
            tx.resolve_leg(params)
        assert err.value.message == MSG_BAD_LEG


# -- actions on LEG-B --------------------------------------------------------------------------

@pytest.mark.parametrize("selector", ["tag", "call-id"])
def test_play_audio_to_leg_b(selector):
    tx, b = bridged_call()
    sel = {"ParticipantTag": "LEG-B"} if selector == "tag" else {"CallId": b}
    cmds = respond(tx, [play("hello.wav", **sel)])
    tx.handle(I.AudioReady(of(cmds, c.PrepareAudio)[0].request_id, "/cache/hello.wav", 1.5))
    cmds = tx.drain()
    assert not of(cmds, c.Answer)
    (p,) = of(cmds, c.Play)
    assert (p.call_id, p.path, p.repeat) == (b, "/cache/hello.wav", 1)
    event = invoked(feed(tx, I.PlaybackFinished(b, p.play_id)))
    assert event["ActionData"] == {"Type": "PlayAudio", "Parameters": {
        "AudioSource": {"Type": "S3", "BucketName": "bucket-name", "Key": "hello.wav"}, **sel, "Repeat": 1}}


def test_send_digits_to_leg_b():
    tx, b = bridged_call()
    cmds = respond(tx, [{"Type": "SendDigits", "Parameters": {"CallId": b, "Digits": "1234#"}}])
    (sd,) = of(cmds, c.SendDigits)
    assert (sd.call_id, sd.digits, sd.tone_ms) == (b, "1234#", 250)
    event = invoked(feed(tx, I.DigitsSent(b, sd.send_id)))
    assert event["ActionData"] == {"Type": "SendDigits", "Parameters": {"CallId": b, "Digits": "1234#"}}


def _gap_timer(cmds: list[Any]) -> str:
    (name,) = {t.name for t in of(cmds, c.StartTimer) if t.seconds == 1.0}
    return name


def test_receive_digits_on_leg_b_reports_digits_of_leg_b_invoked_for_leg_b():
    tx, b = bridged_call()
    params = receive(CallId=b)["Parameters"]
    event = invoked(respond(tx, [{"Type": "ReceiveDigits", "Parameters": params}]))
    assert event["ActionData"] == {"ReceivedDigits": "", "Type": "ReceiveDigits", "Parameters": params}
    assert work(respond(tx, [])) == []
    # Digits from LEG-A do not reach LEG-B's listener.
    assert work(feed(tx, I.Dtmf(A, "9"))) == []
    assert work(feed(tx, I.Dtmf(A, "8"))) == []
    cmds = feed(tx, I.Dtmf(b, "4"))
    cmds += feed(tx, I.Dtmf(b, "2"))
    event = invoked(feed(tx, I.TimerFired(_gap_timer(cmds))))
    assert event["InvocationEventType"] == "DIGITS_RECEIVED"
    assert event["ActionData"] == {"ReceivedDigits": "42", "Type": "ReceiveDigits", "Parameters": params}
    assert event["CallDetails"]["Participants"] == [leg_a_json(), leg_b_json(b)]
    # Invoked for LEG-B (reading 4): an action without CallId/ParticipantTag targets LEG-B.
    cmds = respond(tx, [play("you-said.wav")])
    tx.handle(I.AudioReady(of(cmds, c.PrepareAudio)[0].request_id, "/cache/you-said.wav", 1.0))
    (p,) = of(tx.drain(), c.Play)
    assert p.call_id == b


def test_listeners_on_both_legs_each_get_their_own_digits():
    tx, b = bridged_call()
    event = invoked(respond(tx, [receive(ParticipantTag="LEG-A"), receive(ParticipantTag="LEG-B")]))
    assert event["ActionData"]["Parameters"]["ParticipantTag"] == "LEG-B"      # one event: the last
    assert work(respond(tx, [])) == []
    cmds = feed(tx, I.Dtmf(A, "1")) + feed(tx, I.Dtmf(b, "7")) + feed(tx, I.Dtmf(A, "2")) + feed(tx, I.Dtmf(b, "8"))
    gaps = list(dict.fromkeys(t.name for t in of(cmds, c.StartTimer) if t.seconds == 1.0))
    assert len(gaps) == 2
    first = invoked(feed(tx, I.TimerFired(gaps[0])) + feed(tx, I.TimerFired(gaps[1])))
    second = invoked(respond(tx, []))
    got = {(e["ActionData"]["Parameters"]["ParticipantTag"], e["ActionData"]["ReceivedDigits"])
           for e in (first, second)}
    assert got == {("LEG-A", "12"), ("LEG-B", "78")}


@pytest.mark.parametrize("target", ["A", "B"])
def test_playback_terminator_is_taken_only_from_the_played_leg(target):
    tx, b = bridged_call()
    leg, other = (A, b) if target == "A" else (b, A)
    cmds = respond(tx, [play("long.wav", CallId=leg, PlaybackTerminators=["#"])])
    tx.handle(I.AudioReady(of(cmds, c.PrepareAudio)[0].request_id, "/cache/long.wav", 30.0))
    (p,) = of(tx.drain(), c.Play)
    assert p.call_id == leg
    assert tx.dtmf_wanted(leg) and not tx.dtmf_wanted(other)
    assert work(feed(tx, I.Dtmf(other, "#"))) == []
    cmds = feed(tx, I.Dtmf(leg, "#"))
    assert c.StopPlay(leg, p.play_id) in cmds
    assert invoked(cmds)["InvocationEventType"] == "ACTION_SUCCESSFUL"


def test_digits_of_leg_b_while_it_rings_are_dropped():
    tx = answered_call()
    b = dial_of(respond(tx, [cab()])).call_id
    assert work(feed(tx, I.Dtmf(b, "5"))) == []


def test_media_of_leg_b_without_ringing_is_not_relayed_as_early_media():
    """A 200 OK's SDP may arrive just before the answer: no 183 toward LEG-A for it."""
    tx = new_call()
    cmds = respond(tx, [cab()])
    b = dial_of(cmds).call_id
    assert work(feed(tx, I.MediaReady(b))) == []
    cmds = feed(tx, I.LegAnswered(b, B_START))
    assert c.EarlyMedia(A) not in cmds and c.Answer(A) in cmds
