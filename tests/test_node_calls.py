"""Node.js handlers answering real SIP calls over loopback (issue 10 item 1): async and callback style,
first answer wins, a TypeScript handler bundled from several files, aws-sdk v2 clients reaching local
endpoints (chimevoice's own Chime SDK Voice API and a DynamoDB stand-in), and the misbehaving ones --
a hang, a throw, a leak -- each isolated in its own worker pool as for Python handlers."""
from __future__ import annotations

import concurrent.futures
import shutil
import time

import boto3
import numpy as np
import pytest
import yaml

from chimevoice.media.analysis import dominant_frequency
from chimevoice.media.audio import read_pcm
from lambda_bridge.node_invoker import runtime_dir
from tests.support.harness import ROOT, free_port, module_daemon, wait_handler_events, write_tone
from tests.support.moto import moto_server

pytestmark = pytest.mark.sip

N = "+1555020000"   # +15550200000 .. +15550200009
KEY_ID, SECRET = "AKIDCHIMEVOICENODE01", "chimevoice-node-test-secret-0123456789"
NODE_DIR = ROOT / "tests" / "node_handlers"
APPS = {name: f"33333333-0000-4000-8000-{i:012d}" for i, name in enumerate(
    ["greeter", "callback", "first-wins", "typescript", "aws-v2", "hang", "throws", "leak", "fallback"])}


def node_app(name: str, target: str, env: dict, code_dir=NODE_DIR, **handler) -> dict:
    return {"id": APPS[name], "name": name, "handler": {
        "type": "nodejs", "target": target, "code_dir": str(code_dir), "environment": env, **handler}}


def rule(i: int, *apps: str) -> dict:
    return {"id": f"44444444-0000-4000-8000-{i:012d}", "name": f"node-rule-{i}", "trigger_type": "ToPhoneNumber",
            "trigger_value": N + str(i),
            "target_applications": [{"sip_media_application_id": APPS[a], "priority": p + 1}
                                    for p, a in enumerate(apps)]}


@pytest.fixture(scope="module")
def moto_url():
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, moto_url):
    if shutil.which("node") is None or not (runtime_dir() / "node_modules" / "aws-sdk").is_dir():
        pytest.fail("Node.js 20 and the handler runtime (.runtime/node) are required; run scripts/bootstrap")
    d = module_daemon(tmp_path_factory, "node-calls")
    api_port = free_port()
    env = {"EVENTS_DIR": str(d.events), "PROMPT_BUCKET": "prompts"}
    sdk = {**env, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "TABLE_NAME": "node-calls",
           "AWS_ENDPOINT_URL_CHIME_SDK_VOICE": f"http://127.0.0.1:{api_port}",
           "AWS_ENDPOINT_URL_DYNAMODB": moto_url}
    apps = [
        node_app("greeter", "calls.greeter", env),
        # Lambda's runtime spelling
        {**node_app("callback", "calls.greeterCallback", env), "handler": {
            **node_app("callback", "calls.greeterCallback", env)["handler"], "type": None, "runtime": "nodejs20.x"}},
        node_app("first-wins", "calls.firstWins", env),
        node_app("typescript", "index.handler", env, code_dir=d.workdir / "ts-app"),
        node_app("aws-v2", "calls.awsV2", sdk, timeout_s=10, retry_after_s=8),
        node_app("hang", "calls.hang", env, timeout_s=1.5, retry_after_s=0.5),
        node_app("throws", "calls.throws", env),
        node_app("leak", "calls.leak", env, memory_limit_mb=128, workers=1),
        node_app("fallback", "calls.greeter", env),
    ]
    for app in apps:
        if app["handler"].get("type") is None:
            del app["handler"]["type"]
    rules = [rule(0, "greeter"), rule(1, "callback"), rule(2, "first-wins"), rule(3, "typescript"),
             rule(4, "aws-v2"), rule(5, "hang"), rule(6, "throws", "fallback"), rule(7, "leak")]
    shutil.copytree(NODE_DIR / "ts-app", d.workdir / "ts-app")
    cfg = d.write_config(apps, rules=rules, numbers=[N + str(i) for i in range(10)])
    data = yaml.safe_load(cfg.read_text())
    data["api"] = {"listen": f"127.0.0.1:{api_port}", "region": "us-east-1",
                   "access_keys": [{"access_key_id": KEY_ID, "secret_access_key": SECRET}]}
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    write_tone(d.prompts / "tone400.wav", 400, 1.0)
    boto3.client("dynamodb", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                 aws_secret_access_key="x").create_table(
        TableName="node-calls", KeySchema=[{"AttributeName": "CallId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "CallId", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    d.start()
    yield d
    code = d.stop()
    assert code == 0, d.log_path.read_text()[-3000:]


def events(d, app: str, number: str, last: str = "HANGUP") -> list[dict]:
    return wait_handler_events(d.events / f"{app}.jsonl", number, last, timeout=10)


def heard_tone(path) -> float:
    heard, rate = read_pcm(path)
    loud = np.nonzero(np.abs(heard) > 1000)[0]
    assert len(loud) > rate // 2, "no tone heard"
    assert (loud[-1] - loud[0]) / rate == pytest.approx(1.0, abs=0.1)     # the whole 1 s tone
    return dominant_frequency(heard.astype(np.float64), rate)


def test_async_node_handler_answers_a_call_and_plays_audio(daemon, tmp_path):
    res = daemon.call(user=N + "0", record=tmp_path / "a.wav")
    assert res["answered"] and res["hangup_by"] == "remote", res
    assert heard_tone(tmp_path / "a.wav") == pytest.approx(1000, abs=15)
    evs = events(daemon, "greeter", N + "0")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "HANGUP"]
    assert evs[0]["CallDetails"]["SipMediaApplicationId"] == APPS["greeter"]
    out = daemon.wait_log("handler_output", function_name="greeter")
    assert out["line"].split("\t")[2:] == ["INFO", "event NEW_INBOUND_CALL"]
    assert out["TransactionId"] == evs[0]["CallDetails"]["TransactionId"]


def test_callback_style_handler_with_lambdas_runtime_spelling(daemon, tmp_path):
    res = daemon.call(user=N + "1", record=tmp_path / "b.wav")
    assert res["answered"] and res["hangup_by"] == "remote", res
    assert heard_tone(tmp_path / "b.wav") == pytest.approx(400, abs=15)
    assert [e["InvocationEventType"] for e in events(daemon, "callback", N + "1")] == ["NEW_INBOUND_CALL", "HANGUP"]


def test_first_answer_wins(daemon, tmp_path):
    res = daemon.call(user=N + "2", record=tmp_path / "c.wav")
    assert res["answered"], res
    assert heard_tone(tmp_path / "c.wav") == pytest.approx(400, abs=15)      # the callback's list, not the promise's
    assert [e["InvocationEventType"] for e in events(daemon, "first-wins", N + "2")] == ["NEW_INBOUND_CALL", "HANGUP"]


def test_typescript_handler_bundled_from_several_files(daemon, tmp_path):
    res = daemon.call(user=N + "3", record=tmp_path / "d.wav")
    assert res["answered"] and res["hangup_by"] == "remote", res
    assert heard_tone(tmp_path / "d.wav") == pytest.approx(1000, abs=15)
    assert [e["InvocationEventType"] for e in events(daemon, "typescript", N + "3")] == ["NEW_INBOUND_CALL", "HANGUP"]


def test_aws_sdk_v2_handler_reaches_the_local_chime_api_and_dynamodb(daemon, moto_url, tmp_path):
    res = daemon.call(user=N + "4", record=tmp_path / "e.wav")
    assert res["answered"] and res["hangup_by"] == "remote", res
    assert heard_tone(tmp_path / "e.wav") == pytest.approx(1000, abs=15)
    evs = events(daemon, "aws-v2", N + "4")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "HANGUP"]
    assert evs[1]["CallDetails"]["TransactionAttributes"] == {"app": "aws-v2"}   # from GetSipMediaApplication
    daemon.wait_log("api_request", operation="GetSipMediaApplication")
    call_id = evs[0]["CallDetails"]["Participants"][0]["CallId"]
    item = boto3.client("dynamodb", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x").get_item(TableName="node-calls", Key={"CallId": {"S": call_id}})
    assert item["Item"] == {"CallId": {"S": call_id}, "App": {"S": "aws-v2"}}


def test_hanging_node_handler_gets_480_and_other_calls_go_on(daemon, tmp_path):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(daemon.call, user=N + "5")
        time.sleep(0.3)
        ok = daemon.call(user=N + "0", record=tmp_path / "ok.wav")
        slow_res = slow.result()
    assert ok["answered"] and ok["setup_seconds"] < 1.0, ok     # answered while the other handler hangs
    assert not slow_res["answered"] and slow_res["final_status"] == 480, slow_res
    failed = daemon.wait_log("handler_invocation_failed", kind="timeout")
    assert failed["TransactionId"] and failed["CallId"]
    killed = daemon.wait_log("handler_worker_killed", function_name="hang")
    assert killed["reason"] == "deadline passed"
    evs = wait_handler_events(daemon.events / "hang.jsonl", N + "5", "NEW_INBOUND_CALL")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "NEW_INBOUND_CALL"]   # the retry at 0.5 s


def test_throwing_node_handler_fails_over_with_lambdas_error_shape(daemon, tmp_path):
    res = daemon.call(user=N + "6", record=tmp_path / "f.wav")
    assert res["answered"], res
    assert heard_tone(tmp_path / "f.wav") == pytest.approx(1000, abs=15)        # the fallback application
    assert [e["InvocationEventType"] for e in events(daemon, "throws", N + "6", "NEW_INBOUND_CALL")] == [
        "NEW_INBOUND_CALL"]
    assert [e["InvocationEventType"] for e in events(daemon, "fallback", N + "6")] == ["NEW_INBOUND_CALL", "HANGUP"]
    err = daemon.wait_log("handler_error", function_name="throws")
    assert (err["error_type"], err["error_message"]) == ("Error", "database unavailable")
    assert err["stack_trace"].startswith("Error: database unavailable\n") and "calls.js:" in err["stack_trace"]
    failed = daemon.wait_log("handler_invocation_failed", kind="error")
    assert "database unavailable" in failed["error"]
    daemon.wait_log("handler_failover", sip_media_application_id=APPS["fallback"])


def test_leaking_node_handler_is_recycled_and_calls_keep_working(daemon, tmp_path):
    pids = []
    for i in range(2):
        res = daemon.call(user=N + "7", record=tmp_path / f"g{i}.wav")
        assert res["answered"] and res["hangup_by"] == "remote", res
        assert heard_tone(tmp_path / f"g{i}.wav") == pytest.approx(1000, abs=15)
    recycled = daemon.wait_log("handler_worker_recycled", function_name="leak")
    assert recycled["max_rss_mb"] > 128 and recycled["memory_limit_mb"] == 128
    pids = {e["pid"] for e in daemon.logs() if e.get("event") == "handler_worker_started"
            and e.get("function_name") == "leak"}
    assert len(pids) >= 2                       # a fresh worker after the recycle
