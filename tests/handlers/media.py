"""SendDigits, RecordAudio, call recording and VoiceFocus, chosen by the called number."""
import os

from common import call_id, hangup, pause, play, record, respond, to_number

BUCKET = os.environ.get("PROMPT_BUCKET", "prompts")


def send(cid, digits, **extra):
    return {"Type": "SendDigits", "Parameters": {"CallId": cid, "Digits": digits, **extra}}


def record_audio(cid, **extra):
    return {"Type": "RecordAudio", "Parameters": {
        "CallId": cid, "RecordingDestination": {"Type": "S3", "BucketName": BUCKET, "Prefix": "rec/"}, **extra}}


def recording(kind, cid, **extra):
    return {"Type": kind, "Parameters": {"CallId": cid, **extra}}


def handler(event, context):
    record(event)
    kind = event["InvocationEventType"]
    cid = call_id(event)
    n = to_number(event)[-2:]
    if kind == "NEW_INBOUND_CALL":
        if n == "01":       # SendDigits, then hang up
            return respond([pause(cid, 1000), send(cid, "1,2#", ToneDurationInMilliseconds="150"),
                            pause(cid, 500), hangup(cid)])
        if n == "02":       # RecordAudio, 2 s at most
            return respond([pause(cid, 300), record_audio(cid, DurationInSeconds="2", RecordingTerminators=["#"])])
        if n == "03":       # RecordAudio stopped by silence
            return respond([record_audio(cid, SilenceDurationInSeconds=1, SilenceThreshold=100,
                                         DurationInSeconds=10)])
        if n == "04":       # call recording BOTH around a prompt
            return respond([recording("StartCallRecording", cid, Track="BOTH",
                                      Destination={"Type": "S3", "Location": f"{BUCKET}/calls"})])
        if n == "05":       # in-band DTMF from a phone without RFC 4733
            return respond([{"Type": "ReceiveDigits", "Parameters": {
                "CallId": cid, "InputDigitsRegex": "^\\d{3}#$", "InBetweenDigitsDurationInMilliseconds": 1000,
                "FlushDigitsDurationInMilliseconds": 5000}}, pause(cid, 8000), hangup(cid)])
        if n == "06":       # VoiceFocus on, then record what the caller says
            return respond([{"Type": "VoiceFocus", "Parameters": {"CallId": cid, "Enable": True}},
                            record_audio(cid, DurationInSeconds="3")])
        if n == "07":       # record without VoiceFocus
            return respond([record_audio(cid, DurationInSeconds="3")])
        if n == "08":       # bad parameters
            return respond([send(cid, "12x")])
        if n == "10":       # SSML that is not well-formed
            return respond([{"Type": "Speak", "Parameters": {
                "CallId": cid, "Text": "<speak><prosody rate='fast'>Hello</speak>", "TextType": "ssml",
                "VoiceId": "Joanna"}}])
        if n == "11":       # Speak with valid SSML and no CallId (reading 4)
            # (the test phone drops the first 0.5 s it receives, whoever sends: pause first)
            return respond([pause(cid, 700), {"Type": "Speak", "Parameters": {
                "Text": "<speak>Hello <break time='300ms'/> caller.</speak>", "TextType": "ssml"}},
                pause(cid, 300), hangup(cid)])
        if n == "12":       # call recording of the caller while a key is pressed (RFC 4733)
            return respond([recording("StartCallRecording", cid, Track="INCOMING",
                                      Destination={"Type": "S3", "Location": f"{BUCKET}/keys"}),
                            pause(cid, 3000), recording("StopCallRecording", cid), hangup(cid)])
        if n == "13":       # a bucket the server does not have
            return respond([{"Type": "RecordAudio", "Parameters": {
                "CallId": cid, "RecordingDestination": {"Type": "S3", "BucketName": "no-such-bucket"}}}])
        if n == "09":       # a long recording (killed mid-way by the test)
            return respond([record_audio(cid, DurationInSeconds="30")])
    if kind == "ACTION_SUCCESSFUL" and event["ActionData"]["Type"] == "StartCallRecording":
        if event["ActionData"]["Parameters"].get("Track") == "BOTH":
            return respond([pause(cid, 500), play(cid, "tone400.wav"),
                            recording("PauseCallRecording", cid), pause(cid, 1000),
                            recording("ResumeCallRecording", cid), pause(cid, 500),
                            recording("StopCallRecording", cid), hangup(cid)])
    if kind == "ACTION_SUCCESSFUL" and event["ActionData"]["Type"] == "RecordAudio":
        return respond([hangup(cid)])
    if kind == "DIGITS_RECEIVED":
        return respond([hangup(cid)])
    if kind == "ACTION_FAILED":
        return respond([hangup(cid)])
    return respond([])
