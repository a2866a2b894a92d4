"""Behaviour chosen by the called number, for media tests."""
from common import call_id, hangup, pause, play, record, respond, to_number

# Warm module state, as a Lambda keeps it: the reply of +15550100013 grows at every call.
_GROWING: list = []


def handler(event, context):
    record(event)
    kind = event["InvocationEventType"]
    cid = call_id(event)
    number = to_number(event)
    if number.endswith("13") and kind in ("NEW_INBOUND_CALL", "INVALID_LAMBDA_RESPONSE"):
        # A reply that grew past the 10-action limit, answered the same way every time.
        while len(_GROWING) < 11:
            _GROWING.append(pause(cid, 100))
        return respond(list(_GROWING))
    if kind == "NEW_INBOUND_CALL":
        if number.endswith("05"):      # a tone, then hang up
            return respond([pause(cid, 700), play(cid, "tone1000.wav"), pause(cid), hangup(cid)])
        if number.endswith("06"):      # a long tone a DTMF key can stop, then a short one
            return respond([pause(cid, 700), play(cid, "tone1000.wav", Repeat="20", PlaybackTerminators=["#"]),
                            play(cid, "tone400.wav"), pause(cid)])
        if number.endswith("07"):      # a file that does not exist
            return respond([play(cid, "missing.wav"), hangup(cid)])
        if number.endswith("08"):      # a long tone; the caller hangs up
            return respond([play(cid, "tone1000.wav", Repeat=30), play(cid, "tone400.wav")])
        if number.endswith("10"):      # text-to-speech
            return respond([pause(cid, 700),
                            {"Type": "Speak", "Parameters": {"Text": "Hello from chimevoice.", "VoiceId": "Joanna",
                                                             "Engine": "standard", "LanguageCode": "en-US"}},
                            pause(cid), hangup(cid)])
        if number.endswith("12"):      # a voice Polly does not have
            return respond([{"Type": "Speak", "Parameters": {"Text": "Hi", "VoiceId": "Nobody"}}])
    if kind == "ACTION_SUCCESSFUL" and number.endswith("06"):
        return respond([hangup(cid)])
    if kind == "ACTION_FAILED":
        return respond([hangup(cid, "480")])
    return respond([])
