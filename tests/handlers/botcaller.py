"""A Chime Lambda-style handler that hands the caller to a bot (StartBotConversation).

The behaviour is chosen by the called number; the bot alias ARN of the Lex bot comes
from the LEX_BOT_ARN environment variable. Every event is written to EVENTS_DIR.
"""
import os

from common import call_id, hangup, record, respond, to_number

LOCAL_PIZZA = "arn:aws:lex:us-east-1:111122223333:bot-alias/LOCALPIZZA/TSTALIASID"
WELCOME = "Welcome to Pizza Palace. Press 1 to order a pizza."


def start_bot(cid, arn, welcome=None, attributes=None):
    state = {"DialogAction": {"Type": "ElicitIntent"}}
    if attributes:
        state["SessionAttributes"] = attributes
    config = {"SessionState": state}
    if welcome:
        config["WelcomeMessages"] = [{"Content": welcome, "ContentType": "PlainText"}]
    return {"Type": "StartBotConversation",
            "Parameters": {"CallId": cid, "BotAliasArn": arn, "LocaleId": "en_US", "Configuration": config}}


def lambda_handler(event, context):
    record(event)
    kind = event["InvocationEventType"]
    cid = call_id(event)
    number = to_number(event)
    if kind == "NEW_INBOUND_CALL":
        if number.endswith("30") or number.endswith("34"):     # the local pizza bot
            return respond([start_bot(cid, LOCAL_PIZZA, WELCOME, {"channel": "phone"})])
        if number.endswith("31"):                              # a bot nobody serves
            return respond([start_bot(cid, "arn:aws:lex:us-east-1:111122223333:bot-alias/NOSUCHBOT/TSTALIASID")])
        if number.endswith("32"):                              # not a bot alias ARN
            return respond([start_bot(cid, "arn:aws:lex:us-east-1:111122223333:bot/LOCALPIZZA")])
        if number.endswith("33"):                              # Amazon Lex V2 (tests/bots/fake_lex.py)
            return respond([start_bot(cid, os.environ["LEX_BOT_ARN"], "Welcome to the Lex pizza bot.")])
    if kind == "ACTION_SUCCESSFUL":
        return respond([hangup(cid)])
    if kind == "ACTION_FAILED":
        return respond([hangup(cid, "480")])
    return respond([])
