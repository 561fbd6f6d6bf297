// The Node 20 baseline for source functions: the webhook endpoint a partner would write
// in Node instead of serving Segment's GitHub source function under segfn. Per webhook
// it does what `segfn serve` does in direct mode, minus the sandbox: check the token in
// the URL, the method and the content type, read and parse the JSON body, make the
// GitHub function's call (a track named from the X-GitHub-Event header and `action`, for
// `sender.id`, with a messageId from a digest of the body, as segfn stamps one), POST it
// to Segment's Tracking API (`/v1/batch`, the write key as Basic auth) over kept-alive
// connections, and answer 200 once Segment accepted it (503 when it did not).
//
//   PORT=0          port on 127.0.0.1 (0: any); prints `listening <port>`
//   TOKEN           the webhook URL's token: POST /webhooks/TOKEN
//   WRITE_KEY       the source's write key
//   TRACKING_API    the Tracking API's base URL (a fake on 127.0.0.1 in the benchmark)
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');

const MAX_BODY = 512 << 10; // as segfn's webhook cap
const path = `/webhooks/${process.env.TOKEN}`;
const auth = `Basic ${Buffer.from(`${process.env.WRITE_KEY}:`).toString('base64')}`;
const batchUrl = `${process.env.TRACKING_API}/v1/batch`;
const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 60_000 });

// Segment's GitHub source function (tests/fixtures/js-sources/github/handler.js).
function onRequest(body, headers) {
  let evt = headers['x-github-event'];
  if (body.action) evt += ` ${body.action}`;
  return [{ type: 'track', event: evt, userId: `${body.sender.id}` }];
}

function send(events) {
  const body = JSON.stringify({ batch: events, sentAt: new Date().toISOString() });
  return new Promise((resolve, reject) => {
    const out = http.request(
      batchUrl,
      { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, agent },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        res.on('error', reject);
      },
    );
    out.on('error', reject);
    out.end(body);
  });
}

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  if (req.url === '/readyz') return answer(res, 200, { ready: true });
  if (req.url.split('?')[0] !== path) return answer(res, 404, { message: 'no webhook at this URL' });
  if (req.method !== 'POST') return answer(res, 405, { message: 'a webhook takes POST' });
  if (!(req.headers['content-type'] || '').startsWith('application/json')) {
    return answer(res, 415, { message: 'Content-Type must be application/json' });
  }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) req.destroy();
    else chunks.push(c);
  });
  req.on('end', async () => {
    const raw = Buffer.concat(chunks);
    let events;
    try {
      events = onRequest(JSON.parse(raw.toString()), req.headers);
    } catch (e) {
      return answer(res, 400, { kind: 'bad_request', message: String(e.message) });
    }
    const base = crypto.createHash('sha256').update(req.url).update(raw).digest('hex').slice(0, 24);
    events.forEach((e, i) => { e.messageId = `node-${base}-${i}`; });
    try {
      const status = await send(events);
      if (status >= 200 && status < 300) return answer(res, 200, { message: 'ok', events: events.length, objects: 0 });
      answer(res, 503, { message: `Segment answered ${status}` });
    } catch (e) {
      answer(res, 503, { message: String(e.message) });
    }
  });
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
