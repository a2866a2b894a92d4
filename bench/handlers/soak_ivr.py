# Soak IVR, written like a Chime SMA Lambda: record the whole call (both tracks), then play a
# looping prompt until the caller hangs up.
RECORDINGS = {"Type": "S3", "Location": "recordings/soak"}
PROMPT = {"Type": "S3", "BucketName": "prompts", "Key": "prompt.wav"}


def _leg_a(event):
    for p in event.get("CallDetails", {}).get("Participants", []):
        if p.get("ParticipantTag") == "LEG-A":
            return p["CallId"]
    return None


def handler(event, context):
    kind, cid = event["InvocationEventType"], _leg_a(event)
    if kind == "NEW_INBOUND_CALL":
        actions = [{"Type": "StartCallRecording",
                    "Parameters": {"CallId": cid, "Track": "BOTH", "Destination": RECORDINGS}}]
    elif kind == "ACTION_SUCCESSFUL" and event["ActionData"]["Type"] == "StartCallRecording":
        actions = [{"Type": "PlayAudio", "Parameters": {"CallId": cid, "Repeat": "100", "AudioSource": PROMPT}}]
    elif kind == "ACTION_FAILED":
        actions = [{"Type": "Hangup", "Parameters": {"CallId": cid, "SipResponseCode": "0"}}]
    else:
        actions = []
    return {"SchemaVersion": "1.0", "Actions": actions}
