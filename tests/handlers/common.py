import json
import os


def record(event):
    path = os.path.join(os.environ["EVENTS_DIR"], os.environ["AWS_LAMBDA_FUNCTION_NAME"] + ".jsonl")
    with open(path, "a") as f:
        f.write(json.dumps(event) + "\n")


def call_id(event):
    return event["CallDetails"]["Participants"][0]["CallId"]


def to_number(event):
    return event["CallDetails"]["Participants"][0]["To"]


def play(cid, key, **extra):
    return {"Type": "PlayAudio", "Parameters": {
        "CallId": cid, "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": key}, **extra}}


def hangup(cid, code="0"):
    return {"Type": "Hangup", "Parameters": {"CallId": cid, "SipResponseCode": code}}


def respond(actions, **extra):
    return {"SchemaVersion": "1.0", "Actions": actions, **extra}


def pause(cid, ms=800):
    return {"Type": "Pause", "Parameters": {"CallId": cid, "DurationInMilliseconds": str(ms)}}
