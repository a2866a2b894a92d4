# Benchmark IVR that also listens for keys: ReceiveDigits, then a looping prompt. sipp's
# calls offer no telephone-event, so every call runs the in-band DTMF detector.
def handler(event, context):
    if event["InvocationEventType"] == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "ReceiveDigits", "Parameters": {
                "InputDigitsRegex": "#$", "InBetweenDigitsDurationInMilliseconds": 1000,
                "FlushDigitsDurationInMilliseconds": 5000}},
            {"Type": "PlayAudio", "Parameters": {
                "Repeat": "100", "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "prompt.wav"}}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
