// The benchmark's output: one row per measure (segfn, baseline, ratio) from the raw runs,
// the machine they ran on, the table on stdout, target/bench/results.json, and
// docs/BENCHMARKS.md regenerated from them (doc.js writes its text).
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const doc = require('./doc.js');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function sh(command, args, cwd) {
  try {
    return execFileSync(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();
  } catch (e) {
    // wrk prints its version with a usage error; anything else is simply unknown.
    return (e.stdout || '').toString().trim() || 'unknown';
  }
}

function machine(root) {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const meminfo = fs.readFileSync('/proc/meminfo', 'utf8');
  const osRelease = fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '';
  const lock = fs.readFileSync(path.join(root, 'Cargo.lock'), 'utf8');
  const dirty = sh('git', ['status', '--porcelain', '--untracked-files=no'], root) !== '';
  return {
    cpu: (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || 'unknown',
    cores: os.cpus().length,
    memory_gib: Math.round(Number((meminfo.match(/^MemTotal:\s*(\d+)/m) || [])[1]) / 1048576),
    kernel: os.release(),
    os: (osRelease.match(/^PRETTY_NAME="?([^"\n]*)"?$/m) || [])[1] || os.type(),
    rustc: sh('rustc', ['--version']),
    node: process.version,
    wrk: sh('wrk', ['-v']).split('\n')[0],
    wasmtime: (lock.match(/name = "wasmtime"\nversion = "([^"]+)"/) || [])[1] || 'unknown',
    store_filesystem: sh('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '-T', os.tmpdir()]).replace(/\s+/g, ' '),
    load_average_at_start: os.loadavg().map((l) => Number(l.toFixed(2))),
    date: new Date().toISOString(),
    git_commit: sh('git', ['rev-parse', '--short', 'HEAD'], root) + (dirty ? ' (with uncommitted changes)' : ''),
  };
}

// One row per measure. A row whose runs got socket errors, timeouts or non-2xx answers
// is marked, and `problems` says which and how many.
function rows(runs) {
  const out = [];
  const problems = [];
  const add = (measure, unit, better, segfn, baseline, checked = {}) => {
    let problem = false;
    for (const [name, r] of Object.entries(checked)) {
      const bad = (r.non2xx || 0) + (r.errors || 0);
      if (bad > 0) {
        problem = true;
        problems.push(`${measure}, ${name}: ${r.non2xx || 0} non-2xx answers, ${r.errors || 0} socket errors or timeouts`);
      }
    }
    out.push({ measure, unit, better, segfn, baseline, ratio: segfn / baseline, problem });
  };
  const pair = (pick) => ({ segfn: pick('segfn'), baseline: pick('baseline') });

  for (const c of Object.keys(runs.throughput.segfn)) {
    const r = pair((n) => runs.throughput[n][c]);
    add(`throughput, ${c} connection${c === '1' ? '' : 's'}`, 'requests/s', 'higher', r.segfn.rps, r.baseline.rps, r);
  }
  const lat = `at ${runs.latency.rate.toLocaleString('en-US')} requests/s, half of segfn's peak`;
  const l = pair((n) => runs.latency[n]);
  add(`latency p50 ${lat}`, 'ms', 'lower', l.segfn.p50_ms, l.baseline.p50_ms, l);
  add(`latency p99 ${lat}`, 'ms', 'lower', l.segfn.p99_ms, l.baseline.p99_ms, l);
  const cpuAtRate = pair((n) => (l[n].cpu_s[0] / l[n].answered_with_warmup) * 1e6);
  add(`CPU time per request ${lat}`, 'µs', 'lower', cpuAtRate.segfn, cpuAtRate.baseline, l);
  const t64 = pair((n) => runs.throughput[n][64]);
  const cpuAt64 = pair((n) => (t64[n].cpu_s[0] / t64[n].requests) * 1e6);
  add('CPU time per request, 64 connections', 'µs', 'lower', cpuAt64.segfn, cpuAt64.baseline, t64);

  const f = { segfn: t64.segfn, baseline: runs.fetch_baseline };
  add('throughput, 64 connections, baseline using fetch()', 'requests/s', 'higher', f.segfn.rps, f.baseline.rps, f);
  const cpuFetch = (f.baseline.cpu_s[0] / f.baseline.requests) * 1e6;
  add('CPU time per request, 64 connections, baseline using fetch()', 'µs', 'lower', cpuAt64.segfn, cpuFetch, f);

  const m = pair((n) => runs.rss[n]);
  add('memory (VmRSS), idle after start', 'MiB', 'lower', m.segfn.idle_mib, m.baseline.idle_mib);
  const held = pair((n) => ({
    ...m[n].wrk,
    // Fewer than 1,000 at the partner at once: the server did not hold them all.
    errors: m[n].wrk.errors + (m[n].max_pending_at_partner < 1000 ? 1 : 0),
  }));
  add('memory (VmRSS), 1,000 deliveries in flight', 'MiB', 'lower', m.segfn.in_flight_mib, m.baseline.in_flight_mib, held);
  if (m.segfn.in_flight_pss_mib) {
    add('memory (PSS), 1,000 deliveries in flight', 'MiB', 'lower', m.segfn.in_flight_pss_mib, m.baseline.in_flight_pss_mib, held);
  }
  const s = pair((n) => runs.start[n]);
  add('start to first /readyz 200, cold', 'ms', 'lower', median(s.segfn.cold), median(s.baseline.cold));
  add('start to first /readyz 200, warm', 'ms', 'lower', median(s.segfn.warm), median(s.baseline.warm));

  for (const size of Object.keys(runs.batch.segfn)) {
    const b = pair((n) => runs.batch[n][size]);
    const label = `batches of ${Number(size).toLocaleString('en-US')} events`;
    add(label, 'events/s', 'higher', b.segfn.events_per_s, b.baseline.events_per_s, b);
  }
  for (const size of Object.keys(runs.bulk.segfn)) {
    const b = pair((n) => runs.bulk[n][size]);
    const label = `bulk batches of ${Number(size).toLocaleString('en-US')} events (functions/bulk)`;
    add(label, 'events/s', 'higher', b.segfn.events_per_s, b.baseline.events_per_s, b);
  }

  if (runs.source) {
    // Webhooks through Segment's GitHub source function to a fake Tracking API.
    const w = runs.source;
    const per = (r) => (r.cpu_s[0] / r.requests) * 1e6;
    for (const [key, what] of [['segfn', 'Rust port'], ['segfn_js', 'JavaScript original']]) {
      const r = { segfn: w[key], baseline: w.baseline };
      add(`webhooks through a source function to the Tracking API, 16 connections (${what})`, 'webhooks/s', 'higher', w[key].rps, w.baseline.rps, r);
      add(`CPU time per webhook, 16 connections (${what})`, 'µs', 'lower', per(w[key]), per(w.baseline), r);
    }
  }

  const t = Object.fromEntries(runs.translate.map((r) => [r.variant, r]));
  add('translation per event p50, in-process (Rust native / Node)', 'µs', 'lower', t.native.p50_us, t.node.p50_us);
  add(
    'translation per event p50, in-process from JSON bytes (Rust / Node)',
    'µs',
    'lower',
    t.native_bytes.p50_us,
    t.node.p50_us,
  );
  add(
    'translation per event p50, fresh sandbox (Wasm instance / vm context)',
    'µs',
    'lower',
    t.wasm.p50_us,
    t.node_vm.p50_us,
  );
  // The same handler in JavaScript: functions/forwarder-js from its snapshot, against
  // Node's fresh vm context (docs/JAVASCRIPT.md).
  add(
    'translation per event p50, fresh sandbox, JavaScript (forwarder-js snapshot / vm context)',
    'µs',
    'lower',
    t.wasm_js.p50_us,
    t.node_vm.p50_us,
  );
  add(
    'translation per event p99, fresh sandbox, JavaScript (forwarder-js snapshot / vm context)',
    'µs',
    'lower',
    t.wasm_js.p99_us,
    t.node_vm.p99_us,
  );
  return { rows: out, problems };
}

// Three significant figures, thousands separated: what 2-core timing noise supports.
function fmt(x) {
  if (!Number.isFinite(x)) return 'n/a';
  const digits = x >= 100 ? 0 : x >= 10 ? 1 : x >= 1 ? 2 : 3;
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(list) {
  const lines = [['measure', 'segfn', 'baseline', 'ratio']];
  for (const r of list) {
    lines.push([`${r.measure} (${r.unit})${r.problem ? ' *' : ''}`, fmt(r.segfn), fmt(r.baseline), `${r.ratio.toFixed(2)}×`]);
  }
  return lines;
}

function printTable(lines) {
  const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const row = (l) => l.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  process.stdout.write(`\n${row(lines[0])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const l of lines.slice(1)) process.stdout.write(`${row(l)}\n`);
}

function write(runs, { root, quick, eventBytes, wasmBytes, jsWasmBytes }) {
  const info = machine(root);
  const { rows: list, problems } = rows(runs);
  const lines = table(list);
  printTable(lines);
  if (problems.length) process.stdout.write(`\n* ${problems.join('\n* ')}\n`);
  process.stdout.write(`\nratio = segfn ÷ baseline; the suite took ${Math.round(runs.seconds)} s\n`);
  for (const r of runs.replay || []) {
    process.stdout.write(
      `segfn replay --rate ${r.target_rate}: ${fmt(r.achieved_rate)} events/s achieved (${(r.ratio * 100).toFixed(1)}%), ${r.succeeded}/${r.events} succeeded\n`,
    );
  }

  for (const r of runs.durable || []) {
    process.stdout.write(
      `durable on ${r.store}: ${fmt(r.accepted_per_s)} deliveries/s committed (p99 ${r.p99_ms} ms), ${fmt(r.end_to_end_per_s)} events/s end to end\n`,
    );
  }

  const iso = runs.isolation;
  if (iso) {
    for (const key of ['segfn', 'segfn_tmpfs', 'baseline', 'baseline_vm']) {
      const figures = iso.connections.map((c) => `${fmt(iso[key][c].rps)} requests/s at ${c}`);
      process.stdout.write(`isolation ${key}: ${figures.join(', ')}\n`);
    }
  }
  const t = runs.telemetry;
  if (t) {
    const per = (r) => (r.cpu_s[0] / r.requests) * 1e6;
    for (const key of ['default', 'logs_off', 'traces']) {
      process.stdout.write(
        `telemetry ${key}: ${fmt(t[key].rps)} requests/s, ${fmt(per(t[key]))} µs CPU per request (${t.connections} connections)\n`,
      );
    }
  }

  const tm = runs.thread_model;
  if (tm) {
    for (const key of ['multi_thread', 'per_core']) {
      const figures = tm.connections.map((c) => `${fmt(tm[key][c].rps)} requests/s at ${c}`);
      process.stdout.write(`thread model ${key}: ${figures.join(', ')}\n`);
    }
  }
  for (const l of runs.http_client || []) {
    process.stdout.write(
      `http client ${l.client}, ${l.in_flight} in flight: ${fmt(l.requests_per_s)} requests/s, ${l.cpu_us_per_request.toFixed(1)} µs CPU per request\n`,
    );
  }

  const outDir = path.join(root, 'target', 'bench');
  fs.mkdirSync(outDir, { recursive: true });
  const results = {
    quick,
    machine: info,
    results: list.map(({ measure, unit, better, segfn, baseline, ratio }) => ({
      measure, unit, better, segfn, baseline, ratio,
    })),
    problems,
    runs,
  };
  fs.writeFileSync(path.join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  // Quick figures are too noisy to publish: their page goes next to results.json only.
  const mdPath = quick ? path.join(outDir, 'BENCHMARKS.quick.md') : path.join(root, 'docs', 'BENCHMARKS.md');
  fs.writeFileSync(mdPath, doc.markdown({ lines, problems, info, runs, eventBytes, wasmBytes, jsWasmBytes }));
  process.stdout.write(`wrote ${path.relative(root, path.join(outDir, 'results.json'))} and ${path.relative(root, mdPath)}\n`);
}

module.exports = { write, fmt, median };
