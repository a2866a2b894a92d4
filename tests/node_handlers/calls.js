// SIP media application handlers written like Chime PSTN audio Lambdas in Node.js (for the call tests).
// Each appends the events it receives to $EVENTS_DIR/<function name>.jsonl.
const fs = require('fs');
const path = require('path');

const BUCKET = process.env.PROMPT_BUCKET;
const leaked = [];

function record(event) {
  const file = path.join(process.env.EVENTS_DIR, `${process.env.AWS_LAMBDA_FUNCTION_NAME}.jsonl`);
  fs.appendFileSync(file, `${JSON.stringify(event)}\n`);
}

const callId = (event) => event.CallDetails.Participants[0].CallId;

function playThenHangup(event, key) {
  const id = callId(event);
  return {
    SchemaVersion: '1.0',
    Actions: [
      { Type: 'Pause', Parameters: { CallId: id, DurationInMilliseconds: '700' } },
      { Type: 'PlayAudio', Parameters: { CallId: id, AudioSource: { Type: 'S3', BucketName: BUCKET, Key: key } } },
      { Type: 'Pause', Parameters: { CallId: id, DurationInMilliseconds: '800' } },
      { Type: 'Hangup', Parameters: { CallId: id, SipResponseCode: '0' } },
    ],
  };
}

const nothing = { SchemaVersion: '1.0', Actions: [] };

// async style
exports.greeter = async (event) => {
  record(event);
  console.log('event', event.InvocationEventType);
  return event.InvocationEventType === 'NEW_INBOUND_CALL' ? playThenHangup(event, 'tone1000.wav') : nothing;
};

// callback style, answering after asynchronous I/O
exports.greeterCallback = (event, context, callback) => {
  record(event);
  fs.readFile(__filename, () => {
    callback(null, event.InvocationEventType === 'NEW_INBOUND_CALL' ? playThenHangup(event, 'tone400.wav') : nothing);
  });
};

// answers twice: the callback (400 Hz) comes first, the promise (1000 Hz) later and is ignored
exports.firstWins = async (event, context, callback) => {
  record(event);
  if (event.InvocationEventType !== 'NEW_INBOUND_CALL') return nothing;
  callback(null, playThenHangup(event, 'tone400.wav'));
  await new Promise((resolve) => setTimeout(resolve, 50));
  return playThenHangup(event, 'tone1000.wav');
};

exports.hang = async (event) => {
  record(event);
  if (event.InvocationEventType === 'NEW_INBOUND_CALL') for (;;) { /* never answers */ }
  return nothing;
};

exports.throws = async (event) => {
  record(event);
  if (event.InvocationEventType === 'NEW_INBOUND_CALL') throw new Error('database unavailable');
  return nothing;
};

exports.leak = async (event) => {
  record(event);
  leaked.push(Buffer.alloc(70 * 1024 * 1024, 1));
  console.log('pid', process.pid, 'leaked', leaked.length * 70, 'MB');
  return event.InvocationEventType === 'NEW_INBOUND_CALL' ? playThenHangup(event, 'tone1000.wav') : nothing;
};

// aws-sdk v2 (resolved from the runtime, not bundled): the Chime SDK Voice API and DynamoDB reached
// at the endpoints the standard variables name
exports.awsV2 = async (event) => {
  record(event);
  if (event.InvocationEventType !== 'NEW_INBOUND_CALL') return nothing;
  const AWS = require('aws-sdk');
  const voice = new AWS.ChimeSDKVoice();
  const app = await voice.getSipMediaApplication({ SipMediaApplicationId: event.CallDetails.SipMediaApplicationId })
    .promise();
  const doc = new AWS.DynamoDB.DocumentClient();
  await doc.put({ TableName: process.env.TABLE_NAME, Item: { CallId: callId(event), App: app.SipMediaApplication.Name } })
    .promise();
  const answer = playThenHangup(event, 'tone1000.wav');
  answer.TransactionAttributes = { app: app.SipMediaApplication.Name };
  return answer;
};
