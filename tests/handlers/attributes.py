from common import call_id, hangup, record, respond

STATE = {"step": "menu", "nested": {"tries": 2, "path": ["a", "b"]}, "unicode": "caf\u00e9"}


def handler(event, context):
    record(event)
    kind = event["InvocationEventType"]
    cid = call_id(event)
    if kind == "NEW_INBOUND_CALL":
        return respond([{"Type": "Pause", "Parameters": {"CallId": cid, "DurationInMilliseconds": "300"}}],
                       TransactionAttributes=STATE)
    if kind == "ACTION_SUCCESSFUL":
        stored = event["CallDetails"].get("TransactionAttributes")
        if stored == STATE:
            return respond([hangup(cid, "0")], TransactionAttributes={})
        return respond([hangup(cid, "486")])
    return respond([])
