"""CallAndBridge flows chosen by the called number, written like a Chime Lambda."""
import os

from common import record, respond

CARRIER_NUMBER = "+15550199001"


def legs(event):
    return {p["ParticipantTag"]: p for p in event["CallDetails"]["Participants"]}


def bridge(event, **extra):
    a = legs(event)["LEG-A"]
    params = {"CallTimeoutSeconds": 20, "CallerIdNumber": a["From"],
              "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": CARRIER_NUMBER}]}
    params.update(extra)
    return {"Type": "CallAndBridge", "Parameters": params}


def hangup(call_id, code="0"):
    return {"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": code}}


def handler(event, context):
    record(event)
    kind = event["InvocationEventType"]
    a = legs(event).get("LEG-A")
    number = a["To"] if a else ""
    if kind == "NEW_INBOUND_CALL":
        if number.endswith("100"):          # plain bridge to the carrier
            return respond([bridge(event)])
        if number.endswith("101"):          # the carrier does not answer in time
            return respond([bridge(event, CallTimeoutSeconds=2)])
        if number.endswith("102"):          # a Voice Connector whose first host is down
            vc = os.environ["CARRIER_VC"]
            return respond([bridge(event, Endpoints=[{
                "BridgeEndpointType": "AWS", "Arn": f"arn:aws:chime:us-east-1:111122223333:vc/{vc}",
                "Uri": "5550"}])])
        if number.endswith("107"):          # a Voice Connector probed with OPTIONS
            return respond([bridge(event, Endpoints=[{
                "BridgeEndpointType": "AWS", "Arn": "arn:aws:chime:us-east-1:111122223333:vc/vc-carrier3",
                "Uri": "5551"}])])
        if number.endswith("108"):          # VoiceFocus on the caller, then bridge
            return respond([{"Type": "VoiceFocus", "Parameters": {"CallId": a["CallId"], "Enable": True}},
                            bridge(event)])
        if number.endswith("109"):          # the same without VoiceFocus
            return respond([bridge(event)])
        if number.endswith("110"):          # bridge to an echoing carrier; see ACTION_SUCCESSFUL
            return respond([bridge(event)])
        if number.endswith("111"):          # a carrier that challenges with digest authentication
            return respond([bridge(event, Endpoints=[{
                "BridgeEndpointType": "AWS", "Arn": "arn:aws:chime:us-east-1:111122223333:vc/vc-carrier-auth",
                "Uri": "5552"}])])
        if number.endswith("103"):          # custom headers and a ringback tone
            return respond([bridge(event, SipHeaders={"X-Ticket": "T-42", "User-to-User": "00ff;encoding=hex"},
                                   RingbackTone={"Type": "S3", "BucketName": "prompts", "Key": "tone400.wav"})])
        if number.endswith("104"):          # a number of this server (README reading 14)
            return respond([bridge(event, Endpoints=[{"BridgeEndpointType": "PSTN", "Uri": "+15550100105"}])])
        if number.endswith("105"):          # the hairpin target: answer with a tone
            cid = a["CallId"]
            return respond([{"Type": "PlayAudio", "Parameters": {
                "CallId": cid, "Repeat": "4",
                "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "tone400.wav"}}}, hangup(cid)])
        if number.endswith("106"):          # a SIP media application of this server
            return respond([bridge(event, Endpoints=[{
                "BridgeEndpointType": "AWS", "Uri": "+15550100105",
                "Arn": f"arn:aws:chime:us-east-1:111122223333:sma/{os.environ['SELF_SMA']}"}])])
    if kind == "ACTION_SUCCESSFUL" and number.endswith("110") and event["ActionData"]["Type"] == "CallAndBridge":
        # Record LEG-B (left: what the carrier sends back, its echo; right: what it is sent),
        # 3 s without VoiceFocus on LEG-A, then 3 s with it.
        b = legs(event)["LEG-B"]["CallId"]
        return respond([{"Type": "StartCallRecording", "Parameters": {
            "CallId": b, "Track": "BOTH", "Destination": {"Type": "S3", "Location": "prompts/vf-delay"}}}])
    if kind == "ACTION_SUCCESSFUL" and number.endswith("110") and event["ActionData"]["Type"] == "StartCallRecording":
        cid = a["CallId"]
        return respond([
            {"Type": "Pause", "Parameters": {"CallId": cid, "DurationInMilliseconds": "3000"}},
            {"Type": "VoiceFocus", "Parameters": {"CallId": cid, "Enable": True}},
            {"Type": "Pause", "Parameters": {"CallId": cid, "DurationInMilliseconds": "3000"}},
            hangup(cid)])
    if kind == "HANGUP":
        gone = event["ActionData"]["Parameters"]
        rest = [p for p in event["CallDetails"]["Participants"]
                if p["Status"] == "Connected" and p["CallId"] != gone["CallId"]]
        return respond([hangup(p["CallId"]) for p in rest[:1]])
    if kind == "ACTION_FAILED" and a is not None:
        return respond([hangup(a["CallId"], "480")])
    return respond([])
