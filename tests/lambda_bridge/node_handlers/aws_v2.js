// A handler using aws-sdk v2 (not bundled: resolved from the runtime), as older Chime samples do.
const AWS = require('aws-sdk');

const ddb = new AWS.DynamoDB();
const doc = new AWS.DynamoDB.DocumentClient();
const s3 = new AWS.S3();
const TABLE = process.env.TABLE_NAME;

exports.handler = async (event) => {
  try {
    await ddb.createTable({
      TableName: TABLE,
      KeySchema: [{ AttributeName: 'CallId', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'CallId', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }).promise();
  } catch (e) {
    if (e.code !== 'ResourceInUseException') throw e;
  }
  await doc.put({ TableName: TABLE, Item: { CallId: event.callId, Digits: '1234' } }).promise();
  const item = (await doc.get({ TableName: TABLE, Key: { CallId: event.callId } }).promise()).Item;

  // a client built with the public endpoint spelled out still reaches the local one
  const explicit = new AWS.DynamoDB.DocumentClient({ endpoint: 'https://dynamodb.us-east-1.amazonaws.com' });
  const explicitPublic = (await explicit.get({ TableName: TABLE, Key: { CallId: event.callId } }).promise()).Item;

  await s3.createBucket({ Bucket: 'recordings' }).promise();
  await s3.putObject({ Bucket: 'recordings', Key: `${event.callId}.txt`, Body: `recording of ${event.callId}` }).promise();
  const obj = await s3.getObject({ Bucket: 'recordings', Key: `${event.callId}.txt` }).promise();

  const { DynamoDBClient, GetItemCommand } = require('@aws-sdk/client-dynamodb');
  const v3 = new DynamoDBClient({});
  const v3Item = (await v3.send(new GetItemCommand({ TableName: TABLE, Key: { CallId: { S: event.callId } } }))).Item;

  return {
    endpoint: ddb.endpoint.href,
    item,
    explicitPublic,
    s3Body: obj.Body.toString(),
    s3PathStyle: s3.config.s3ForcePathStyle === true,
    v3Item,
  };
};

exports.endpoints = async () => ({
  dynamodb: new AWS.DynamoDB().endpoint.href,
  chime: new AWS.ChimeSDKVoice().endpoint.href,
  ownLocal: new AWS.DynamoDB({ endpoint: 'http://localhost:4566' }).endpoint.href,
});

// the endpoint each aws-sdk v2 client would call, by class name
exports.serviceEndpoints = async (event) => Object.fromEntries(event.classes.map((c) => {
  const client = new AWS[c]();
  return [c, { serviceId: client.api.serviceId, endpoint: client.endpoint.href,
    pathStyle: c === 'S3' ? client.config.s3ForcePathStyle === true : undefined }];
}));
