"""StartBotConversation on real SIP calls: the pjsua2 phone answers the bot with RFC 4733 DTMF."""
from __future__ import annotations

import asyncio
import os
import shutil
import threading
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml

from chimevoice.media.analysis import similarity
from chimevoice.media.audio import read_pcm
from chimevoice.speech import SpeechRequest, make_synthesizer
from tests.bots.fake_lex import FakeLex
from tests.support.harness import ROOT, Daemon, free_port, handler_app, wait_handler_events

pytestmark = pytest.mark.sip

APP = "44444444-0000-4000-8000-000000000001"
N = "+155501000"                      # +15550100030 .. +15550100034
NUMBERS = [N + str(i) for i in range(30, 35)]
LOCAL_ARN = "arn:aws:lex:us-east-1:111122223333:bot-alias/LOCALPIZZA/TSTALIASID"
LEX_ARN = "arn:aws:lex:us-east-1:123456789012:bot-alias/PIZZABOT01/TSTALIASID"
WELCOME = "Welcome to Pizza Palace. Press 1 to order a pizza."
SIZE_PROMPT = "What size would you like: small, medium or large? Or press 1, 2 or 3."
TOPPING_PROMPT = "Which topping: cheese, pepperoni, mushroom, vegetarian or hawaiian?"
CLOSING = "Thank you. Your 2 large pepperoni pizza will be ready in 30 minutes."


def start_daemon(work: Path, bots: dict, env: dict | None = None) -> Daemon:
    events = work / "events"
    events.mkdir()
    d = Daemon(work, free_port())
    d.events = events
    app = handler_app(APP, "botcaller", "botcaller:lambda_handler",
                      {"EVENTS_DIR": str(events), "LEX_BOT_ARN": LEX_ARN})
    rules = [{"id": f"55555555-0000-4000-8000-{i:012d}", "name": f"bot-{i}", "trigger_type": "ToPhoneNumber",
              "trigger_value": number, "target_applications": [{"sip_media_application_id": APP, "priority": 1}]}
             for i, number in enumerate(NUMBERS)]
    cfg = d.write_config([app], rules=rules, numbers=NUMBERS)
    data = yaml.safe_load(cfg.read_text())
    data["bots"] = bots
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    with mock.patch.dict(os.environ, env or {}):
        d.start()
    return d


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    work = tmp_path_factory.mktemp("bots")
    d = start_daemon(work, {"local": {"LOCALPIZZA": str(ROOT / "config" / "bots" / "pizza.yaml")}})
    yield d
    assert d.stop() == 0, d.log_path.read_text()[-3000:]


@pytest.fixture(scope="module")
def lex_daemon(tmp_path_factory):
    """A daemon whose unknown bot alias ARNs go to Amazon Lex V2 -- here tests/bots/fake_lex.py."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = FakeLex()
    url = asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    work = tmp_path_factory.mktemp("lexbots")
    env = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
           "AWS_CONFIG_FILE": str(work / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(work / "none"),
           "AWS_EC2_METADATA_DISABLED": "true"}
    d = start_daemon(work, {"allow_lex": True, "lex_endpoint_url": url}, env)
    d.fake_lex = fake
    yield d
    code = d.stop()
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    assert code == 0, d.log_path.read_text()[-3000:]


def wait_events(d: Daemon, number: str, last: str, timeout: float = 10) -> list[dict]:
    return wait_handler_events(d.events / "botcaller.jsonl", number, last, timeout)


def synthesize(text: str, cache: Path) -> np.ndarray:
    """The prompt as the daemon speaks it (same local synthesizer, voice chosen for en_US)."""
    req = SpeechRequest(text=text, text_type="text", engine="standard", language_code="en-US", voice_id="Joanna")
    path = asyncio.run(make_synthesizer("local", cache).synthesize(req))
    samples, rate = read_pcm(path)
    assert rate == 8000
    return samples.astype(np.float64)


def voiced_blocks(x: np.ndarray, rate: int = 8000, level: float = 1500) -> list[float]:
    """Start times (s) of the 20 ms blocks that carry speech."""
    return [i / rate for i in range(0, len(x) - 160, 160) if np.abs(x[i:i + 160]).max() > level]


def slot_values(intent: dict) -> dict:
    return {name: (slot["Value"]["OriginalValue"], slot["Value"]["InterpretedValue"]) if slot else None
            for name, slot in intent["Slots"].items()}


def test_pizza_order_by_keypad_reaches_the_handler_as_intent_result(daemon, tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required; run scripts/bootstrap")
    rec = tmp_path / "heard.wav"
    # After the welcome (about 3.6 s; in a loaded CI run it started up to ~3 s after the answer):
    # intent 1, size 3 (large), topping 2 (pepperoni), quantity 2, confirm 1 (yes).
    # The answers from the size on cut their prompts short. Key times are seconds after answer.
    t_intent, t_size, t_topping, t_quantity, t_confirm = 7.0, 8.5, 10.0, 11.5, 13.0
    keys = [f"{t_intent}:1#", f"{t_size}:3#", f"{t_topping}:2#", f"{t_quantity}:2#", f"{t_confirm}:1#"]
    res = daemon.call(user=N + "30", record=rec, dtmf=keys, max_seconds=30, timeout=45)
    assert res["answered"] and res["hangup_by"] == "remote", res
    evs = wait_events(daemon, N + "30", "HANGUP")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"]
    cid = evs[0]["CallDetails"]["Participants"][0]["CallId"]
    data = evs[1]["ActionData"]
    assert list(data) == ["CallId", "Type", "Parameters", "IntentResult"]        # 03c §6.1
    assert data["Type"] == "StartBotConversation" and data["CallId"] == cid
    assert data["Parameters"] == {"CallId": cid, "BotAliasArn": LOCAL_ARN, "LocaleId": "en_US", "Configuration": {
        "SessionState": {"DialogAction": {"Type": "ElicitIntent"}, "SessionAttributes": {"channel": "phone"}},
        "WelcomeMessages": [{"Content": WELCOME, "ContentType": "PlainText"}]}}
    assert "CallDetails" not in data and evs[1]["CallDetails"]["TransactionId"]
    result = data["IntentResult"]
    assert list(result) == ["SessionId", "SessionState", "Interpretations"]
    assert result["SessionId"] == cid
    intent = result["SessionState"]["Intent"]
    assert (intent["Name"], intent["State"], intent["ConfirmationState"]) == ("OrderPizza", "Fulfilled", "Confirmed")
    assert slot_values(intent) == {"Size": ("3", "large"), "Topping": ("2", "pepperoni"), "Quantity": ("2", "2"),
                                   "Crust": None}
    assert intent["Slots"]["Size"] == {"Value": {"OriginalValue": "3", "InterpretedValue": "large",
                                                 "ResolvedValues": ["large"]}, "Values": []}
    assert result["SessionState"]["SessionAttributes"] == {
        "channel": "phone", "orderStatus": "placed", "orderSummary": "2 large pepperoni"}
    assert result["Interpretations"][0]["Intent"] == intent
    assert result["Interpretations"][0]["NluConfidence"] == {"Score": 1.0}
    # Every key press reached the bot, none became an event of its own.
    turns = [e for e in daemon.logs() if e.get("event") == "bot_turn" and e.get("CallId") == cid]
    assert [t["op"] for t in turns] == ["start", "dtmf", "dtmf", "dtmf", "dtmf", "dtmf"]
    assert [t["slot"] for t in turns[1:4]] == ["Size", "Topping", "Quantity"]

    # What the caller heard: the whole welcome, then (after the last key) the closing message.
    heard, rate = read_pcm(rec)
    x = heard.astype(np.float64)
    welcome = synthesize(WELCOME, tmp_path / "ref")
    closing = synthesize(CLOSING, tmp_path / "ref")
    assert 2.0 < len(welcome) / rate < t_intent - 1.1    # it fits before the first key
    assert similarity(welcome, x[:int(t_intent * rate)], rate) > 0.85
    assert similarity(closing, x[int(t_confirm * rate):], rate) > 0.85
    after = [t for t in voiced_blocks(x) if t > t_confirm + 0.1]
    assert after and (after[-1] - after[0]) == pytest.approx(len(closing) / rate, abs=0.6)
    # Barge-in: the size prompt (about 5 s) was heard from its start but cut by the answer.
    # The next prompt started right after the answer.
    size = synthesize(SIZE_PROMPT, tmp_path / "ref")
    assert len(size) / rate > 4.0
    window = x[int(t_intent * rate):int((t_confirm - 0.1) * rate)]
    assert similarity(size[:int(0.9 * rate)], window, rate) > 0.85
    assert similarity(size[int(2.0 * rate):], window, rate) < 0.5
    topping = synthesize(TOPPING_PROMPT, tmp_path / "ref")
    assert similarity(topping[:int(0.9 * rate)], x[int(t_size * rate):int(t_topping * rate)], rate) > 0.85
    assert res["connected_seconds"] == pytest.approx(t_confirm + len(closing) / rate, abs=1.5)


def test_bot_nobody_serves_fails_with_resource_not_found(daemon):
    res = daemon.call(user=N + "31")
    assert not res["answered"] and res["final_status"] == 480, res      # the failed bot answered nothing
    evs = wait_events(daemon, N + "31", "HANGUP")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "ACTION_FAILED", "HANGUP"]
    cid = evs[0]["CallDetails"]["Participants"][0]["CallId"]
    data = evs[1]["ActionData"]
    assert data == {"Type": "StartBotConversation", "Parameters": data["Parameters"], "CallId": cid,
                    "ErrorType": "ResourceNotFound", "ErrorMessage": "Bot not found."}
    assert data["Parameters"]["BotAliasArn"].endswith("/NOSUCHBOT/TSTALIASID")
    assert "ErrorType" not in evs[1]


def test_malformed_bot_alias_arn_fails_with_invalid_action_parameter(daemon):
    res = daemon.call(user=N + "32")
    assert res["final_status"] == 480, res
    evs = wait_events(daemon, N + "32", "HANGUP")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "ACTION_FAILED", "HANGUP"]
    data = evs[1]["ActionData"]
    assert (data["ErrorType"], data["ErrorMessage"]) == ("InvalidActionParameter", "Invalid BotAliasArn parameter.")
    assert data["CallId"] == evs[0]["CallDetails"]["Participants"][0]["CallId"]


def test_caller_hanging_up_mid_conversation_yields_only_hangup(daemon):
    res = daemon.call(user=N + "34", hangup_after=2.0, dtmf=["1.0:1#"])
    assert res["answered"] and res["hangup_by"] == "local", res
    evs = wait_events(daemon, N + "34", "HANGUP")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "HANGUP"]
    cid = evs[0]["CallDetails"]["Participants"][0]["CallId"]
    daemon.wait_log("transaction_finished", CallId=cid)
    assert not [e for e in daemon.logs() if e.get("CallId") == cid and e.get("event") == "action_failed"]


def test_conversation_with_amazon_lex_through_boto3(lex_daemon):
    keys = ["3.5:1#", "5.0:3#", "6.5:1#", "8.0:1#"]     # order, large, thin, yes
    res = lex_daemon.call(user=N + "33", dtmf=keys, max_seconds=25, timeout=40)
    assert res["answered"] and res["hangup_by"] == "remote", res
    evs = wait_events(lex_daemon, N + "33", "HANGUP")
    assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"]
    cid = evs[0]["CallDetails"]["Participants"][0]["CallId"]
    result = evs[1]["ActionData"]["IntentResult"]
    assert result["SessionId"] == cid
    intent = result["SessionState"]["Intent"]
    assert (intent["Name"], intent["State"], intent["ConfirmationState"]) == ("OrderPizza", "Fulfilled", "Confirmed")
    assert slot_values(intent) == {"Size": ("3", "large"), "Crust": ("1", "thin")}
    assert result["SessionState"]["SessionAttributes"] == {"orderId": "A1001"}
    # The digits went to Lex as text (after '#' handling), on the session named by the CallId.
    sent = [(r["path"]["sessionId"], r["body"]["text"]) for r in lex_daemon.fake_lex.requests]
    assert sent == [(cid, "1"), (cid, "3"), (cid, "1"), (cid, "1")]
    assert lex_daemon.fake_lex.requests[0]["body"]["sessionState"] == {"dialogAction": {"type": "ElicitIntent"}}
