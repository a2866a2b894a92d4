"""A SIP media application handler in the style of the public Chime SDK PSTN samples: call state in
DynamoDB keyed by TransactionId, the greeting played from S3, a voicemail recorded to S3. It names no
endpoint and no credentials: where its SDK goes is the runtime's business (tests/test_aws_local.py).

Environment: CALL_TABLE (the DynamoDB table), PROMPT_BUCKET (the S3 bucket of prompts and
voicemails). The table's item "config" (seeded from the chimevoice YAML) holds the prompt's key.
"""
import json
import logging
import os
import struct

import boto3
import botocore

logger = logging.getLogger()
logger.setLevel(logging.INFO)

TABLE_NAME = os.environ["CALL_TABLE"]
BUCKET = os.environ["PROMPT_BUCKET"]

dynamodb = boto3.resource("dynamodb")
table = dynamodb.Table(TABLE_NAME)
ddb = boto3.client("dynamodb")
s3 = boto3.client("s3")
polly = boto3.client("polly")


def lambda_handler(event, context):
    logger.info("event %s", json.dumps(event))
    event_type = event["InvocationEventType"]
    transaction_id = event["CallDetails"]["TransactionId"]
    call_id = event["CallDetails"]["Participants"][0]["CallId"]

    if event_type == "NEW_INBOUND_CALL":
        return new_call(transaction_id, call_id, event)
    if event_type == "ACTION_SUCCESSFUL":
        return action_successful(transaction_id, call_id, event["ActionData"])
    if event_type == "HANGUP":
        set_state(transaction_id, "ended")
        return response([])
    if event_type == "ACTION_FAILED":
        set_state(transaction_id, "failed", error=event["ActionData"].get("ErrorMessage", ""))
        return response([hangup(call_id)])
    return response([])


def new_call(transaction_id, call_id, event):
    config = table.get_item(Key={"TransactionId": "config"})["Item"]
    table.put_item(Item={
        "TransactionId": transaction_id,
        "state": "greeting",
        "caller": event["CallDetails"]["Participants"][0]["From"],
        "botocore": botocore.__version__,
        "invocations": 1,
    })
    # how many calls this application has answered: kept in the seeded item
    table.update_item(Key={"TransactionId": "config"}, UpdateExpression="ADD calls :one",
                      ExpressionAttributeValues={":one": 1})
    actions = [
        {"Type": "PlayAudio", "Parameters": {
            "CallId": call_id,
            "AudioSource": {"Type": "S3", "BucketName": BUCKET, "Key": config["prompt_key"]}}},
    ]
    if config.get("tts_text"):
        # text-to-speech the way the samples do it: Polly PCM at 8 kHz, wrapped in a WAV header,
        # written to S3 and played from there
        key = f"tts/{transaction_id}.wav"
        audio = polly.synthesize_speech(Text=config["tts_text"], OutputFormat="pcm", SampleRate="8000",
                                        VoiceId="Joanna")["AudioStream"].read()
        s3.put_object(Bucket=BUCKET, Key=key, Body=wav_header(len(audio)) + audio, ContentType="audio/wav")
        table.update_item(Key={"TransactionId": transaction_id}, UpdateExpression="SET tts_bytes = :n",
                          ExpressionAttributeValues={":n": len(audio)})
        actions.append({"Type": "PlayAudio", "Parameters": {
            "CallId": call_id, "AudioSource": {"Type": "S3", "BucketName": BUCKET, "Key": key}}})
    return response(actions)


def wav_header(data_bytes, rate=8000):
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", data_bytes))


def action_successful(transaction_id, call_id, action_data):
    ddb.update_item(
        TableName=TABLE_NAME,
        Key={"TransactionId": {"S": transaction_id}},
        UpdateExpression="SET invocations = invocations + :one, last_action = :action",
        ExpressionAttributeValues={":one": {"N": "1"}, ":action": {"S": action_data["Type"]}})
    state = table.get_item(Key={"TransactionId": transaction_id})["Item"]["state"]
    if action_data["Type"] == "PlayAudio" and state == "greeting":
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="voicemail/")
        set_state(transaction_id, "recording", voicemails_before=listed.get("KeyCount", 0))
        return response([
            {"Type": "RecordAudio", "Parameters": {
                "CallId": call_id,
                "DurationInSeconds": "2",
                "RecordingDestination": {"Type": "S3", "BucketName": BUCKET, "Prefix": "voicemail/"}}},
        ])
    if action_data["Type"] == "RecordAudio":
        destination = action_data["RecordingDestination"]
        head = s3.head_object(Bucket=destination["BucketName"], Key=destination["Key"])
        set_state(transaction_id, "recorded", recording_key=destination["Key"],
                  recording_bytes=head["ContentLength"])
        return response([hangup(call_id)])
    return response([])


def set_state(transaction_id, state, **extra):
    names = {"#s": "state"}
    values = {":s": state}
    expression = "SET #s = :s"
    for i, (key, value) in enumerate(extra.items()):
        names[f"#a{i}"] = key
        values[f":a{i}"] = value
        expression += f", #a{i} = :a{i}"
    table.update_item(Key={"TransactionId": transaction_id}, UpdateExpression=expression,
                      ExpressionAttributeNames=names, ExpressionAttributeValues=values)


def hangup(call_id):
    return {"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": "0"}}


def response(actions):
    return {"SchemaVersion": "1.0", "Actions": actions}
