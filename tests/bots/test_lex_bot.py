"""LexV2Bot through real boto3 (lexv2-runtime RecognizeText) against tests/bots/fake_lex.py."""
from __future__ import annotations

import json

import pytest

from chimevoice.bots import BotError, LexV2Bot, convert_response, create_bot, parse_bot_parameters

from .conftest import LOCAL_BOTS, action_params

LEX_ARN = "arn:aws:lex:eu-west-2:123456789012:bot-alias/PIZZABOT01/TSTALIASID"
CALL_ID = "c70f341a-adde-4406-9dea-1e01d34d033d"


def lex_slot(original: str, interpreted: str) -> dict:
    return {"Value": {"OriginalValue": original, "InterpretedValue": interpreted, "ResolvedValues": [interpreted]},
            "Values": []}


def make_bot(fake_lex, arn: str = LEX_ARN, **kw) -> LexV2Bot:
    kw.setdefault("call_id", CALL_ID)
    params = parse_bot_parameters(action_params(arn, **kw))
    bot = create_bot(params, local_bots=LOCAL_BOTS, lex_endpoint_url=fake_lex.url)
    assert isinstance(bot, LexV2Bot)
    return bot


async def test_text_conversation_through_boto3(fake_lex, aws_env):
    bot = make_bot(fake_lex, attributes={"mykey1": "myvalue1", "x-amz-lex:start-timeout-ms:*:*": "4000"},
                   dialog="ElicitIntent",
                   welcome=[{"Content": "Welcome. How can I help you?", "ContentType": "PlainText"}])
    turn = await bot.start()
    assert (turn.prompt_text, turn.finished, turn.dialog_action) == ("Welcome. How can I help you?", False,
                                                                     "ElicitIntent")
    assert fake_lex.requests == []  # the welcome is played by the service, not asked of Lex

    turn = await bot.input_text("I want a large pizza")
    assert (turn.prompt_text, turn.dialog_action, turn.slot_to_elicit) == ("Thin or thick crust?", "ElicitSlot",
                                                                           "Crust")
    turn = await bot.input_text("crispy please")
    assert turn.dialog_action == "ConfirmIntent"
    assert turn.prompt_ssml == "<speak>Should I order a <emphasis>large</emphasis> thin crust pizza?</speak>"
    assert turn.prompt_text == "Should I order a large thin crust pizza?"
    turn = await bot.input_text("yes")
    assert turn.finished and turn.prompt_text == "Your pizza is on its way."

    # What went over the wire.
    assert len(fake_lex.requests) == 3
    first = fake_lex.requests[0]
    assert first["path"] == {"botId": "PIZZABOT01", "botAliasId": "TSTALIASID", "localeId": "en_US",
                             "sessionId": CALL_ID}
    assert first["body"] == {"text": "I want a large pizza", "sessionState": {
        "sessionAttributes": {"mykey1": "myvalue1", "x-amz-lex:start-timeout-ms:*:*": "4000"},
        "dialogAction": {"type": "ElicitIntent"}}}
    assert [r["body"] for r in fake_lex.requests[1:]] == [{"text": "crispy please"}, {"text": "yes"}]
    auth = first["headers"]["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-2/lex/aws4_request" in auth  # region from the ARN, Lex's signing name

    expected = {
        "SessionId": CALL_ID,
        "SessionState": {
            "SessionAttributes": {"mykey1": "myvalue1", "x-amz-lex:start-timeout-ms:*:*": "4000",
                                  "orderId": "A1001"},
            "Intent": {
                "Name": "OrderPizza",
                "Slots": {"Size": lex_slot("large", "large"), "Crust": lex_slot("crispy", "thin")},
                "State": "Fulfilled",
                "ConfirmationState": "Confirmed",
            },
        },
        "Interpretations": [
            {"NluConfidence": {"Score": 1.0},
             "Intent": {"Name": "OrderPizza",
                        "Slots": {"Size": lex_slot("large", "large"), "Crust": lex_slot("crispy", "thin")},
                        "State": "Fulfilled", "ConfirmationState": "Confirmed"}},
            # Lex gives FallbackIntent no nluConfidence: the key is left out, not invented.
            {"Intent": {"Name": "FallbackIntent", "Slots": {}, "State": None, "ConfirmationState": "None"}},
        ],
    }
    assert json.dumps(turn.intent_result) == json.dumps(expected)


async def test_dtmf_is_sent_as_text(fake_lex, aws_env):
    bot = make_bot(fake_lex, dialog="ElicitIntent")
    assert (await bot.start()).prompt_text is None  # no welcome: the caller speaks first
    await bot.input_dtmf("1")
    await bot.input_dtmf("5*3#")
    await bot.input_dtmf("2#")
    turn = await bot.input_dtmf("1")
    assert [r["body"]["text"] for r in fake_lex.requests] == ["1", "3", "2", "1"]
    intent = turn.intent_result["SessionState"]["Intent"]
    assert intent["Slots"] == {"Size": lex_slot("3", "large"), "Crust": lex_slot("2", "thick")}
    assert intent["State"] == "Fulfilled"


async def test_denied_confirmation_and_session_attributes_kept_by_lex(fake_lex, aws_env):
    bot = make_bot(fake_lex)
    for text in ("order a small pizza", "thick", "no"):
        turn = await bot.input_text(text)
    assert "sessionState" not in fake_lex.requests[0]["body"]  # nothing given, nothing sent
    intent = turn.intent_result["SessionState"]["Intent"]
    assert (intent["State"], intent["ConfirmationState"]) == ("Failed", "Denied")
    assert turn.intent_result["SessionState"]["SessionAttributes"] == {}


async def test_unrecognised_input_and_turn_limit(fake_lex, aws_env):
    params = parse_bot_parameters(action_params(LEX_ARN, call_id=CALL_ID, attributes={"k": "v"}))
    bot = create_bot(params, local_bots={}, lex_endpoint_url=fake_lex.url, max_turns=3)
    turn = await bot.input_text("what's the weather")
    assert (turn.prompt_text, turn.dialog_action, turn.finished) == ("Sorry, can you please repeat that?",
                                                                     "ElicitIntent", False)
    turn = await bot.input_text("")  # no input: Lex is not asked
    assert not turn.finished and len(fake_lex.requests) == 1
    turn = await bot.input_text("still the weather")
    assert turn.finished and turn.prompt_text is None
    result = turn.intent_result
    assert result["SessionState"] == {"SessionAttributes": {"k": "v"}, "Intent": {
        "Name": "FallbackIntent", "Slots": {}, "State": "Failed", "ConfirmationState": "None"}}
    assert result["Interpretations"][1] == {"NluConfidence": {"Score": 0.21}, "Intent": {
        "Name": "OrderPizza", "Slots": {"Size": None, "Crust": None}, "State": None, "ConfirmationState": "None"}}


@pytest.mark.parametrize("arn,locale,error", [
    ("arn:aws:lex:eu-west-2:123456789012:bot-alias/NOSUCHBOT1/TSTALIASID", "en_US",
     ("ResourceNotFound", "Bot not found.")),
    (LEX_ARN, "de_DE", ("ResourceNotFound", "Bot not found.")),
    ("arn:aws:lex:eu-west-2:123456789012:bot-alias/DENIEDBOT1/TSTALIASID", "en_US",
     ("ResourceAccessDenied", "Access to the bot was denied.")),
    ("arn:aws:lex:eu-west-2:123456789012:bot-alias/BUSYBOT001/TSTALIASID", "en_US",
     ("ActionExecutionThrottled", "Bot conversation limit exceeded: Concurrent conversation limit exceeded.")),
])
async def test_lex_errors_map_to_spec_error_types(fake_lex, aws_env, arn, locale, error):
    bot = make_bot(fake_lex, arn, LocaleId=locale)
    await bot.start()
    with pytest.raises(BotError) as info:
        await bot.input_text("order a pizza")
    assert (info.value.error_type, info.value.message) == error


async def test_unreachable_lex_is_system_exception(aws_env):
    params = parse_bot_parameters(action_params(LEX_ARN))
    bot = LexV2Bot(params, session_id=CALL_ID, endpoint_url="http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(BotError) as info:
        await bot.input_text("hello")
    assert (info.value.error_type, info.value.message) == ("SystemException", "System error while running action")


def test_convert_response_keeps_values_and_orders_keys():
    response = {
        "sessionId": "s-1",
        "sessionState": {
            "dialogAction": {"type": "Close"},
            "intent": {"name": "Book", "state": "ReadyForFulfillment", "confirmationState": "None", "slots": {
                "Guests": {"shape": "List", "value": {"originalValue": "two and three", "interpretedValue": "2 3",
                                                      "resolvedValues": []},
                           "values": [{"shape": "Scalar", "value": {"originalValue": "two",
                                                                    "interpretedValue": "2",
                                                                    "resolvedValues": ["2"]}}]},
                "Date": None}},
        },
        "interpretations": [{"nluConfidence": {"score": 0.87}, "intent": {"name": "Book", "slots": {}}}],
    }
    result = convert_response(response, "fallback-id")
    assert json.dumps(result) == json.dumps({
        "SessionId": "s-1",
        "SessionState": {"SessionAttributes": {}, "Intent": {
            "Name": "Book",
            "Slots": {"Guests": {"Value": {"OriginalValue": "two and three", "InterpretedValue": "2 3",
                                           "ResolvedValues": []},
                                 "Values": [{"Value": {"OriginalValue": "two", "InterpretedValue": "2",
                                                       "ResolvedValues": ["2"]}, "Values": []}]},
                      "Date": None},
            "State": "ReadyForFulfillment", "ConfirmationState": "None"}},
        "Interpretations": [{"NluConfidence": {"Score": 0.87}, "Intent": {
            "Name": "Book",
            "Slots": {"Guests": {"Value": {"OriginalValue": "two and three", "InterpretedValue": "2 3",
                                           "ResolvedValues": []},
                                 "Values": [{"Value": {"OriginalValue": "two", "InterpretedValue": "2",
                                                       "ResolvedValues": ["2"]}, "Values": []}]},
                      "Date": None},
            "State": "ReadyForFulfillment", "ConfirmationState": "None"}}],
    })
