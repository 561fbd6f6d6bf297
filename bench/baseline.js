// The Node 20 baseline: the endpoint a partner would write in Node instead of running
// functions/forwarder under segfn. Per delivery it does the work segfn serve does for
// the forwarder, minus the sandbox and the deduplication store: check the method, the
// content type and Basic auth, read and parse the JSON body (one message, an array, or
// {"batch": [...]}), map each event with the forwarder's mapping (forwarder.js), POST it
// to the partner over kept-alive connections, turn the partner's answer into Segment's
// outcome, log one line per event, and answer as segfn does.
//
//   PORT=0                 port on 127.0.0.1 (0: any); prints `listening <port>`
//   SEGMENT_API_KEY        the key Segment sends as the Basic auth user name
//   SETTINGS               the function's settings as JSON ({"apiKey", "endpoint"})
//   CLIENT=agent|fetch     how to call the partner: `agent` (default) is http.request
//                          with a keep-alive http.Agent; `fetch` is Node's global fetch
//   FUNCTION=forwarder|bulk  the function: functions/forwarder (forwarder.js, default),
//                          or functions/bulk (bulk.js: a batch in bulk requests)
//   ISOLATE=vm             the forwarder's mapping in a fresh `vm` context per event
//                          (forwarder.js compiled once), as segfn runs each event in a
//                          fresh instance: what isolation costs Node (not the default)
//
// The default client is http.request with `new http.Agent({keepAlive: true})`: it is
// what Node's own documentation offers for pooled HTTP/1.1, and it is the faster of the
// two in Node 20 (fetch is undici behind WHATWG streams), so the baseline is not a
// strawman. `CLIENT=fetch` shows the code a port of a Segment function would keep.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const vm = require('node:vm');
const { translate: translateHere, check, SegmentError, OUTCOMES } = require('./forwarder.js');
const { translateBatch } = require('./bulk.js');

const MAX_BODY = 4 << 20; // as segfn's max_body_bytes
const settings = JSON.parse(process.env.SETTINGS || '{}');
const expectedAuth = `Basic ${Buffer.from(`${process.env.SEGMENT_API_KEY}:`).toString('base64')}`;
const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
const useFetch = process.env.CLIENT === 'fetch';
const bulk = process.env.FUNCTION === 'bulk';

// ISOLATE=vm: each event mapped in new globals, the script compiled once (as
// bench/translate.js's `node_vm` variant).
const translate = process.env.ISOLATE === 'vm' ? isolated() : translateHere;

function isolated() {
  const source = fs.readFileSync(path.join(__dirname, 'forwarder.js'), 'utf8');
  const script = new vm.Script(`${source}\n;translate(input.event, input.settings);`, {
    filename: 'forwarder.js',
  });
  return (event, settings) => script.runInContext(vm.createContext({ input: { event, settings } }));
}

function post(req) {
  if (useFetch) {
    return fetch(req.url, { method: req.method, headers: req.headers, body: req.body }).then(
      async (res) => ({ status: res.status, text: await res.text() }),
    );
  }
  return new Promise((resolve, reject) => {
    const out = http.request(req.url, { method: req.method, headers: req.headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    out.on('error', reject);
    out.end(req.body);
  });
}

// One event through the function: its result as segfn reports it ({kind, status, message}).
async function runEvent(event) {
  const started = process.hrtime.bigint();
  let result;
  try {
    const req = translate(event, settings);
    let res;
    try {
      res = await post(req);
    } catch (e) {
      // A failed request is a RetryError in segfn (the fetch error's `?`).
      throw new SegmentError('retry', `fetch failed: ${e.message}`);
    }
    check(res.status, res.text);
    result = { kind: 'success', status: 200, message: null };
  } catch (e) {
    // With ISOLATE=vm the error is the context's own SegmentError class.
    const ours = e instanceof SegmentError || e?.constructor?.name === 'SegmentError';
    const kind = ours ? e.kind : 'bad_request';
    result = { kind, status: OUTCOMES[kind], message: e.message };
  }
  logEvent(event, result, started);
  return result;
}

function logEvent(event, result, started) {
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(
    `${new Date().toISOString()} INFO event tenant=bench message_id=${event?.messageId} ` +
      `type=${event?.type} outcome=${result.kind} status=${result.status} duration_ms=${ms.toFixed(0)}\n`,
  );
}

// As the forwarder's onBatch: every event's request sent concurrently, 16 at a time
// (segfn's fetch_all), results kept in order.
async function runEach(events) {
  const results = new Array(events.length);
  let next = 0;
  const worker = async () => {
    while (next < events.length) {
      const i = next++;
      results[i] = await runEvent(events[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, events.length) }, worker));
  return results;
}

// Events through the bulk function: mapped, sent in bulk requests (all at once; a batch
// needs at most a few), each event given its mapping's or its request's outcome.
async function runBulk(events) {
  const started = process.hrtime.bigint();
  let out;
  try {
    out = translateBatch(events, settings);
  } catch (e) {
    const kind = e instanceof SegmentError ? e.kind : 'bad_request';
    out = { requests: [], carried: [], results: events.map(() => ({ kind, status: OUTCOMES[kind], message: e.message })) };
  }
  const answers = await Promise.all(out.requests.map((r) => post(r).then((res) => res, (e) => e)));
  answers.forEach((answer, j) => {
    let result = { kind: 'success', status: 200, message: null };
    try {
      if (answer instanceof Error) throw new SegmentError('retry', `fetch failed: ${answer.message}`);
      check(answer.status, answer.text);
    } catch (e) {
      result = { kind: e.kind, status: OUTCOMES[e.kind], message: e.message };
    }
    for (const i of out.carried[j]) out.results[i] = result;
  });
  events.forEach((event, i) => logEvent(event, out.results[i], started));
  return out.results;
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function deliver(req, res, raw) {
  let body;
  try {
    body = JSON.parse(raw);
  } catch (e) {
    return reply(res, 400, { message: `the body is not JSON: ${e.message}` });
  }
  const batch = Array.isArray(body) ? body : Array.isArray(body?.batch) ? body.batch : null;
  if (batch === null) {
    const result = bulk ? (await runBulk([body]))[0] : await runEvent(body);
    return reply(res, result.status, { ...result, message: result.message ?? 'ok' });
  }
  const results = bulk ? await runBulk(batch) : await runEach(batch);
  const retry = results.some((r) => r.kind === 'retry');
  reply(res, retry ? 500 : 200, { message: retry ? 'some events need a retry' : 'ok', results });
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && (req.url === '/readyz' || req.url === '/healthz')) {
    return reply(res, 200, { status: 'ok' });
  }
  if (req.method !== 'POST') return reply(res, 405, { message: 'POST only' });
  if (!(req.headers['content-type'] || '').startsWith('application/json')) {
    return reply(res, 415, { message: 'Content-Type must be application/json' });
  }
  if (req.headers.authorization !== expectedAuth) {
    return reply(res, 401, { message: 'unknown API key' });
  }
  if (Number(req.headers['content-length'] || 0) > MAX_BODY) {
    return reply(res, 413, { message: 'body too large' });
  }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size <= MAX_BODY) chunks.push(c);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return reply(res, 413, { message: 'body too large' });
    deliver(req, res, Buffer.concat(chunks).toString()).catch((e) => reply(res, 500, { message: e.message }));
  });
});
// Keep clients' idle keep-alive connections between benchmark runs, as segfn does (10 s).
server.keepAliveTimeout = 10_000;
server.headersTimeout = 11_000;
server.requestTimeout = 0;

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
