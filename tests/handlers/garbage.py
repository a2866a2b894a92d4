from common import call_id, hangup, record, respond


def handler(event, context):
    record(event)
    kind = event["InvocationEventType"]
    if kind == "NEW_INBOUND_CALL":
        return "this is not a Chime response"
    if kind == "INVALID_LAMBDA_RESPONSE":
        return respond([hangup(call_id(event), "486")])
    return respond([])
