"""A handler for API-originated calls (CreateSipMediaApplicationCall), Chime-Lambda style."""
from common import record, respond


def handler(event, context):
    record(event)
    kind = event["InvocationEventType"]
    leg = event["CallDetails"]["Participants"][0]
    cid = leg["CallId"]
    if kind == "NEW_OUTBOUND_CALL":
        return respond([])                   # ignored by the service
    if kind == "CALL_ANSWERED":
        if leg["To"].endswith("01"):         # speak to the callee, then hang up
            return respond([
                {"Type": "Pause", "Parameters": {"CallId": cid, "DurationInMilliseconds": "500"}},
                {"Type": "Speak", "Parameters": {"CallId": cid, "Text": "Hello, this is chimevoice calling you.",
                                                 "Engine": "standard", "LanguageCode": "en-US",
                                                 "VoiceId": "Joanna"}},
                {"Type": "Hangup", "Parameters": {"CallId": cid}}])
        return respond([{"Type": "PlayAudio", "Parameters": {    # hold music until an update
            "CallId": cid, "Repeat": "20", "AudioSource": {"Type": "S3", "BucketName": "prompts",
                                                           "Key": "tone1000.wav"}}}])
    if kind == "CALL_UPDATE_REQUESTED":
        key = event["ActionData"]["Parameters"]["Arguments"].get("Prompt", "tone400.wav")
        return respond([{"Type": "PlayAudio", "Parameters": {
            "CallId": cid, "Repeat": "2", "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": key}}},
            {"Type": "Hangup", "Parameters": {"CallId": cid}}])
    return respond([])
