import time

time.sleep(30)  # a cold start that never ends


def handler(event, context):
    return {}
