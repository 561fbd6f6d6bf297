// segfn's JavaScript runtime: the globals Segment's destination functions expect (fetch
// with node-fetch 2 semantics, Headers, Request, Response, URL, URLSearchParams, atob,
// btoa, Buffer, crypto, console, timers, the error classes), and the dispatcher that
// runs one envelope through the script's handlers. Evaluated once, before the user's
// script, in the snapshot `segfn build` makes. Byte work is Rust's (`__segfn_native`,
// src/native.rs). Every invocation starts from the snapshot: nothing here survives one.
(function (global) {
  'use strict';
  const native = global.__segfn_native;
  delete global.__segfn_native;

  // ---- Segment's error classes -------------------------------------------------------
  function errorClass(name) {
    const C = class extends Error {
      constructor(message) {
        super(message);
        this.name = name;
      }
    };
    Object.defineProperty(C, 'name', { value: name });
    return C;
  }
  const EventNotSupported = errorClass('EventNotSupported');
  const InvalidEventPayload = errorClass('InvalidEventPayload');
  const ValidationError = errorClass('ValidationError');
  const RetryError = errorClass('RetryError');
  const DropEvent = errorClass('DropEvent');
  // node-fetch 2's error for failed requests and bad bodies.
  class FetchError extends Error {
    constructor(message, type, systemError) {
      super(message);
      this.name = 'FetchError';
      this.type = type;
      if (systemError) this.code = this.errno = systemError.code;
    }
  }

  // ---- bytes ---------------------------------------------------------------------------
  // Binary strings (one char per byte) are what the native half takes and gives.
  function bytesToBinary(bytes) {
    let out = '';
    for (let i = 0; i < bytes.length; i += 8192) {
      out += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    }
    return out;
  }
  function binaryToBytes(binary) {
    const out = new Buffer(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i) & 0xff;
    return out;
  }
  function normEncoding(encoding) {
    const e = String(encoding === undefined ? 'utf8' : encoding).toLowerCase();
    switch (e) {
      case 'utf8': case 'utf-8': return 'utf8';
      case 'base64': case 'base64url': case 'hex': case 'ascii': return e;
      case 'latin1': case 'binary': return 'latin1';
      case 'ucs2': case 'ucs-2': case 'utf16le': case 'utf-16le': return 'utf16le';
      default: throw new TypeError(`Unknown encoding: ${encoding}`);
    }
  }
  function encodeString(text, encoding) {
    text = String(text);
    switch (normEncoding(encoding)) {
      case 'utf8': return native.utf8Encode(text);
      case 'base64': case 'base64url': return native.base64Decode(text, false);
      case 'hex': {
        let out = '';
        for (let i = 0; i + 1 < text.length; i += 2) {
          const byte = parseInt(text.substr(i, 2), 16);
          if (Number.isNaN(byte)) break;
          out += String.fromCharCode(byte);
        }
        return out;
      }
      case 'ascii': case 'latin1': {
        let out = '';
        for (let i = 0; i < text.length; i++) out += String.fromCharCode(text.charCodeAt(i) & 0xff);
        return out;
      }
      case 'utf16le': {
        let out = '';
        for (let i = 0; i < text.length; i++) {
          const c = text.charCodeAt(i);
          out += String.fromCharCode(c & 0xff, c >> 8);
        }
        return out;
      }
    }
  }
  function decodeBytes(bytes, encoding) {
    const binary = bytesToBinary(bytes);
    switch (normEncoding(encoding)) {
      case 'utf8': return native.utf8Decode(binary);
      case 'base64': return native.base64Encode(binary, false);
      case 'base64url': return native.base64Encode(binary, true);
      case 'hex': {
        let out = '';
        for (let i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
        return out;
      }
      case 'ascii': {
        let out = '';
        for (let i = 0; i < binary.length; i++) out += String.fromCharCode(binary.charCodeAt(i) & 0x7f);
        return out;
      }
      case 'latin1': return binary;
      case 'utf16le': {
        let out = '';
        for (let i = 0; i + 1 < bytes.length; i += 2) out += String.fromCharCode(bytes[i] | (bytes[i + 1] << 8));
        return out;
      }
    }
  }

  // Node's Buffer: a Uint8Array with encodings.
  class Buffer extends Uint8Array {
    static from(value, encodingOrOffset, length) {
      if (typeof value === 'string') return binaryToBytes(encodeString(value, encodingOrOffset));
      if (value instanceof ArrayBuffer) {
        const offset = encodingOrOffset || 0;
        const len = length === undefined ? value.byteLength - offset : length;
        return new Buffer(value, offset, len);
      }
      if (ArrayBuffer.isView(value)) {
        const out = new Buffer(value.length);
        for (let i = 0; i < value.length; i++) out[i] = value[i] & 0xff;
        return out;
      }
      if (Array.isArray(value)) {
        const out = new Buffer(value.length);
        for (let i = 0; i < value.length; i++) out[i] = value[i] & 0xff;
        return out;
      }
      if (value && value.type === 'Buffer' && Array.isArray(value.data)) return Buffer.from(value.data);
      throw new TypeError('The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object.');
    }
    static alloc(size, fill, encoding) {
      const out = new Buffer(size);
      if (fill !== undefined) out.fill(typeof fill === 'string' ? Buffer.from(fill, encoding)[0] : fill);
      return out;
    }
    static allocUnsafe(size) { return new Buffer(size); }
    static isBuffer(value) { return value instanceof Buffer; }
    static isEncoding(encoding) { try { normEncoding(encoding); return true; } catch (_) { return false; } }
    static byteLength(value, encoding) {
      if (typeof value === 'string') return encodeString(value, encoding).length;
      return value.byteLength;
    }
    static concat(list, totalLength) {
      const total = totalLength === undefined ? list.reduce((n, b) => n + b.length, 0) : totalLength;
      const out = Buffer.alloc(total);
      let at = 0;
      for (const b of list) {
        if (at >= total) break;
        out.set(b.subarray(0, total - at), at);
        at += b.length;
      }
      return out;
    }
    static compare(a, b) { return a.compare(b); }
    toString(encoding, start, end) {
      const bytes = this.subarray(start || 0, end === undefined ? this.length : end);
      return decodeBytes(bytes, encoding);
    }
    toJSON() { return { type: 'Buffer', data: Array.from(this) }; }
    equals(other) { return this.compare(other) === 0; }
    compare(other) {
      const n = Math.min(this.length, other.length);
      for (let i = 0; i < n; i++) if (this[i] !== other[i]) return this[i] < other[i] ? -1 : 1;
      return this.length === other.length ? 0 : this.length < other.length ? -1 : 1;
    }
    write(text, offset, encoding) {
      if (typeof offset === 'string') { encoding = offset; offset = 0; }
      const bytes = binaryToBytes(encodeString(text, encoding));
      const n = Math.min(bytes.length, this.length - (offset || 0));
      this.set(bytes.subarray(0, n), offset || 0);
      return n;
    }
    slice(start, end) { return this.subarray(start, end); }
    subarray(start, end) {
      const view = Uint8Array.prototype.subarray.call(this, start, end);
      return new Buffer(view.buffer, view.byteOffset, view.length);
    }
    copy(target, targetStart, sourceStart, sourceEnd) {
      const part = this.subarray(sourceStart || 0, sourceEnd === undefined ? this.length : sourceEnd);
      const n = Math.min(part.length, target.length - (targetStart || 0));
      target.set(part.subarray(0, n), targetStart || 0);
      return n;
    }
    readUInt8(offset) { return this[offset || 0]; }
  }
  Object.defineProperty(Buffer.prototype, Symbol.toStringTag, { value: 'Buffer' });
  // Node's Buffer statics are plain functions, so `new Buffer.from(...)` (written in
  // Segment's own docs) works there; class statics are not constructors.
  for (const name of ['from', 'alloc', 'allocUnsafe', 'isBuffer', 'isEncoding', 'byteLength', 'concat', 'compare']) {
    const method = Buffer[name];
    Object.defineProperty(Buffer, name, {
      value: { [name]: function (...args) { return method.apply(Buffer, args); } }[name],
      writable: true, configurable: true, enumerable: false,
    });
  }
  // Uint8Array's own methods (map, filter, ...) build the species: keep them Uint8Arrays.
  Object.defineProperty(Buffer, Symbol.species, { get() { return Uint8Array; } });

  function btoa(text) {
    text = String(text);
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) > 255) {
        throw new Error('InvalidCharacterError: The string to be encoded contains characters outside of the Latin1 range.');
      }
    }
    return native.base64Encode(text, false);
  }
  function atob(text) { return native.base64Decode(String(text), true); }

  // The bytes of a body or a digest input: strings are UTF-8, as in Node.
  function toBinary(data, encoding) {
    if (typeof data === 'string') return encodeString(data, encoding);
    if (data instanceof ArrayBuffer) return bytesToBinary(new Uint8Array(data));
    if (ArrayBuffer.isView(data)) return bytesToBinary(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    throw new TypeError('The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView.');
  }

  // ---- crypto (Node's module, the parts functions use) --------------------------------
  function digestOutput(binary, encoding) {
    if (encoding === undefined || encoding === 'buffer') return binaryToBytes(binary);
    return decodeBytes(binaryToBytes(binary), encoding);
  }
  class Hash {
    constructor(algorithm) {
      this._algorithm = String(algorithm).toLowerCase().replace(/-/g, '');
      this._data = '';
      native.digest(this._algorithm, ''); // throws for an unknown algorithm, as Node does
    }
    update(data, encoding) { this._data += toBinary(data, encoding); return this; }
    digest(encoding) { return digestOutput(native.digest(this._algorithm, this._data), encoding); }
  }
  class Hmac {
    constructor(algorithm, key) {
      this._algorithm = String(algorithm).toLowerCase().replace(/-/g, '');
      this._key = toBinary(key);
      this._data = '';
      native.hmac(this._algorithm, '', '');
    }
    update(data, encoding) { this._data += toBinary(data, encoding); return this; }
    digest(encoding) { return digestOutput(native.hmac(this._algorithm, this._key, this._data), encoding); }
  }
  // crypto.createSign / createVerify: RSA (PKCS#1 v1.5) with SHA-1/256/384/512 and ECDSA
  // over P-256 with SHA-256 (DER, or r||s with {dsaEncoding: 'ieee-p1363'}), PEM keys,
  // signed in Rust (sign.rs); what Google service-account and ES256 JWTs need.
  function pemOf(key) {
    if (typeof key === 'string') return key;
    if (ArrayBuffer.isView(key)) return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('utf8');
    if (key && typeof key === 'object' && key.key !== undefined) {
      if (key.passphrase !== undefined) throw new Error('encrypted private keys are not supported: give the key unencrypted');
      return pemOf(key.key);
    }
    throw new TypeError('The "key" argument must be a PEM string, a Buffer or {key}');
  }
  function dsaEncodingOf(key) {
    return key && typeof key === 'object' && !ArrayBuffer.isView(key) && key.dsaEncoding !== undefined
      ? String(key.dsaEncoding) : undefined;
  }
  class Sign {
    constructor(algorithm) {
      this._algorithm = String(algorithm);
      this._data = '';
      native.signCheck(this._algorithm); // an unknown digest throws here, as in Node
    }
    update(data, encoding) { this._data += toBinary(data, encoding); return this; }
    end() { return this; }
    sign(key, encoding) {
      return digestOutput(native.sign(this._algorithm, pemOf(key), this._data, dsaEncodingOf(key)), encoding);
    }
  }
  class Verify {
    constructor(algorithm) {
      this._algorithm = String(algorithm);
      this._data = '';
      native.signCheck(this._algorithm);
    }
    update(data, encoding) { this._data += toBinary(data, encoding); return this; }
    end() { return this; }
    verify(key, signature, encoding) {
      return native.verify(this._algorithm, pemOf(key), this._data, toBinary(signature, encoding), dsaEncodingOf(key));
    }
  }
  // At most 1 MiB at once, as the host's randomness is handed over: more is an error,
  // never a short or zero-filled buffer.
  const MAX_RANDOM = 1 << 20;
  function randomBytes(size, callback) {
    if (!(size >= 0 && size <= MAX_RANDOM) || size !== Math.floor(size)) {
      throw new RangeError(`randomBytes: size must be an integer from 0 to ${MAX_RANDOM}, got ${size}`);
    }
    const bytes = binaryToBytes(native.random(size));
    if (typeof callback === 'function') { callback(null, bytes); return undefined; }
    return bytes;
  }
  function randomUUID() {
    const b = randomBytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = b.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  const crypto = {
    createHash: (algorithm) => new Hash(algorithm),
    createHmac: (algorithm, key) => new Hmac(algorithm, key),
    createSign: (algorithm) => new Sign(algorithm),
    createVerify: (algorithm) => new Verify(algorithm),
    randomBytes,
    randomUUID,
    getRandomValues(array) {
      // Web Crypto's limit.
      if (array.byteLength > 65536) {
        throw new RangeError(`getRandomValues: ${array.byteLength} bytes asked for, at most 65536`);
      }
      const bytes = binaryToBytes(native.random(array.byteLength));
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(bytes);
      return array;
    },
    getHashes: () => ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'],
  };

  // ---- zlib (Node's module, preloaded by Segment as `zlib.zlib`) -----------------------
  // The one-shot functions, synchronous and with callbacks: gzip, zlib and raw deflate,
  // compressed and decompressed in Rust (flate2). Streams and brotli are not there.
  const zlibConstants = {
    Z_NO_FLUSH: 0, Z_PARTIAL_FLUSH: 1, Z_SYNC_FLUSH: 2, Z_FULL_FLUSH: 3, Z_FINISH: 4, Z_BLOCK: 5,
    Z_OK: 0, Z_STREAM_END: 1, Z_NEED_DICT: 2, Z_ERRNO: -1, Z_STREAM_ERROR: -2, Z_DATA_ERROR: -3,
    Z_MEM_ERROR: -4, Z_BUF_ERROR: -5, Z_VERSION_ERROR: -6,
    Z_NO_COMPRESSION: 0, Z_BEST_SPEED: 1, Z_BEST_COMPRESSION: 9, Z_DEFAULT_COMPRESSION: -1,
    Z_FILTERED: 1, Z_HUFFMAN_ONLY: 2, Z_RLE: 3, Z_FIXED: 4, Z_DEFAULT_STRATEGY: 0,
  };
  // Node refuses output past buffer.kMaxLength; an instance's memory ends well before.
  const ZLIB_MAX_OUTPUT = 256 * 1024 * 1024;
  // An error as Node makes it: its class, message and `code`.
  function nodeError(Class, code, message) {
    const error = new Class(message);
    error.code = code;
    return error;
  }
  function received(value) {
    if (value === null || value === undefined) return ` Received ${value}`;
    if (typeof value === 'object') return ` Received an instance of ${(value.constructor && value.constructor.name) || 'Object'}`;
    return ` Received type ${typeof value} (${String(value)})`;
  }
  function zlibInput(data) {
    if (typeof data === 'string') return encodeString(data, 'utf8');
    if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return toBinary(data);
    throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "buffer" argument must be of type string or an instance of ' +
      `Buffer, TypedArray, DataView, or ArrayBuffer.${received(data)}`);
  }
  function zlibRange(options, name, min, max, fallback) {
    const value = options && options[name];
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < min || value > max) {
      throw nodeError(RangeError, 'ERR_OUT_OF_RANGE',
        `The value of "options.${name}" is out of range. It must be >= ${min} and <= ${max}. Received ${value}`);
    }
    return value;
  }
  const zlibLevel = (options) => zlibRange(options, 'level', -1, 9, -1);
  const zlibMaxOutput = (options) => zlibRange(options, 'maxOutputLength', 1, ZLIB_MAX_OUTPUT, ZLIB_MAX_OUTPUT);
  // zlib's failures as Node's errors: the message zlib gives, with `errno` and `code`.
  function zlibCall(f) {
    let out;
    try {
      out = f();
    } catch (e) {
      const [, code, message] = /^(\w+): (.*)$/.exec(String(e && e.message)) || [null, 'Z_DATA_ERROR', String(e)];
      if (code === 'ERR_BUFFER_TOO_LARGE') throw nodeError(RangeError, code, message);
      const error = nodeError(Error, code, message);
      error.errno = zlibConstants[code];
      throw error;
    }
    return binaryToBytes(out);
  }
  const zlibModule = { constants: zlibConstants };
  for (const [name, format] of [['gzip', 'gzip'], ['deflate', 'deflate'], ['deflateRaw', 'raw']]) {
    zlibModule[`${name}Sync`] = (data, options) => {
      const [input, level] = [zlibInput(data), zlibLevel(options)];
      return zlibCall(() => native.deflate(format, input, level));
    };
  }
  for (const [name, format] of [['gunzip', 'gzip'], ['inflate', 'deflate'], ['inflateRaw', 'raw'], ['unzip', 'unzip']]) {
    zlibModule[`${name}Sync`] = (data, options) => {
      const [input, max] = [zlibInput(data), zlibMaxOutput(options)];
      return zlibCall(() => native.inflate(format, input, max));
    };
  }
  for (const name of ['gzip', 'deflate', 'deflateRaw', 'gunzip', 'inflate', 'inflateRaw', 'unzip']) {
    const sync = zlibModule[`${name}Sync`];
    // Node calls back later, never before the call returns.
    zlibModule[name] = function (data, options, callback) {
      if (typeof options === 'function') { callback = options; options = undefined; }
      if (typeof callback !== 'function') {
        throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "callback" argument must be of type function.${received(callback)}`);
      }
      let result, error = null;
      try { result = sync(data, options); } catch (e) { error = e; }
      Promise.resolve().then(() => (error ? callback(error) : callback(null, result)));
    };
  }
  const unsupported = (name, what) => function () {
    throw new Error(`zlib.${name} is not available in segfn: ${what} not supported; use the one-shot gzip, deflate and inflate functions`);
  };
  for (const name of ['brotliCompress', 'brotliCompressSync', 'brotliDecompress', 'brotliDecompressSync']) {
    zlibModule[name] = unsupported(name, 'brotli is');
  }
  for (const name of ['createGzip', 'createGunzip', 'createDeflate', 'createInflate', 'createDeflateRaw', 'createInflateRaw', 'createUnzip']) {
    zlibModule[name] = unsupported(name, 'streams are');
  }
  const zlib = { zlib: zlibModule };

  // Math.random is reseeded from the host's randomness in every invocation (the snapshot
  // would otherwise give every instance the same sequence): xorshift128+.
  let s0 = 1, s1 = 2;
  function reseed() {
    const seed = native.seed();
    s0 = seed[0]; s1 = seed[1];
  }
  Math.random = function random() {
    // 32-bit xorshift pair, combined into 53 bits.
    let x = s0, y = s1;
    s0 = y;
    x ^= x << 23; x ^= x >>> 17; x ^= y ^ (y >>> 26);
    s1 = x >>> 0;
    const hi = (s0 >>> 5) >>> 0, lo = (s1 >>> 6) >>> 0;
    return (hi * 67108864 + lo) / 9007199254740992;
  };

  // ---- console -------------------------------------------------------------------------
  function format(args) {
    return args.map((a) => {
      if (typeof a === 'string') return a;
      if (a instanceof Error) return a.stack ? `${a.name}: ${a.message}\n${a.stack}`.trimEnd() : String(a);
      if (a === undefined || typeof a === 'function' || typeof a === 'symbol' || typeof a === 'bigint') return String(a);
      try { const j = JSON.stringify(a); return j === undefined ? String(a) : j; } catch (_) { return String(a); }
    }).join(' ');
  }
  let initialising = true;
  const log = (level) => (...args) => {
    // Log lines at the top level of a script go nowhere: no invocation is running.
    if (!initialising) native.log(level, format(args));
  };
  const console = {
    debug: log(0), trace: log(0), log: log(1), info: log(1), warn: log(2), error: log(3),
    dir: log(1), table: log(1), assert(cond, ...args) { if (!cond) log(3)('Assertion failed:', ...args); },
    time() {}, timeEnd() {}, group() {}, groupEnd() {}, count() {},
  };

  // ---- timers: run in due order once the job queue is empty -----------------------------
  // No wall-clock sleeping: nothing else runs in the sandbox, so a timer's callback runs
  // as soon as everything before it is done; the host's deadline bounds the whole.
  let timers = [];
  let timerSeq = 0;
  let virtualNow = 0;
  function addTimer(fn, delay, args, repeat) {
    if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
    const id = ++timerSeq;
    delay = Math.max(0, Number(delay) || 0);
    timers.push({ id, due: virtualNow + delay, fn, args, repeat: repeat ? Math.max(1, delay) : 0 });
    return id;
  }
  function clearTimer(id) { timers = timers.filter((t) => t.id !== (id && id.id !== undefined ? id.id : id)); }
  // Once the handler has settled, the invocation is over: timers still pending (an
  // interval, a debounce) are dropped, as they are when Segment's invocation returns.
  global.__segfn_fire_timer = function () {
    if (timers.length === 0 || result !== undefined) return false;
    let next = 0;
    for (let i = 1; i < timers.length; i++) {
      if (timers[i].due < timers[next].due || (timers[i].due === timers[next].due && timers[i].id < timers[next].id)) next = i;
    }
    const t = timers[next];
    virtualNow = t.due;
    if (t.repeat) t.due += t.repeat; else timers.splice(next, 1);
    t.fn(...t.args);
    return true;
  };

  // ---- Headers, Request, Response, fetch (node-fetch 2) --------------------------------
  function headerName(name) {
    name = String(name);
    const lower = native.headerName(name);
    if (lower === undefined) throw new TypeError(`${name} is not a legal HTTP header name`);
    return lower;
  }
  // The map and the response's pairs not in it yet (wireHeaders) are symbol-keyed, so
  // that, as in node-fetch, a Headers object has no own enumerable properties
  // (`JSON.stringify` gives `{}`, and a logged response does not spill its headers).
  const MAP = Symbol('map');
  const WIRE = Symbol('wire');
  class Headers {
    constructor(init) {
      this[MAP] = new Map(); // lower-case name -> [values]
      this[WIRE] = null;
      if (init instanceof Headers) {
        for (const [k, vs] of init._map) this._map.set(k, vs.slice());
      } else if (init != null && typeof init === 'object') {
        if (typeof init[Symbol.iterator] === 'function') {
          for (const pair of init) {
            if (pair.length !== 2) throw new TypeError('Each header pair must be a name/value tuple');
            this.append(pair[0], pair[1]);
          }
        } else {
          for (const k of Object.keys(init)) this.append(k, init[k]);
        }
      }
    }
    get _map() {
      const pairs = this[WIRE];
      const map = this[MAP];
      if (pairs !== null) {
        this[WIRE] = null;
        for (let i = 0; i < pairs.length; i++) {
          const vs = map.get(pairs[i][0]);
          if (vs) vs.push(pairs[i][1]); else map.set(pairs[i][0], [pairs[i][1]]);
        }
      }
      return map;
    }
    get(name) { const v = this._map.get(headerName(name)); return v === undefined ? null : v.join(', '); }
    has(name) { return this._map.has(headerName(name)); }
    set(name, value) { this._map.set(headerName(name), [String(value)]); }
    append(name, value) {
      const k = headerName(name);
      const vs = this._map.get(k);
      if (vs) vs.push(String(value)); else this._map.set(k, [String(value)]);
    }
    delete(name) { this._map.delete(headerName(name)); }
    forEach(fn, thisArg) { for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this); }
    *entries() { for (const k of [...this._map.keys()].sort()) yield [k, this._map.get(k).join(', ')]; }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    raw() { const o = {}; for (const [k, vs] of this._map) o[k] = vs.slice(); return o; }
  }
  Object.defineProperty(Headers.prototype, Symbol.toStringTag, { value: 'Headers' });
  // A response's headers as the host gave them (lower-case names, checked by the host),
  // put in the map when first read: most handlers never read them, and each costs
  // thousands of interpreted instructions.
  function wireHeaders(pairs) {
    const headers = new Headers();
    headers[WIRE] = pairs;
    return headers;
  }

  // A body as bytes (binary string) and the content type node-fetch 2 gives it.
  function bodyBinary(body) {
    if (body === undefined || body === null) return { data: null, type: null };
    if (typeof body === 'string') return { data: native.utf8Encode(body), type: 'text/plain;charset=UTF-8' };
    if (body instanceof URLSearchParams) {
      return { data: native.utf8Encode(body.toString()), type: 'application/x-www-form-urlencoded;charset=UTF-8' };
    }
    if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return { data: toBinary(body), type: null };
    // form-data's FormData (Segment's preloaded `FormData`): its bytes, and the type
    // node-fetch 2 gives it.
    if (typeof body.getBoundary === 'function' && typeof body.getBuffer === 'function') {
      return { data: toBinary(body.getBuffer()), type: `multipart/form-data;boundary=${body.getBoundary()}` };
    }
    // node-fetch 2 sends anything else as its string.
    return { data: native.utf8Encode(String(body)), type: 'text/plain;charset=UTF-8' };
  }

  class Body {
    _initBody(data) { this._data = data; this.bodyUsed = false; }
    _consume() {
      if (this.bodyUsed) return Promise.reject(new TypeError(`body used already for: ${this.url}`));
      this.bodyUsed = true;
      return Promise.resolve(this._data === null ? '' : this._data);
    }
    text() { return this._consume().then((b) => native.utf8Decode(b)); }
    json() {
      return this._consume().then((b) => {
        const text = native.utf8Decode(b);
        try { return JSON.parse(text); } catch (e) {
          throw new FetchError(`invalid json response body at ${this.url} reason: ${e.message}`, 'invalid-json');
        }
      });
    }
    buffer() { return this._consume().then((b) => binaryToBytes(b)); }
    arrayBuffer() { return this.buffer().then((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.length)); }
    get body() { return this._data === null ? null : binaryToBytes(this._data); }
  }

  class Request extends Body {
    constructor(input, init) {
      super();
      init = init || {};
      const from = input instanceof Request ? input : null;
      this.url = from ? from.url : native.urlHref(String(input));
      this.method = String(init.method || (from && from.method) || 'GET').toUpperCase();
      this.headers = new Headers(init.headers || (from && from.headers) || {});
      let data = from ? from._data : null;
      if (init.body !== undefined && init.body !== null) {
        const b = bodyBinary(init.body);
        data = b.data;
        if (b.type && !this.headers.has('content-type')) this.headers.set('content-type', b.type);
      }
      if (data !== null && (this.method === 'GET' || this.method === 'HEAD')) {
        throw new TypeError('Request with GET/HEAD method cannot have body');
      }
      this._initBody(data);
      this.redirect = init.redirect || 'follow';
    }
    clone() { return new Request(this); }
  }

  const STATUS_TEXT = { 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 301: 'Moved Permanently', 302: 'Found', 304: 'Not Modified', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 422: 'Unprocessable Entity', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };
  class Response extends Body {
    constructor(body, init) {
      super();
      init = init || {};
      this.status = init.status === undefined ? 200 : init.status;
      this.statusText = init.statusText || STATUS_TEXT[this.status] || '';
      this.headers = new Headers(init.headers || {});
      this.url = init.url || '';
      const b = init._binary !== undefined ? { data: init._binary, type: null } : bodyBinary(body);
      if (b.type && !this.headers.has('content-type')) this.headers.set('content-type', b.type);
      this._initBody(b.data);
    }
    get ok() { return this.status >= 200 && this.status < 300; }
    get redirected() { return false; }
    clone() {
      if (this.bodyUsed) throw new Error('cannot clone body after it is used');
      return new Response(null, { status: this.status, statusText: this.statusText, headers: this.headers, url: this.url, _binary: this._data });
    }
    static json(data, init) {
      const r = new Response(JSON.stringify(data), init);
      r.headers.set('content-type', 'application/json');
      return r;
    }
  }

  // Requests fetch made in this turn of the event loop: sent together when the job queue
  // is empty (__segfn_flush_fetches, called by the runtime's loop), through the host's
  // fetch_all, so `Promise.all([fetch(a), fetch(b)])` runs them at once, as Node does; an
  // awaited fetch alone is sent at the next turn, as before.
  let pendingFetches = [];

  function settleFetch(pending, answer) {
    const request = pending.request;
    const status = answer[0];
    if (status === 0) {
      const kind = answer[1];
      const error = new FetchError(`request to ${request.url} failed, reason: ${answer[2]}`, 'system', { code: kind });
      error.kind = kind;
      pending.reject(error);
      return;
    }
    const response = new Response(null, { status, url: request.url, _binary: answer[2] });
    response.headers = wireHeaders(answer[1]);
    pending.resolve(response);
  }

  function fetch(input, init) {
    return new Promise((resolve, reject) => {
      if (initialising) {
        throw new Error('fetch is not available at the top level of a script: call it from a handler');
      }
      const request = new Request(input, init);
      pendingFetches.push({ request, resolve, reject });
    });
  }

  global.__segfn_flush_fetches = function () {
    if (pendingFetches.length === 0) return false;
    const batch = pendingFetches;
    pendingFetches = [];
    const sent = batch.map(({ request }) => {
      const names = [];
      const values = [];
      request.headers._map.forEach((vs, name) => {
        for (let i = 0; i < vs.length; i++) { names.push(name); values.push(vs[i]); }
      });
      return [request.method, request.url, names, values, request._data === null ? '' : request._data];
    });
    // One request alone keeps the single-request host call (no list to frame).
    const answers = sent.length === 1 ? [native.fetch(...sent[0])] : native.fetchAll(sent);
    for (let i = 0; i < batch.length; i++) settleFetch(batch[i], answers[i]);
    return true;
  };

  // ---- fetchretrylib.fetchretry (fetch-retry, as Segment preloads it) -------------------
  // fetch-retry's options: `retries` (3), `retryDelay` (1000 ms, or a function of
  // (attempt, error, response)), `retryOn` (statuses, or a function of (attempt, error,
  // response) that may return a promise); without `retryOn` only network errors are
  // retried. Both of its APIs: `fetchretry(fetch, defaults)` returns a fetch that
  // retries, and `fetchretry(url, options)` (its first versions) fetches at once. Delays
  // are timers, which this sandbox runs without waiting; the invocation's deadline and
  // fetch limit bound the retries.
  function fetchretry(first, second) {
    if (typeof first === 'function') {
      const base = first;
      const defaults = second || {};
      return (input, init) => retrying(base, input, Object.assign({}, defaults, init || {}));
    }
    return retrying(fetch, first, second || {});
  }
  function retrying(base, input, init) {
    const retries = init.retries === undefined ? 3 : init.retries;
    const retryDelay = init.retryDelay === undefined ? 1000 : init.retryDelay;
    const retryOn = init.retryOn || [];
    if (!(Number.isInteger(retries) && retries >= 0)) throw new Error('retries must be a positive integer');
    if (typeof retryDelay !== 'function' && !(Number.isInteger(retryDelay) && retryDelay >= 0)) {
      throw new Error('retryDelay must be a positive integer or a function returning a positive integer');
    }
    if (!Array.isArray(retryOn) && typeof retryOn !== 'function') {
      throw new Error('retryOn property expects an array or function');
    }
    return new Promise((resolve, reject) => {
      const attempt = (n) => {
        base(input, init).then(
          (response) => decide(n, null, response),
          (error) => decide(n, error, null),
        );
      };
      const again = (n, error, response) => {
        const delay = typeof retryDelay === 'function' ? retryDelay(n, error, response) : retryDelay;
        setTimeout(() => attempt(n + 1), delay);
      };
      const decide = (n, error, response) => {
        if (typeof retryOn === 'function') {
          Promise.resolve()
            .then(() => retryOn(n, error, response))
            .then((retry) => {
              if (retry) again(n, error, response);
              else if (error) reject(error);
              else resolve(response);
            }, reject);
          return;
        }
        const retry = n < retries && (error !== null || retryOn.indexOf(response.status) !== -1);
        if (retry) again(n, error, response);
        else if (error) reject(error);
        else resolve(response);
      };
      attempt(0);
    });
  }
  const fetchretrylib = { fetchretry };

  // ---- uuidv5 (uuid's v5: `uuidv5(name, namespace)`, also as `uuidv5.uuidv5`) -----------
  const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  function uuidv5(name, namespace, buf, offset) {
    if (typeof namespace === 'string' && !UUID_TEXT.test(namespace)) {
      throw new TypeError('Invalid UUID');
    }
    const ns = typeof namespace === 'string'
      ? Buffer.from(namespace.replace(/-/g, ''), 'hex')
      : Buffer.from(namespace || []);
    if (ns.length !== 16) throw new TypeError('Namespace must be array-like (16 iterable integer values, 0-255)');
    const bytes = typeof name === 'string' ? Buffer.from(name, 'utf8') : Buffer.from(name);
    const b = new Hash('sha1').update(ns).update(bytes).digest();
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    if (buf) {
      const at = offset || 0;
      for (let i = 0; i < 16; i++) buf[at + i] = b[i];
      return buf;
    }
    const h = b.toString('hex', 0, 16);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  uuidv5.DNS = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
  uuidv5.URL = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';
  uuidv5.uuidv5 = uuidv5;

  // ---- URL, URLSearchParams (WHATWG, parsed by the `url` crate) ------------------------
  class URLSearchParams {
    constructor(init) {
      this._pairs = [];
      this._url = null;
      if (init instanceof URLSearchParams) this._pairs = init._pairs.map((p) => p.slice());
      else if (typeof init === 'string') this._pairs = JSON.parse(native.formParse(init.replace(/^\?/, '')));
      else if (init != null && typeof init === 'object') {
        if (typeof init[Symbol.iterator] === 'function') {
          for (const pair of init) {
            if (pair.length !== 2) throw new TypeError('Each query pair must be an iterable [name, value] tuple');
            this._pairs.push([String(pair[0]), String(pair[1])]);
          }
        } else {
          for (const k of Object.keys(init)) this._pairs.push([k, String(init[k])]);
        }
      }
    }
    _update() { if (this._url) this._url._setSearchFromParams(this.toString()); }
    append(name, value) { this._pairs.push([String(name), String(value)]); this._update(); }
    delete(name) { name = String(name); this._pairs = this._pairs.filter((p) => p[0] !== name); this._update(); }
    get(name) { name = String(name); const p = this._pairs.find((q) => q[0] === name); return p ? p[1] : null; }
    getAll(name) { name = String(name); return this._pairs.filter((p) => p[0] === name).map((p) => p[1]); }
    has(name) { name = String(name); return this._pairs.some((p) => p[0] === name); }
    set(name, value) {
      name = String(name); value = String(value);
      const i = this._pairs.findIndex((p) => p[0] === name);
      if (i < 0) this._pairs.push([name, value]);
      else { this._pairs[i][1] = value; this._pairs = this._pairs.filter((p, j) => j <= i || p[0] !== name); }
      this._update();
    }
    sort() { this._pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this._update(); }
    forEach(fn, thisArg) { for (const [k, v] of this._pairs) fn.call(thisArg, v, k, this); }
    *entries() { for (const p of this._pairs) yield [p[0], p[1]]; }
    *keys() { for (const p of this._pairs) yield p[0]; }
    *values() { for (const p of this._pairs) yield p[1]; }
    [Symbol.iterator]() { return this.entries(); }
    get size() { return this._pairs.length; }
    toString() { return native.formSerialize(JSON.stringify(this._pairs)); }
  }
  Object.defineProperty(URLSearchParams.prototype, Symbol.toStringTag, { value: 'URLSearchParams' });

  const URL_PARTS = ['href', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'];
  class URL {
    constructor(input, base) {
      const parts = native.urlParse(String(input), base === undefined ? undefined : String(base));
      this._parts = JSON.parse(parts);
      this._params = new URLSearchParams(this._parts.search);
      this._params._url = this;
    }
    _set(part, value) {
      this._parts = JSON.parse(native.urlSet(this._parts.href, part, String(value)));
      if (part === 'href' || part === 'search') {
        this._params._pairs = new URLSearchParams(this._parts.search)._pairs;
      }
    }
    _setSearchFromParams(query) {
      this._parts = JSON.parse(native.urlSet(this._parts.href, 'search', query));
    }
    get origin() { return this._parts.origin; }
    get searchParams() { return this._params; }
    toString() { return this._parts.href; }
    toJSON() { return this._parts.href; }
    static canParse(input, base) { try { new URL(input, base); return true; } catch (_) { return false; } }
  }
  for (const part of URL_PARTS) {
    Object.defineProperty(URL.prototype, part, {
      get() { return this._parts[part]; },
      set(value) { this._set(part, value); },
      enumerable: true,
    });
  }
  Object.defineProperty(URL.prototype, Symbol.toStringTag, { value: 'URL' });

  // ---- the dispatcher -------------------------------------------------------------------
  const HANDLERS = { track: 'onTrack', identify: 'onIdentify', page: 'onPage', screen: 'onScreen', group: 'onGroup', alias: 'onAlias', delete: 'onDelete' };
  let handlers = {};
  let result;

  // The outcome an error thrown by a handler means (guest-sdk/src/error.rs's mapping).
  function outcome(error) {
    const name = error && typeof error === 'object' ? error.name : undefined;
    switch (name) {
      case 'EventNotSupported': return ['unsupported_event_type', error.message];
      case 'InvalidEventPayload': case 'ValidationError': return ['message_rejected', error.message];
      case 'RetryError': return ['retry', error.message];
      case 'DropEvent': return ['dropped', error.message];
      case 'FetchError':
        // As the Rust SDK's `?` on a fetch error: timeouts and network failures are retried.
        if (error.kind === 'timeout' || error.kind === 'network') return ['retry', error.message];
        return ['bad_request', describe(error)];
      default: return ['bad_request', describe(error)];
    }
  }
  // An unexpected error with where it happened in the user's script.
  function describe(error) {
    if (!(error instanceof Error)) {
      try { return `uncaught ${typeof error === 'string' ? error : JSON.stringify(error)}`; } catch (_) { return 'uncaught exception'; }
    }
    const frames = String(error.stack || '').split('\n').map((l) => l.trim()).filter((l) => l.startsWith('at ') && !l.includes('segfn:'));
    const where = frames.length ? ` (${frames.slice(0, 3).join(', ')})` : '';
    return `${error.name}: ${error.message}${where}`;
  }

  function eventResult(value) {
    // An insert function returns the event to forward; anything else is not an event.
    if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      return { kind: 'success', output: value };
    }
    return { kind: 'success' };
  }
  function failed(error) { const [kind, message] = outcome(error); return { kind, message: String(message) }; }

  async function runEvent(event, settings) {
    if (event === null || typeof event !== 'object' || Array.isArray(event)) {
      return { kind: 'bad_request', message: 'the message is not an object' };
    }
    const type = event.type;
    if (typeof type !== 'string') return { kind: 'bad_request', message: 'the message has no "type" field' };
    const name = HANDLERS[type];
    if (!name) return { kind: 'unsupported_event_type', message: `event type ${JSON.stringify(type)} is not supported` };
    const handler = handlers[name];
    if (!handler) return { kind: 'unsupported_event_type', message: `${type} is not supported` };
    try {
      return eventResult(await handler(event, settings));
    } catch (error) {
      return failed(error);
    }
  }

  // onBatch's per-event statuses ({status, errormessage}) as outcomes: 2xx succeeded,
  // 408, 423, 429 and 5xx but 501 are retried, the rest is a bad request.
  function statusResult(entry) {
    const status = entry && Number(entry.status);
    const message = entry && (entry.errormessage || entry.message);
    if (status >= 200 && status < 300) return { kind: 'success' };
    const retry = status === 408 || status === 423 || status === 429 || (status >= 500 && status !== 501);
    return { kind: retry ? 'retry' : 'bad_request', message: String(message || `status ${status}`) };
  }

  async function runBatch(events, settings) {
    if (!handlers.onBatch) {
      const results = [];
      for (const event of events) results.push(await runEvent(event, settings));
      return { kind: 'success', results };
    }
    let returned;
    try {
      returned = await handlers.onBatch(events, settings);
    } catch (error) {
      return failed(error);
    }
    if (!Array.isArray(returned)) {
      return { kind: 'success', results: events.map(() => ({ kind: 'success' })) };
    }
    // Results pair with events by position, as Segment pairs them: a status object is
    // that event's outcome, an event (an insert function's) is forwarded, and an event
    // the array does not reach was filtered (insert functions) or has no status to say
    // otherwise (said in the log, with the counts).
    const statuses = returned.some((r) => r && typeof r === 'object' && 'status' in r);
    if (returned.length !== events.length) {
      native.log(2, `[segfn] onBatch returned ${returned.length} results for ${events.length} events; ` +
        (returned.length < events.length
          ? `events ${returned.length + 1} to ${events.length} are ${statuses ? 'taken as succeeded' : 'filtered (dropped)'}`
          : `the last ${returned.length - events.length} are ignored`));
    }
    return {
      kind: 'success',
      results: events.map((_, i) => {
        const r = returned[i];
        if (i >= returned.length) return statuses ? { kind: 'success' } : { kind: 'dropped', message: 'filtered at insert function' };
        if (r && typeof r === 'object' && 'status' in r) return statusResult(r);
        if (r && typeof r === 'object' && Object.getPrototypeOf(r) === Object.prototype && !statuses) return { kind: 'success', output: r };
        return { kind: 'success' };
      }),
    };
  }

  // Promises rejected with no handler by the time the job queue is empty: reported in
  // the logs once the handler has settled, as Node reports them (the invocation's
  // outcome stays the handler's).
  const unhandled = new Map();
  global.__segfn_rejection = function (promise, reason, handled) {
    if (handled) unhandled.delete(promise); else unhandled.set(promise, reason);
  };
  global.__segfn_report_rejections = function () {
    for (const reason of unhandled.values()) {
      native.log(3, `Unhandled promise rejection: ${describe(reason)}`);
    }
    unhandled.clear();
  };

  // ---- source functions: the request, the Segment calls ---------------------------------
  // As Segment's own harness defines them (tests/fixtures/js-sources/_harness, MIT): the
  // calls a function makes are collected in order and are its result; each call checks
  // what Segment requires and copies only the fields it knows, and only when truthy.
  const merge = global._.merge;
  const BODY = Symbol('body');
  const HEADERS_OF = Symbol('headers');
  const URL_OF = Symbol('url');
  class ServerRequest {
    constructor(input, init) {
      if (init) {
        this[HEADERS_OF] = init.headers instanceof Headers ? init.headers : new Headers(init.headers);
        this[URL_OF] = init.url instanceof URL ? init.url : new URL(init.url);
      }
      switch (typeof input) {
        case 'object': this[BODY] = { json: input }; break;
        case 'string': this[BODY] = { text: input }; break;
        default: throw new TypeError('unsupported body type');
      }
    }
    get url() { return this[URL_OF]; }
    get headers() { return this[HEADERS_OF]; }
    json() {
      const body = this[BODY];
      if (!body.json) body.json = JSON.parse(body.text);
      return body.json;
    }
    text() {
      const body = this[BODY];
      if (!body.text) body.text = JSON.stringify(body.json);
      return body.text;
    }
  }
  function assertExists(d, attribute) {
    if (typeof d[attribute] === 'undefined' || d[attribute] === '') {
      throw new ValidationError(`${attribute} is required but not defined`);
    }
  }
  function setAttribute(object, attribute, value) { if (value) object[attribute] = value; }
  // The fields every event call shares; `receivedAt` and `version` are the Tracking API's.
  function common(d) {
    if (!d.userId && !d.anonymousId) {
      throw new ValidationError('One of userId,anonymousId is required but not defined');
    }
    const res = {};
    for (const name of ['userId', 'anonymousId', 'context', 'integrations', 'messageId', 'sentAt', 'timestamp']) {
      setAttribute(res, name, d[name]);
    }
    return res;
  }
  function emit(segment, partial, d) {
    const event = merge(partial, common(d));
    segment.events.push(event);
    return event;
  }
  const Segment = {
    events: [],
    objects: [],
    set(d) {
      assertExists(d, 'collection');
      assertExists(d, 'id');
      const object = { collection: d.collection, id: d.id };
      setAttribute(object, 'properties', d.properties);
      this.objects.push(object);
      return object;
    },
    identify(d) {
      const partial = { type: 'identify' };
      setAttribute(partial, 'traits', d.traits);
      return emit(this, partial, d);
    },
    track(d) {
      assertExists(d, 'event');
      const partial = { type: 'track', event: d.event };
      setAttribute(partial, 'properties', d.properties);
      return emit(this, partial, d);
    },
    page(d) {
      const partial = { type: 'page' };
      setAttribute(partial, 'name', d.name);
      setAttribute(partial, 'properties', d.properties);
      return emit(this, partial, d);
    },
    screen(d) {
      const partial = { type: 'screen' };
      setAttribute(partial, 'name', d.name);
      setAttribute(partial, 'properties', d.properties);
      return emit(this, partial, d);
    },
    group(d) {
      assertExists(d, 'groupId');
      const partial = { type: 'group', groupId: d.groupId };
      setAttribute(partial, 'traits', d.traits);
      return emit(this, partial, d);
    },
    alias(d) {
      assertExists(d, 'previousId');
      const partial = { type: 'alias' };
      setAttribute(partial, 'previousId', d.previousId);
      return emit(this, partial, d);
    },
  };

  async function runRequest(request, settings) {
    if (request === null || typeof request !== 'object') {
      return { kind: 'bad_request', message: 'the request is not an object' };
    }
    const handler = handlers.onRequest;
    if (!handler) return { kind: 'unsupported_event_type', message: 'request not supported' };
    try {
      const incoming = new ServerRequest(request.body, { headers: request.headers || {}, url: request.url });
      await handler(incoming, settings);
    } catch (error) {
      return failed(error);
    }
    return { kind: 'success', output: { events: Segment.events, objects: Segment.objects } };
  }

  async function run(input) {
    let envelope;
    try { envelope = JSON.parse(input); } catch (e) {
      return { kind: 'bad_request', message: `the host's envelope is not valid: ${e.message}` };
    }
    if (envelope.abi !== 1) return { kind: 'bad_request', message: `the host speaks ABI v${envelope.abi}, this function v1` };
    const settings = envelope.settings || {};
    if (envelope.call === 'batch') return runBatch(Array.isArray(envelope.events) ? envelope.events : [], settings);
    if (envelope.call === 'request') return runRequest(envelope.request, settings);
    return runEvent(envelope.event, settings);
  }

  global.__segfn_dispatch = function (input) {
    initialising = false;
    unhandled.clear();
    result = undefined;
    reseed();
    run(input).then(
      (r) => {
        r.abi = 1;
        // An output that JSON cannot hold (a BigInt, a cycle, a throwing toJSON) is the
        // function's error, said as such, not a promise that never settled.
        try {
          result = JSON.stringify(r);
        } catch (e) {
          result = JSON.stringify({ abi: 1, kind: 'bad_request', message: `the function's result is not JSON: ${describe(e)}` });
        }
      },
      (e) => { result = JSON.stringify({ abi: 1, kind: 'bad_request', message: describe(e) }); },
    );
  };
  global.__segfn_take_result = function () { return result; };
  global.__segfn_bind = function (found) {
    handlers = found;
  };
  // A build-time error as the build reports it: where in the script, and what.
  global.__segfn_describe_init_error = function (error) {
    const out = { error: error instanceof Error ? `${error.name}: ${error.message}` : `uncaught ${String(error)}` };
    const stack = error instanceof Error ? String(error.stack || '') : '';
    const m = /\(?([^\s()]+):(\d+):(\d+)\)?/.exec(stack) || (error && error.fileName ? [null, error.fileName, error.lineNumber, error.columnNumber] : null);
    if (m) { out.file = m[1]; out.line = Number(m[2]); out.column = Number(m[3]); }
    return JSON.stringify(out);
  };

  const globals = {
    EventNotSupported, InvalidEventPayload, ValidationError, RetryError, DropEvent,
    Segment, ServerRequest,
    Buffer, atob, btoa, crypto, console, fetch, Headers, Request, Response, URL, URLSearchParams,
    fetchretrylib, uuidv5, zlib,
    setTimeout: (fn, delay, ...args) => addTimer(fn, delay, args, false),
    setInterval: (fn, delay, ...args) => addTimer(fn, delay, args, true),
    setImmediate: (fn, ...args) => addTimer(fn, 0, args, false),
    clearTimeout: clearTimer, clearInterval: clearTimer, clearImmediate: clearTimer,
    queueMicrotask: (fn) => { Promise.resolve().then(fn); },
    window: global,
    // Segment's per-process cache; here an invocation's own (nothing survives one).
    cache: (() => {
      const entries = new Map();
      return {
        async load(key, ttl, fn) { if (!entries.has(key)) entries.set(key, await fn()); return entries.get(key); },
        delete(key) { entries.delete(key); },
      };
    })(),
  };
  for (const name of Object.keys(globals)) {
    Object.defineProperty(global, name, { value: globals[name], writable: true, configurable: true, enumerable: false });
  }
  // lodash.min.js defined `_` on the global object already.
})(globalThis);
