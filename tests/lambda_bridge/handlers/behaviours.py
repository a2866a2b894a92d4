"""Handlers that misbehave in the ways a real Lambda function can."""

import asyncio
import ctypes
import decimal
import os
import time


class CallNotFound(Exception):
    pass


def fail(event, context):
    raise CallNotFound(f"no call {event.get('call_id')}")


def sleep(event, context):
    time.sleep(event.get("seconds", 30))
    return {"slept": event.get("seconds", 30)}


def crash(event, context):
    how = event.get("how")
    if how == "segv":
        ctypes.string_at(0)  # SIGSEGV
    if how == "exit":
        os._exit(int(event.get("code", 1)))
    return {"pid": os.getpid()}


def unserialisable(event, context):
    return {"Actions": {1, 2, 3}}


def decimals(event, context):
    return {"int": decimal.Decimal("3"), "frac": decimal.Decimal("1.5")}


def null(event, context):
    return None


def empty_string(event, context):
    return ""


def raw_bytes(event, context):
    return event.get("raw", "").encode()


def pid(event, context):
    return {"pid": os.getpid()}


def allocate(event, context):
    size = int(event.get("mb", 0)) * 1024 * 1024
    blob = b"\x01" * size  # really touched, so it counts in RSS
    return {"pid": os.getpid(), "allocated": len(blob)}


def slow_first_time(event, context):
    """Sleeps on the first call in each process that finds no marker file; the
    marker makes every later call (any process) answer at once."""
    marker = event["marker"]
    if not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(event.get("seconds", 1.0))
        return {"pid": os.getpid(), "slow": True}
    return {"pid": os.getpid(), "slow": False}


async def async_handler(event, context):
    await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    # one event loop per worker: the same loop object on every invocation
    return {"async": True, "loop_id": id(loop), "request_id": context.aws_request_id}


def spawn_child(event, context):
    import subprocess

    child = subprocess.Popen(["sleep", "30"])  # inherits the worker's stdout/stderr
    if event.get("then_exit"):
        with open(event["then_exit"], "w") as fh:
            fh.write(str(child.pid))
        os._exit(2)
    return {"pid": os.getpid(), "child": child.pid}


def echo(event, context):
    return event
