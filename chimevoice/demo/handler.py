"""Demo IVR for a SIP media application.

Written exactly as an AWS Chime SDK PSTN audio Lambda function would be, so the same file
runs unchanged on AWS Lambda and in chimevoice:

* NEW_INBOUND_CALL: play welcome.wav, play goodbye.wav, hang up.
* ACTION_SUCCESSFUL, ACTION_FAILED, INVALID_LAMBDA_RESPONSE: hang up.
* HANGUP and anything else: no actions.

Environment:

* GREETING_BUCKET (default "demo-prompts") names the bucket that holds the prompts.
* RECORDING_DESTINATION (unset by default): when set, the call is recorded first, both tracks,
  to this S3 location (``bucket`` or ``bucket/prefix``, as StartCallRecording's
  ``Destination.Location``); bench/soak.py turns it on.
"""

import json
import logging
import os

logger = logging.getLogger()
logger.setLevel(logging.INFO)

WELCOME_KEY = "welcome.wav"
GOODBYE_KEY = "goodbye.wav"


def handler(event, context):
    event_type = event.get("InvocationEventType", "")
    logger.info("InvocationEventType: %s", event_type)
    call_id = _call_id(event)

    if event_type == "NEW_INBOUND_CALL":
        bucket = os.environ.get("GREETING_BUCKET", "demo-prompts")
        recording = os.environ.get("RECORDING_DESTINATION")
        actions = [_start_recording(call_id, recording)] if recording else []
        actions += [
            _play_audio(call_id, bucket, WELCOME_KEY),
            _play_audio(call_id, bucket, GOODBYE_KEY),
            _hangup(call_id),
        ]
    elif event_type in ("ACTION_SUCCESSFUL", "ACTION_FAILED", "INVALID_LAMBDA_RESPONSE"):
        if event_type == "ACTION_FAILED":
            action_data = event.get("ActionData") or {}
            logger.info(
                "Action %s failed: %s %s",
                action_data.get("Type"),
                action_data.get("ErrorType"),
                action_data.get("ErrorMessage"),
            )
        actions = [_hangup(call_id)]
    else:
        # HANGUP (and events this demo does not use): nothing more to do.
        actions = []

    response = {"SchemaVersion": "1.0", "Actions": actions}
    logger.info("Response: %s", json.dumps(response))
    return response


def _call_id(event):
    """CallId of the caller's leg (LEG-A), or of the first participant."""
    participants = (event.get("CallDetails") or {}).get("Participants") or []
    for participant in participants:
        if participant.get("ParticipantTag") == "LEG-A":
            return participant.get("CallId")
    if participants:
        return participants[0].get("CallId")
    return None


def _with_call_id(call_id, parameters):
    if call_id:
        return dict({"CallId": call_id}, **parameters)
    return parameters


def _play_audio(call_id, bucket, key):
    return {
        "Type": "PlayAudio",
        "Parameters": _with_call_id(
            call_id,
            {"AudioSource": {"Type": "S3", "BucketName": bucket, "Key": key}},
        ),
    }


def _start_recording(call_id, location):
    return {
        "Type": "StartCallRecording",
        "Parameters": _with_call_id(
            call_id,
            {"Track": "BOTH", "Destination": {"Type": "S3", "Location": location}},
        ),
    }


def _hangup(call_id):
    return {
        "Type": "Hangup",
        "Parameters": _with_call_id(call_id, {"SipResponseCode": "0"}),
    }
