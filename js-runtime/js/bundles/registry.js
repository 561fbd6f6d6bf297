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
  http: {},
  https: {},
  url: { parse: (u) => new URL(u) },
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
