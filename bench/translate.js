// The forwarder's translation alone in Node, per event, for scripts/bench: the mapping of
// forwarder.js called in a loop in this context, and in a fresh `vm` context per event
// (Node's nearest to segfn's fresh instance per event). Each event starts from its JSON
// text, as it arrives, and ends with the partner request built (URL, headers, JSON
// body) and handed to a stubbed fetch that answers 200. Prints one JSON line per
// variant, like host/engine/examples/translate.rs.
//
//   node bench/translate.js EVENT.json [SECONDS]
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { translate, check } = require('./forwarder.js');

const eventText = JSON.stringify(JSON.parse(fs.readFileSync(process.argv[2], 'utf8')));
const seconds = Number(process.argv[3] || 3);
const settings = { apiKey: 'bench-partner-key', endpoint: 'http://127.0.0.1:9/v1' };

function report(variant, what, samples) {
  samples.sort((a, b) => a - b);
  const at = (p) => samples[Math.min(samples.length - 1, Math.floor(samples.length * p))];
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  process.stdout.write(
    `${JSON.stringify({ variant, what, n: samples.length, p50_us: at(0.5), p99_us: at(0.99), mean_us: mean })}\n`,
  );
}

// Runs `once` for a warm-up (the JIT's) and then for `seconds`, timing each call in µs.
function sample(once, warmup) {
  for (let i = 0; i < warmup; i++) once();
  const samples = [];
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  for (;;) {
    const started = process.hrtime.bigint();
    if (started >= end) break;
    once();
    samples.push(Number(process.hrtime.bigint() - started) / 1e3);
  }
  return samples;
}

// In-process: the stub records requests as the SDK's testing stub does, cleared now and then.
let sent = [];
const inProcess = sample(() => {
  const request = translate(JSON.parse(eventText), settings);
  sent.push(request);
  if (sent.length === 1000) sent = [];
  check(200, '');
}, 20000);
report('node', 'JSON.parse + forwarder.js mapping + JSON.stringify, in-process', inProcess);

// A fresh context per event: new globals (JSON, Object, ...) each time, the script
// compiled once, as segfn compiles the module once and instantiates it per event.
const source = fs.readFileSync(path.join(__dirname, 'forwarder.js'), 'utf8');
const script = new vm.Script(
  `${source}
  ;(() => {
    const request = translate(JSON.parse(input.eventText), input.settings);
    const response = input.fetch(request);
    check(response.status, '');
  })();`,
  { filename: 'forwarder.js' },
);
let inVm = [];
const input = {
  eventText,
  settings,
  fetch: (request) => {
    inVm.push(request);
    if (inVm.length === 1000) inVm = [];
    return { status: 200 };
  },
};
const fresh = sample(() => {
  const context = vm.createContext({ input });
  script.runInContext(context);
}, 200);
report('node_vm', 'vm.createContext + the same script, a fresh context per event', fresh);
