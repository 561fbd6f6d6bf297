// `segfn replay --rate R`: how close the achieved rate comes to R. The rate limit is
// measured here rather than in a timed test, which a loaded 2-core machine would make
// flaky. N = R × seconds events go through the forwarder at the partner; the achieved
// rate is events ÷ the replay's own duration (from its JSON summary, so the engine's
// start is not counted).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

// Writes `n` track events as NDJSON, each with its own messageId.
function writeEvents(file, n) {
  const lines = [];
  for (let i = 0; i < n; i++) {
    lines.push(
      JSON.stringify({
        type: 'track',
        event: 'Replayed',
        userId: `user-${i % 100}`,
        messageId: `replay-${i}`,
        timestamp: '2024-05-01T10:00:00.000Z',
        properties: { plan: 'pro', seats: 3 },
      }),
    );
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

// Runs `segfn replay` and resolves to its JSON summary.
function run(segfn, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(segfn, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`segfn replay exited with ${code}: ${err}`));
      resolve(JSON.parse(out));
    });
  });
}

// One measure: `rate` events per second for about `seconds`.
async function replayRate({ segfn, wasm, partnerPort, tmp, rate, seconds, concurrency = 8, env = {} }) {
  const n = Math.max(10, Math.round(rate * seconds));
  const dir = path.join(tmp, `replay-${rate}`);
  fs.mkdirSync(dir, { recursive: true });
  const events = path.join(dir, 'events.ndjson');
  writeEvents(events, n);
  const settings = path.join(dir, 'settings.json');
  fs.writeFileSync(settings, JSON.stringify({ apiKey: 'bench-partner-key', endpoint: `http://127.0.0.1:${partnerPort}/v1` }));
  const summary = await run(
    segfn,
    [
      'replay', wasm,
      '--input', events,
      '--rate', String(rate),
      '--concurrency', String(concurrency),
      '--settings', settings,
      '--allow-host', `127.0.0.1:${partnerPort}`,
      '--state-dir', path.join(dir, 'state'),
      '--json',
    ],
    env,
  );
  const achieved = summary.sent_this_run / summary.duration;
  return {
    target_rate: rate,
    events: n,
    concurrency,
    succeeded: summary.counts.success,
    duration_s: summary.duration,
    achieved_rate: achieved,
    ratio: achieved / rate,
  };
}

module.exports = { replayRate, writeEvents };
