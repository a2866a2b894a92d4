// Callback style: the answer comes from callback(null, result) after a timer.
exports.handler = function (event, context, callback) {
  setTimeout(() => callback(null, { style: 'callback', type: event.InvocationEventType }), 20);
};

exports.fails = function (event, context, callback) {
  callback(new TypeError('bad input from callback'));
};

// Legacy context methods
exports.legacy = function (event, context) {
  context.succeed({ style: 'context.succeed' });
};

// The callback answers, but Lambda waits for the event loop to be empty (timer of 300 ms) ...
exports.waits = function (event, context, callback) {
  const started = Date.now();
  setTimeout(() => { globalThis.timerDone = Date.now() - started; }, 300);
  callback(null, { waited: true });
};

// ... unless callbackWaitsForEmptyEventLoop is false
exports.noWait = function (event, context, callback) {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => {}, 5000);
  callback(null, { waited: false });
};

exports.timerResult = async () => ({ timerDone: globalThis.timerDone || null });

// Neither a promise nor a callback: Lambda answers null once the event loop is empty
exports.nothing = function () { setTimeout(() => {}, 10); };
