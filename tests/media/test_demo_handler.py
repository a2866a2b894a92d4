import ast
import copy
import inspect
import json
import logging

import pytest

from chimevoice.demo import handler as demo

CALL_ID = "c70f341a-adde-4406-9dea-1e01d34d033d"


def event(event_type, **extra):
    ev = {
        "SchemaVersion": "1.0",
        "Sequence": 1,
        "InvocationEventType": event_type,
        "CallDetails": {
            "TransactionId": "transaction-id",
            "AwsAccountId": "111122223333",
            "AwsRegion": "us-east-1",
            "SipRuleId": "sip-rule-id",
            "SipMediaApplicationId": "sip-application-id",
            "Participants": [
                {
                    "CallId": CALL_ID,
                    "ParticipantTag": "LEG-A",
                    "To": "+15550100000",
                    "From": "+15105550101",
                    "Direction": "Inbound",
                    "StartTimeInMilliseconds": "1597009588342",
                    "Status": "Connected",
                }
            ],
        },
    }
    ev.update(extra)
    return ev


HANGUP_RESPONSE = {
    "SchemaVersion": "1.0",
    "Actions": [{"Type": "Hangup", "Parameters": {"CallId": CALL_ID, "SipResponseCode": "0"}}],
}


def welcome_response(bucket):
    return {
        "SchemaVersion": "1.0",
        "Actions": [
            {
                "Type": "PlayAudio",
                "Parameters": {
                    "CallId": CALL_ID,
                    "AudioSource": {"Type": "S3", "BucketName": bucket, "Key": "welcome.wav"},
                },
            },
            {
                "Type": "PlayAudio",
                "Parameters": {
                    "CallId": CALL_ID,
                    "AudioSource": {"Type": "S3", "BucketName": bucket, "Key": "goodbye.wav"},
                },
            },
            {"Type": "Hangup", "Parameters": {"CallId": CALL_ID, "SipResponseCode": "0"}},
        ],
    }


def test_new_inbound_call_default_bucket(monkeypatch):
    monkeypatch.delenv("GREETING_BUCKET", raising=False)
    assert demo.handler(event("NEW_INBOUND_CALL"), None) == welcome_response("demo-prompts")


def test_new_inbound_call_bucket_from_environment(monkeypatch):
    monkeypatch.setenv("GREETING_BUCKET", "my-prompts")
    assert demo.handler(event("NEW_INBOUND_CALL"), None) == welcome_response("my-prompts")


def test_new_inbound_call_records_first_when_a_destination_is_set(monkeypatch):
    monkeypatch.setenv("GREETING_BUCKET", "my-prompts")
    monkeypatch.setenv("RECORDING_DESTINATION", "recordings/soak")
    resp = demo.handler(event("NEW_INBOUND_CALL"), None)
    assert resp["Actions"][0] == {
        "Type": "StartCallRecording",
        "Parameters": {
            "CallId": CALL_ID,
            "Track": "BOTH",
            "Destination": {"Type": "S3", "Location": "recordings/soak"},
        },
    }
    assert resp["Actions"][1:] == welcome_response("my-prompts")["Actions"]
    monkeypatch.delenv("RECORDING_DESTINATION")
    assert demo.handler(event("NEW_INBOUND_CALL"), None) == welcome_response("my-prompts")


def test_response_is_plain_json():
    resp = demo.handler(event("NEW_INBOUND_CALL"), None)
    assert json.loads(json.dumps(resp)) == resp


@pytest.mark.parametrize(
    "ev",
    [
        event("ACTION_SUCCESSFUL", ActionData={"Type": "PlayAudio", "Parameters": {}}),
        event(
            "ACTION_FAILED",
            ActionData={
                "Type": "PlayAudio",
                "Parameters": {},
                "ErrorType": "InvalidAudioSource",
                "ErrorMessage": "Audio Source parameter value is invalid.",
            },
        ),
        event(
            "INVALID_LAMBDA_RESPONSE",
            ErrorType="TransactionAttributesInvalidMapSize",
            ErrorMessage="Transaction Attributes has too many mappings.",
        ),
    ],
    ids=["ACTION_SUCCESSFUL", "ACTION_FAILED", "INVALID_LAMBDA_RESPONSE"],
)
def test_hang_up_after_action_events(ev):
    assert demo.handler(ev, None) == HANGUP_RESPONSE


def test_hangup_event_returns_no_actions():
    ev = event(
        "HANGUP",
        ActionData={
            "Type": "Hangup", "Parameters": {"SipResponseCode": 0, "CallId": CALL_ID, "ParticipantTag": "LEG-A"}
        },
    )
    ev["CallDetails"]["Participants"][0]["Status"] = "Disconnected"
    assert demo.handler(ev, None) == {"SchemaVersion": "1.0", "Actions": []}


@pytest.mark.parametrize("event_type", ["CALL_ANSWERED", "RINGING", "DIGITS_RECEIVED", "SOMETHING_NEW"])
def test_other_events_return_no_actions(event_type):
    assert demo.handler(event(event_type), None) == {"SchemaVersion": "1.0", "Actions": []}


def test_uses_leg_a_call_id_when_two_legs():
    ev = event("ACTION_FAILED", ActionData={"Type": "PlayAudio", "Parameters": {}})
    ev["CallDetails"]["Participants"].insert(
        0, {"CallId": "leg-b-id", "ParticipantTag": "LEG-B", "Direction": "Outbound", "Status": "Connected"}
    )
    assert demo.handler(ev, None) == HANGUP_RESPONSE


def test_event_is_not_modified():
    ev = event("NEW_INBOUND_CALL")
    before = copy.deepcopy(ev)
    demo.handler(ev, None)
    assert ev == before


def test_logs_event_type(caplog):
    with caplog.at_level(logging.INFO):
        demo.handler(event("NEW_INBOUND_CALL"), None)
    assert any("NEW_INBOUND_CALL" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)
    assert logging.getLogger().level == logging.INFO


def test_written_like_a_lambda_function():
    tree = ast.parse(inspect.getsource(demo))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    from_imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported == {"json", "logging", "os"} and not from_imports  # no chimevoice imports
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler")
    assert [a.arg for a in fn.args.args] == ["event", "context"]
