// jws 3.2 for the bundle: the real package's sign, verify and decode (MIT; its
// lib/sign-stream.js, lib/verify-stream.js and lib/tostring.js, unchanged but for the
// Node streams, which the runtime has not), with createSign/createVerify answering their
// 'done' or 'error' event once, as jsonwebtoken's callback forms listen for them.
var Buffer = require('safe-buffer').Buffer;
var jwa = require('jwa');
var util = require('util');

var ALGORITHMS = [
  'HS256', 'HS384', 'HS512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512'
];
var JWS_REGEX = /^[a-zA-Z0-9\-_]+?\.[a-zA-Z0-9\-_]+?\.([a-zA-Z0-9\-_]+)?$/;

function toString(obj) {
  if (typeof obj === 'string')
    return obj;
  if (typeof obj === 'number' || Buffer.isBuffer(obj))
    return obj.toString();
  return JSON.stringify(obj);
}

function base64url(string, encoding) {
  return Buffer
    .from(string, encoding)
    .toString('base64')
    .replace(/=/g, '')
    .replace(/\+/g, '-')
    .replace(/\//g, '_');
}

function jwsSecuredInput(header, payload, encoding) {
  encoding = encoding || 'utf8';
  var encodedHeader = base64url(toString(header), 'binary');
  var encodedPayload = base64url(toString(payload), encoding);
  return util.format('%s.%s', encodedHeader, encodedPayload);
}

function jwsSign(opts) {
  var header = opts.header;
  var payload = opts.payload;
  var secretOrKey = opts.secret || opts.privateKey;
  var encoding = opts.encoding;
  var algo = jwa(header.alg);
  var securedInput = jwsSecuredInput(header, payload, encoding);
  var signature = algo.sign(securedInput, secretOrKey);
  return util.format('%s.%s', securedInput, signature);
}

function isObject(thing) {
  return Object.prototype.toString.call(thing) === '[object Object]';
}

function safeJsonParse(thing) {
  if (isObject(thing))
    return thing;
  try { return JSON.parse(thing); }
  catch (e) { return undefined; }
}

function headerFromJWS(jwsSig) {
  var encodedHeader = jwsSig.split('.', 1)[0];
  return safeJsonParse(Buffer.from(encodedHeader, 'base64').toString('binary'));
}

function securedInputFromJWS(jwsSig) {
  return jwsSig.split('.', 2).join('.');
}

function signatureFromJWS(jwsSig) {
  return jwsSig.split('.')[2];
}

function payloadFromJWS(jwsSig, encoding) {
  encoding = encoding || 'utf8';
  var payload = jwsSig.split('.')[1];
  return Buffer.from(payload, 'base64').toString(encoding);
}

function isValidJws(string) {
  return JWS_REGEX.test(string) && !!headerFromJWS(string);
}

function jwsVerify(jwsSig, algorithm, secretOrKey) {
  if (!algorithm) {
    var err = new Error("Missing algorithm parameter for jws.verify");
    err.code = "MISSING_ALGORITHM";
    throw err;
  }
  jwsSig = toString(jwsSig);
  var signature = signatureFromJWS(jwsSig);
  var securedInput = securedInputFromJWS(jwsSig);
  var algo = jwa(algorithm);
  return algo.verify(securedInput, signature, secretOrKey);
}

function jwsDecode(jwsSig, opts) {
  opts = opts || {};
  jwsSig = toString(jwsSig);
  if (!isValidJws(jwsSig))
    return null;
  var header = headerFromJWS(jwsSig);
  if (!header)
    return null;
  var payload = payloadFromJWS(jwsSig);
  if (header.typ === 'JWT' || opts.json)
    payload = JSON.parse(payload, opts.encoding);
  return {
    header: header,
    payload: payload,
    signature: signatureFromJWS(jwsSig)
  };
}

// What the streams' users listen to: `once(event, listener)`, each event emitted once,
// after the caller has attached its listeners (a microtask later).
function settleOnce(work, event) {
  var listeners = {};
  var emitter = {
    once: function (name, listener) { listeners[name] = listener; return emitter; },
    on: function (name, listener) { listeners[name] = listener; return emitter; },
  };
  Promise.resolve().then(function () {
    var value;
    try { value = work(); } catch (err) {
      if (listeners.error) listeners.error(err);
      return;
    }
    if (listeners[event]) listeners[event](value);
  });
  return emitter;
}

exports.ALGORITHMS = ALGORITHMS;
exports.sign = jwsSign;
exports.verify = jwsVerify;
exports.decode = jwsDecode;
exports.isValid = isValidJws;
exports.createSign = function createSign(opts) {
  return settleOnce(function () {
    return jwsSign({
      header: opts.header,
      payload: opts.payload,
      secret: opts.secret == null ? (opts.privateKey == null ? opts.key : opts.privateKey) : opts.secret,
      encoding: opts.encoding,
    });
  }, 'done');
};
exports.createVerify = function createVerify(opts) {
  return settleOnce(function () {
    var key = opts.secret == null ? (opts.publicKey == null ? opts.key : opts.publicKey) : opts.secret;
    return jwsVerify(opts.signature, opts.algorithm, key);
  }, 'done');
};
