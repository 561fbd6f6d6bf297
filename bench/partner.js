// The partner API both servers forward to: Node's `node:http` on 127.0.0.1, reading each
// request body and answering 200 {"ok":true} on a kept-alive connection.
//
//   PORT=0         port to listen on (0: any free one); the bound port is printed as
//                  `listening <port>` on stdout
//   DELAY_MS=0     answer after this many milliseconds, to hold deliveries in flight
//
// GET /stats answers {"pending", "answered", "connections"} (requests still waiting for
// their answer, answered ones, connections accepted) so the benchmark can tell when 1,000
// deliveries are in flight, and that both servers keep their connections alive.
'use strict';

const http = require('node:http');

const delayMs = Number(process.env.DELAY_MS || 0);
const OK = Buffer.from('{"ok":true}');
let pending = 0;
let answered = 0;
let connections = 0;

function answer(res) {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': OK.length });
  res.end(OK);
  pending -= 1;
  answered += 1;
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ pending, answered, connections }));
    return;
  }
  pending += 1;
  // Drain the body before answering, as a real API reads what it is sent.
  req.on('data', () => {});
  req.on('end', () => {
    if (delayMs > 0) setTimeout(answer, delayMs, res);
    else answer(res);
  });
});
server.on('connection', () => {
  connections += 1;
});
// Node closes idle keep-alive connections after 5 s by default; a client pool idle for
// longer between benchmark runs would then see resets. Keep them as long as the run.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;
server.requestTimeout = 0;
server.maxConnections = 100_000;

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
