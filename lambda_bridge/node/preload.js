'use strict';
// Loaded with `node --require` before the handler (lambda_bridge/node_invoker.py):
//
// 1. aws-sdk v2 ignores the standard AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> variables
//    (boto3 and @aws-sdk v3 honour them). Every aws-sdk v2 copy that is require()d (the runtime's
//    or one in the handler's own node_modules) gets its service clients pointed at the endpoint
//    those variables name: the service's variable (its serviceId upper-cased, spaces as
//    underscores: DYNAMODB, S3, CHIME_SDK_VOICE, LEX_RUNTIME_V2, POLLY ...) first, then
//    AWS_ENDPOINT_URL. A client built with an explicit endpoint keeps it, unless that endpoint is
//    a public AWS one (*.amazonaws.com, *.api.aws): those are redirected too. S3 clients use
//    path-style addressing there (unless s3ForcePathStyle is given). AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true
//    turns it off, as for the other SDKs.
// 2. ES-module handlers can `import` the runtime's packages (aws-sdk, @aws-sdk/*): NODE_PATH only
//    serves require(), so a resolve hook retries bare specifiers from the runtime's node_modules.

const Module = require('module');
const path = require('path');
const { pathToFileURL } = require('url');

const PUBLIC_AWS = /(^|\.)(amazonaws\.com(\.cn)?|api\.aws)$/i;

function envEndpoint(serviceId) {
  const env = process.env;
  if (String(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS || '').toLowerCase() === 'true') return null;
  if (serviceId) {
    const own = env[`AWS_ENDPOINT_URL_${String(serviceId).trim().replace(/[\s-]+/g, '_').toUpperCase()}`];
    if (own) return own;
  }
  return env.AWS_ENDPOINT_URL || null;
}

function hostOf(endpoint) {
  if (!endpoint) return '';
  if (typeof endpoint === 'object') return String(endpoint.hostname || endpoint.host || '');
  const text = String(endpoint);
  try {
    return new URL(text.includes('://') ? text : `https://${text}`).hostname;
  } catch (_e) {
    return text;
  }
}

function patchAwsSdkV2(AWS) {
  const proto = AWS.Service && AWS.Service.prototype;
  if (!proto || typeof proto.initialize !== 'function' || proto.initialize.chimevoiceEndpoints) return;
  const initialize = proto.initialize;
  const patched = function initializeWithEndpointVariables(config) {
    const serviceId = this.api && this.api.serviceId;
    const url = envEndpoint(serviceId);
    if (url) {
      const own = AWS.config[this.serviceIdentifier];
      const explicit = (config && config.endpoint) || (own && own.endpoint) || AWS.config.endpoint;
      if (!explicit || PUBLIC_AWS.test(hostOf(explicit))) {
        const forcePathStyle = (config && config.s3ForcePathStyle !== undefined) || AWS.config.s3ForcePathStyle;
        config = Object.assign({}, config, { endpoint: url });
        if (this.serviceIdentifier === 's3' && !forcePathStyle) config.s3ForcePathStyle = true;
      }
    }
    return initialize.call(this, config);
  };
  patched.chimevoiceEndpoints = true;
  proto.initialize = patched;
}

function looksLikeAwsSdkV2(exports) {
  return exports && typeof exports === 'object' && typeof exports.VERSION === 'string'
    && exports.Service && typeof exports.Service.defineService === 'function' && exports.Config;
}

const SDK_DIR = `${path.sep}aws-sdk${path.sep}`;
const SDK_CORE = `${SDK_DIR}lib${path.sep}core.js`;
const load = Module._load;
Module._load = function loadAndPatch(request, parent, isMain) {
  const exports = load.apply(this, arguments);
  // aws-sdk v2's lib/core.js is the AWS object; patched once it has finished loading. Only
  // requests of or inside aws-sdk are looked at (never the exports of a module still loading).
  if (request === 'aws-sdk' || request.startsWith('aws-sdk/')
      || (parent && typeof parent.filename === 'string' && parent.filename.includes(SDK_DIR))) {
    let filename = null;
    try {
      filename = Module._resolveFilename(request, parent, isMain);
    } catch (_e) { /* a builtin */ }
    const core = filename && (filename.endsWith(SDK_CORE) ? filename
      : filename.endsWith(`${SDK_DIR}lib${path.sep}aws.js`) ? filename.slice(0, -'aws.js'.length) + 'core.js' : null);
    const loaded = core && Module._cache[core];
    if (loaded && loaded.loaded && looksLikeAwsSdkV2(loaded.exports)) patchAwsSdkV2(loaded.exports);
  }
  return exports;
};

// aws-sdk v2 prints a maintenance notice on load; Lambda's runtime does not show it either
if (process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE === undefined) {
  process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
}

// node_modules folders an ES module's bare imports fall back to, in order (the application's
// installed dependencies, then the runtime's): CHIMEVOICE_NODE_MODULES, path.delimiter-separated
const fallbackModules = (process.env.CHIMEVOICE_NODE_MODULES || '').split(path.delimiter).filter(Boolean);
if (fallbackModules.length && typeof Module.register === 'function') {
  Module.register(pathToFileURL(path.join(__dirname, 'resolve-hooks.mjs')).href, {
    data: { parentURLs: fallbackModules.map((dir) => pathToFileURL(path.join(dir, 'index.js')).href) },
  });
}
