"""Calls that stay up for the live-view tests (tests/test_status_calls.py): a long tone, or a
bridge to the carrier phone (LEG-B) for numbers ending in 3."""
from common import hangup, play, respond

CARRIER_NUMBER = "+15550199001"


def handler(event, context):
    kind = event["InvocationEventType"]
    parts = event["CallDetails"]["Participants"]
    a = next((p for p in parts if p["ParticipantTag"] == "LEG-A"), None)
    if kind == "NEW_INBOUND_CALL":
        if a["To"].endswith("3"):
            return respond([{"Type": "CallAndBridge", "Parameters": {
                "CallTimeoutSeconds": 20, "CallerIdNumber": a["From"],
                "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": CARRIER_NUMBER}]}}])
        return respond([play(a["CallId"], "tone1000.wav", Repeat="30")])
    if kind == "HANGUP":
        gone = event["ActionData"]["Parameters"]["CallId"]
        rest = [p for p in parts if p["Status"] == "Connected" and p["CallId"] != gone]
        return respond([hangup(p["CallId"]) for p in rest[:1]])
    if kind == "ACTION_FAILED" and a is not None:
        return respond([hangup(a["CallId"], "480")])
    return respond([])
