// Load for scripts/bench: runs wrk (closed loop, with bench/post.lua) or the constant-rate
// client (host/cli/examples/loadgen.rs) against one server, and measures the server's CPU
// time over the run.
'use strict';

const { execFile } = require('node:child_process');
const path = require('node:path');
const { cpuSeconds } = require('./proc.js');

let runs = 0;

function run(command, args) {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`${command} failed: ${error.message}\n${stderr}`));
      // The tools print their summary as the last JSON line.
      const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (!line) return reject(new Error(`${command} printed no summary:\n${stdout}\n${stderr}`));
      resolve(JSON.parse(line));
    });
  });
}

// Runs `load` while reading the CPU time of `pids` (the server, and the partner for
// reference) before and after.
async function measured(pids, load) {
  const before = pids.map(cpuSeconds);
  const result = await load();
  const after = pids.map(cpuSeconds);
  result.cpu_s = after.map((a, i) => a - before[i]);
  return result;
}

// wrk with bench/post.lua: `connections` kept-alive connections for `seconds`, each
// request one message (batch 0) or a batch of `batch` events. One wrk thread: the
// servers are the subject, and the machine has 2 cores.
// `path` and `header` (one more "Name: value") post elsewhere than Segment's deliveries
// do, e.g. webhooks to a source's URL with `env.template` a webhook body.
function wrk(target, { connections, seconds, batch = 0, timeout = 10, path: to = '/', header }, env) {
  const prefix = `${target.name}-${process.pid}-${++runs}`;
  const args = [
    '-t1', `-c${connections}`, `-d${seconds}s`, `--timeout`, `${timeout}s`,
    '-s', path.join(__dirname, '..', 'post.lua'),
    `http://127.0.0.1:${target.port}${to}`,
    '--', prefix, String(batch), env.auth, env.template, ...(header ? [header] : []),
  ];
  return measured([target.pid, env.partnerPid], async () => {
    const r = await run('wrk', args);
    const secs = r.duration_us / 1e6;
    return {
      ...r,
      connections,
      batch,
      rps: r.requests / secs,
      events_per_s: (r.requests * Math.max(batch, 1)) / secs,
      errors: r.connect_errors + r.read_errors + r.write_errors + r.timeouts,
    };
  });
}

// The constant-rate client: `rate` requests per second over `connections` connections.
function constantRate(target, { rate, connections, seconds, warmup }, env) {
  const prefix = `${target.name}-${process.pid}-${++runs}`;
  const args = [
    '--addr', `127.0.0.1:${target.port}`, '--rate', String(rate),
    '--connections', String(connections), '--seconds', String(seconds),
    '--warmup', String(warmup), '--template', env.template, '--auth', env.auth, '--prefix', prefix,
  ];
  return measured([target.pid, env.partnerPid], () => run(env.loadgen, args));
}

module.exports = { wrk, constantRate, run };
