// The Node.js twin of tests/handlers/lex_text/index.py: @aws-sdk/client-lex-runtime-v2 (v3, which
// speaks HTTP/2) asks the bot what the caller wants, aws-sdk v2's LexRuntimeV2 reads the session
// back (HTTP/1.1, pointed at the local runtime by the Node runtime's preload), and the prompt of the
// intent is played from S3. No endpoint and no credentials in the code (tests/test_lex_runtime.py).
const fs = require("fs");
const path = require("path");
const AWS = require("aws-sdk");
const { LexRuntimeV2Client, RecognizeTextCommand } = require("@aws-sdk/client-lex-runtime-v2");

const lex = new LexRuntimeV2Client({});
const lexV2 = new AWS.LexRuntimeV2();
const UTTERANCES = JSON.parse(process.env.UTTERANCES);

exports.handler = async (event) => {
  if (event.InvocationEventType !== "NEW_INBOUND_CALL") return { SchemaVersion: "1.0", Actions: [] };
  const leg = event.CallDetails.Participants[0];
  const bot = { botId: process.env.BOT_ID, botAliasId: process.env.BOT_ALIAS_ID, localeId: "en_US",
    sessionId: leg.CallId };
  const turns = [];
  for (const text of UTTERANCES[leg.To]) {
    const r = await lex.send(new RecognizeTextCommand({ ...bot, text }));
    turns.push({ messages: r.messages, sessionState: r.sessionState, interpretations: r.interpretations });
  }
  const last = turns[turns.length - 1];
  const intent = (last.sessionState.intent || last.interpretations[0].intent).name;
  const session = await lexV2.getSession(bot).promise();
  fs.writeFileSync(path.join(process.env.EVENTS_DIR, `lex-${leg.To}.json`), JSON.stringify({
    runtime: "nodejs", endpoint: lexV2.endpoint.href, intent, turns,
    session: { sessionId: session.sessionId, sessionState: session.sessionState, messages: session.messages } }));
  return { SchemaVersion: "1.0", Actions: [
    { Type: "PlayAudio", Parameters: { AudioSource: {
      Type: "S3", BucketName: process.env.PROMPT_BUCKET, Key: `intents/${intent}.wav` } } },
    { Type: "Hangup", Parameters: { SipResponseCode: "0" } }] };
};
