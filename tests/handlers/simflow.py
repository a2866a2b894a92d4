"""A flow for ``chimevoice simulate`` tests: prompt (Repeat 2), a long Pause, PlayAudioAndGetDigits,
then ReceiveDigits during a Pause until the caller hangs up. SIMFLOW_PAUSE_MS and SIMFLOW_TAIL_MS set
the pauses (default 30000); a called number ending in 07 plays a file that does not exist."""
import os

from common import call_id, hangup, pause, play, record, respond, to_number


def handler(event, context):
    record(event)
    kind = event["InvocationEventType"]
    cid = call_id(event)
    pause_ms = int(os.environ.get("SIMFLOW_PAUSE_MS", "30000"))
    tail_ms = int(os.environ.get("SIMFLOW_TAIL_MS", "30000"))
    if kind == "NEW_INBOUND_CALL":
        if to_number(event).endswith("07"):
            return respond([play(cid, "missing.wav"), hangup(cid)])
        return respond([
            play(cid, "welcome.wav", Repeat=2),
            pause(cid, pause_ms),
            {"Type": "PlayAudioAndGetDigits", "Parameters": {
                "CallId": cid, "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "prompt.wav"},
                "FailureAudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "welcome.wav"},
                "MinNumberOfDigits": 2, "MaxNumberOfDigits": 2, "Repeat": 2,
                "InBetweenDigitsDurationInMilliseconds": 2000, "RepeatDurationInMilliseconds": 3000}},
        ])
    if kind == "ACTION_SUCCESSFUL" and event["ActionData"]["Type"] == "PlayAudioAndGetDigits":
        return respond([
            {"Type": "ReceiveDigits", "Parameters": {
                "CallId": cid, "InputDigitsRegex": "^\\d{2}#$", "InBetweenDigitsDurationInMilliseconds": 1000,
                "FlushDigitsDurationInMilliseconds": 5000}},
            pause(cid, tail_ms),
        ])
    if kind == "ACTION_FAILED":
        return respond([hangup(cid, "480")])
    return respond([])
