import os
import time

from common import record, respond


def handler(event, context):
    record(event)
    if event["InvocationEventType"] == "NEW_INBOUND_CALL":
        time.sleep(float(os.environ.get("SLEEP_S", "5")))
    return respond([])
