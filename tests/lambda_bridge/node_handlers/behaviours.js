// Misbehaving handlers: each one must stay inside its own worker.
const leaked = [];

exports.hang = async () => { for (;;) { /* busy: never yields to the event loop */ } };

exports.hangAsync = () => new Promise(() => {}); // never settles

exports.throws = async () => {
  const err = new Error('database unavailable');
  throw err;
};

class ChimeError extends Error {
  constructor(message) { super(message); this.name = 'ChimeError'; }
}
exports.throwsCustom = async () => { throw new ChimeError('custom failure'); };
exports.throwsString = async () => { throw 'plain string'; }; // eslint-disable-line no-throw-literal

exports.leak = async (event) => {
  const mb = event.mb || 64;
  const chunk = Buffer.alloc(mb * 1024 * 1024, 1); // touched: counts in RSS
  leaked.push(chunk);
  return { leakedMb: leaked.length * mb, pid: process.pid };
};

exports.pid = async () => ({ pid: process.pid });

exports.exit = async () => { process.exit(3); };

exports.unhandled = async () => {
  Promise.reject(new Error('nobody waits for me'));
  await new Promise((r) => setTimeout(r, 200));
  return { survived: true };
};

exports.env = async () => ({
  env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('AWS_') || k.startsWith('LAMBDA_')
    || ['_HANDLER', 'TZ', 'NODE_PATH', 'GREETING'].includes(k))),
  cwd: process.cwd(),
});

exports.context = async (event, context) => ({
  awsRequestId: context.awsRequestId,
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  invokedFunctionArn: context.invokedFunctionArn,
  memoryLimitInMB: context.memoryLimitInMB,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  remaining: context.getRemainingTimeInMillis(),
  callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
  legacy: ['done', 'succeed', 'fail'].filter((m) => typeof context[m] === 'function'),
});

exports.logs = async () => {
  console.log('hello from node');
  console.error('an error line');
  console.warn('multi\nline');
  process.stdout.write('raw stdout\n');
  return { logged: true };
};

exports.sdks = async () => {
  const AWS = require('aws-sdk');
  const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
  return { v2: AWS.VERSION, v3: typeof DynamoDBClient };
};

exports.big = async (event) => ({ data: 'x'.repeat(event.n) });
exports.circular = async () => { const a = {}; a.self = a; return a; };
