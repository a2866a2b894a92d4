"""parse_bot_parameters: 03c §4.3 checks with the §7 ErrorType / ErrorMessage strings."""
from __future__ import annotations

import json

import pytest

from chimevoice.bots import DEFAULT_LOCALE, MAX_CONFIGURATION_BYTES, BotError, WelcomeMessage, parse_bot_parameters
from chimevoice.engine.errors import ActionError

from .conftest import action_params

SPEC_EXAMPLE = {  # 03c §5, L13505-13535 (the action's Parameters)
    "CallId": "call-id-1",
    "BotAliasArn": "arn:aws:lex:us-east-1:123456789012:bot-alias/ABCDEFGHIJ/MNOPQRSTU",
    "LocaleId": "en_US",
    "Configuration": {
        "SessionState": {
            "SessionAttributes": {"mykey1": "myvalue1"},
            "DialogAction": {"Type": "ElicitIntent"},
        },
        "WelcomeMessages": [{"Content": "Welcome. How can I help you?", "ContentType": "PlainText"}],
    },
}


def error_of(params: dict, **kw) -> tuple[str, str]:
    with pytest.raises(BotError) as info:
        parse_bot_parameters(params, **kw)
    return info.value.error_type, info.value.message


def test_spec_example_parses():
    p = parse_bot_parameters(SPEC_EXAMPLE)
    assert p.bot_alias_arn.region == "us-east-1"
    assert p.bot_alias_arn.account_id == "123456789012"
    assert p.bot_alias_arn.bot_id == "ABCDEFGHIJ"
    assert p.bot_alias_arn.bot_alias_id == "MNOPQRSTU"
    assert p.locale_id == "en_US"
    assert p.call_id == "call-id-1"
    assert p.session_attributes == {"mykey1": "myvalue1"}
    assert p.dialog_action_type == "ElicitIntent"
    assert p.welcome_messages == (WelcomeMessage("Welcome. How can I help you?", "PlainText"),)
    assert p.raw is SPEC_EXAMPLE


def test_bot_error_is_an_action_error():
    err = BotError("ResourceNotFound", "Bot not found.")
    assert isinstance(err, ActionError)
    assert (err.error_type, err.message) == ("ResourceNotFound", "Bot not found.")


@pytest.mark.parametrize("arn", [
    None, "", "   ", 12345,
    "ABCDEFGHIJ",
    "arn:aws:lex:us-east-1:123456789012:bot/ABCDEFGHIJ",
    "arn:aws:lex:us-east-1:123456789012:bot-alias/ABCDEFGHIJ",
    "arn:aws:lex:us-east-1:123456789012:bot-alias/ABCDEFGHIJ/",
    "arn:aws:lex:us-east-1:1234:bot-alias/ABCDEFGHIJ/MNOPQRSTU",
    "arn:aws:lex::123456789012:bot-alias/ABCDEFGHIJ/MNOPQRSTU",
    "arn:aws:polly:us-east-1:123456789012:bot-alias/ABCDEFGHIJ/MNOPQRSTU",
    "arn:aws:lex:us-east-1:123456789012:bot-alias/ABC/DEF/GHI",
])
def test_bad_bot_alias_arn(arn):
    params = dict(SPEC_EXAMPLE, BotAliasArn=arn)
    assert error_of(params) == ("InvalidActionParameter", "Invalid BotAliasArn parameter.")


def test_missing_bot_alias_arn_is_invalid_action_parameter():
    params = {k: v for k, v in SPEC_EXAMPLE.items() if k != "BotAliasArn"}
    assert error_of(params) == ("InvalidActionParameter", "Invalid BotAliasArn parameter.")


def test_bot_in_another_region():
    assert parse_bot_parameters(SPEC_EXAMPLE, region="us-east-1").bot_alias_arn.region == "us-east-1"
    assert error_of(SPEC_EXAMPLE, region="eu-west-2") == ("InvalidActionParameter",
                                                          "Invalid BotAliasArn parameter.")


def test_participant_tag_only_leg_a():
    base = {k: v for k, v in SPEC_EXAMPLE.items() if k != "CallId"}
    assert error_of(dict(base, ParticipantTag="LEG-B")) == (
        "InvalidActionParameter", "CallId or ParticipantTag parameter for action is invalid.")
    assert parse_bot_parameters(dict(base, ParticipantTag="leg-a")).participant_tag == "LEG-A"
    assert parse_bot_parameters(dict(base, ParticipantTag="")).participant_tag is None
    # CallId wins; the tag is ignored (03c §4.2).
    assert parse_bot_parameters(dict(SPEC_EXAMPLE, ParticipantTag="LEG-B")).call_id == "call-id-1"


@pytest.mark.parametrize("locale", ["english", "en-US", "EN_us", "en_", 7])
def test_bad_locale(locale):
    assert error_of(dict(SPEC_EXAMPLE, LocaleId=locale)) == ("InvalidActionParameter",
                                                             "Invalid LocaleId parameter.")


@pytest.mark.parametrize("locale,expected", [(None, DEFAULT_LOCALE), ("", "en_US"), ("es_419", "es_419"),
                                             ("de_DE", "de_DE")])
def test_locale_default_and_forms(locale, expected):
    params = dict(SPEC_EXAMPLE)
    if locale is None:
        del params["LocaleId"]
    else:
        params["LocaleId"] = locale
    assert parse_bot_parameters(params).locale_id == expected


@pytest.mark.parametrize("config", ["abc", 5, ["x"], True])
def test_configuration_not_an_object(config):
    assert error_of(dict(SPEC_EXAMPLE, Configuration=config)) == ("InvalidActionParameter",
                                                                  "Invalid Configuration parameter.")


def _config_of_size(size: int) -> dict:
    config = {"SessionState": {"SessionAttributes": {"pad": ""}}}
    base = len(json.dumps(config, separators=(",", ":")).encode())
    config["SessionState"]["SessionAttributes"]["pad"] = "x" * (size - base)
    assert len(json.dumps(config, separators=(",", ":")).encode()) == size
    return config


def test_configuration_size_limit_is_10240_bytes():
    ok = dict(SPEC_EXAMPLE, Configuration=_config_of_size(MAX_CONFIGURATION_BYTES))
    assert MAX_CONFIGURATION_BYTES == 10240
    assert parse_bot_parameters(ok).session_attributes["pad"].startswith("x")
    too_big = dict(SPEC_EXAMPLE, Configuration=_config_of_size(MAX_CONFIGURATION_BYTES + 1))
    assert error_of(too_big) == ("InvalidActionParameter", "Invalid Configuration parameter.")


def test_configuration_size_counts_utf8_bytes():
    config = _config_of_size(MAX_CONFIGURATION_BYTES)
    pad = config["SessionState"]["SessionAttributes"]["pad"]
    config["SessionState"]["SessionAttributes"]["pad"] = "é" + pad[2:]  # same characters - 1, same bytes
    assert parse_bot_parameters(dict(SPEC_EXAMPLE, Configuration=config))
    config["SessionState"]["SessionAttributes"]["pad"] = "é" + pad[1:]  # one byte more
    assert error_of(dict(SPEC_EXAMPLE, Configuration=config))[1] == "Invalid Configuration parameter."


def test_session_state_not_an_object():
    params = action_params()
    params["Configuration"] = {"SessionState": "x"}
    assert error_of(params) == ("InvalidActionParameter", "Invalid Configuration.SessionState parameter.")


@pytest.mark.parametrize("attributes", [["a", "b"], "k=v", {"k": {"nested": "x"}}, {"k": None}, {"k": ["x"]}])
def test_session_attributes_must_map_strings(attributes):
    assert error_of(action_params(attributes=attributes)) == (
        "InvalidActionParameter", "Invalid Configuration.SessionState.SessionAttributes parameter.")


def test_session_attribute_numbers_and_booleans_are_taken_as_strings():
    p = parse_bot_parameters(action_params(attributes={
        "x-amz-lex:start-timeout-ms:*:*": 4000, "vip": True, "ratio": 0.5, "s": "str"}))
    assert p.session_attributes == {"x-amz-lex:start-timeout-ms:*:*": "4000", "vip": "true",
                                    "ratio": "0.5", "s": "str"}


def test_session_attributes_absent_vs_empty():
    assert parse_bot_parameters(action_params()).session_attributes is None
    assert parse_bot_parameters(action_params(attributes={})).session_attributes == {}


@pytest.mark.parametrize("dtype", ["elicitintent", "ELICITINTENT", "Close", "ElicitSlot", 1])
def test_dialog_action_type_enum(dtype):
    assert error_of(action_params(dialog=dtype)) == (
        "InvalidActionParameter", "Invalid Configuration.SessionState.DialogAction.Type parameter.")


@pytest.mark.parametrize("dtype", ["Delegate", "ElicitIntent"])
def test_dialog_action_type_values(dtype):
    assert parse_bot_parameters(action_params(dialog=dtype)).dialog_action_type == dtype


def test_dialog_action_not_an_object():
    params = action_params()
    params["Configuration"] = {"SessionState": {"DialogAction": "ElicitIntent"}}
    assert error_of(params) == ("InvalidActionParameter",
                                "Invalid Configuration.SessionState.DialogAction parameter.")


@pytest.mark.parametrize("dialog", [None, "Delegate"])
def test_welcome_messages_need_elicit_intent(dialog):
    params = action_params(dialog=dialog, welcome=[{"Content": "Hi", "ContentType": "PlainText"}])
    assert error_of(params) == ("InvalidActionParameter",
                                "Invalid Configuration.SessionState.DialogAction.Type parameter.")


def test_empty_welcome_messages_do_not_need_elicit_intent():
    p = parse_bot_parameters(action_params(welcome=[]))
    assert p.welcome_messages == () and p.dialog_action_type is None


@pytest.mark.parametrize("welcome", ["Hi", {"Content": "Hi", "ContentType": "PlainText"}, ["Hi"]])
def test_welcome_messages_shape(welcome):
    assert error_of(action_params(dialog="ElicitIntent", welcome=welcome)) == (
        "InvalidActionParameter", "Invalid Configuration.WelcomeMessages parameter.")


@pytest.mark.parametrize("message", [{"Content": "Hi"}, {"Content": "Hi", "ContentType": "Text"},
                                     {"Content": "Hi", "ContentType": "plaintext"},
                                     {"Content": "Hi", "ContentType": ""}, {"ContentType": "ssml"}])
def test_welcome_message_content_type(message):
    assert error_of(action_params(dialog="ElicitIntent", welcome=[message])) == (
        "InvalidActionParameter", "Invalid Configuration.WelcomeMessages.ContentType parameter.")


@pytest.mark.parametrize("content", ["<speak>unclosed", "plain words", "<p>not speak</p>", 42])
def test_welcome_message_ssml_must_be_well_formed(content):
    welcome = [{"Content": content, "ContentType": "SSML"}]
    assert error_of(action_params(dialog="ElicitIntent", welcome=welcome)) == (
        "InvalidActionParameter", "Invalid Configuration.WelcomeMessages.Content parameter.")


def test_welcome_messages_without_content_are_skipped():
    welcome = [{"ContentType": "PlainText"}, {"Content": "", "ContentType": "SSML"},
               {"Content": "<speak>Hello <break time='300ms'/> there</speak>", "ContentType": "SSML"}]
    p = parse_bot_parameters(action_params(dialog="ElicitIntent", welcome=welcome))
    assert p.welcome_messages == (WelcomeMessage("<speak>Hello <break time='300ms'/> there</speak>", "SSML"),)


def test_unknown_keys_are_ignored_and_blank_optionals_are_absent():
    params = dict(SPEC_EXAMPLE, Extra="x", ParticipantTag="", LocaleId="")
    params["Configuration"] = dict(SPEC_EXAMPLE["Configuration"], Unknown=1)
    p = parse_bot_parameters(params)
    assert p.locale_id == "en_US" and p.participant_tag is None
    assert parse_bot_parameters(action_params(Configuration="")).session_attributes is None
