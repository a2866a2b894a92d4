"""The embedded bot (config/bots/pizza.yaml): conversations, IntentResult shape, limits, sessions."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimevoice.bots import BotError, BotSession, BotSessionStore, LexV2Bot, LocalBot, create_bot, parse_bot_parameters

from .conftest import LOCAL_ARN, LOCAL_BOTS, PIZZA_YAML, action_params

WELCOME = [{"Content": "Welcome to Pizza Palace.", "ContentType": "PlainText"}]


def slot(original: str, interpreted: str, resolved: list[str] | None = None) -> dict:
    return {"Value": {"OriginalValue": original, "InterpretedValue": interpreted,
                      "ResolvedValues": resolved if resolved is not None else [interpreted]},
            "Values": []}


def dumps(obj) -> str:
    return json.dumps(obj)  # key order kept: equality of the text is equality byte for byte


async def test_pizza_by_text_reaches_fulfilled(make_local_bot):
    bot = make_local_bot(attributes={"mykey1": "myvalue1"}, dialog="ElicitIntent", welcome=WELCOME)
    assert isinstance(bot, LocalBot) and isinstance(bot, BotSession)

    turn = await bot.start()
    assert (turn.prompt_text, turn.prompt_ssml, turn.finished, turn.intent_result) == (
        "Welcome to Pizza Palace.", None, False, None)
    assert turn.dialog_action == "ElicitIntent"

    turn = await bot.input_text("Hi, I'd like to order a pizza please")
    assert turn.prompt_text == "What size would you like: small, medium or large? Or press 1, 2 or 3."
    assert (turn.dialog_action, turn.slot_to_elicit, turn.finished) == ("ElicitSlot", "Size", False)

    turn = await bot.input_text("A big one")
    assert turn.slot_to_elicit == "Topping"

    turn = await bot.input_text("Pepperoni, on a thin crust")
    assert turn.slot_to_elicit == "Quantity"
    assert turn.prompt_text.startswith("How many pizzas")

    turn = await bot.input_text("three please")
    assert turn.dialog_action == "ConfirmIntent"
    assert turn.prompt_text == ("That's 3 large pepperoni pizza. Shall I place the order? "
                                "Say yes or press 1, say no or press 2.")

    turn = await bot.input_text("yes, that's right")
    assert turn.finished and turn.dialog_action == "Close"
    assert turn.prompt_text == "Thank you. Your 3 large pepperoni pizza will be ready in 30 minutes."

    result = turn.intent_result
    expected_intent = {
        "Name": "OrderPizza",
        "Slots": {
            "Size": slot("big", "large"),
            "Topping": slot("Pepperoni", "pepperoni"),
            "Quantity": slot("three", "3"),
            "Crust": slot("thin crust", "thin"),
        },
        "State": "Fulfilled",
        "ConfirmationState": "Confirmed",
    }
    expected_state = {
        "SessionAttributes": {"mykey1": "myvalue1", "orderStatus": "placed", "orderSummary": "3 large pepperoni"},
        "Intent": expected_intent,
    }
    assert list(result) == ["SessionId", "SessionState", "Interpretations"]
    assert result["SessionId"] == "call-id-1"
    assert dumps(result["SessionState"]) == dumps(expected_state)
    top = result["Interpretations"][0]
    assert list(top) == ["NluConfidence", "Intent"]
    assert dumps(top["Intent"]) == dumps(expected_intent)
    assert 0.5 <= top["NluConfidence"]["Score"] <= 1.0
    names = [i["Intent"]["Name"] for i in result["Interpretations"]]
    assert set(names) == {"OrderPizza", "CheckOrderStatus", "FallbackIntent"}
    scores = [i["NluConfidence"]["Score"] for i in result["Interpretations"]]
    assert scores == sorted(scores, reverse=True)
    for alt in result["Interpretations"][1:]:
        assert list(alt["Intent"]) == ["Name", "Slots", "State", "ConfirmationState"]
        assert alt["Intent"]["State"] is None and alt["Intent"]["ConfirmationState"] == "None"
    json.dumps(result)  # plain JSON


async def test_one_utterance_fills_several_slots(make_local_bot):
    bot = make_local_bot(dialog="ElicitIntent")
    turn = await bot.start()
    assert turn.prompt_text.startswith("You can order a pizza")
    turn = await bot.input_text("I want two large veggie pizzas")
    assert turn.dialog_action == "ConfirmIntent"
    turn = await bot.input_text("no")
    assert turn.finished
    assert turn.prompt_text == "Okay, I won't place that order."
    intent = turn.intent_result["SessionState"]["Intent"]
    assert (intent["State"], intent["ConfirmationState"]) == ("Failed", "Denied")
    assert intent["Slots"]["Quantity"] == slot("two", "2")
    assert intent["Slots"]["Size"] == slot("large", "large")
    assert intent["Slots"]["Topping"] == slot("veggie", "vegetarian")
    assert intent["Slots"]["Crust"] is None  # optional slot never mentioned: null
    assert "orderStatus" not in turn.intent_result["SessionState"]["SessionAttributes"]


async def test_pizza_by_dtmf_reaches_fulfilled(make_local_bot):
    bot = make_local_bot(dialog="ElicitIntent")
    await bot.start()
    turn = await bot.input_dtmf("1")           # menu: 1 = OrderPizza
    assert turn.slot_to_elicit == "Size"
    turn = await bot.input_dtmf("3#")          # PizzaSize dtmf map: 3 = large
    assert turn.slot_to_elicit == "Topping"
    turn = await bot.input_dtmf("2")           # no dtmf map: 2nd value = pepperoni
    assert turn.slot_to_elicit == "Quantity"
    turn = await bot.input_dtmf("9*12#")       # '*' clears "9"
    assert turn.dialog_action == "ConfirmIntent"
    turn = await bot.input_dtmf("1")           # 1 = yes
    assert turn.finished
    result = turn.intent_result
    intent = result["SessionState"]["Intent"]
    assert dumps(intent) == dumps({
        "Name": "OrderPizza",
        "Slots": {"Size": slot("3", "large"), "Topping": slot("2", "pepperoni"),
                  "Quantity": slot("12", "12"), "Crust": None},
        "State": "Fulfilled", "ConfirmationState": "Confirmed"})
    assert result["Interpretations"][0]["NluConfidence"] == {"Score": 1.0}
    assert result["Interpretations"][0]["Intent"] == intent


async def test_dtmf_two_in_confirmation_denies(make_local_bot):
    bot = make_local_bot(dialog="ElicitIntent")
    await bot.start()
    for digits in ("1", "1", "1", "1"):
        turn = await bot.input_dtmf(digits)
    assert turn.dialog_action == "ConfirmIntent"
    turn = await bot.input_dtmf("2#")
    assert turn.intent_result["SessionState"]["Intent"]["ConfirmationState"] == "Denied"
    assert turn.intent_result["SessionState"]["Intent"]["State"] == "Failed"


async def test_number_out_of_range_is_asked_again(make_local_bot):
    bot = make_local_bot()
    await bot.start()
    await bot.input_text("I want a small cheese pizza")
    turn = await bot.input_text("twenty five")        # max 20
    assert turn.prompt_text.startswith("Sorry, I didn't catch that. How many pizzas")
    assert turn.slot_to_elicit == "Quantity"
    turn = await bot.input_dtmf("20#")
    assert turn.dialog_action == "ConfirmIntent"


async def test_check_order_ready_for_fulfillment_without_message(make_local_bot):
    bot = make_local_bot()
    start = await bot.start()
    assert start == type(start)(None, None, False, None, None)  # no DialogAction: waits silently
    turn = await bot.input_text("Where's my order?")
    assert turn.slot_to_elicit == "OrderNumber"
    turn = await bot.input_dtmf("0042#")
    assert turn.finished and turn.prompt_text is None and turn.prompt_ssml is None
    intent = turn.intent_result["SessionState"]["Intent"]
    assert intent == {"Name": "CheckOrderStatus", "Slots": {"OrderNumber": slot("0042", "0042")},
                      "State": "ReadyForFulfillment", "ConfirmationState": "None"}


async def test_spoken_digit_sequence_is_one_number(make_local_bot):
    bot = make_local_bot()
    await bot.start()
    await bot.input_text("check my order")
    turn = await bot.input_text("it's one two three four")
    assert turn.intent_result["SessionState"]["Intent"]["Slots"]["OrderNumber"] == slot(
        "one two three four", "1234")


async def test_confused_user_fails_after_retries(make_local_bot):
    bot = make_local_bot(attributes={"caller": "+15105550101"}, dialog="ElicitIntent", welcome=WELCOME)
    await bot.start()
    turn = await bot.input_text("what's the weather like on Mars")
    assert not turn.finished
    assert turn.prompt_text == ("Sorry, I didn't catch that. You can order a pizza, or check on an order. "
                                "Press 1 to order, 2 to check an order.")
    turn = await bot.input_dtmf("7")           # no intent on 7
    assert not turn.finished
    turn = await bot.input_text("banana helicopter")
    assert turn.finished
    assert turn.prompt_text == "Sorry, I couldn't help you with that. Goodbye."
    result = turn.intent_result
    assert result["SessionState"] == {
        "SessionAttributes": {"caller": "+15105550101"},
        "Intent": {"Name": "FallbackIntent", "Slots": {}, "State": "Failed", "ConfirmationState": "None"}}
    first = result["Interpretations"][0]
    assert first["Intent"] == result["SessionState"]["Intent"]
    scores = [i["NluConfidence"]["Score"] for i in result["Interpretations"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.5
    # A finished conversation stays finished.
    assert await bot.input_text("order a pizza") is turn


async def test_turn_limit_fails_the_intent_in_progress(make_local_bot):
    bot = make_local_bot(max_turns=4)
    await bot.start()
    assert not (await bot.input_text("order a pizza")).finished      # 1
    assert not (await bot.input_text("medium")).finished             # 2
    assert not (await bot.input_text("hmm let me think")).finished   # 3: not understood
    turn = await bot.input_text("mushrooms")                         # 4: limit
    assert turn.finished
    assert turn.prompt_text == "Sorry, I couldn't help you with that. Goodbye."
    intent = turn.intent_result["SessionState"]["Intent"]
    assert intent["Name"] == "OrderPizza" and intent["State"] == "Failed"
    assert intent["Slots"] == {"Size": slot("medium", "medium"), "Topping": slot("mushrooms", "mushroom"),
                               "Quantity": None, "Crust": None}


async def test_turn_limit_from_yaml_counts_every_input(make_local_bot):
    """settings.max_turns (12) ends a slow conversation whose retries never run out."""
    bot = make_local_bot()
    await bot.start()
    inputs = ["order a pizza", "", "", "small", "", "", "cheese", "", "", "two", "", ""]
    turns = [await bot.input_text(text) for text in inputs]
    assert [t.finished for t in turns] == [False] * 11 + [True]
    assert turns[9].dialog_action == "ConfirmIntent"
    intent = turns[-1].intent_result["SessionState"]["Intent"]
    assert (intent["Name"], intent["State"], intent["ConfirmationState"]) == ("OrderPizza", "Failed", "None")
    assert intent["Slots"]["Quantity"] == slot("two", "2")


async def test_retries_reset_after_an_understood_answer(make_local_bot):
    bot = make_local_bot()
    await bot.start()
    await bot.input_text("order a pizza")
    assert not (await bot.input_text("erm")).finished
    assert not (await bot.input_text("")).finished
    assert not (await bot.input_text("large")).finished     # understood: retries back to 0
    assert not (await bot.input_text("erm")).finished
    assert not (await bot.input_text("")).finished
    assert (await bot.input_text("dunno")).finished          # third in a row


async def test_session_attributes_round_trip(make_local_bot):
    attrs = {"mykey1": "myvalue1", "x-amz-lex:start-timeout-ms:*:*": 4000, "vip": True}
    bot = make_local_bot(attributes=attrs)
    await bot.start()
    turn = await bot.input_text("check order 5512")
    assert turn.finished
    assert turn.intent_result["SessionState"]["SessionAttributes"] == {
        "mykey1": "myvalue1", "x-amz-lex:start-timeout-ms:*:*": "4000", "vip": "true"}
    assert turn.intent_result["SessionState"]["Intent"]["Slots"]["OrderNumber"] == slot("5512", "5512")


async def test_session_continues_across_conversations_with_a_store(make_local_bot):
    store = BotSessionStore()
    bot = make_local_bot(store=store, attributes={"lang": "en"}, dialog="ElicitIntent")
    await bot.start()
    for text in ("order one small cheese pizza", "yes"):
        turn = await bot.input_text(text)
    assert turn.intent_result["SessionState"]["SessionAttributes"] == {
        "lang": "en", "orderStatus": "placed", "orderSummary": "1 small cheese"}
    # Second StartBotConversation on the same call, no SessionState: attributes are kept.
    bot2 = make_local_bot(store=store, dialog="ElicitIntent")
    await bot2.start()
    turn = await bot2.input_text("check order 77")
    assert turn.intent_result["SessionState"]["SessionAttributes"] == {
        "lang": "en", "orderStatus": "placed", "orderSummary": "1 small cheese"}
    # A SessionState given by the action replaces them.
    bot3 = make_local_bot(store=store, attributes={"fresh": "1"})
    await bot3.start()
    turn = await bot3.input_text("check order 78")
    assert turn.intent_result["SessionState"]["SessionAttributes"] == {"fresh": "1"}
    # Without a store, nothing carries over.
    bot4 = make_local_bot()
    await bot4.start()
    turn = await bot4.input_text("check order 79")
    assert turn.intent_result["SessionState"]["SessionAttributes"] == {}
    store.discard("call-id-1")
    assert len(store) == 0


async def test_welcome_messages_plain_and_ssml(make_local_bot):
    welcome = [{"Content": "Welcome & hello.", "ContentType": "PlainText"},
               {"Content": "<speak>How can I <emphasis>help</emphasis>?</speak>", "ContentType": "SSML"}]
    bot = make_local_bot(dialog="ElicitIntent", welcome=welcome)
    turn = await bot.start()
    assert turn.prompt_text == "Welcome & hello. How can I help?"
    assert turn.prompt_ssml == "<speak>Welcome &amp; hello. How can I <emphasis>help</emphasis>?</speak>"


def test_arn_mapping(tmp_path):
    params = parse_bot_parameters(action_params())
    assert isinstance(create_bot(params, local_bots=LOCAL_BOTS), LocalBot)
    # botId/botAliasId is more specific than botId.
    other = tmp_path / "other.yaml"
    other.write_text(PIZZA_YAML.read_text().replace("name: PizzaBot", "name: OtherBot"))
    bot = create_bot(params, local_bots={"LOCALPIZZA": PIZZA_YAML, "LOCALPIZZA/TSTALIASID": other})
    assert bot.definition.name == "OtherBot"
    # Region and account do not matter for local bots.
    p2 = parse_bot_parameters(action_params("arn:aws:lex:eu-west-2:999999999999:bot-alias/LOCALPIZZA/PRODALIAS"))
    assert create_bot(p2, local_bots=LOCAL_BOTS).definition.name == "PizzaBot"
    # Anything else is Amazon Lex, unless Lex is not allowed.
    p3 = parse_bot_parameters(action_params("arn:aws:lex:us-east-1:111122223333:bot-alias/ABCDEFGHIJ/MNOPQRSTU"))
    assert isinstance(create_bot(p3, local_bots=LOCAL_BOTS), LexV2Bot)
    with pytest.raises(BotError) as info:
        create_bot(p3, local_bots=LOCAL_BOTS, allow_lex=False)
    assert (info.value.error_type, info.value.message) == ("ResourceNotFound", "Bot not found.")


def test_session_id_is_the_call_id():
    params = parse_bot_parameters(action_params(call_id="c70f341a-adde-4406-9dea-1e01d34d033d"))
    assert create_bot(params, local_bots=LOCAL_BOTS).session_id == "c70f341a-adde-4406-9dea-1e01d34d033d"
    params = parse_bot_parameters({"BotAliasArn": LOCAL_ARN})
    assert create_bot(params, local_bots=LOCAL_BOTS, session_id="leg-a-id").session_id == "leg-a-id"


def test_locale_the_local_bot_lacks_is_resource_not_found():
    params = parse_bot_parameters(action_params(LocaleId="fr_FR"))
    with pytest.raises(BotError) as info:
        create_bot(params, local_bots=LOCAL_BOTS)
    assert (info.value.error_type, info.value.message) == ("ResourceNotFound", "Bot not found.")


def test_policy_emulation(tmp_path):
    yaml_path = tmp_path / "bot.yaml"
    yaml_path.write_text(PIZZA_YAML.read_text() + "\npolicy:\n  source_accounts: ['111122223333']\n"
                         "  source_arns: ['arn:aws:voiceconnector:us-east-1:111122223333:sma/sma-1']\n")
    params = parse_bot_parameters(action_params())
    bots = {"LOCALPIZZA": yaml_path}
    ok = create_bot(params, local_bots=bots, source_account="111122223333",
                    source_arn="arn:aws:voiceconnector:us-east-1:111122223333:sma/sma-1")
    assert isinstance(ok, LocalBot)
    for kw in ({"source_account": "444455556666"},
               {"source_arn": "arn:aws:voiceconnector:us-east-1:111122223333:sma/other"}):
        with pytest.raises(BotError) as info:
            create_bot(params, local_bots=bots, **kw)
        assert (info.value.error_type, info.value.message) == ("ResourceAccessDenied",
                                                               "Access to the bot was denied.")


@pytest.mark.parametrize("text", ["intents: [", "name: x\nintents: {}\n", "intents:\n  A:\n    utterances: []\n",
                                  "intents:\n  A:\n    utterances: ['{Nope} please']\n"])
def test_broken_definition_is_system_exception(tmp_path, text):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    params = parse_bot_parameters(action_params())
    with pytest.raises(BotError) as info:
        create_bot(params, local_bots={"LOCALPIZZA": path})
    assert (info.value.error_type, info.value.message) == ("SystemException", "System error while running action")


def test_missing_definition_file_is_system_exception(tmp_path):
    params = parse_bot_parameters(action_params())
    with pytest.raises(BotError) as info:
        create_bot(params, local_bots={"LOCALPIZZA": Path(tmp_path / "absent.yaml")})
    assert info.value.error_type == "SystemException"


async def test_unfinished_intent_continues_in_the_next_conversation(make_local_bot):
    store = BotSessionStore()
    bot = make_local_bot(store=store)
    await bot.start()
    await bot.input_text("I'd like a large pizza")          # abandoned while Topping is asked
    delegate = make_local_bot(store=store, dialog="Delegate")
    turn = await delegate.start()
    assert (turn.dialog_action, turn.slot_to_elicit) == ("ElicitSlot", "Topping")
    assert turn.prompt_text.startswith("Which topping")
    listen = make_local_bot(store=store)                     # no DialogAction: listens for the answer
    turn = await listen.start()
    assert (turn.prompt_text, turn.slot_to_elicit) == (None, "Topping")
    turn = await listen.input_text("cheese")
    assert turn.slot_to_elicit == "Quantity"
    fresh = make_local_bot(store=store, dialog="ElicitIntent")  # ElicitIntent starts over
    turn = await fresh.start()
    assert turn.dialog_action == "ElicitIntent" and turn.prompt_text.startswith("You can order")
    turn = await fresh.input_text("check my order")
    assert turn.slot_to_elicit == "OrderNumber"


def test_samples_choose_their_own_intent():
    import re

    import yaml

    from chimevoice.bots import nlu
    from chimevoice.bots.local import load_definition

    definition = load_definition(PIZZA_YAML)
    raw = yaml.safe_load(PIZZA_YAML.read_text())
    bot = LocalBot(definition, parse_bot_parameters(action_params()), session_id="s")
    values = {"Size": "large", "Topping": "pepperoni", "Quantity": "two", "OrderNumber": "1234"}
    for name, spec in raw["intents"].items():
        for sample in spec["utterances"]:
            text = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], sample)
            scores = {n: bot._score_intent(i, nlu.tokenize(text))[0] for n, i in definition.intents.items()}
            assert scores[name] == 1.0, (sample, scores)
            assert all(s < 1.0 for n, s in scores.items() if n != name), (sample, scores)
    for text in ("what is the weather on mars", "banana helicopter", "hello"):
        assert all(bot._score_intent(i, nlu.tokenize(text))[0] < 0.4 for i in definition.intents.values())
