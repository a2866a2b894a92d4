# Benchmark bridge, written like a Chime SMA Lambda: connect every caller to the carrier;
# when one leg hangs up, hang up the other.
def handler(event, context):
    kind = event["InvocationEventType"]
    legs = event["CallDetails"]["Participants"]
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "CallAndBridge", "Parameters": {
            "CallTimeoutSeconds": 30, "CallerIdNumber": "+15550100000",   # sipp calls as "sipp"
            "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+15550199001"}]}}]}
    if kind == "HANGUP":
        gone = event["ActionData"]["Parameters"]["CallId"]
        rest = [p for p in legs if p["Status"] == "Connected" and p["CallId"] != gone]
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "Hangup", "Parameters": {"CallId": p["CallId"]}} for p in rest[:1]]}
    return {"SchemaVersion": "1.0", "Actions": []}
