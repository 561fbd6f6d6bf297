// The CommonJS registry of a bundle: `require` resolves a module id, relative ids
// against the requiring module's package, and the Node modules the packages ask for map
// to the runtime's globals. (Part of js/bundles/build.py's output.)
// What the packages read of Node's `process`, in their scope only.
const process = { version: 'v20.0.0', env: {} };
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
    inherits(ctor, superCtor) { Object.setPrototypeOf(ctor.prototype, superCtor.prototype); },
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
};
const cache = {};
function resolve(from, id) {
  if (!id.startsWith('.')) return id;
  const base = from.split('/');
  base.pop();
  for (const part of id.split('/')) {
    if (part === '..') base.pop();
    else if (part !== '.') base.push(part);
  }
  return base.join('/');
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
