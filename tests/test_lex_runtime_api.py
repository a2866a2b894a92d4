"""The local Lex V2 runtime (chimevoice/api/lex_runtime.py, docs/aws-local.md#lex) at the API level:
boto3's lexv2-runtime client over HTTP/1.1 against the real server (hypercorn) backed by the pizza
bot of config/bots/pizza.yaml: conversations, sessions, and the AWS error shapes."""
from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import shutil
import subprocess
import threading
import urllib.error
import urllib.request

import boto3
import numpy as np
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from chimevoice.api.lex_runtime import LexRuntime, LexRuntimeServer
from chimevoice.bots import BotAliasArn, BotParameters, LocalBot, load_definition
from chimevoice.speech import make_synthesizer
from tests.support.harness import ROOT, free_port

PIZZA = ROOT / "config" / "bots" / "pizza.yaml"
KEY, SECRET = "lexkey", "lex-secret-for-tests"
BOT = {"botId": "LOCALPIZZA", "botAliasId": "TSTALIASID", "localeId": "en_US"}
CLOSING = "Thank you. Your 2 large pepperoni pizza will be ready in 30 minutes."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = free_port()
    runtime = LexRuntime({"LOCALPIZZA": PIZZA, "ALIASONLY1/PRODALIAS1": PIZZA}, {KEY: SECRET},
                         synthesizer=make_synthesizer("local", tmp_path_factory.mktemp("tts")))
    srv = LexRuntimeServer(runtime, ("127.0.0.1", port))
    asyncio.run_coroutine_threadsafe(srv.start(), loop).result(10)
    srv.url = f"http://127.0.0.1:{port}"
    yield srv
    asyncio.run_coroutine_threadsafe(srv.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def _lex(server, secret: str = SECRET, region: str = "us-east-1"):
    return boto3.client("lexv2-runtime", endpoint_url=server.url, region_name=region,
                        aws_access_key_id=KEY, aws_secret_access_key=secret)


def _error(excinfo) -> tuple[str, int, str]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def test_a_conversation_fills_the_slots_and_closes_like_the_phone_bot(server):
    lex = _lex(server)
    first = lex.recognize_text(text="I want 2 large pepperoni pizzas", sessionId="conv-1", **BOT)
    assert first["sessionId"] == "conv-1"
    state = first["sessionState"]
    assert state["dialogAction"] == {"type": "ConfirmIntent"}
    assert state["intent"]["name"] == "OrderPizza" and state["intent"]["state"] == "InProgress"
    assert state["intent"]["slots"]["Size"]["value"]["interpretedValue"] == "large"
    assert first["messages"][0]["content"].startswith("That's 2 large pepperoni pizza.")
    assert first["interpretations"][0]["intent"]["name"] == "OrderPizza"
    assert first["interpretations"][0]["nluConfidence"]["score"] >= 0.5
    done = lex.recognize_text(text="yes", sessionId="conv-1", requestAttributes={"channel": "test"}, **BOT)
    intent = done["sessionState"]["intent"]
    assert done["sessionState"]["dialogAction"] == {"type": "Close"}
    assert intent["state"] == "Fulfilled" and intent["confirmationState"] == "Confirmed"
    assert done["messages"] == [{"content": CLOSING, "contentType": "PlainText"}]
    assert done["sessionState"]["sessionAttributes"] == {"orderStatus": "placed", "orderSummary": "2 large pepperoni"}
    assert done["requestAttributes"] == {"channel": "test"}

    # the same inputs to the bot StartBotConversation runs give the same interpretation
    arn = BotAliasArn("arn:aws:lex:us-east-1:111122223333:bot-alias/LOCALPIZZA/TSTALIASID", "aws", "us-east-1",
                      "111122223333", "LOCALPIZZA", "TSTALIASID")
    phone = LocalBot(load_definition(PIZZA), BotParameters(arn), session_id="phone")

    async def converse():
        await phone.input_text("I want 2 large pepperoni pizzas")
        return await phone.input_text("yes")
    phone_intent = asyncio.run(converse()).intent_result["SessionState"]["Intent"]
    assert phone_intent["Name"] == intent["name"] and phone_intent["State"] == intent["state"]
    assert {k: v and v["Value"]["InterpretedValue"] for k, v in phone_intent["Slots"].items()} == \
        {k: v and v["value"]["interpretedValue"] for k, v in intent["slots"].items()}

    # after a Close the next text starts a new intent; the session attributes stay
    again = lex.recognize_text(text="where is my pizza", sessionId="conv-1", **BOT)
    assert again["sessionState"]["intent"]["name"] == "CheckOrderStatus"
    assert again["sessionState"]["dialogAction"] == {"type": "ElicitSlot", "slotToElicit": "OrderNumber"}
    assert again["sessionState"]["sessionAttributes"]["orderStatus"] == "placed"


def test_not_understood_reprompts_with_fallback_first(server):
    r = _lex(server).recognize_text(text="the weather on mars", sessionId="conv-fallback", **BOT)
    assert r["sessionState"]["dialogAction"] == {"type": "ElicitIntent"}
    assert "intent" not in r["sessionState"]
    assert r["interpretations"][0]["intent"]["name"] == "FallbackIntent"
    assert [m["content"] for m in r["messages"]][0] == "Sorry, I didn't catch that."


def test_put_get_and_delete_session(server):
    lex = _lex(server)
    slots = {"Size": {"value": {"originalValue": "big", "interpretedValue": "large", "resolvedValues": ["large"]}},
             "Topping": {"value": {"interpretedValue": "mushroom"}}}
    put = lex.put_session(sessionId="conv-put", sessionState={
        "sessionAttributes": {"customer": "42"}, "dialogAction": {"type": "ElicitSlot", "slotToElicit": "Quantity"},
        "intent": {"name": "OrderPizza", "slots": slots}}, **BOT)
    assert put["sessionId"] == "conv-put"
    state = json.loads(gzip.decompress(base64.b64decode(put["sessionState"])))
    assert state["dialogAction"] == {"type": "ElicitSlot", "slotToElicit": "Quantity"}
    assert state["intent"]["slots"]["Size"]["value"]["interpretedValue"] == "large"
    r = lex.recognize_text(text="3", sessionId="conv-put", **BOT)
    assert r["sessionState"]["dialogAction"] == {"type": "ConfirmIntent"}
    assert r["sessionState"]["intent"]["slots"]["Quantity"]["value"]["interpretedValue"] == "3"
    got = lex.get_session(sessionId="conv-put", **BOT)
    assert got["sessionState"]["sessionAttributes"] == {"customer": "42"}
    assert got["sessionState"]["intent"]["name"] == "OrderPizza"
    assert got["messages"][0]["content"].startswith("That's 3 large mushroom pizza.")
    # sessions are per (bot, alias, locale, sessionId): another alias has none of it
    with pytest.raises(ClientError) as other_alias:
        lex.get_session(sessionId="conv-put", **{**BOT, "botAliasId": "OTHERALIAS"})
    assert _error(other_alias)[:2] == ("ResourceNotFoundException", 404)
    deleted = lex.delete_session(sessionId="conv-put", **BOT)
    assert {k: deleted[k] for k in ("botId", "botAliasId", "localeId", "sessionId")} == {**BOT, "sessionId": "conv-put"}
    for call in (lex.get_session, lex.delete_session):
        with pytest.raises(ClientError) as gone:
            call(sessionId="conv-put", **BOT)
        assert _error(gone)[:2] == ("ResourceNotFoundException", 404)


def test_recognize_utterance_with_text(server):
    lex = _lex(server)
    r = lex.recognize_utterance(requestContentType="text/plain; charset=utf-8", inputStream=b"order pizza",
                                sessionId="conv-utterance", **BOT)
    unpack = lambda v: json.loads(gzip.decompress(base64.b64decode(v)))  # noqa: E731
    assert r["inputMode"] == "Text" and unpack(r["inputTranscript"]) == "order pizza"
    assert unpack(r["sessionState"])["intent"]["name"] == "OrderPizza"
    assert unpack(r["messages"])[0]["content"].startswith("What size would you like")
    with pytest.raises(ClientError) as audio:
        lex.recognize_utterance(requestContentType="audio/l16; rate=16000; channels=1", inputStream=b"\0" * 320,
                                sessionId="conv-utterance", **BOT)
    assert _error(audio)[:2] == ("ValidationException", 400)
    with pytest.raises(ClientError) as video:
        lex.recognize_utterance(requestContentType="text/plain; charset=utf-8", inputStream=b"large",
                                responseContentType="video/mp4", sessionId="conv-utterance", **BOT)
    assert _error(video)[:2] == ("ValidationException", 400)


def test_recognize_utterance_speaks_the_prompt_when_asked_for_audio(server):
    """Response-Content-Type audio/*: the bot's prompt through chimevoice's text-to-speech."""
    lex = _lex(server)
    pcm = lex.recognize_utterance(requestContentType="text/plain; charset=utf-8", inputStream=b"order pizza",
                                  responseContentType="audio/pcm", sessionId="conv-speech", **BOT)
    assert pcm["contentType"] == "audio/pcm"
    samples = np.frombuffer(pcm["audioStream"].read(), "<i2").astype(float)
    assert len(samples) > 16000 * 2                  # "What size would you like: ..." at 16 kHz, seconds of it
    assert np.sqrt(np.mean(samples ** 2)) > 300
    mp3 = lex.recognize_utterance(requestContentType="text/plain; charset=utf-8", inputStream=b"large",
                                  responseContentType="audio/mpeg", sessionId="conv-speech", **BOT)
    assert mp3["contentType"] == "audio/mpeg" and mp3["audioStream"].read()[:3] == b"ID3"


@pytest.mark.parametrize("bot, code", [
    ({"botId": "NOSUCHBOT1"}, "ResourceNotFoundException"),
    ({"botId": "ALIASONLY1", "botAliasId": "TSTALIASID"}, "ResourceNotFoundException"),   # only PRODALIAS1 is served
    ({"localeId": "de_DE"}, "ResourceNotFoundException"),
    ({"botId": "BAD*BOTID!"}, "ValidationException"),
], ids=["unknown-bot", "unknown-alias", "unknown-locale", "bad-bot-id"])
def test_unknown_resources_and_bad_ids(server, bot, code):
    with pytest.raises(ClientError) as excinfo:
        _lex(server).recognize_text(text="order pizza", sessionId="conv-errors", **{**BOT, **bot})
    got, status, message = _error(excinfo)
    assert (got, status) == (code, 404 if code == "ResourceNotFoundException" else 400), message
    assert message


def test_an_alias_key_serves_its_alias(server):
    r = _lex(server).recognize_text(text="order pizza", sessionId="conv-alias",
                                    **{**BOT, "botId": "ALIASONLY1", "botAliasId": "PRODALIAS1"})
    assert r["sessionState"]["intent"]["name"] == "OrderPizza"


@pytest.mark.parametrize("kwargs", [
    {"text": "x" * 1025},
    {"text": "order pizza", "sessionId": "bad session id!"},
    {"text": "order pizza", "sessionState": {"dialogAction": {"type": "Dance"}}},
    {"text": "order pizza", "sessionState": {"intent": {"name": "OrderTacos"}}},
    {"text": "3", "sessionState": {"intent": {"name": "OrderPizza"},
                                   "dialogAction": {"type": "ElicitSlot", "slotToElicit": "Sauce"}}},
    {"text": "order pizza", "sessionState": {"intent": {"name": "OrderPizza", "confirmationState": "Maybe"}}},
], ids=["text-too-long", "bad-session-id", "bad-dialog-action", "unknown-intent", "unknown-slot",
        "bad-confirmation-state"])
def test_bad_input_is_a_validation_exception(server, kwargs):
    with pytest.raises(ClientError) as excinfo:
        _lex(server).recognize_text(**{"sessionId": "conv-validation", **BOT, **kwargs})
    code, status, message = _error(excinfo)
    assert (code, status) == ("ValidationException", 400) and message


def test_a_wrong_secret_is_refused(server):
    with pytest.raises(ClientError) as excinfo:
        _lex(server, secret="not-the-secret").recognize_text(text="order pizza", sessionId="conv-auth", **BOT)
    assert _error(excinfo)[1] == 403


def test_start_conversation_is_declared_unsupported(server):
    url = f"{server.url}/bots/LOCALPIZZA/botAliases/TSTALIASID/botLocales/en_US/sessions/conv-stream/conversation"
    request = AWSRequest(method="POST", url=url, data=b"",
                         headers={"Content-Type": "application/vnd.amazon.eventstream"})
    SigV4Auth(Credentials(KEY, SECRET), "lex", "us-east-1").add_auth(request)
    prepared = request.prepare()
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(urllib.request.Request(url, data=b"", headers=dict(prepared.headers), method="POST"),
                               timeout=5)
    assert excinfo.value.code == 400
    assert excinfo.value.headers["x-amzn-ErrorType"] == "ValidationException"
    assert "StartConversation" in json.loads(excinfo.value.read())["message"]


V3_SCRIPT = r"""
const { LexRuntimeV2Client, RecognizeTextCommand, StartConversationCommand } =
  require('@aws-sdk/client-lex-runtime-v2');
(async () => {
  const c = new LexRuntimeV2Client({ endpoint: process.argv[1], region: 'eu-west-1',
    credentials: { accessKeyId: process.argv[2], secretAccessKey: process.argv[3] } });
  const bot = { botId: 'LOCALPIZZA', botAliasId: 'TSTALIASID', localeId: 'en_US', sessionId: 'conv-v3' };
  const out = {};
  const r = await c.send(new RecognizeTextCommand({ ...bot, text: 'I want a large pizza' }));
  out.recognized = r.sessionState;
  for (const [name, command] of [
      ['unknown', new RecognizeTextCommand({ ...bot, botId: 'NOSUCHBOT1', text: 'x' })],
      ['stream', new StartConversationCommand({ ...bot, conversationMode: 'TEXT',
        requestEventStream: (async function* () { yield { TextInputEvent: { text: 'order pizza' } }; })() })]]) {
    try { await c.send(command); out[name] = 'no error'; }
    catch (e) { out[name] = { name: e.name, status: e.$metadata.httpStatusCode, message: e.message }; }
  }
  c.destroy();
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_sdk_v3_over_http2_gets_the_same_answers_and_error_shapes(server, capfd):
    """@aws-sdk/client-lex-runtime-v2 (NodeHttp2Handler: h2c with prior knowledge, :authority signed)."""
    node, modules = shutil.which("node"), ROOT / ".runtime" / "node" / "node_modules"
    if node is None or not (modules / "@aws-sdk" / "client-lex-runtime-v2").is_dir():
        pytest.fail("node and .runtime/node (scripts/bootstrap) are required")
    run = subprocess.run([node, "-e", V3_SCRIPT, server.url, KEY, SECRET], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "NODE_PATH": str(modules)})
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["recognized"]["intent"]["name"] == "OrderPizza"
    assert out["recognized"]["intent"]["slots"]["Size"]["value"]["interpretedValue"] == "large"
    assert out["recognized"]["dialogAction"] == {"type": "ElicitSlot", "slotToElicit": "Topping"}
    assert out["unknown"]["name"] == "ResourceNotFoundException" and out["unknown"]["status"] == 404
    assert out["stream"]["name"] == "ValidationException" and "StartConversation" in out["stream"]["message"]
    assert "http=2" in capfd.readouterr().out          # the runtime's log line: it was HTTP/2
