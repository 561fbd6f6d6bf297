// An OpenTelemetry collector stand-in for scripts/bench: Node's `node:http` on 127.0.0.1,
// reading each OTLP/HTTP export (POST /v1/traces, protobuf) and answering 200 with an
// empty ExportTraceServiceResponse, so segfn's traces cost what sending them costs.
//
//   PORT=0   port to listen on
//
// GET /stats answers {"exports", "bytes"}: the exports received and their bytes in all.
'use strict';

const http = require('node:http');

let exports_ = 0;
let bytes = 0;

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ exports: exports_, bytes }));
    return;
  }
  req.on('data', (c) => (bytes += c.length));
  req.on('end', () => {
    exports_ += 1;
    res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
    res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
