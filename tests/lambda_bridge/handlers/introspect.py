"""Reports what a Lambda function can see: environment, context, cwd, sys.path."""

import os
import sys
import time


def handler(event, context):
    names = event.get("env", [])
    before = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    after = context.get_remaining_time_in_millis()
    return {
        "env": {name: os.environ.get(name) for name in names},
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "identity": context.identity,
            "client_context": context.client_context,
        },
        "remaining_before": before,
        "remaining_after": after,
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "stdin_is_tty": sys.stdin.isatty(),
    }
