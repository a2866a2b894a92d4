# Benchmark IVR, written like a Chime SMA Lambda: answer with a looping prompt.
def handler(event, context):
    if event["InvocationEventType"] == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [{
            "Type": "PlayAudio",
            "Parameters": {"Repeat": "100",
                           "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "prompt.wav"}}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
