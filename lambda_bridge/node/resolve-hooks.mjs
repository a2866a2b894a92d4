// Module resolution hook (registered by preload.js): a bare specifier an ES module cannot resolve
// from its own folder is resolved again from the runtime's node_modules (aws-sdk, @aws-sdk/*),
// as NODE_PATH does for require().
let parentURL = null;

export function initialize(data) {
  parentURL = data && data.parentURL;
}

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    const bare = !/^(\.|\/|[a-z][a-z0-9+.-]*:)/i.test(specifier);
    if (!parentURL || !bare || (e && e.code !== 'ERR_MODULE_NOT_FOUND')) throw e;
    return next(specifier, { ...context, parentURL });
  }
}
