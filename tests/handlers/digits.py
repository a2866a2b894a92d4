"""DTMF digit collection, behaviour chosen by the last two digits of the called number."""
from common import call_id, hangup, pause, record, respond, to_number


def audio(key):
    return {"Type": "S3", "BucketName": "prompts", "Key": key}


def receive_digits(cid, regex, gap_ms, flush_ms):
    return {"Type": "ReceiveDigits", "Parameters": {
        "CallId": cid, "InputDigitsRegex": regex, "InBetweenDigitsDurationInMilliseconds": gap_ms,
        "FlushDigitsDurationInMilliseconds": flush_ms}}


def get_digits(cid, prompt, **params):
    return {"Type": "PlayAudioAndGetDigits", "Parameters": {
        "CallId": cid, "AudioSource": audio(prompt), "FailureAudioSource": audio("failure400.wav"), **params}}


def handler(event, context):
    record(event)
    kind = event["InvocationEventType"]
    cid = call_id(event)
    number = to_number(event)[-2:]
    data = event.get("ActionData") or {}
    if kind == "NEW_INBOUND_CALL":
        if number == "01":      # a persistent listener: two reports, then hang up
            return respond([pause(cid, 300), receive_digits(cid, "\\d{2}#$", 1000, 5000)])
        # A short pause first, so the test phone records the prompts from their start.
        if number == "02":      # a 3 s prompt the caller interrupts with 1234#
            return respond([pause(cid, 700), get_digits(
                cid, "prompt3s.wav", InputDigitsRegex="^\\d{4}$", MinNumberOfDigits=3, MaxNumberOfDigits=5,
                TerminatorDigits=["#"], InBetweenDigitsDurationInMilliseconds=2000, Repeat=2,
                RepeatDurationInMilliseconds=3000)])
        if number == "03":      # nobody types: two attempts, failure tone after each
            return respond([pause(cid, 700), get_digits(
                cid, "tone1000.wav", MinNumberOfDigits="1", Repeat="2", RepeatDurationInMilliseconds="1000")])
        if number == "04":      # spoken prompt, two digits (no CallId: the invoked leg, reading 4)
            return respond([{"Type": "SpeakAndGetDigits", "Parameters": {
                "SpeechParameters": {"Text": "Please enter two digits.", "VoiceId": "Joanna"},
                "FailureSpeechParameters": {"Text": "Sorry."},
                "MinNumberOfDigits": 2, "MaxNumberOfDigits": 2, "RepeatDurationInMilliseconds": 4000}}])
        if number == "05":      # sipp plays RFC 2833 "1" then "#" from pcaps
            return respond([pause(cid, 300), receive_digits(cid, "^1#$", 2000, 6000)])
    if kind == "ACTION_SUCCESSFUL":
        if data.get("Type") == "ReceiveDigits":
            return respond([])                  # stay on the line, listening
        return respond([hangup(cid)])
    if kind == "DIGITS_RECEIVED":
        if data.get("ReceivedDigits") in ("34#", "1#"):
            return respond([hangup(cid)])
        return respond([])
    if kind == "ACTION_FAILED":
        return respond([hangup(cid)])
    return respond([])
