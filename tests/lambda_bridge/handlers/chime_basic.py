"""A SIP media application handler written exactly like a Chime SDK Lambda."""

import json
import logging
import os

logger = logging.getLogger()
logger.setLevel(logging.INFO)

INVOCATIONS = 0  # module state: persists while the execution environment is warm


def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    logger.info("RECEIVED EVENT: %s", json.dumps(event))
    print(f"print from handler, invocation {INVOCATIONS}")
    event_type = event.get("InvocationEventType")
    call_id = event["CallDetails"]["Participants"][0]["CallId"]
    if event_type == "NEW_INBOUND_CALL":
        actions = [
            {"Type": "Answer", "Parameters": {"CallId": call_id}},
            {
                "Type": "PlayAudio",
                "Parameters": {
                    "CallId": call_id,
                    "AudioSource": {
                        "Type": "S3",
                        "BucketName": os.environ.get("GREETING_BUCKET", "none"),
                        "Key": "welcome.wav",
                    },
                },
            },
        ]
    else:
        actions = [{"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": "0"}}]
    return {
        "SchemaVersion": "1.0",
        "Actions": actions,
        "TransactionAttributes": {"invocations": str(INVOCATIONS), "pid": str(os.getpid())},
    }
