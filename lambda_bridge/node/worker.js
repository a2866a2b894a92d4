'use strict';
// Worker process for `nodejs` handlers: a small Lambda-like Node.js runtime.
//
// Started by lambda_bridge/node_invoker.py as
//   node --require preload.js worker.js --fd N --handler index.handler --task-root DIR
//        [--entry BUNDLE.js] --account-id 111122223333 --sync-token TOKEN
// with the Lambda variables already in the environment. It speaks the JSON-lines protocol of
// docs/worker-protocol.md over the inherited socket fd N (the same as lambda_bridge/python_worker.py):
// one invocation at a time, the handler module kept loaded between invocations.

const fs = require('fs');
const net = require('net');
const path = require('path');
const util = require('util');
const { pathToFileURL } = require('url');

// ------------------------------------------------------------------ arguments
function parseArgs(argv) {
  const out = { accountId: '111122223333', syncToken: 'lambda_bridge_sync', entry: null };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-(\w)/g, (_m, c) => c.toUpperCase());
    out[key] = argv[i + 1];
  }
  return out;
}
const args = parseArgs(process.argv.slice(2));
const fd = Number(args.fd);
const syncToken = args.syncToken;

// ------------------------------------------------------------------ output and logging
let currentRequestId;
let wrote = false;

for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream);
  stream.write = (...a) => {
    wrote = true;
    return write(...a);
  };
}

// Lambda's console: "<time>\t<request id>\t<LEVEL>\t<message>", one line per call.
function logLine(level, parts) {
  const message = util.format(...parts).replace(/\n/g, '\r');
  process.stdout.write(`${new Date().toISOString()}\t${currentRequestId}\t${level}\t${message}\n`);
}
for (const [name, level] of [['log', 'INFO'], ['info', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR'],
  ['debug', 'DEBUG'], ['trace', 'TRACE'], ['fatal', 'FATAL']]) {
  console[name] = (...parts) => logLine(level, parts);
}

function syncOutput(seq) {
  const marker = `\0${syncToken}:${seq}\n`;
  for (const f of [1, 2]) {
    try {
      fs.writeSync(f, marker);
    } catch (_e) { /* closed */ }
  }
}

let statusFd = null;
function maxRssKb() {
  try {
    if (statusFd === null) statusFd = fs.openSync('/proc/self/status', 'r');
    const buf = Buffer.alloc(8192);
    const n = fs.readSync(statusFd, buf, 0, buf.length, 0);
    const m = /VmHWM:\s+(\d+)/.exec(buf.toString('latin1', 0, n));
    if (m) return Number(m[1]);
  } catch (_e) { /* not Linux */ }
  return Math.round(process.resourceUsage().maxRSS);
}

// ------------------------------------------------------------------ errors, as Lambda's Node runtime shapes them
function isError(e) {
  return util.types.isNativeError(e) || (e && typeof e === 'object' && typeof e.message === 'string'
    && typeof e.stack === 'string');
}

function errorShape(e) {
  try {
    if (isError(e)) {
      return { errorType: e.name, errorMessage: e.message, trace: String(e.stack).split('\n') };
    }
    return { errorType: typeof e, errorMessage: e === undefined || e === null ? String(e) : e.toString(),
      trace: [] };
  } catch (_x) {
    return { errorType: 'handled', errorMessage: 'callback called with Error argument, but there was a '
      + 'problem while retrieving one or more of its message, name, and stack', trace: [] };
  }
}

class InitError extends Error {
  constructor(errorType, message, trace, hint) {
    super(message);
    this.errorType = errorType;
    this.trace = trace || [];
    this.hint = hint;
  }
}

// ------------------------------------------------------------------ loading the handler
const EXTENSIONS = ['.js', '.mjs', '.cjs'];

function splitHandler(handler) {
  // Lambda's "dir/file.export" (export may be nested: file.a.b); "dir/file.js:export" is ours
  const colon = handler.lastIndexOf(':');
  if (colon > 0) return [handler.slice(0, colon), handler.slice(colon + 1)];
  const dir = path.posix.dirname(handler);
  const base = path.posix.basename(handler);
  const dot = base.indexOf('.');
  if (dot <= 0 || dot === base.length - 1) throw new InitError('Runtime.MalformedHandlerName', 'Bad handler');
  return [dir === '.' ? base.slice(0, dot) : `${dir}/${base.slice(0, dot)}`, base.slice(dot + 1)];
}

function resolveFile(root, file) {
  const base = path.resolve(root, file);
  if (path.extname(base) && fs.existsSync(base) && fs.statSync(base).isFile()) return base;
  for (const ext of EXTENSIONS) {
    if (fs.existsSync(base + ext)) return base + ext;
  }
  return null;
}

function closeMatch(word, names) {
  // the nearest export name (edit distance), as "did you mean ...?"
  let best = null;
  let bestD = Infinity;
  for (const n of names) {
    const d = distance(word.toLowerCase(), n.toLowerCase());
    if (d < bestD) { best = n; bestD = d; }
  }
  return best !== null && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

function distance(a, b) {
  const row = Array.from({ length: b.length + 1 }, (_v, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

async function loadModule(file) {
  try {
    if (file.endsWith('.mjs')) return await import(pathToFileURL(file).href);
    try {
      return require(file);
    } catch (e) {
      if (e && e.code === 'ERR_REQUIRE_ESM') return await import(pathToFileURL(file).href);
      throw e;
    }
  } catch (e) {
    if (e instanceof InitError) throw e;
    const shape = errorShape(e);
    if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND')) {
      throw new InitError('Runtime.ImportModuleError', `${shape.errorType}: ${shape.errorMessage}`, shape.trace);
    }
    if (e instanceof SyntaxError) {
      throw new InitError('Runtime.UserCodeSyntaxError', `${shape.errorType}: ${shape.errorMessage}`,
        shape.trace);
    }
    throw new InitError(shape.errorType, shape.errorMessage, shape.trace);
  }
}

async function loadHandler() {
  const [file, exportPath] = splitHandler(args.handler);
  const root = args.taskRoot || process.cwd();
  const resolved = args.entry || resolveFile(root, file);
  if (!resolved) {
    throw new InitError('Runtime.ImportModuleError', `Error: Cannot find module '${file}'`, [
      `Error: Cannot find module '${file}' in ${root} (tried ${EXTENSIONS.map((e) => file + e).join(', ')})`]);
  }
  let obj = await loadModule(resolved);
  const name = path.posix.basename(file);
  for (const part of exportPath.split('.')) {
    const holder = obj;
    obj = holder === null || holder === undefined ? undefined : holder[part];
    if (obj === undefined && holder && typeof holder === 'object' && holder.default
        && typeof holder.default === 'object' && part in holder.default) {
      obj = holder.default[part]; // an ES module importing a CommonJS bundle: module.exports is `default`
    }
    if (obj === undefined) {
      const names = holder && typeof holder === 'object' ? Object.keys(holder).filter(
        (n) => typeof holder[n] === 'function') : [];
      const near = closeMatch(part, names);
      throw new InitError('Runtime.HandlerNotFound', `${name}.${exportPath} is undefined or not exported`,
        [], near ? `did you mean '${near}'? (${resolved} exports ${names.join(', ')})` : undefined);
    }
  }
  if (typeof obj !== 'function') {
    throw new InitError('Runtime.HandlerNotFound', `${name}.${exportPath} is not a function`);
  }
  return obj;
}

// ------------------------------------------------------------------ the socket
const sock = new net.Socket({ fd, readable: true, writable: true });
let closing = false;

function send(msg) {
  sock.write(`${msg}\n`);
}

function readLines(onLine) {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (chunk) => {
    buf += chunk;
    let idx;
    while ((idx = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, idx);
      buf = buf.slice(idx + 1);
      if (line.trim()) onLine(line);
    }
  });
  sock.on('end', () => shutdown(0));
  sock.on('error', () => shutdown(0));
}

function shutdown(code) {
  if (closing) return;
  closing = true;
  try { sock.end(); } catch (_e) { /* gone */ }
  process.exit(code);
}

// ------------------------------------------------------------------ invocations
const region = process.env.AWS_REGION || 'us-east-1';
const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME || 'function';
const invokedFunctionArn = `arn:aws:lambda:${region}:${args.accountId}:function:${functionName}`;
let running = null; // { seq, answer(kind, value) }

function makeContext(requestId, deadlineMs, answer) {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: requestId,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    identity: undefined,
    clientContext: undefined,
    getRemainingTimeInMillis() {
      return Math.max(0, deadlineMs - Date.now());
    },
    // legacy: answer at once, without waiting for the event loop
    done(err, result) { answer(err, result, false); },
    succeed(result) { answer(null, result, false); },
    fail(err) { answer(err === undefined || err === null ? 'handled' : err, undefined, false); },
  };
}

function reply(seq, msg, payloadText) {
  if (wrote || msg.type === 'error') {
    syncOutput(seq);
  } else {
    msg.quiet = true; // nothing written: no markers to wait for
  }
  msg.max_rss_kb = maxRssKb();
  let text = JSON.stringify(msg);
  if (payloadText !== undefined) text = `${text.slice(0, -1)}, "payload": ${payloadText}}`;
  send(text);
}

function errorReply(seq, e, errorType) {
  const shape = errorShape(e);
  if (errorType) shape.errorType = errorType;
  // Lambda logs it too: "<time>\t<id>\tERROR\tInvoke Error \t{...}"
  logLine('ERROR', ['Invoke Error \t%s', JSON.stringify({ errorType: shape.errorType,
    errorMessage: shape.errorMessage, stack: shape.trace })]);
  reply(seq, { type: 'error', seq, errorType: shape.errorType, errorMessage: shape.errorMessage,
    stackTrace: shape.trace.map((l) => `${l}\n`) });
}

function whenEventLoopEmpty(fn) {
  // callbackWaitsForEmptyEventLoop: the answer goes when nothing the handler started is left.
  // Our socket does not count (unref) while we wait.
  sock.unref();
  process.once('beforeExit', () => {
    sock.ref();
    fn();
  });
}

function invoke(msg) {
  const seq = Number(msg.seq);
  currentRequestId = msg.request_id;
  wrote = false;
  let answered = false;
  let context = null;
  const finish = (err, result) => {
    if (err !== null && err !== undefined) {
      errorReply(seq, err);
    } else {
      let payload;
      try {
        payload = JSON.stringify(result === undefined ? null : result);
      } catch (e) {
        reply(seq, { type: 'invalid_output', seq, errorMessage: `Unable to stringify response body: ${e.message}` });
        return done();
      }
      if (payload === undefined) payload = 'null'; // a function or symbol
      reply(seq, { type: 'result', seq }, payload);
    }
    return done();
  };
  const done = () => {
    running = null;
    currentRequestId = undefined;
  };
  const answer = (err, result, waitForLoop) => {
    if (answered) return; // the first answer wins (callback or promise)
    answered = true;
    if (waitForLoop && context.callbackWaitsForEmptyEventLoop) {
      whenEventLoopEmpty(() => finish(err, result));
    } else {
      finish(err, result);
    }
  };
  running = { seq, fail: (e, type) => { if (!answered) { answered = true; errorReply(seq, e, type); done(); } } };
  context = makeContext(msg.request_id, Number(msg.deadline_ms), answer);
  const callback = (err, result) => answer(err, result, true);
  let returned;
  try {
    returned = handler(msg.event, context, callback);
  } catch (e) {
    answer(e, undefined, false);
    return;
  }
  if (returned && typeof returned.then === 'function') {
    returned.then((value) => answer(null, value, false),
      (e) => answer(e === undefined || e === null ? new Error(String(e)) : e, undefined, false));
  } else if (!answered) {
    // neither a promise nor a callback yet: Lambda answers null once the event loop is empty,
    // unless the callback comes first
    whenEventLoopEmpty(() => answer(null, null, false));
  }
}

function fatal(e, errorType) {
  // an exception nobody caught: the invocation fails with it, then the runtime exits
  if (running) {
    running.fail(e, errorType);
  } else {
    logLine('ERROR', ['Uncaught Exception \t%s', JSON.stringify(errorShape(e))]);
  }
  try { fs.writeSync(1, ''); } catch (_e) { /* closed */ }
  sock.end(() => process.exit(129));
  setTimeout(() => process.exit(129), 200).unref();
}
process.on('uncaughtException', (e) => fatal(e));
process.on('unhandledRejection', (reason) => {
  const e = new Error(isError(reason) ? `${reason.name}: ${reason.message}` : String(reason));
  e.name = 'Runtime.UnhandledPromiseRejection';
  fatal(e, 'Runtime.UnhandledPromiseRejection');
});

// ------------------------------------------------------------------ main
let handler = null;

async function main() {
  try {
    handler = await loadHandler();
  } catch (e) {
    const err = e instanceof InitError ? e : new InitError(errorShape(e).errorType, errorShape(e).errorMessage,
      errorShape(e).trace);
    syncOutput(0);
    const msg = { type: 'init_error', errorType: err.errorType, errorMessage: err.message,
      stackTrace: err.trace.map((l) => `${l}\n`) };
    if (err.hint) msg.hint = err.hint;
    logLine('ERROR', ['Init Error \t%s', JSON.stringify({ errorType: err.errorType, errorMessage: err.message })]);
    sock.end(`${JSON.stringify(msg)}\n`, () => process.exit(1));
    return;
  }
  syncOutput(0);
  send(JSON.stringify({ type: 'ready', pid: process.pid, max_rss_kb: maxRssKb() }));
  readLines((line) => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch (_e) {
      return;
    }
    if (msg.type === 'shutdown') shutdown(0);
    else if (msg.type === 'invoke') invoke(msg);
  });
}

main();
