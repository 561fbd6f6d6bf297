// Processes under test for scripts/bench: free ports on 127.0.0.1, starting a server with
// its output in a log file, waiting for it to answer, and reading its CPU time and
// memory from /proc.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const { performance } = require('node:perf_hooks');

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

// Every process started here and not yet stopped, so a failed or interrupted run can end
// them (by their own pid) instead of leaving servers behind.
const running = new Set();

function killAll() {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

// A port free on 127.0.0.1 now (the server binds it a moment later; nothing else on
// this machine is picking ports in between).
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// One GET to 127.0.0.1:port; resolves to the status, or 0 when nothing answers.
function get(port, path) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.setTimeout(2000, () => req.destroy());
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts `command` with stdout and stderr appended to `log`, and waits until GET `path`
// answers 200. Returns the process and the time from spawn to that first 200, in ms.
async function start(command, args, { env, log, port, path, timeoutMs = 60_000 }) {
  const out = fs.openSync(log, 'a');
  const started = performance.now();
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  running.add(child);
  let exited = null;
  child.on('exit', (code, signal) => {
    running.delete(child);
    exited = `exited with ${code ?? signal}`;
  });
  for (;;) {
    if (exited) throw new Error(`${command} ${exited} before it was ready; see ${log}`);
    if ((await get(port, path)).status === 200) break;
    if (performance.now() - started > timeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`${command} not ready after ${timeoutMs} ms; see ${log}`);
    }
    // Polling every 2 ms keeps the timing's resolution well below a start's duration.
    await sleep(2);
  }
  return { child, pid: child.pid, readyMs: performance.now() - started };
}

// SIGTERM, then waits for the process to exit (SIGKILL after 15 s).
function stop(proc) {
  return new Promise((resolve) => {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return resolve();
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), 15_000);
    proc.child.on('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.child.kill('SIGTERM');
  });
}

// User + system CPU time of the process and of its waited-for children, in seconds.
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may hold spaces: state is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [utime, stime, cutime, cstime] = fields.slice(11, 15).map(Number);
  return (utime + stime + cutime + cstime) / CLK_TCK;
}

// A field of /proc/PID/status in MiB (VmRSS: resident now; VmHWM: the peak).
function memMiB(pid, field = 'VmRSS') {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const line = status.split('\n').find((l) => l.startsWith(`${field}:`));
  return line ? Number(line.split(/\s+/)[1]) / 1024 : NaN;
}

// Proportional set size (/proc/PID/smaps_rollup): resident pages with each shared page
// divided among the mappings sharing it. VmRSS counts a page once per mapping: segfn's
// instances map their module's data image copy-on-write, one mapping per instance.
function pssMiB(pid) {
  const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const line = rollup.split('\n').find((l) => l.startsWith('Pss:'));
  return line ? Number(line.split(/\s+/)[1]) / 1024 : NaN;
}

module.exports = { freePort, get, sleep, start, stop, killAll, cpuSeconds, memMiB, pssMiB, CLK_TCK };
