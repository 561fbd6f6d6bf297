// Checks, before anything is measured, that the baseline does the functions' work: the
// request bench/forwarder.js builds for each sample event must be the one the forwarder
// (run by `segfn run`) sends, byte for byte, to the same URL; and the bulk requests
// bench/bulk.js builds for a batch the ones functions/bulk sends.
'use strict';

const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { translate } = require('../forwarder.js');
const { translateBatch } = require('../bulk.js');

const root = path.resolve(__dirname, '..', '..');
const EVENTS = [
  'bench/events/track.json',
  'functions/forwarder/events/track-signed-up.json',
  'functions/forwarder/events/identify-complete.json',
];

function segfnRun(segfn, wasm, eventFile, settingsFile, partnerPort, env) {
  const args = ['run', wasm, '--event', eventFile, '--settings', settingsFile];
  args.push('--allow-host', `127.0.0.1:${partnerPort}`, '--json');
  return new Promise((resolve, reject) => {
    execFile(segfn, args, { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      // A non-zero exit is an outcome other than success: the comparison below says so.
      if (!stdout) return reject(new Error(`segfn run failed: ${error?.message}\n${stderr}`));
      resolve(JSON.parse(stdout));
    });
  });
}

async function checkMapping({ segfn, wasm, partnerPort, tmp, env }) {
  const settings = { apiKey: 'bench-partner-key', endpoint: `http://127.0.0.1:${partnerPort}/v1` };
  const settingsFile = path.join(tmp, 'mapping-settings.json');
  fs.writeFileSync(settingsFile, JSON.stringify(settings));
  for (const rel of EVENTS) {
    const file = path.join(root, rel);
    const report = await segfnRun(segfn, wasm, file, settingsFile, partnerPort, env);
    const sent = report.requests?.[0];
    const ours = translate(JSON.parse(fs.readFileSync(file, 'utf8')), settings);
    const same =
      report.outcome.kind === 'success' &&
      report.requests.length === 1 &&
      sent.method === ours.method &&
      sent.url === ours.url &&
      sent.request_body === ours.body;
    if (!same) {
      throw new Error(
        `bench/forwarder.js does not map ${rel} as the forwarder does:\n` +
          `  forwarder (${report.outcome.kind}): ${sent?.method} ${sent?.url} ${sent?.request_body}\n` +
          `  forwarder.js: ${ours.method} ${ours.url} ${ours.body}`,
      );
    }
  }
  return EVENTS.length;
}

// A batch of the benchmark's event, the sample batch's events and a page (unsupported),
// in requests of two: every request body must match and the outcomes agree.
async function checkBulkMapping({ segfn, wasm, partnerPort, tmp, env }) {
  const settings = {
    apiKey: 'bench-partner-key',
    endpoint: `http://127.0.0.1:${partnerPort}/v1`,
    maxEventsPerRequest: 2,
  };
  const settingsFile = path.join(tmp, 'bulk-mapping-settings.json');
  fs.writeFileSync(settingsFile, JSON.stringify(settings));
  const read = (rel) => JSON.parse(fs.readFileSync(path.join(root, rel), 'utf8'));
  const events = [
    read('bench/events/track.json'),
    ...read('functions/bulk/events/batch-http-api-mixed.json').batch,
    { type: 'page', userId: 'u1', name: 'Home' },
  ];
  const eventFile = path.join(tmp, 'bulk-mapping-batch.json');
  fs.writeFileSync(eventFile, JSON.stringify({ batch: events }));
  const report = await segfnRun(segfn, wasm, eventFile, settingsFile, partnerPort, env);
  const ours = translateBatch(events, settings);
  const sent = report.requests || [];
  const same =
    sent.length === ours.requests.length &&
    sent.every((r, i) => r.url === ours.requests[i].url && r.request_body === ours.requests[i].body);
  if (!same) {
    throw new Error(
      `bench/bulk.js does not map the batch as functions/bulk does:\n` +
        `  functions/bulk: ${sent.map((r) => `${r.url} ${r.request_body}`).join('\n    ')}\n` +
        `  bulk.js: ${ours.requests.map((r) => `${r.url} ${r.body}`).join('\n    ')}`,
    );
  }
  return events.length;
}

module.exports = { checkMapping, checkBulkMapping };
