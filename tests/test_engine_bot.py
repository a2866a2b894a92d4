"""StartBotConversation in the sans-IO engine: prompts, DTMF collection, barge-in, events (03c)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chimevoice.actions.bot import DTMF_END_TIMEOUT_S, NO_INPUT_TIMEOUT_S, voice_for_locale
from chimevoice.bots import BotError, BotParameters, BotSessionStore, BotTurn, create_bot
from chimevoice.engine import commands as c
from chimevoice.engine import inputs as I
from chimevoice.speech import SpeechRequest

from .test_engine import A, invoked, make_tx, of, respond

PIZZA_YAML = Path(__file__).resolve().parents[1] / "config" / "bots" / "pizza.yaml"
ARN = "arn:aws:lex:us-east-1:111122223333:bot-alias/LOCALPIZZA/TSTALIASID"
RESULT = {"SessionId": A, "SessionState": {"SessionAttributes": {}, "Intent": {
    "Name": "OrderPizza", "Slots": {}, "State": "Fulfilled", "ConfirmationState": "None"}},
    "Interpretations": []}


def bot_action(arn=ARN, *, welcome="Welcome to Pizza Palace.", attributes=None, **params):
    config: dict = {"SessionState": {"DialogAction": {"Type": "ElicitIntent"}}}
    if attributes is not None:
        config["SessionState"]["SessionAttributes"] = attributes
    if welcome:
        config["WelcomeMessages"] = [{"Content": welcome, "ContentType": "PlainText"}]
    return {"Type": "StartBotConversation", "Parameters": {"BotAliasArn": arn, "Configuration": config, **params}}


def turn(prompt=None, *, finished=False, result=None, ssml=None, slot=None):
    return BotTurn(prompt, ssml, finished, result, "Close" if finished else "ElicitSlot", slot)


def started(action=None):
    """A transaction whose handler returned StartBotConversation; returns (tx, start BotRequest)."""
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [action or bot_action()])
    reqs = of(cmds, c.BotRequest)
    assert len(reqs) == 1 and reqs[0].op == "start", cmds
    assert not of(cmds, c.Answer) and not of(cmds, c.Invoke)       # nothing answered before the bot exists
    return tx, reqs[0]


def speak_and_play(tx, cmds, *, media_up=True):
    """PrepareSpeech in *cmds* -> audio ready -> (media) -> Play; returns (SpeechRequest, Play)."""
    prep = of(cmds, c.PrepareSpeech)
    assert len(prep) == 1, cmds
    tx.handle(I.AudioReady(prep[0].request_id, "/cache/prompt.wav", 2.0))
    cmds = tx.drain()
    if not media_up:
        assert not of(cmds, c.Play)
        tx.handle(I.MediaReady(A))
        cmds = tx.drain()
    plays = of(cmds, c.Play)
    assert len(plays) == 1, cmds
    return prep[0].request, plays[0]


def timers(cmds):
    return [t for t in of(cmds, c.StartTimer) if t.name != "unanswered"]


def test_conversation_speaks_collects_dtmf_and_reports_intent_result():
    action = bot_action(ParticipantTag="LEG-A")
    tx, start = started(action)
    assert start.call_id == A
    params = start.value
    assert isinstance(params, BotParameters) and params.arn == ARN and params.locale_id == "en_US"
    tx.handle(I.BotTurn(start.request_id, turn("Welcome to Pizza Palace.", slot=None)))
    cmds = tx.drain()
    assert of(cmds, c.Answer) == [c.Answer(A)]                       # 03c §8.1: the action answers
    request, play = speak_and_play(tx, cmds, media_up=False)
    assert request == SpeechRequest(text="Welcome to Pizza Palace.", text_type="text", engine="standard",
                                    language_code="en-US", voice_id="Joanna")
    assert (play.call_id, play.path, play.repeat) == (A, "/cache/prompt.wav", 1)
    tx.handle(I.PlaybackFinished(A, play.play_id))
    [no_input] = timers(tx.drain())
    assert no_input.seconds == NO_INPUT_TIMEOUT_S
    tx.handle(I.Dtmf(A, "1"))
    [inter_digit] = timers(tx.drain())
    assert inter_digit.seconds == DTMF_END_TIMEOUT_S
    tx.handle(I.Dtmf(A, "#"))
    cmds = tx.drain()
    assert c.CancelTimer(inter_digit.name) in cmds
    [req] = of(cmds, c.BotRequest)
    assert (req.op, req.value, req.conversation_id) == ("dtmf", "1#", start.conversation_id)
    tx.handle(I.BotTurn(req.request_id, turn("Thank you, goodbye.", finished=True, result=RESULT)))
    cmds = tx.drain()
    request, play = speak_and_play(tx, cmds)                          # the closing message
    assert request.text == "Thank you, goodbye."
    assert not of(tx.drain(), c.Invoke)
    tx.handle(I.PlaybackFinished(A, play.play_id))
    cmds = tx.drain()
    assert c.BotRelease(start.conversation_id) in cmds
    event = invoked(cmds)
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert event["ActionData"] == {"Type": "StartBotConversation", "Parameters": action["Parameters"],
                                   "CallId": A, "IntentResult": RESULT}
    assert list(event["ActionData"]) == ["CallId", "Type", "Parameters", "IntentResult"]   # 03c §6.1
    assert "CallDetails" not in event["ActionData"]                  # top level (03c §12 item 3)
    assert event["CallDetails"]["Participants"][0]["CallId"] == A


def test_ssml_prompt_is_spoken_as_ssml():
    tx, start = started()
    tx.handle(I.BotTurn(start.request_id, turn("Hi there", ssml="<speak>Hi <break time='1s'/> there</speak>")))
    request, _ = speak_and_play(tx, tx.drain(), media_up=False)
    assert (request.text, request.text_type) == ("<speak>Hi <break time='1s'/> there</speak>", "ssml")


def test_digit_during_prompt_stops_it_and_inter_digit_timeout_ends_input():
    tx, start = started()
    tx.handle(I.MediaReady(A))
    tx.drain()
    tx.handle(I.BotTurn(start.request_id, turn("A long welcome message.")))
    _, play = speak_and_play(tx, tx.drain())
    tx.handle(I.Dtmf(A, "1"))
    cmds = tx.drain()
    assert c.StopPlay(A, play.play_id) in cmds                        # barge-in
    tx.handle(I.PlaybackFinished(A, play.play_id))                            # late event from the SIP side
    tx.handle(I.Dtmf(A, "2"))
    [timer] = timers(tx.drain())[-1:]
    assert not of(tx.drain(), c.BotRequest)
    tx.handle(I.TimerFired(timer.name))
    [req] = of(tx.drain(), c.BotRequest)
    assert (req.op, req.value) == ("dtmf", "12")


def test_digit_while_prompt_is_synthesized_cancels_it():
    tx, start = started()
    tx.handle(I.MediaReady(A))
    tx.drain()
    tx.handle(I.BotTurn(start.request_id, turn("What size?")))
    prep = of(tx.drain(), c.PrepareSpeech)[0]
    tx.handle(I.Dtmf(A, "3"))
    tx.handle(I.Dtmf(A, "#"))
    [req] = of(tx.drain(), c.BotRequest)
    assert req.value == "3#"
    tx.handle(I.AudioReady(prep.request_id, "/cache/late.wav", 1.0))          # too late: never played
    assert not of(tx.drain(), c.Play)


def test_digits_typed_while_the_bot_thinks_start_the_next_input():
    tx, start = started()
    tx.handle(I.MediaReady(A))
    tx.drain()
    tx.handle(I.BotTurn(start.request_id, turn("Welcome.")))
    _, play = speak_and_play(tx, tx.drain())
    tx.handle(I.PlaybackFinished(A, play.play_id))
    for d in "1#2#":                     # two answers in a row, the second before the bot replied
        tx.handle(I.Dtmf(A, d))
    [req] = of(tx.drain(), c.BotRequest)
    assert req.value == "1#"
    tx.handle(I.BotTurn(req.request_id, turn("What size?")))
    cmds = tx.drain()
    assert not of(cmds, c.PrepareSpeech)                             # the caller already answered
    [req2] = of(cmds, c.BotRequest)
    assert req2.value == "2#"


def test_no_input_sends_empty_input_and_repeats_a_silent_prompt():
    tx, start = started()
    tx.handle(I.MediaReady(A))
    tx.drain()
    tx.handle(I.BotTurn(start.request_id, turn("What size?")))
    _, play = speak_and_play(tx, tx.drain())
    tx.handle(I.PlaybackFinished(A, play.play_id))
    [timer] = timers(tx.drain())
    tx.handle(I.TimerFired(timer.name))
    [req] = of(tx.drain(), c.BotRequest)
    assert (req.op, req.value) == ("dtmf", "")
    tx.handle(I.BotTurn(req.request_id, turn(None)))                          # Lex: nothing new to say
    request, _ = speak_and_play(tx, tx.drain())
    assert request.text == "What size?"


@pytest.mark.parametrize("attributes,start_s,end_s", [
    ({"x-amz-lex:start-timeout-ms:*:*": "4000"}, 4.0, DTMF_END_TIMEOUT_S),          # 03c §8.5 example
    ({"x-amz-lex:dtmf:end-timeout-ms:*:*": "1500"}, NO_INPUT_TIMEOUT_S, 1.5),
    ({"x-amz-lex:dtmf:end-timeout-ms:*:*": "1500", "x-amz-lex:dtmf:end-timeout-ms:*:Size": "700",
      "x-amz-lex:dtmf:start-timeout-ms:OrderPizza:Size": "2500"}, 2.5, 0.7),
    ({"x-amz-lex:dtmf:end-timeout-ms:*:Crust": "700", "x-amz-lex:end-timeout-ms:*:*": "nonsense"},
     NO_INPUT_TIMEOUT_S, DTMF_END_TIMEOUT_S),
])
def test_timeouts_from_lex_session_attributes(attributes, start_s, end_s):
    tx, start = started(bot_action(attributes=attributes))
    tx.handle(I.MediaReady(A))
    tx.drain()
    tx.handle(I.BotTurn(start.request_id, turn("What size?", slot="Size")))
    _, play = speak_and_play(tx, tx.drain())
    tx.handle(I.PlaybackFinished(A, play.play_id))
    assert [t.seconds for t in timers(tx.drain())] == [start_s]
    tx.handle(I.Dtmf(A, "1"))
    assert [t.seconds for t in timers(tx.drain())] == [end_s]


def test_finished_without_closing_message_succeeds_at_once():
    tx, start = started(bot_action(welcome=None))
    tx.handle(I.BotTurn(start.request_id, turn(None, finished=True, result=RESULT)))
    event = invoked(tx.drain())
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert event["ActionData"]["IntentResult"] == RESULT


@pytest.mark.parametrize("params,error_type,message", [
    ({"BotAliasArn": "arn:aws:lex:us-east-1:111122223333:bot/LOCALPIZZA"},
     "InvalidActionParameter", "Invalid BotAliasArn parameter."),
    ({}, "InvalidActionParameter", "Invalid BotAliasArn parameter."),
    ({"BotAliasArn": "arn:aws:lex:eu-west-2:111122223333:bot-alias/LOCALPIZZA/TSTALIASID"},   # V2: SMA region
     "InvalidActionParameter", "Invalid BotAliasArn parameter."),
    ({"BotAliasArn": ARN, "LocaleId": "english"}, "InvalidActionParameter", "Invalid LocaleId parameter."),
    ({"BotAliasArn": ARN, "Configuration": {"WelcomeMessages": [{"Content": "Hi", "ContentType": "PlainText"}]}},
     "InvalidActionParameter", "Invalid Configuration.SessionState.DialogAction.Type parameter."),
])
def test_parameter_errors_fail_with_the_spec_error_and_call_id(params, error_type, message):
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    action = {"Type": "StartBotConversation", "Parameters": params}
    cmds = respond(tx, [action])
    assert not of(cmds, c.BotRequest) and not of(cmds, c.Answer)
    event = invoked(cmds)
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert event["ActionData"] == {"Type": "StartBotConversation", "Parameters": params, "CallId": A,
                                   "ErrorType": error_type, "ErrorMessage": message}


@pytest.mark.parametrize("leg", [{"ParticipantTag": "LEG-B"}, {"CallId": "not-a-call"}])
def test_bad_leg_fails_without_call_id(leg):
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    params = {"BotAliasArn": ARN, **leg}
    event = invoked(respond(tx, [{"Type": "StartBotConversation", "Parameters": params}]))
    assert event["ActionData"] == {"Type": "StartBotConversation", "Parameters": params,
                                   "ErrorType": "InvalidActionParameter",
                                   "ErrorMessage": "CallId or ParticipantTag parameter for action is invalid."}


def test_bot_error_fails_the_action_and_releases_the_session():
    tx, start = started()
    tx.handle(I.BotFailed(start.request_id, "ResourceNotFound", "Bot not found."))
    cmds = tx.drain()
    assert c.BotRelease(start.conversation_id) in cmds
    assert not of(cmds, c.Answer)
    event = invoked(cmds)
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert event["ActionData"]["ErrorType"] == "ResourceNotFound"
    assert event["ActionData"]["ErrorMessage"] == "Bot not found."
    assert event["ActionData"]["CallId"] == A


def test_bot_error_mid_conversation_fails_the_action():
    tx, start = started()
    tx.handle(I.BotTurn(start.request_id, turn("Welcome.")))
    _, play = speak_and_play(tx, tx.drain(), media_up=False)
    tx.handle(I.PlaybackFinished(A, play.play_id))
    tx.handle(I.Dtmf(A, "#"))
    [req] = of(tx.drain(), c.BotRequest)
    tx.handle(I.BotFailed(req.request_id, "ActionExecutionThrottled", "Bot conversation limit exceeded: too many."))
    event = invoked(tx.drain())
    assert event["ActionData"]["ErrorType"] == "ActionExecutionThrottled"


def test_prompt_speech_failure_is_system_exception():
    tx, start = started()
    tx.handle(I.BotTurn(start.request_id, turn("x" * 1200)))
    prep = of(tx.drain(), c.PrepareSpeech)[0]
    tx.handle(I.AudioFailed(prep.request_id, "InvalidActionParameter", "Text parameter is too long."))
    event = invoked(tx.drain())
    assert (event["ActionData"]["ErrorType"], event["ActionData"]["ErrorMessage"]) == (
        "SystemException", "System error while running action")


def test_caller_hangs_up_mid_conversation_only_hangup_is_sent():
    tx, start = started()
    tx.handle(I.BotTurn(start.request_id, turn("Welcome.")))
    _, play = speak_and_play(tx, tx.drain(), media_up=False)
    tx.handle(I.LegDisconnected(A, by_remote=True))
    cmds = tx.drain()
    assert c.StopPlay(A, play.play_id) in cmds
    assert c.BotRelease(start.conversation_id) in cmds
    event = invoked(cmds)
    assert event["InvocationEventType"] == "HANGUP"
    tx.handle(I.BotTurn("bot-99", turn(None, finished=True, result=RESULT)))  # late answers are ignored
    tx.handle(I.PlaybackFinished(A, play.play_id))
    assert not of(tx.drain(), c.Invoke)
    assert of(respond(tx, []), c.Finished)


def test_digits_go_to_the_bot_not_to_a_receive_digits_listener():
    receive = {"Type": "ReceiveDigits", "Parameters": {
        "InputDigitsRegex": "^\\d{1}#$", "InBetweenDigitsDurationInMilliseconds": 1000,
        "FlushDigitsDurationInMilliseconds": 10000}}
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    cmds = respond(tx, [receive, bot_action()])
    start = of(cmds, c.BotRequest)[0]
    tx.handle(I.MediaReady(A))
    tx.handle(I.BotTurn(start.request_id, turn("Welcome.")))
    _, play = speak_and_play(tx, tx.drain())
    tx.handle(I.Dtmf(A, "1"))
    tx.handle(I.Dtmf(A, "#"))
    cmds = tx.drain()
    assert c.StopPlay(A, play.play_id) in cmds
    assert [r.value for r in of(cmds, c.BotRequest)] == ["1#"]
    assert not of(cmds, c.Invoke)                                    # no DIGITS_RECEIVED (03c §6.3)


def test_not_last_in_list_warns_and_the_list_goes_on():
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    pause = {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 500}}
    cmds = respond(tx, [bot_action(welcome=None), pause])
    assert any(isinstance(x, c.Log) and x.event == "bot_conversation_not_last" for x in cmds)
    start = of(cmds, c.BotRequest)[0]
    tx.handle(I.BotTurn(start.request_id, turn(None, finished=True, result=RESULT)))
    cmds = tx.drain()
    assert not of(cmds, c.Invoke)                                    # 01 §2.1: one event per list
    tx.handle(I.MediaReady(A))
    [timer] = timers(tx.drain())
    tx.handle(I.TimerFired(timer.name))
    assert invoked(tx.drain())["ActionData"]["Type"] == "Pause"


@pytest.mark.parametrize("locale,expected", [
    ("en_US", ("Joanna", "standard", "en-US")),
    ("en_GB", ("Amy", "standard", "en-GB")),
    ("es_419", ("Lupe", "standard", "es-US")),
    ("fr_CA", ("Chantal", "standard", "fr-CA")),
    ("de_DE", ("Marlene", "standard", "de-DE")),
    ("xx_YY", ("Joanna", "standard", None)),
])
def test_voice_for_locale(locale, expected):
    assert voice_for_locale(locale) == expected


def test_locale_picks_the_voice_of_the_prompts():
    tx, start = started(bot_action(LocaleId="de_DE", welcome="Willkommen."))
    tx.handle(I.BotTurn(start.request_id, turn("Willkommen.")))
    prep = of(tx.drain(), c.PrepareSpeech)[0]
    assert (prep.request.voice_id, prep.request.language_code) == ("Marlene", "de-DE")


# -- the engine with the real local pizza bot (the driver's part done in-line) ---------------

def run_with_local_bot(action, keys: list[str]):
    """Drive a call: bot steps through create_bot (as chimevoice.calls does), every prompt
    'played' to its end, then the next of *keys* pressed when the bot listens. Returns (event, prompts)."""
    tx = make_tx()
    tx.handle(I.InboundCallRouted())
    tx.drain()
    store = BotSessionStore()
    sessions: dict = {}
    prompts: list[str] = []
    keys = list(keys)
    loop = asyncio.new_event_loop()
    cmds = respond(tx, [action])
    try:
        while True:
            events = of(cmds, c.Invoke)
            if events:
                return events[0].event, prompts
            nxt: list = []
            for cmd in cmds:
                if isinstance(cmd, c.BotRequest):
                    try:
                        if cmd.op == "start":
                            bot = sessions[cmd.conversation_id] = create_bot(
                                cmd.value, local_bots={"LOCALPIZZA": PIZZA_YAML}, session_id=cmd.call_id,
                                store=store, allow_lex=False)
                            t = loop.run_until_complete(bot.start())
                        else:
                            t = loop.run_until_complete(sessions[cmd.conversation_id].input_dtmf(cmd.value))
                    except BotError as exc:
                        tx.handle(I.BotFailed(cmd.request_id, exc.error_type, exc.message))
                    else:
                        tx.handle(I.BotTurn(cmd.request_id, t))
                elif isinstance(cmd, c.Answer):
                    tx.handle(I.MediaReady(A))
                elif isinstance(cmd, c.PrepareSpeech):
                    prompts.append(cmd.request.text)
                    tx.handle(I.AudioReady(cmd.request_id, "/cache/p.wav", 1.0))
                elif isinstance(cmd, c.Play):
                    tx.handle(I.PlaybackFinished(A, cmd.play_id))
                elif isinstance(cmd, c.StartTimer) and cmd.seconds == NO_INPUT_TIMEOUT_S and keys:
                    for d in keys.pop(0):
                        tx.handle(I.Dtmf(A, d))
                nxt.extend(tx.drain())
            assert nxt, "the conversation stalled"
            cmds = nxt
    finally:
        loop.close()


def test_pizza_order_by_dtmf_through_the_engine():
    action = bot_action(welcome="Welcome to Pizza Palace. Press 1 to order.")
    event, prompts = run_with_local_bot(action, ["1#", "3#", "2#", "2#", "1#"])
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    result = event["ActionData"]["IntentResult"]
    intent = result["SessionState"]["Intent"]
    assert result["SessionId"] == A
    assert (intent["Name"], intent["State"], intent["ConfirmationState"]) == ("OrderPizza", "Fulfilled", "Confirmed")
    values = {k: (v["Value"]["InterpretedValue"] if v else None) for k, v in intent["Slots"].items()}
    assert values == {"Size": "large", "Topping": "pepperoni", "Quantity": "2", "Crust": None}
    assert prompts[0] == "Welcome to Pizza Palace. Press 1 to order."
    assert prompts[-1] == "Thank you. Your 2 large pepperoni pizza will be ready in 30 minutes."
    assert len(prompts) == 6          # welcome, size, topping, quantity, confirmation, closing


def test_unknown_bot_without_lex_is_resource_not_found_through_the_engine():
    action = bot_action("arn:aws:lex:us-east-1:111122223333:bot-alias/NOSUCHBOT/TSTALIASID")
    event, prompts = run_with_local_bot(action, [])
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert (event["ActionData"]["ErrorType"], event["ActionData"]["ErrorMessage"]) == (
        "ResourceNotFound", "Bot not found.")
    assert prompts == []
