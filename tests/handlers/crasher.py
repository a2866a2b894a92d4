from common import record


def handler(event, context):
    record(event)
    raise RuntimeError("database unavailable")
