// A SIP media application handler in Node.js, in the style of the public Chime SDK PSTN samples:
// call state in DynamoDB (aws-sdk v2 DocumentClient, as most samples use), the greeting played
// from S3, a voicemail recorded to S3 and checked with @aws-sdk/client-s3 (v3). It names no
// endpoint and no credentials: the Node runtime and the embedded endpoint (docs/aws-local.md)
// decide where its SDKs go (tests/test_aws_local.py). Environment: CALL_TABLE, PROMPT_BUCKET.
const AWS = require("aws-sdk");
const { S3Client, HeadObjectCommand } = require("@aws-sdk/client-s3");

const TABLE = process.env.CALL_TABLE;
const BUCKET = process.env.PROMPT_BUCKET;
const docClient = new AWS.DynamoDB.DocumentClient();
const s3 = new S3Client({});

exports.handler = async (event, context) => {
  console.log(JSON.stringify(event));
  const transactionId = event.CallDetails.TransactionId;
  const callId = event.CallDetails.Participants[0].CallId;
  switch (event.InvocationEventType) {
    case "NEW_INBOUND_CALL": {
      const config = (await docClient.get({ TableName: TABLE, Key: { TransactionId: "config" } }).promise()).Item;
      await docClient.put({ TableName: TABLE, Item: {
        TransactionId: transactionId, state: "greeting", runtime: "nodejs", invocations: 1,
        caller: event.CallDetails.Participants[0].From } }).promise();
      return response([{ Type: "PlayAudio", Parameters: {
        CallId: callId, AudioSource: { Type: "S3", BucketName: BUCKET, Key: config.prompt_key } } }]);
    }
    case "ACTION_SUCCESSFUL": {
      const type = event.ActionData.Type;
      await docClient.update({ TableName: TABLE, Key: { TransactionId: transactionId },
        UpdateExpression: "SET invocations = invocations + :one, last_action = :a",
        ExpressionAttributeValues: { ":one": 1, ":a": type } }).promise();
      if (type === "PlayAudio") {
        await setState(transactionId, "recording");
        return response([{ Type: "RecordAudio", Parameters: { CallId: callId, DurationInSeconds: "2",
          RecordingDestination: { Type: "S3", BucketName: BUCKET, Prefix: "voicemail-node/" } } }]);
      }
      if (type === "RecordAudio") {
        const dest = event.ActionData.RecordingDestination;
        const head = await s3.send(new HeadObjectCommand({ Bucket: dest.BucketName, Key: dest.Key }));
        await setState(transactionId, "recorded", { recording_key: dest.Key, recording_bytes: head.ContentLength });
        return response([{ Type: "Hangup", Parameters: { CallId: callId, SipResponseCode: "0" } }]);
      }
      return response([]);
    }
    case "HANGUP":
      await setState(transactionId, "ended");
      return response([]);
    default:
      return response([]);
  }
};

async function setState(transactionId, state, extra = {}) {
  const names = { "#s": "state" };
  const values = { ":s": state };
  let expression = "SET #s = :s";
  Object.entries(extra).forEach(([key, value], i) => {
    names[`#a${i}`] = key;
    values[`:a${i}`] = value;
    expression += `, #a${i} = :a${i}`;
  });
  await docClient.update({ TableName: TABLE, Key: { TransactionId: transactionId }, UpdateExpression: expression,
    ExpressionAttributeNames: names, ExpressionAttributeValues: values }).promise();
}

function response(actions) {
  return { SchemaVersion: "1.0", Actions: actions };
}
