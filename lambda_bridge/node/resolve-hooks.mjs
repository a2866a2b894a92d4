// Module resolution hook (registered by preload.js): a bare specifier an ES module cannot resolve
// from its own folder is resolved again from the application's installed node_modules (its
// package.json dependencies, lambda_bridge/config.py node_modules) and then the runtime's
// (aws-sdk, @aws-sdk/*), in that order, as NODE_PATH does for require().
let parentURLs = [];

export function initialize(data) {
  parentURLs = (data && data.parentURLs) || [];
}

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    const bare = !/^(\.|\/|[a-z][a-z0-9+.-]*:)/i.test(specifier);
    if (!parentURLs.length || !bare || (e && e.code !== 'ERR_MODULE_NOT_FOUND')) throw e;
    for (const parentURL of parentURLs) {
      try {
        return await next(specifier, { ...context, parentURL });
      } catch (again) {
        if (again && again.code !== 'ERR_MODULE_NOT_FOUND') throw again;
      }
    }
    throw e;
  }
}
