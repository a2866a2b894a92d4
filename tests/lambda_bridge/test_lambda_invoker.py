"""lambda handlers through real boto3 against a local Lambda Invoke endpoint."""

from __future__ import annotations

import json
import time

import pytest

from lambda_bridge import HandlerFailed, HandlerUnreachable

from .fake_lambda import FakeLambda, load_handler


@pytest.fixture(autouse=True)
def dummy_aws_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
async def fake_lambda():
    server = FakeLambda()
    server.add("demo-ivr", load_handler("chime_basic", "handler"))
    server.add("failing", load_handler("behaviours", "fail"))
    server.add("not-json", lambda event, context: None)
    await server.start()
    yield server
    await server.stop()


def lambda_invoker(make_invoker, fake_lambda, target, **kw):
    return make_invoker(
        type="lambda",
        target=target,
        function_name="sma-app",
        endpoint_url=fake_lambda.endpoint_url,
        **kw,
    )


EVENT = {
    "SchemaVersion": "1.0",
    "InvocationEventType": "NEW_INBOUND_CALL",
    "CallDetails": {"Participants": [{"CallId": "lambda-call"}]},
}


async def test_success(make_invoker, fake_lambda, logger):
    inv = lambda_invoker(make_invoker, fake_lambda, "demo-ivr")
    answer = await inv.invoke(EVENT)
    assert answer["SchemaVersion"] == "1.0"
    assert answer["Actions"][0] == {"Type": "Answer", "Parameters": {"CallId": "lambda-call"}}
    assert len(fake_lambda.calls) == 1
    call = fake_lambda.calls[0]
    assert json.loads(call["body"]) == EVENT
    assert call["invocation_type"] == "RequestResponse"
    assert "Credential=testing/" in call["authorization"]  # really signed by botocore
    # LogType=Tail: the function's log tail is logged as handler output
    assert any(line.startswith("START RequestId:") for line in logger.output_lines())


async def test_function_arn_as_target(make_invoker, fake_lambda):
    arn = "arn:aws:lambda:us-east-1:123456789012:function:demo-ivr"
    inv = lambda_invoker(make_invoker, fake_lambda, arn)
    answer = await inv.invoke(EVENT)
    assert answer["Actions"][0]["Type"] == "Answer"
    assert fake_lambda.calls[0]["raw_name"] == arn


async def test_function_error_is_handler_failed(make_invoker, fake_lambda, logger):
    inv = lambda_invoker(make_invoker, fake_lambda, "failing")
    with pytest.raises(HandlerFailed) as info:
        await inv.invoke({"call_id": "c-77"})
    assert info.value.error_type == "CallNotFound"
    assert info.value.error_message == "no call c-77"
    assert len(fake_lambda.calls) == 1  # function errors are not retried
    errors = logger.events("handler_error")
    assert len(errors) == 1 and errors[0]["function_error"] == "Unhandled"


async def test_unknown_function_is_unreachable(make_invoker, fake_lambda):
    inv = lambda_invoker(make_invoker, fake_lambda, "no-such-function")
    with pytest.raises(HandlerUnreachable) as info:
        await inv.invoke(EVENT)
    assert "ResourceNotFoundException" in info.value.message
    assert "404" in info.value.message
    assert len(fake_lambda.calls) == 2  # retried once


async def test_throttled_once_then_succeeds(make_invoker, fake_lambda, logger):
    fake_lambda.throttle["demo-ivr"] = 1
    inv = lambda_invoker(make_invoker, fake_lambda, "demo-ivr")
    started = time.monotonic()
    answer = await inv.invoke(EVENT)
    assert time.monotonic() - started < 2.0  # retried at once, not after retry_after_s
    assert answer["Actions"][0]["Type"] == "Answer"
    assert len(fake_lambda.calls) == 2  # botocore did not retry by itself: we did
    retries = logger.events("handler_retry")
    assert len(retries) == 1 and "TooManyRequestsException" in retries[0]["reason"]


async def test_throttled_twice_is_unreachable(make_invoker, fake_lambda):
    fake_lambda.throttle["demo-ivr"] = 5
    inv = lambda_invoker(make_invoker, fake_lambda, "demo-ivr")
    with pytest.raises(HandlerUnreachable) as info:
        await inv.invoke(EVENT)
    assert "TooManyRequestsException" in info.value.message and "429" in info.value.message
    assert len(fake_lambda.calls) == 2


async def test_null_payload_is_returned_as_none(make_invoker, fake_lambda):
    inv = lambda_invoker(make_invoker, fake_lambda, "not-json")
    assert await inv.invoke(EVENT) is None


async def test_endpoint_down_is_unreachable(make_invoker, fake_lambda):
    url = fake_lambda.endpoint_url
    await fake_lambda.stop()
    inv = make_invoker(type="lambda", target="demo-ivr", function_name="x", endpoint_url=url)
    with pytest.raises(HandlerUnreachable) as info:
        await inv.invoke(EVENT)
    assert "cannot reach" in info.value.message


async def test_botocore_does_not_retry_or_time_out_first(make_invoker, fake_lambda):
    inv = lambda_invoker(make_invoker, fake_lambda, "demo-ivr", timeout_s=20.0)
    client = inv._get_client()  # noqa: SLF001
    assert client.meta.config.read_timeout >= 20.0
    # botocore normalises {"max_attempts": 0} to one attempt in total
    assert client.meta.config.retries["total_max_attempts"] == 1
    assert client.meta.region_name == "us-east-1"
    assert client.meta.endpoint_url == fake_lambda.endpoint_url
