"""python handlers: real worker processes running handler files written like Chime Lambdas."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from lambda_bridge import (
    HandlerFailed,
    HandlerTimeout,
    HandlerUnreachable,
    InvalidHandlerOutput,
    Invoker,
)

from .conftest import HANDLERS_DIR, pid_alive, pid_exists, wait_until


def new_call_event(call_id: str = "call-1", event_type: str = "NEW_INBOUND_CALL") -> dict:
    return {
        "SchemaVersion": "1.0",
        "Sequence": 1,
        "InvocationEventType": event_type,
        "CallDetails": {
            "TransactionId": "tx-1",
            "AwsAccountId": "111122223333",
            "AwsRegion": "us-east-1",
            "SipMediaApplicationId": "sma-1",
            "Participants": [
                {
                    "CallId": call_id,
                    "ParticipantTag": "LEG-A",
                    "To": "+15550100000",
                    "From": "+15550199999",
                    "Direction": "Inbound",
                    "StartTimeInMilliseconds": "1700000000000",
                }
            ],
        },
    }


async def test_chime_handler_round_trip_and_warm_state(make_invoker, logger):
    inv = make_invoker(
        target="chime_basic:handler", function_name="demo-ivr",
        environment={"GREETING_BUCKET": "prompts-bucket"},
    )
    assert isinstance(inv, Invoker)
    first = await inv.invoke(new_call_event("abc"), log_context={"transaction_id": "tx-1"})
    assert first["SchemaVersion"] == "1.0"
    assert first["Actions"][0] == {"Type": "Answer", "Parameters": {"CallId": "abc"}}
    assert first["Actions"][1]["Parameters"]["AudioSource"]["BucketName"] == "prompts-bucket"
    assert first["TransactionAttributes"]["invocations"] == "1"

    second = await inv.invoke(new_call_event("abc", "HANGUP"))
    assert second["Actions"] == [
        {"Type": "Hangup", "Parameters": {"CallId": "abc", "SipResponseCode": "0"}}
    ]
    # module-level counter persisted: same warm execution environment
    assert second["TransactionAttributes"]["invocations"] == "2"
    assert second["TransactionAttributes"]["pid"] == first["TransactionAttributes"]["pid"]


async def test_print_and_logging_are_captured_with_request_id(make_invoker, logger):
    inv = make_invoker(target="chime_basic:handler", function_name="demo-ivr")
    await inv.invoke(new_call_event("log-call"), log_context={"transaction_id": "tx-42"})
    outputs = logger.events("handler_output")
    printed = [r for r in outputs if r["line"] == "print from handler, invocation 1"]
    assert len(printed) == 1
    request_id = printed[0]["aws_request_id"]
    uuid.UUID(request_id)  # a real uuid
    assert printed[0]["function_name"] == "demo-ivr"
    assert printed[0]["transaction_id"] == "tx-42"
    assert printed[0]["stream"] == "stdout"
    # logging.getLogger().setLevel(INFO); logger.info(...) in Lambda's format
    logged = [r for r in outputs if "RECEIVED EVENT" in r["line"]]
    assert len(logged) == 1
    fields = logged[0]["line"].split("\t")
    assert fields[0] == "[INFO]"
    assert fields[1].endswith("Z") and fields[1][:4].isdigit()
    assert fields[2] == request_id
    assert '"CallId": "log-call"' in fields[3]
    # the protocol never leaks into the logs
    assert not any("\x00" in r["line"] for r in outputs)


async def test_lambda_environment_and_custom_environment(make_invoker):
    inv = make_invoker(
        target="introspect:handler",
        function_name="env-fn",
        aws_region="eu-central-1",
        memory_limit_mb=384,
        environment={"GREETING": "hello", "AWS_LAMBDA_FUNCTION_VERSION": "7", "PORT": 8080},
    )
    names = [
        "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_EXECUTION_ENV",
        "LAMBDA_TASK_ROOT", "GREETING", "PORT", "TZ",
    ]
    out = await inv.invoke({"env": names})
    env = out["env"]
    assert env["AWS_REGION"] == "eu-central-1"
    assert env["AWS_DEFAULT_REGION"] == "eu-central-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "env-fn"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "7"  # cfg.environment wins
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "384"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/env-fn"
    assert "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["LAMBDA_TASK_ROOT"] == str(HANDLERS_DIR)
    assert env["GREETING"] == "hello"
    assert env["PORT"] == "8080"
    assert env["TZ"] == ":UTC"
    assert out["cwd"] == str(HANDLERS_DIR)
    assert out["stdin_is_tty"] is False


async def test_context_object(make_invoker, logger):
    inv = make_invoker(
        target="introspect:handler", function_name="ctx-fn", aws_region="us-west-2",
        aws_account_id="999988887777", memory_limit_mb=512, timeout_s=10.0,
    )
    out = await inv.invoke({})
    ctx = out["context"]
    uuid.UUID(ctx["aws_request_id"])
    assert ctx["function_name"] == "ctx-fn"
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == "arn:aws:lambda:us-west-2:999988887777:function:ctx-fn"
    assert ctx["memory_limit_in_mb"] == "512"
    assert ctx["log_group_name"] == "/aws/lambda/ctx-fn"
    assert ctx["log_stream_name"].endswith(ctx["log_stream_name"].split("]")[-1])
    assert ctx["identity"] is None and ctx["client_context"] is None
    # counts down from the 10 s deadline
    assert 8000 < out["remaining_before"] <= 10000
    assert out["remaining_after"] < out["remaining_before"]
    again = await inv.invoke({})
    assert again["context"]["aws_request_id"] != ctx["aws_request_id"]


async def test_lambda_style_handler_name(make_invoker):
    inv = make_invoker(target="lambda_style.lambda_handler")
    assert await inv.invoke({}) == {"SchemaVersion": "1.0", "Actions": [], "style": "lambda"}


async def test_async_handler_runs_on_one_loop_per_worker(make_invoker):
    inv = make_invoker(target="behaviours:async_handler", workers=1)
    a = await inv.invoke({})
    b = await inv.invoke({})
    assert a["async"] is True and b["async"] is True
    assert a["loop_id"] == b["loop_id"]
    assert a["request_id"] != b["request_id"]


async def test_exception_is_handler_failed_and_worker_survives(make_invoker, logger):
    inv = make_invoker(target="behaviours:fail", workers=1)
    with pytest.raises(HandlerFailed) as info:
        await inv.invoke({"call_id": "c-9"})
    assert info.value.kind == "error"
    assert info.value.error_type == "CallNotFound"
    assert info.value.error_message == "no call c-9"
    errors = logger.events("handler_error")
    assert len(errors) == 1
    assert "Traceback" not in errors[0]["stack_trace"]  # frames, like Lambda's stackTrace
    assert "behaviours.py" in errors[0]["stack_trace"] and "raise CallNotFound" in errors[0]["stack_trace"]
    started = len(logger.events("handler_worker_started"))
    with pytest.raises(HandlerFailed):
        await inv.invoke({"call_id": "c-10"})
    assert len(logger.events("handler_worker_started")) == started == 1


async def test_output_values(make_invoker):
    assert await make_invoker(target="behaviours:null").invoke({}) is None
    assert await make_invoker(target="behaviours:empty_string").invoke({}) == ""
    assert await make_invoker(target="behaviours:decimals").invoke({}) == {"int": 3, "frac": 1.5}
    raw = make_invoker(target="behaviours:raw_bytes")
    assert await raw.invoke({"raw": '{"Actions": []}'}) == {"Actions": []}
    with pytest.raises(InvalidHandlerOutput):
        await raw.invoke({"raw": "not json"})


async def test_unserialisable_return_is_invalid_output(make_invoker):
    inv = make_invoker(target="behaviours:unserialisable")
    with pytest.raises(InvalidHandlerOutput) as info:
        await inv.invoke({})
    assert info.value.kind == "invalid_output"
    assert "set" in info.value.message and "not JSON serializable" in info.value.message


async def test_missing_module_and_missing_function_are_unreachable(make_invoker):
    inv = make_invoker(target="no_such_module_here:handler", function_name="ghost")
    with pytest.raises(HandlerUnreachable) as info:
        await inv.invoke({})
    assert info.value.kind == "unreachable"
    assert "no_such_module_here" in info.value.message
    assert "Runtime.ImportModuleError" in info.value.message

    inv = make_invoker(target="chime_basic:no_such_function")
    with pytest.raises(HandlerUnreachable) as info:
        await inv.invoke({})
    assert "no_such_function" in info.value.message and "chime_basic" in info.value.message
    assert "Runtime.HandlerNotFound" in info.value.message

    inv = make_invoker(target="broken_import:handler")
    with pytest.raises(HandlerUnreachable) as info:
        await inv.invoke({})
    assert "module_that_does_not_exist_anywhere" in info.value.message


async def test_timeout_kills_workers_and_loop_stays_responsive(make_invoker, logger):
    sleeper = make_invoker(
        target="behaviours:sleep", function_name="sleeper", timeout_s=1.0, retry_after_s=0.3
    )
    other = make_invoker(target="chime_basic:handler", function_name="other-app")
    await other.invoke(new_call_event())  # warm, so its answer below is quick

    loop = asyncio.get_running_loop()
    lags: list[float] = []

    async def ticker():
        while True:
            t = loop.time()
            await asyncio.sleep(0.02)
            lags.append(loop.time() - t - 0.02)

    tick = asyncio.ensure_future(ticker())
    started = time.monotonic()
    slow = asyncio.ensure_future(sleeper.invoke({"seconds": 30}))
    await asyncio.sleep(0.4)  # the sleeper is busy, and its retry too
    answer = await other.invoke(new_call_event("meanwhile"))
    answered_at = time.monotonic() - started
    with pytest.raises(HandlerTimeout) as info:
        await slow
    elapsed = time.monotonic() - started
    tick.cancel()

    assert info.value.kind == "timeout"
    assert answer["Actions"][0]["Parameters"]["CallId"] == "meanwhile"
    assert answered_at < 0.9
    assert 0.95 <= elapsed < 1.5
    assert max(lags) < 0.2
    # one retry was started, and both busy workers were SIGKILLed at the deadline
    assert len([r for r in logger.events("handler_retry") if r["function_name"] == "sleeper"]) == 1
    killed = [r["pid"] for r in logger.events("handler_worker_killed")]
    assert len(killed) == 2
    assert await wait_until(lambda: not any(pid_exists(p) for p in killed))

    # the pool replaces them lazily
    fast = await sleeper.invoke({"seconds": 0})
    assert fast == {"slept": 0}


async def test_crash_is_exit_error_then_next_invocation_works(make_invoker, logger):
    inv = make_invoker(target="behaviours:crash", workers=1)
    first = await inv.invoke({})
    with pytest.raises(HandlerFailed) as info:
        await inv.invoke({"how": "exit", "code": 3})
    assert info.value.kind == "error"
    assert info.value.error_type == "Runtime.ExitError"
    assert "Runtime exited with error: exit status 3" in info.value.error_message
    # the next invocation works again, on a fresh worker
    second = await inv.invoke({})
    assert second["pid"] != first["pid"]
    with pytest.raises(HandlerFailed) as info:
        await inv.invoke({"how": "segv"})
    assert info.value.error_type == "Runtime.ExitError"
    assert "signal: segmentation fault" in info.value.error_message
    third = await inv.invoke({})
    assert third["pid"] not in (first["pid"], second["pid"])
    # crashes are answers: not retried
    assert logger.events("handler_retry") == []
    exits = logger.events("handler_worker_exited")
    assert [r["returncode"] for r in exits] == [3, -11]
    assert all(r["during_invocation"] for r in exits)
    assert not pid_exists(first["pid"]) and not pid_exists(second["pid"])


async def test_retry_answers_when_first_attempt_is_slow(make_invoker, logger, tmp_path):
    inv = make_invoker(
        target="behaviours:slow_first_time", workers=1, timeout_s=3.0, retry_after_s=0.3
    )
    marker = tmp_path / "marker"
    started = time.monotonic()
    answer = await inv.invoke({"marker": str(marker), "seconds": 1.0})
    elapsed = time.monotonic() - started
    assert answer["slow"] is False  # the retry's answer won
    loser = int(marker.read_text())
    assert loser != answer["pid"]  # ...from a second (extra) worker
    assert 0.3 <= elapsed < 0.9
    assert len(logger.events("handler_retry")) == 1
    # the losing worker finishes before the deadline and is not killed; the
    # pool goes back to its limit of one worker: the first worker released
    # above the limit (the retry's) is retired gracefully
    assert await wait_until(lambda: not pid_exists(answer["pid"]), timeout=3.0)
    assert logger.events("handler_worker_killed") == []
    assert logger.events("handler_worker_exited") == []
    assert pid_alive(loser)
    await asyncio.sleep(max(0.0, 1.2 - (time.monotonic() - started)))  # loser done
    assert (await inv.invoke({"marker": str(marker)}))["pid"] == loser
    assert logger.events("handler_worker_killed") == []


async def test_losing_attempt_still_busy_at_deadline_is_killed(make_invoker, logger, tmp_path):
    inv = make_invoker(
        target="behaviours:slow_first_time", workers=2, timeout_s=1.2, retry_after_s=0.3
    )
    marker = tmp_path / "marker"
    answer = await inv.invoke({"marker": str(marker), "seconds": 30})
    assert answer["slow"] is False
    loser = int(marker.read_text())
    assert pid_alive(loser)  # still sleeping: it is left running until the deadline
    assert await wait_until(lambda: not pid_exists(loser), timeout=2.0)
    killed = logger.events("handler_worker_killed")
    assert [r["pid"] for r in killed] == [loser]


async def test_memory_limit_recycles_worker(make_invoker, logger):
    inv = make_invoker(target="behaviours:allocate", workers=1, memory_limit_mb=100)
    small = await inv.invoke({"mb": 0})
    small_again = await inv.invoke({"mb": 0})
    assert small["pid"] == small_again["pid"]
    big = await inv.invoke({"mb": 150})
    assert big["pid"] == small["pid"] and big["allocated"] == 150 * 1024 * 1024
    recycled = logger.events("handler_worker_recycled")
    assert len(recycled) == 1 and recycled[0]["pid"] == big["pid"]
    assert recycled[0]["max_rss_mb"] > 100
    after = await inv.invoke({"mb": 0})
    assert after["pid"] != big["pid"]
    assert await wait_until(lambda: not pid_exists(big["pid"]))


async def test_concurrent_invocations_are_limited_to_workers(make_invoker, logger):
    inv = make_invoker(target="behaviours:sleep", workers=2, timeout_s=5.0, retry_after_s=4.0)
    started = time.monotonic()
    results = await asyncio.gather(*(inv.invoke({"seconds": 0.3}) for _ in range(4)))
    elapsed = time.monotonic() - started
    assert results == [{"slept": 0.3}] * 4
    # two workers, one invocation each at a time: two rounds of 0.3 s
    assert 0.6 <= elapsed < 1.8
    assert len(logger.events("handler_worker_started")) == 2


async def test_close_terminates_all_workers(make_invoker, logger):
    inv = make_invoker(target="behaviours:sleep", workers=2, timeout_s=10.0, retry_after_s=9.0)
    busy = asyncio.ensure_future(inv.invoke({"seconds": 30}))
    await inv.invoke({"seconds": 0})
    assert await wait_until(lambda: len(logger.events("handler_worker_started")) == 2)
    pids = [r["pid"] for r in logger.events("handler_worker_started")]
    assert all(pid_alive(p) for p in pids)
    await inv.close()
    # no process left, no zombie left
    assert not any(pid_exists(p) for p in pids)
    with pytest.raises(HandlerUnreachable, match="closed"):
        await busy
    with pytest.raises(HandlerUnreachable):
        await inv.invoke({"seconds": 0})


async def test_handler_subprocesses_do_not_outlive_the_worker(make_invoker):
    inv = make_invoker(target="behaviours:spawn_child", workers=1)
    out = await inv.invoke({})
    assert pid_alive(out["child"])
    await inv.close()
    assert not pid_exists(out["pid"])
    assert await wait_until(lambda: not pid_alive(out["child"]))


async def test_large_payload_round_trip(make_invoker):
    inv = make_invoker(target="behaviours:echo")
    event = {"blob": "x" * (3 * 1024 * 1024), "nested": {"list": list(range(1000)), "uni": "héllo ☎"}}
    assert await inv.invoke(event) == event


async def test_no_file_descriptor_leak(make_invoker):
    import os

    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        inv = make_invoker(target="behaviours:crash", workers=2)
        await inv.invoke({})
        with pytest.raises(HandlerFailed):
            await inv.invoke({"how": "exit"})
        await inv.invoke({})
        await inv.close()
    assert len(os.listdir("/proc/self/fd")) <= before


async def test_crash_detected_while_a_subprocess_holds_the_output_pipes(make_invoker, tmp_path):
    inv = make_invoker(target="behaviours:spawn_child", workers=1, timeout_s=5.0)
    child_file = tmp_path / "child"
    started = time.monotonic()
    with pytest.raises(HandlerFailed) as info:
        await inv.invoke({"then_exit": str(child_file)})
    assert time.monotonic() - started < 2.0  # not the 5 s deadline
    assert "exit status 2" in info.value.error_message
    assert await wait_until(lambda: not pid_alive(int(child_file.read_text())))


async def test_cold_start_counts_in_the_deadline(make_invoker, logger):
    inv = make_invoker(target="slow_import:handler", timeout_s=0.8, retry_after_s=0.3)
    started = time.monotonic()
    with pytest.raises(HandlerTimeout):
        await inv.invoke({})
    assert 0.75 <= time.monotonic() - started < 1.3
    pids = [r["pid"] for r in logger.events("handler_worker_started")]
    assert len(pids) == 2  # the first attempt and its retry, both stuck importing
    assert await wait_until(lambda: not any(pid_exists(p) for p in pids))
