# A SIP media application handler written exactly like a Chime PSTN audio Lambda.
# It also appends every event it receives to $EVENTS_DIR/<function name>.jsonl so
# tests can assert the exact sequence of events.
import json
import logging
import os

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def _record(event):
    path = os.path.join(os.environ["EVENTS_DIR"], os.environ["AWS_LAMBDA_FUNCTION_NAME"] + ".jsonl")
    with open(path, "a") as f:
        f.write(json.dumps(event) + "\n")


def handler(event, context):
    _record(event)
    logger.info("event %s", event["InvocationEventType"])
    call_id = event["CallDetails"]["Participants"][0]["CallId"]
    if event["InvocationEventType"] == "NEW_INBOUND_CALL":
        return {
            "SchemaVersion": "1.0",
            "Actions": [
                {"Type": "Pause", "Parameters": {"CallId": call_id, "DurationInMilliseconds": "700"}},
                {"Type": "PlayAudio",
                 "Parameters": {"CallId": call_id,
                                "AudioSource": {"Type": "S3", "BucketName": os.environ["PROMPT_BUCKET"],
                                                "Key": "greeting.wav"}}},
                # Let the caller's jitter buffer play out the end of the prompt.
                {"Type": "Pause", "Parameters": {"CallId": call_id, "DurationInMilliseconds": "800"}},
                {"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": "0"}},
            ],
        }
    return {"SchemaVersion": "1.0", "Actions": []}
