"""A handler that asks Lex V2 what the caller wants (lexv2-runtime RecognizeText through boto3, no
endpoint and no credentials in the code) and plays the prompt of that intent from S3. The local
Lex runtime (docs/aws-local.md#lex) answers it with the bot of ``bots.local``
(tests/test_lex_runtime.py). Environment: BOT_ID, BOT_ALIAS_ID, PROMPT_BUCKET, EVENTS_DIR and
UTTERANCES (JSON: called number -> the texts the caller "says", in turn)."""
import json
import os
from pathlib import Path

import boto3

lex = boto3.client("lexv2-runtime")
UTTERANCES = json.loads(os.environ["UTTERANCES"])


def lambda_handler(event, context):
    if event["InvocationEventType"] != "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": []}
    leg = event["CallDetails"]["Participants"][0]
    bot = {"botId": os.environ["BOT_ID"], "botAliasId": os.environ["BOT_ALIAS_ID"], "localeId": "en_US",
           "sessionId": leg["CallId"]}
    turns = []
    for text in UTTERANCES[leg["To"]]:
        response = lex.recognize_text(text=text, **bot)
        turns.append({k: response.get(k) for k in ("messages", "sessionState", "interpretations")})
    last = turns[-1]
    intent = (last["sessionState"].get("intent") or last["interpretations"][0]["intent"])["name"]
    session = lex.get_session(**bot)
    Path(os.environ["EVENTS_DIR"], f"lex-{leg['To']}.json").write_text(json.dumps({
        "runtime": "python", "endpoint": lex.meta.endpoint_url, "intent": intent, "turns": turns,
        "session": {k: session.get(k) for k in ("sessionId", "sessionState", "messages")}}))
    return {"SchemaVersion": "1.0", "Actions": [
        {"Type": "PlayAudio", "Parameters": {"AudioSource": {
            "Type": "S3", "BucketName": os.environ["PROMPT_BUCKET"], "Key": f"intents/{intent}.wav"}}},
        {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
