"""The handler of the hostile-input suite (tests/test_hostile_sip.py, bench/fuzz_sip.py).

+15550100066: a real call: answer, a long 1000 Hz tone (the caller hangs up).
+15550100001 (and anything else): the target of torture and fuzz INVITEs: reject with 486
without answering, so that thousands of them end at once. Events that carry SIP headers
are recorded ($EVENTS_DIR/<function>.jsonl) so a test can read what the handler saw."""
from common import call_id, hangup, pause, play, record, respond, to_number

REAL_CALL = "+15550100066"


def handler(event, context):
    kind = event["InvocationEventType"]
    cid = call_id(event)
    number = to_number(event)
    if event["CallDetails"]["Participants"][0].get("SipHeaders") or number == REAL_CALL:
        record(event)
    if kind == "NEW_INBOUND_CALL":
        if number == REAL_CALL:
            return respond([pause(cid, 300), play(cid, "tone1000.wav", Repeat="30")])
        return respond([hangup(cid, "486")])
    return respond([])
