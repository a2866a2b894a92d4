"""The local Lex V2 runtime over real SIP calls (docs/aws-local.md#lex): handlers that name no endpoint
ask the pizza bot of ``bots.local`` what the caller wants with lexv2-runtime RecognizeText and play the
prompt of the intent they are told. Python (boto3, HTTP/1.1) and Node.js (@aws-sdk/client-lex-runtime-v2
over HTTP/2, aws-sdk v2's LexRuntimeV2 through the runtime's preload over HTTP/1.1)."""
from __future__ import annotations

import json
import signal
import socket
import time

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from chimevoice.media.analysis import dominant_frequency
from chimevoice.media.audio import read_pcm
from tests.support.harness import HANDLERS, ROOT, Daemon, free_port, module_daemon, number_rules, write_tone

pytestmark = pytest.mark.sip

APP_PY = "b1b1b1b1-0000-4000-8000-000000000001"
APP_NODE = "b2b2b2b2-0000-4000-8000-000000000002"
KEY_ID, SECRET = "lexkey", "lex-secret-for-aws-local"
CLOSING = "Thank you. Your 2 large pepperoni pizza will be ready in 30 minutes."
TONES = {"OrderPizza": 600, "CheckOrderStatus": 900, "FallbackIntent": 400}
# what the caller "says": (number suffix, utterances, the intent the handler must act on)
FLOWS = {"order": ("1", ["I want 2 large pepperoni pizzas", "yes"], "OrderPizza"),
         "status": ("2", ["where is my pizza"], "CheckOrderStatus"),
         "fallback": ("3", ["the weather on mars"], "FallbackIntent")}
NUMBERS = {APP_PY: "+1555072000", APP_NODE: "+1555072100"}       # + flow suffix


def _number(app_id: str, flow: str) -> str:
    return NUMBERS[app_id] + FLOWS[flow][0]


@pytest.fixture(scope="module")
def lexd(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "lex_runtime")
    utterances = {_number(app, flow): FLOWS[flow][1] for app in NUMBERS for flow in FLOWS}
    env = {"BOT_ID": "LOCALPIZZA", "BOT_ALIAS_ID": "TSTALIASID", "PROMPT_BUCKET": "prompts",
           "EVENTS_DIR": str(d.events), "UTTERANCES": json.dumps(utterances)}
    apps = [{"id": APP_PY, "name": "lex-python", "handler": {
                "type": "python", "target": "index.lambda_handler", "python_path": [str(HANDLERS / "lex_text")],
                "environment": env}},
            {"id": APP_NODE, "name": "lex-node", "handler": {
                "type": "nodejs", "target": "index.handler", "code_dir": str(HANDLERS / "lex_text_node"),
                "environment": env}}]
    rules = [rule for app in NUMBERS
             for rule in number_rules([_number(app, f) for f in FLOWS], app, f"{app[:8]}-0000-4000-8001", app[:8])]
    numbers = [_number(app, f) for app in NUMBERS for f in FLOWS]
    path = d.write_config(apps, rules=rules, numbers=numbers)
    cfg = yaml.safe_load(path.read_text())
    d.lex_port = free_port()
    cfg["bots"] = {"local": {"LOCALPIZZA": str(ROOT / "config" / "bots" / "pizza.yaml")}}
    cfg["aws_local"] = {"access_key_id": KEY_ID, "secret_access_key": SECRET,
                        "dynamodb": {"listen": f"127.0.0.1:{free_port()}"},
                        "s3": {"listen": f"127.0.0.1:{free_port()}"},
                        "polly": {"listen": f"127.0.0.1:{free_port()}"},
                        "lex_runtime": {"listen": f"127.0.0.1:{d.lex_port}"}}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    (d.prompts / "intents").mkdir(parents=True)
    for intent, freq in TONES.items():                 # the prompt of each intent: a tone of its own
        write_tone(d.prompts / "intents" / f"{intent}.wav", freq, 1.5)
    d.start(timeout=60)
    yield d
    assert d.stop() == 0, d.log_path.read_text()[-3000:]


def _call(d, number: str, tmp_path) -> tuple[dict, tuple]:
    record = d.events / f"lex-{number}.json"
    heard = tmp_path / "heard.wav"
    res = d.call(user=number, record=heard, max_seconds=15)
    assert res["answered"], res
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record.exists(), d.log_path.read_text()[-3000:]
    return json.loads(record.read_text()), read_pcm(heard)


@pytest.mark.parametrize("flow", list(FLOWS))
@pytest.mark.parametrize("app_id", [APP_PY, APP_NODE], ids=["python-boto3", "node-sdk-v3-and-v2"])
def test_a_handler_acts_on_what_the_local_bot_understood(lexd, tmp_path, app_id, flow):
    number = _number(app_id, flow)
    record, (x, rate) = _call(lexd, number, tmp_path)
    expected = FLOWS[flow][2]
    assert record["runtime"] == ("python" if app_id == APP_PY else "nodejs")
    # the SDKs took AWS_ENDPOINT_URL_LEX_RUNTIME_V2
    assert record["endpoint"].rstrip("/") == f"http://127.0.0.1:{lexd.lex_port}"
    assert record["intent"] == expected
    last = record["turns"][-1]
    if flow == "order":
        intent = last["sessionState"]["intent"]
        assert intent["state"] == "Fulfilled" and intent["confirmationState"] == "Confirmed"
        assert {k: v["value"]["interpretedValue"] for k, v in intent["slots"].items() if v} == \
            {"Size": "large", "Topping": "pepperoni", "Quantity": "2"}
        assert last["messages"][0]["content"] == CLOSING
        assert last["sessionState"]["sessionAttributes"]["orderStatus"] == "placed"
        assert record["session"]["sessionState"]["intent"]["state"] == "Fulfilled"   # GetSession
    elif flow == "status":
        assert last["sessionState"]["dialogAction"] == {"type": "ElicitSlot", "slotToElicit": "OrderNumber"}
        assert record["session"]["sessionState"]["intent"]["name"] == "CheckOrderStatus"
    else:
        assert last["sessionState"]["dialogAction"]["type"] == "ElicitIntent"
        assert last["interpretations"][0]["intent"]["name"] == "FallbackIntent"
    # the caller heard the prompt of that intent, played from S3
    heard = dominant_frequency(x[int(0.3 * rate):int(1.2 * rate)].astype(float), rate)
    assert abs(heard - TONES[expected]) < 15, (heard, expected)


def test_sdk_v3_spoke_http2_and_v2_http11(lexd, tmp_path):
    if not (lexd.events / f"lex-{_number(APP_NODE, 'status')}.json").exists():
        _call(lexd, _number(APP_NODE, "status"), tmp_path)
    requests = [e for e in lexd.logs() if e.get("event") == "lex_runtime_request"]
    assert "2" in {e["http"] for e in requests if e["operation"] == "RecognizeText"}      # v3 (boto3: 1.1)
    assert {e["http"] for e in requests if e["operation"] == "GetSession"} == {"1.1"}
    assert all(e["status"] == 200 for e in requests), [e for e in requests if e["status"] != 200]


def _lex(d):
    return boto3.client("lexv2-runtime", endpoint_url=f"http://127.0.0.1:{d.lex_port}", region_name="us-east-1",
                        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)


def test_a_reload_brings_new_local_bots_to_the_lex_runtime(lexd):
    lex = _lex(lexd)
    bot = {"botId": "RELOADBOT1", "botAliasId": "TSTALIASID", "localeId": "en_US", "sessionId": "reload-1"}
    with pytest.raises(ClientError) as before:
        lex.recognize_text(text="order pizza", **bot)
    assert before.value.response["Error"]["Code"] == "ResourceNotFoundException"
    cfg = yaml.safe_load(lexd.config_path.read_text())
    cfg["bots"]["local"]["RELOADBOT1"] = str(ROOT / "config" / "bots" / "pizza.yaml")
    lexd.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    reloads = sum(e.get("event") == "config_reloaded" for e in lexd.logs())
    lexd.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while sum(e.get("event") == "config_reloaded" for e in lexd.logs()) == reloads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lex.recognize_text(text="order pizza", **bot)["sessionState"]["intent"]["name"] == "OrderPizza"


def test_a_taken_lex_port_stops_the_start_with_a_reason(lexd, tmp_path):
    cfg = yaml.safe_load(lexd.config_path.read_text())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        d = Daemon(tmp_path, free_port())
        d.write_config(cfg["sip_media_applications"], rules=cfg["sip_rules"],
                       numbers=cfg["voice_connectors"][0]["phone_numbers"])
        mine = yaml.safe_load(d.config_path.read_text())
        mine["bots"] = cfg["bots"]
        mine["aws_local"] = {**cfg["aws_local"], **{k: {"listen": f"127.0.0.1:{free_port()}"}
                                                    for k in ("dynamodb", "s3", "polly")},
                             "lex_runtime": {"listen": f"127.0.0.1:{port}"}}
        d.config_path.write_text(yaml.safe_dump(mine, sort_keys=False))
        with pytest.raises(RuntimeError, match="daemon exited 1"):
            d.start(timeout=60)
    failed = [e for e in d.logs() if e.get("event") == "aws_local_start_failed"]
    assert failed and failed[0]["error"].startswith("lex_runtime:"), failed
