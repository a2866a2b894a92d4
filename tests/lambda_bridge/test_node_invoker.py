"""nodejs handlers: real Node.js worker processes (lambda_bridge/node/worker.js) on the shared pool."""
from __future__ import annotations

import asyncio
import json
import shutil
import time

import pytest

from lambda_bridge import HandlerConfig, HandlerFailed, HandlerTimeout, HandlerUnreachable, InvalidHandlerOutput
from lambda_bridge.node_invoker import runtime_dir
from lambda_bridge.preflight import check_handlers_async
from tests.support.moto import moto_server

from .conftest import NODE_HANDLERS_DIR, pid_exists, wait_until


@pytest.fixture(autouse=True)
def _node_runtime():
    if shutil.which("node") is None:
        pytest.fail("node (Node.js 20) is required for nodejs handlers; run scripts/bootstrap")
    if not (runtime_dir() / "node_modules" / "aws-sdk").is_dir():
        pytest.fail(f"the Node.js handler runtime is not installed in {runtime_dir()}; run scripts/bootstrap")


def node(make_invoker, target: str, **kw):
    return make_invoker(type="nodejs", target=target, **kw)


def new_call_event(call_id: str = "call-1") -> dict:
    return {"SchemaVersion": "1.0", "Sequence": 1, "InvocationEventType": "NEW_INBOUND_CALL",
            "CallDetails": {"TransactionId": "tx-1", "Participants": [{"CallId": call_id, "ParticipantTag": "LEG-A"}]}}


async def test_async_handler_round_trip_warm_state_and_console_lines(make_invoker, logger):
    inv = node(make_invoker, "basic.handler", workers=1)
    first = await inv.invoke(new_call_event())
    assert first["Actions"][0]["Type"] == "PlayAudio"
    second = await inv.invoke({"InvocationEventType": "ACTION_SUCCESSFUL"})
    third = await inv.invoke({"InvocationEventType": "HANGUP"})
    assert (second["invocations"], third["invocations"]) == (2, 3)      # module state kept
    assert second["requestId"] != third["requestId"]
    lines = [r for r in logger.events("handler_output")]
    assert len(lines) == 3
    ts, request_id, level, message = lines[0]["line"].split("\t")
    assert level == "INFO" and message == "event NEW_INBOUND_CALL invocation 1"
    assert request_id == lines[0]["aws_request_id"] and ts.endswith("Z")
    assert len({r["pid"] for r in lines}) == 1


async def test_console_levels_and_raw_output(make_invoker, logger):
    inv = node(make_invoker, "behaviours.logs")
    assert await inv.invoke({}) == {"logged": True}
    out = [r["line"] for r in logger.events("handler_output")]
    assert [line.split("\t")[2:] for line in out[:3]] == [["INFO", "hello from node"], ["ERROR", "an error line"],
                                                          ["WARN", "multi\rline"]]
    assert out[3] == "raw stdout"


async def test_callback_style_and_legacy_context_methods(make_invoker):
    assert await node(make_invoker, "callback_style.handler").invoke({"InvocationEventType": "RINGING"}) == {
        "style": "callback", "type": "RINGING"}
    assert await node(make_invoker, "callback_style.legacy").invoke({}) == {"style": "context.succeed"}
    with pytest.raises(HandlerFailed) as info:
        await node(make_invoker, "callback_style.fails").invoke({})
    assert (info.value.error_type, info.value.error_message) == ("TypeError", "bad input from callback")
    # neither promise nor callback: null once the event loop is empty, as Lambda answers
    assert await node(make_invoker, "callback_style.nothing").invoke({}) is None


async def test_callback_waits_for_the_empty_event_loop_unless_told_not_to(make_invoker):
    inv = node(make_invoker, "callback_style.waits", workers=1)
    assert await inv.invoke({}) == {"waited": True}     # cold
    started = time.monotonic()
    assert await inv.invoke({}) == {"waited": True}     # warm: only the wait counts
    assert time.monotonic() - started >= 0.3            # the handler's 300 ms timer ran first
    no_wait = node(make_invoker, "callback_style.noWait", workers=1)
    assert await no_wait.invoke({}) == {"waited": False}
    started = time.monotonic()
    assert await no_wait.invoke({}) == {"waited": False}
    assert time.monotonic() - started < 0.25            # its 5 s timer is not waited for


async def test_first_answer_wins(make_invoker):
    assert await node(make_invoker, "first_wins.callbackFirst").invoke({}) == {"winner": "callback"}
    assert await node(make_invoker, "first_wins.promiseFirst").invoke({}) == {"winner": "promise"}
    with pytest.raises(HandlerFailed) as info:
        await node(make_invoker, "first_wins.rejectThenCallback").invoke({})
    assert info.value.error_type == "RangeError"


async def test_throw_has_lambdas_node_error_shape_and_worker_survives(make_invoker, logger):
    inv = node(make_invoker, "behaviours.throws", workers=1)
    with pytest.raises(HandlerFailed) as info:
        await inv.invoke({})
    err = info.value
    assert (err.error_type, err.error_message) == ("Error", "database unavailable")
    assert err.stack_trace[0] == "Error: database unavailable\n"
    assert any("behaviours.js:" in line for line in err.stack_trace)
    logged = logger.events("handler_error")[0]
    assert logged["error_type"] == "Error" and "behaviours.js:" in logged["stack_trace"]
    invoke_error = [r["line"] for r in logger.events("handler_output") if "Invoke Error" in r["line"]]
    shape = json.loads(invoke_error[0].split("Invoke Error \t", 1)[1])
    assert set(shape) == {"errorType", "errorMessage", "stack"} and shape["stack"][0] == "Error: database unavailable"
    pid = logged["pid"]
    with pytest.raises(HandlerFailed):
        await inv.invoke({})
    assert logger.events("handler_error")[1]["pid"] == pid       # same worker

    with pytest.raises(HandlerFailed) as custom:
        await node(make_invoker, "behaviours.throwsCustom").invoke({})
    assert (custom.value.error_type, custom.value.error_message) == ("ChimeError", "custom failure")
    with pytest.raises(HandlerFailed) as plain:
        await node(make_invoker, "behaviours.throwsString").invoke({})
    assert (plain.value.error_type, plain.value.error_message) == ("string", "plain string")
    assert plain.value.stack_trace == []


async def test_unhandled_rejection_fails_the_invocation(make_invoker):
    with pytest.raises(HandlerFailed) as info:
        await node(make_invoker, "behaviours.unhandled").invoke({})
    assert info.value.error_type == "Runtime.UnhandledPromiseRejection"
    assert "nobody waits for me" in info.value.error_message


async def test_lambda_environment_and_context(make_invoker):
    inv = node(make_invoker, "behaviours.env", function_name="node-fn", memory_limit_mb=512,
               environment={"GREETING": "hi", "AWS_REGION": "eu-west-1"})
    got = await inv.invoke({})
    env = got["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "node-fn"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert env["_HANDLER"] == "behaviours.env" and env["TZ"] == ":UTC"
    assert env["LAMBDA_TASK_ROOT"] == str(NODE_HANDLERS_DIR) == got["cwd"]
    assert env["GREETING"] == "hi" and env["AWS_REGION"] == "eu-west-1"   # the function's own wins
    assert str(runtime_dir() / "node_modules") in env["NODE_PATH"].split(":")

    ctx = await node(make_invoker, "behaviours.context", function_name="ctx-fn", aws_region="eu-central-1",
                     aws_account_id="123456789012", timeout_s=7).invoke({})
    assert ctx["functionName"] == "ctx-fn" and ctx["functionVersion"] == "$LATEST"
    assert ctx["invokedFunctionArn"] == "arn:aws:lambda:eu-central-1:123456789012:function:ctx-fn"
    assert ctx["memoryLimitInMB"] == "256" and ctx["logGroupName"] == "/aws/lambda/ctx-fn"
    assert ctx["logStreamName"].split("/")[3].startswith("[$LATEST]")
    assert 5000 < ctx["remaining"] <= 7000
    assert ctx["callbackWaitsForEmptyEventLoop"] is True
    assert ctx["legacy"] == ["done", "succeed", "fail"]


async def test_runtime_sdks_resolve_without_bundling_from_commonjs_and_esm(make_invoker):
    got = await node(make_invoker, "behaviours.sdks").invoke({})
    assert got["v2"].startswith("2.") and got["v3"] == "function"
    esm = await node(make_invoker, "esm_handler.handler").invoke({"x": 5})
    assert esm == {"esm": True, "v2": got["v2"], "v3": "function", "echo": 5}


async def test_typescript_handler_in_several_files_is_bundled_and_cached(make_invoker, tmp_path):
    src = tmp_path / "app"
    shutil.copytree(NODE_HANDLERS_DIR / "ts", src)
    inv = make_invoker(type="nodejs", target="index.handler", code_dir=str(src),
                       environment={"PROMPT_BUCKET": "my-prompts"}, workers=1)
    answer = await inv.invoke(new_call_event())
    assert answer["Actions"] == [{"Type": "PlayAudio", "Parameters": {
        "AudioSource": {"Type": "S3", "BucketName": "my-prompts", "Key": "welcome.wav"}}}]
    assert (await inv.invoke({"InvocationEventType": "ACTION_SUCCESSFUL"}))["Actions"][0]["Type"] == "Hangup"
    bundle = inv.entry
    assert bundle is not None and bundle.is_file()
    built = bundle.stat().st_mtime_ns
    # a new invoker (a restart) reuses the bundle while no source changed ...
    again = make_invoker(type="nodejs", target="index.handler", code_dir=str(src))
    await again.invoke(new_call_event())
    assert again.entry == bundle and bundle.stat().st_mtime_ns == built
    # ... and rebuilds it when one of the imported files changes
    actions = src / "lib" / "actions.ts"
    actions.write_text(actions.read_text().replace("'S3'", "'S3', Note: 'rebuilt'"))
    fresh = make_invoker(type="nodejs", target="index.handler", code_dir=str(src))
    rebuilt = await fresh.invoke(new_call_event())
    assert rebuilt["Actions"][0]["Parameters"]["AudioSource"]["Note"] == "rebuilt"
    # stack traces point at the TypeScript source (source maps)
    with pytest.raises(HandlerFailed) as info:
        await make_invoker(type="nodejs", target="index.explode", code_dir=str(src)).invoke({})
    assert any("index.ts:17" in line for line in info.value.stack_trace)


async def test_hang_is_killed_at_the_deadline_and_loop_stays_responsive(make_invoker, logger):
    hang = node(make_invoker, "behaviours.hang", function_name="hanger", timeout_s=1.0, retry_after_s=0.3)
    other = node(make_invoker, "basic.handler", function_name="other-app")
    await other.invoke(new_call_event())
    started = time.monotonic()
    slow = asyncio.ensure_future(hang.invoke({}))
    await asyncio.sleep(0.5)
    answer = await other.invoke(new_call_event())
    answered_at = time.monotonic() - started
    with pytest.raises(HandlerTimeout):
        await slow
    elapsed = time.monotonic() - started
    assert answer["Actions"][0]["Type"] == "PlayAudio" and answered_at < 0.95
    assert 0.95 <= elapsed < 1.6
    killed = [r["pid"] for r in logger.events("handler_worker_killed")]
    assert len(killed) == 2                      # the first attempt and its retry, both busy
    assert await wait_until(lambda: not any(pid_exists(p) for p in killed))
    with pytest.raises(HandlerTimeout):          # replaced lazily: a fresh worker, hanging again
        await hang.invoke({})


async def test_exit_is_runtime_exit_error_then_next_invocation_works(make_invoker):
    inv = node(make_invoker, "behaviours.exit", workers=1)
    with pytest.raises(HandlerFailed) as info:
        await inv.invoke({})
    assert info.value.error_type == "Runtime.ExitError"
    assert info.value.error_message.endswith("Runtime exited with error: exit status 3")
    with pytest.raises(HandlerFailed):
        await inv.invoke({})


async def test_memory_leak_recycles_the_worker(make_invoker, logger):
    inv = node(make_invoker, "behaviours.leak", workers=1, memory_limit_mb=128)
    first = await inv.invoke({"mb": 1})
    again = await inv.invoke({"mb": 1})
    assert first["pid"] == again["pid"] and again["leakedMb"] == 2     # module state: the leak grows
    big = await inv.invoke({"mb": 120})
    assert big["pid"] == first["pid"]
    recycled = logger.events("handler_worker_recycled")
    assert len(recycled) == 1 and recycled[0]["pid"] == big["pid"] and recycled[0]["max_rss_mb"] > 128
    after = await inv.invoke({"mb": 1})
    assert after["pid"] != big["pid"] and after["leakedMb"] == 1      # a fresh environment
    assert await wait_until(lambda: not pid_exists(big["pid"]))


async def test_unserialisable_and_large_answers(make_invoker):
    with pytest.raises(InvalidHandlerOutput):
        await node(make_invoker, "behaviours.circular").invoke({})
    big = await node(make_invoker, "behaviours.big").invoke({"n": 3_000_000})
    assert len(big["data"]) == 3_000_000


async def test_missing_file_or_export_is_unreachable(make_invoker):
    with pytest.raises(HandlerUnreachable) as info:
        await node(make_invoker, "nowhere.handler").invoke({})
    assert "Runtime.ImportModuleError" in info.value.message
    with pytest.raises(HandlerUnreachable) as info:
        await node(make_invoker, "basic.handlr").invoke({})
    assert "Runtime.HandlerNotFound" in info.value.message


async def test_preflight_reports_node_problems_with_file_and_line(tmp_path):
    def cfg(target: str, **kw) -> HandlerConfig:
        kw.setdefault("code_dir", str(NODE_HANDLERS_DIR))
        return HandlerConfig(type="nodejs", target=target, function_name="f", **kw)

    results = await check_handlers_async([
        cfg("basic.handler"), cfg("nowhere.handler"), cfg("esm_handler.handlr"), cfg("init_throws.handler"),
        cfg("syntax_error.handler"), cfg("ts/broken.handler"), cfg("init_throws.handler",
                                                                     environment={"TABLE_NAME": "t"}),
    ])
    ok, missing, export, init, syntax, broken, fixed = results
    assert ok is None and fixed is None
    assert missing.startswith("Runtime.ImportModuleError: Error: Cannot find module 'nowhere'")
    assert "Runtime.HandlerNotFound" in export and "did you mean 'handler'?" in export
    assert init.startswith("Error: TABLE_NAME is not set") and f"{NODE_HANDLERS_DIR}/init_throws.js:3" in init
    assert "Runtime.UserCodeSyntaxError" in syntax and f"{NODE_HANDLERS_DIR}/syntax_error.js:2" in syntax
    assert f"{NODE_HANDLERS_DIR}/ts/broken.ts:1:24: Could not resolve \"./lib/missing\"" in broken


# ------------------------------------------------------------------ aws-sdk v2 and v3 against a local endpoint


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as url:
        yield url


SDK_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "",
           "AWS_EC2_METADATA_DISABLED": "true"}


async def test_aws_sdk_v2_clients_reach_the_endpoint_named_by_the_environment(make_invoker, moto_endpoint):
    env = {**SDK_ENV, "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint, "AWS_ENDPOINT_URL": moto_endpoint,
           "TABLE_NAME": "calls"}
    inv = node(make_invoker, "aws_v2.handler", environment=env, timeout_s=15, retry_after_s=14)
    got = await inv.invoke({"callId": "c-1"})
    assert got["endpoint"].startswith(moto_endpoint)
    assert got["item"] == {"CallId": "c-1", "Digits": "1234"}
    assert got["explicitPublic"] == {"CallId": "c-1", "Digits": "1234"}   # a public endpoint is redirected too
    assert got["s3Body"] == "recording of c-1" and got["s3PathStyle"] is True
    assert got["v3Item"] == {"CallId": {"S": "c-1"}, "Digits": {"S": "1234"}}   # v3 honours the variables itself
    # the same through boto3 (the variables are the standard ones)
    import boto3
    table = boto3.resource("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing").Table("calls")
    assert table.get_item(Key={"CallId": "c-1"})["Item"] == {"CallId": "c-1", "Digits": "1234"}


async def test_without_the_variables_aws_sdk_v2_keeps_its_own_endpoint(make_invoker, moto_endpoint):
    inv = node(make_invoker, "aws_v2.endpoints", environment=SDK_ENV)
    got = await inv.invoke({})
    assert got["dynamodb"] == "https://dynamodb.us-east-1.amazonaws.com/"
    inv2 = node(make_invoker, "aws_v2.endpoints", environment={**SDK_ENV, "AWS_ENDPOINT_URL": moto_endpoint,
                                                               "AWS_ENDPOINT_URL_CHIME_SDK_VOICE": "http://127.0.0.1:9/"})
    got = await inv2.invoke({})
    assert got["dynamodb"] == moto_endpoint + "/"
    assert got["chime"] == "http://127.0.0.1:9/"          # the service's own variable wins
    assert got["ownLocal"] == "http://localhost:4566/"     # an explicit non-AWS endpoint is kept


async def test_each_service_variable_is_spelled_as_boto3_and_v3_spell_it(make_invoker):
    env = {**SDK_ENV, "AWS_ENDPOINT_URL": "http://127.0.0.1:9/",
           **{f"AWS_ENDPOINT_URL_{sid}": f"http://127.0.0.1:{1000 + i}/" for i, sid in enumerate(
               ["CHIME", "CHIME_SDK_VOICE", "CHIME_SDK_MEETINGS", "POLLY", "LEX_RUNTIME_V2", "S3", "DYNAMODB"])}}
    classes = ["Chime", "ChimeSDKVoice", "ChimeSDKMeetings", "Polly", "LexRuntimeV2", "S3", "DynamoDB", "SQS"]
    got = await node(make_invoker, "aws_v2.serviceEndpoints", environment=env).invoke({"classes": classes})
    assert {c: got[c]["endpoint"] for c in classes} == {
        "Chime": "http://127.0.0.1:1000/", "ChimeSDKVoice": "http://127.0.0.1:1001/",
        "ChimeSDKMeetings": "http://127.0.0.1:1002/", "Polly": "http://127.0.0.1:1003/",
        "LexRuntimeV2": "http://127.0.0.1:1004/", "S3": "http://127.0.0.1:1005/",
        "DynamoDB": "http://127.0.0.1:1006/", "SQS": "http://127.0.0.1:9/"}       # no own variable: the global one
    assert got["S3"]["pathStyle"] is True
    ignored = await node(make_invoker, "aws_v2.serviceEndpoints",
                         environment={**env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}).invoke({"classes": ["S3"]})
    assert ignored["S3"]["endpoint"] == "https://s3.amazonaws.com/"


async def test_applications_sharing_a_typescript_entry_bundle_it_once_at_a_time(make_invoker, tmp_path):
    src = tmp_path / "shared"
    shutil.copytree(NODE_HANDLERS_DIR / "ts", src)
    invokers = [make_invoker(type="nodejs", target="index.handler", code_dir=str(src), function_name=f"app{i}")
                for i in range(3)]
    answers = await asyncio.gather(*(inv.invoke(new_call_event()) for inv in invokers))
    assert all(a["Actions"][0]["Type"] == "PlayAudio" for a in answers)
    assert len({inv.entry for inv in invokers}) == 1
