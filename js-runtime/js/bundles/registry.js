// The CommonJS registry of a bundle: `require` resolves a module id, relative ids
// against the requiring module's package, and the Node modules the packages ask for map
// to the runtime's globals. (Part of js/bundles/build.py's output.)
// Node's EventEmitter, the part the bundled packages use.
function EventEmitter() { this._events = this._events || {}; }
EventEmitter.prototype.on = EventEmitter.prototype.addListener = function (name, listener) {
  this._events = this._events || {};
  (this._events[name] = this._events[name] || []).push(listener);
  return this;
};
EventEmitter.prototype.once = function (name, listener) {
  const once = (...args) => { this.removeListener(name, once); listener.apply(this, args); };
  once.listener = listener;
  return this.on(name, once);
};
EventEmitter.prototype.removeListener = EventEmitter.prototype.off = function (name, listener) {
  const list = (this._events || {})[name];
  if (list) this._events[name] = list.filter((l) => l !== listener && l.listener !== listener);
  return this;
};
EventEmitter.prototype.removeAllListeners = function (name) {
  if (name === undefined) this._events = {}; else if (this._events) delete this._events[name];
  return this;
};
EventEmitter.prototype.emit = function (name, ...args) {
  const list = (this._events || {})[name];
  if (!list || list.length === 0) {
    if (name === 'error') throw args[0];
    return false;
  }
  for (const listener of list.slice()) listener.apply(this, args);
  return true;
};
EventEmitter.prototype.listeners = function (name) { return ((this._events || {})[name] || []).slice(); };
EventEmitter.prototype.setMaxListeners = function () { return this; };

// Node's legacy `url.parse(text, parseQuery)`: the fields packages read.
function legacyUrl(text, parseQuery) {
  const u = new URL(text);
  const search = u.search || null;
  const query = search ? search.slice(1) : null;
  return {
    protocol: u.protocol, slashes: true, host: u.host, hostname: u.hostname, port: u.port || null,
    hash: u.hash || null, search, pathname: u.pathname, path: u.pathname + (search || ''), href: u.href,
    auth: u.username ? (u.password ? `${u.username}:${u.password}` : u.username) : null,
    query: parseQuery ? node.querystring.parse(query || '') : query,
  };
}

// Node's `http`/`https` `request(options, [callback])` over the runtime's fetch, the part
// packages use: `write`, `end`, the 'response' and 'error' events, and a response that
// emits 'data' and 'end' (and 'close'). The request is sent when `end()` is called.
// Unlike Node's http, a redirect is followed by the host (its allow-list rechecked at
// each hop), so a package sees the final answer.
function httpModule(protocol) {
  function request(options, callback) {
    const req = new EventEmitter();
    const chunks = [];
    if (typeof callback === 'function') req.on('response', callback);
    req.write = (chunk) => { if (chunk !== undefined && chunk !== null) chunks.push(Buffer.from(chunk)); return true; };
    req.end = (chunk) => {
      req.write(chunk);
      const host = options.hostname || options.host;
      const port = options.port && String(options.port) !== (protocol === 'https:' ? '443' : '80') ? `:${options.port}` : '';
      const headers = {};
      for (const [name, value] of Object.entries(options.headers || {})) {
        // The fetch sets these itself, from the URL and the body.
        if (!['host', 'content-length'].includes(name.toLowerCase())) headers[name] = value;
      }
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      fetch(`${protocol}//${host}${port}${options.path || '/'}`, { method: options.method || 'GET', headers, body, redirect: 'manual' })
        .then(async (answer) => {
          const data = Buffer.from(await answer.arrayBuffer());
          const response = new EventEmitter();
          response.statusCode = answer.status;
          response.statusMessage = answer.statusText;
          response.headers = {};
          for (const [name, value] of answer.headers) response.headers[name] = value;
          let encoding = null;
          response.setEncoding = (e) => { encoding = e; return response; };
          req.emit('response', response);
          Promise.resolve().then(() => {
            if (data.length) response.emit('data', encoding ? data.toString(encoding) : data);
            response.emit('end');
            response.emit('close');
          });
        }, (err) => req.emit('error', err));
      return req;
    };
    return req;
  }
  return { request };
}

// What the packages read of Node's `process`, in their scope only.
const process = {
  version: 'v20.0.0',
  env: {},
  nextTick: (fn, ...args) => { Promise.resolve().then(() => fn(...args)); },
};
const node = {
  buffer: { Buffer, SlowBuffer: Buffer },
  'safe-buffer': { Buffer },
  crypto,
  util: {
    format(template, ...args) {
      let i = 0;
      return String(template).replace(/%[sdj%]/g, (m) => {
        if (m === '%%') return '%';
        if (i >= args.length) return m;
        const a = args[i++];
        return m === '%j' ? JSON.stringify(a) : m === '%d' ? String(Number(a)) : String(a);
      });
    },
    inherits(ctor, superCtor) {
      ctor.super_ = superCtor;
      Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
    },
    isArray: Array.isArray,
  },
  // jsonwebtoken's psSupported asks semver whether this Node signs RSA-PSS; the runtime
  // does not, so it answers no and PS256/384/512 are not offered.
  semver: { satisfies: () => false },
  'lodash.includes': _.includes,
  'lodash.isboolean': _.isBoolean,
  'lodash.isinteger': _.isInteger,
  'lodash.isnumber': _.isNumber,
  'lodash.isplainobject': _.isPlainObject,
  'lodash.isstring': _.isString,
  'lodash.once': _.once,
  // As in Node, the module is the constructor itself.
  events: EventEmitter,
  // sax's and xml's streaming classes extend it; the runtime has no streams to pipe.
  stream: { Stream: function Stream() { EventEmitter.call(this); } },
  string_decoder: {
    StringDecoder: class StringDecoder {
      write(buffer) { return typeof buffer === 'string' ? buffer : Buffer.from(buffer).toString('utf8'); }
      end(buffer) { return buffer ? this.write(buffer) : ''; }
    },
  },
  // form-data asks for these at load; a function's FormData is built in memory and
  // sent with the runtime's fetch (`form.submit`, file streams and `fs` are not there).
  path: {
    basename: (p, ext) => {
      const base = String(p).replace(/\/+$/, '').split('/').pop();
      return ext && base.endsWith(ext) ? base.slice(0, -ext.length) : base;
    },
    extname: (p) => { const m = /\.[^./]*$/.exec(String(p).split('/').pop()); return m ? m[0] : ''; },
    normalize: (p) => String(p),
  },
  fs: {},
  http: httpModule('http:'),
  https: httpModule('https:'),
  url: { parse: legacyUrl },
  querystring: {
    stringify(object, sep = '&', eq = '=') {
      const escape = (v) => encodeURIComponent(v);
      const value = (v) => (typeof v === 'string' ? v : typeof v === 'number' && isFinite(v) ? String(v) : typeof v === 'boolean' ? String(v) : '');
      return Object.keys(object || {}).map((k) => {
        const v = object[k];
        return Array.isArray(v)
          ? v.map((x) => `${escape(k)}${eq}${escape(value(x))}`).join(sep)
          : `${escape(k)}${eq}${escape(value(v))}`;
      }).filter((part) => part !== '').join(sep);
    },
    parse(text, sep = '&', eq = '=') {
      const out = Object.create(null);
      const decode = (v) => { try { return decodeURIComponent(v.replace(/\+/g, ' ')); } catch (e) { return v; } };
      for (const part of String(text || '').split(sep)) {
        if (!part) continue;
        const at = part.indexOf(eq);
        const key = decode(at < 0 ? part : part.slice(0, at));
        const val = at < 0 ? '' : decode(part.slice(at + eq.length));
        if (key in out) out[key] = [].concat(out[key], val); else out[key] = val;
      }
      return out;
    },
  },
  timers: {
    setImmediate: (fn, ...args) => setTimeout(fn, 0, ...args),
    clearImmediate: (id) => clearTimeout(id),
  },
};
EventEmitter.EventEmitter = EventEmitter;
Object.setPrototypeOf(node.stream.Stream.prototype, EventEmitter.prototype);
const cache = {};
function resolve(from, id) {
  if (!id.startsWith('.')) return id;
  const base = from.split('/');
  base.pop();
  for (const part of id.split('/')) {
    if (part === '..') base.pop();
    else if (part !== '.') base.push(part);
  }
  const resolved = base.join('/').replace(/\.js$/, '');
  if (sources[resolved] || resolved.endsWith('.json')) return resolved;
  return sources[resolved] || !sources[`${resolved}/index`] ? resolved : `${resolved}/index`;
}
function load(id) {
  if (Object.prototype.hasOwnProperty.call(node, id)) return node[id];
  if (Object.prototype.hasOwnProperty.call(mains, id)) id = mains[id];
  if (cache[id]) return cache[id].exports;
  const source = sources[id];
  if (!source) throw new Error(`Cannot find module '${id}'`);
  const module = { exports: {} };
  cache[id] = module;
  source.call(module.exports, module, module.exports, (dep) => load(resolve(id, dep)));
  return module.exports;
}
