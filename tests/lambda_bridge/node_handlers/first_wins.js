// A handler that answers twice: the first answer wins.
exports.callbackFirst = async (event, context, callback) => {
  callback(null, { winner: 'callback' });
  await new Promise((r) => setTimeout(r, 50));
  return { winner: 'promise' };
};

exports.promiseFirst = async (event, context, callback) => {
  setTimeout(() => callback(null, { winner: 'callback' }), 100);
  return { winner: 'promise' };
};

exports.rejectThenCallback = (event, context, callback) => {
  setTimeout(() => callback(null, { winner: 'callback' }), 50);
  return Promise.reject(new RangeError('promise rejected first'));
};
