"""Bridges each call to the Voice Connector its called number names (env BRIDGE_VCS, JSON
{"+1555...": "vc-id"}), as a Chime Lambda forwarding callers to an encrypted trunk would;
other numbers hear tone1000.wav, then the call is hung up."""
import json
import os

from common import hangup, play, record, respond


def handler(event, context):
    record(event)
    kind = event["InvocationEventType"]
    legs = {p["ParticipantTag"]: p for p in event["CallDetails"]["Participants"]}
    a = legs.get("LEG-A")
    if kind == "NEW_INBOUND_CALL":
        vc = json.loads(os.environ["BRIDGE_VCS"]).get(a["To"])
        if vc is None:
            return respond([play(a["CallId"], "tone1000.wav"), hangup(a["CallId"])])
        return respond([{"Type": "CallAndBridge", "Parameters": {
            "CallTimeoutSeconds": 10, "CallerIdNumber": a["From"],
            "Endpoints": [{"BridgeEndpointType": "AWS", "Uri": "5550",
                           "Arn": f"arn:aws:chime:us-east-1:111122223333:vc/{vc}"}]}}])
    if kind == "ACTION_FAILED" and a is not None:
        return respond([hangup(a["CallId"])])
    if kind == "HANGUP":                   # one side hung up: hang up the other, as the samples do
        rest = [p for p in legs.values() if p["Status"] != "Disconnected"]
        return respond([hangup(p["CallId"]) for p in rest])
    return respond([])
