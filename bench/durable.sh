#!/usr/bin/env bash
# Durable mode's throughput: single-event deliveries per second that `segfn serve
# --durable` commits and answers 202 (each commit durable; on the embedded store
# concurrent ones are grouped into one fsync), while its workers run the forwarder on
# them against a local partner (bench/partner.js); then how long the queue takes to
# drain, for the end-to-end rate. Prints one JSON line.
#
#   bench/durable.sh SEGFN_BIN FORWARDER_WASM [SECONDS=10] [CONNECTIONS=64] [STORE=redb]
#
# STORE=postgres starts a throwaway cluster of Debian's PostgreSQL (default settings,
# fsync on) in the temporary directory, on 127.0.0.1, and uses it as the store;
# PG_OPTIONS adds server options (e.g. PG_OPTIONS="-c synchronous_commit=off", to see
# what the commit's flush costs; not a setting for production).
#
# Build first (release): cargo build --release -p segfn, and
# segfn build functions/forwarder. Needs wrk and node (scripts/bench installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
segfn="${1:?segfn binary}"
wasm="${2:?forwarder .wasm}"
seconds="${3:-10}"
connections="${4:-64}"
store_kind="${5:-redb}"

tmp="$(mktemp -d)"
partner_pid=""
serve_pid=""
pg_bin=""
as_pg=()
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
  if [ -n "$pg_bin" ]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [ -n "$partner_pid" ] && kill "$partner_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The partner: answers 200 at once.
PORT=0 node bench/partner.js >"$tmp/partner.out" &
partner_pid=$!
until grep -q '^listening' "$tmp/partner.out" 2>/dev/null; do sleep 0.05; done
partner_port="$(awk '/^listening/ {print $2}' "$tmp/partner.out")"

store="$tmp/store.redb"
if [ "$store_kind" = postgres ]; then
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  mkdir -p "$tmp/pg"
  # initdb refuses root: the cluster belongs to the postgres user then.
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$tmp" "$tmp/pg"
    as_pg=(runuser -u postgres --)
  fi
  "${as_pg[@]}" "$pg_bin/initdb" -D "$tmp/pg/data" -A trust -U segfn >/dev/null
  pg_port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/log" -w \
    -o "-p $pg_port -k $tmp/pg -c listen_addresses=127.0.0.1 ${PG_OPTIONS:-}" start >/dev/null
  store="postgres://segfn@127.0.0.1:$pg_port/postgres"
fi

cat >"$tmp/segfn.toml" <<EOF
[server]
listen = "127.0.0.1:0"
store = "$store"
durable = true
max_in_flight = 64

[[tenant]]
name = "bench"
api_key = "bench-segment-key"
allow_hosts = ["127.0.0.1:$partner_port"]
settings = { apiKey = "bench-partner-key", endpoint = "http://127.0.0.1:$partner_port/v1" }
EOF

SEGFN_LOG=warn "$segfn" serve "$wasm" --config "$tmp/segfn.toml" >"$tmp/serve.out" 2>"$tmp/serve.err" &
serve_pid=$!
until grep -q 'listening on' "$tmp/serve.out" 2>/dev/null; do sleep 0.05; done
base="$(sed -n 's/^segfn serve: listening on //p' "$tmp/serve.out")"

node -e '
  const e = JSON.parse(require("fs").readFileSync("bench/events/track.json", "utf8"));
  e.messageId = "@@ID@@";
  process.stdout.write(JSON.stringify(e) + "\n");
' >"$tmp/track.json"
auth="Basic $(printf 'bench-segment-key:' | base64)"

metric() {
  curl -s "$base/metrics" | awk -v m="$1" '$1 ~ "^"m"[{ ]" || $1 == m {s += $NF} END {print s + 0}'
}

# CPU time (clock ticks) of the server, and of the PostgreSQL cluster's processes
# (the postmaster and its children), to say where the time goes.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    # Fields after the command (which may hold spaces): utime is the 14th, stime the 15th.
    total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}
pg_pids() {
  [ -n "$pg_bin" ] || return 0
  local master
  master="$(head -n 1 "$tmp/pg/data/postmaster.pid")"
  echo "$master" $(pgrep -P "$master")
}
serve_cpu_0="$(cpu_ticks "$serve_pid")"
pg_cpu_0="$(cpu_ticks $(pg_pids))"
start_ns="$(date +%s%N)"
wrk_json="$(wrk -t2 -c"$connections" -d"${seconds}s" -s bench/post.lua "$base/" -- \
  "durable-$$" 0 "$auth" "$tmp/track.json" | tail -n 1)"
load_end_ns="$(date +%s%N)"
serve_cpu_1="$(cpu_ticks "$serve_pid")"
pg_cpu_1="$(cpu_ticks $(pg_pids))"
pending_at_end="$(metric segfn_queue_pending)"
while [ "$(metric segfn_queue_pending)" != "0" ]; do sleep 0.1; done
drained_ns="$(date +%s%N)"
completed="$(metric segfn_queue_completed_total)"
dead="$(metric segfn_dead_letters)"

node -e '
  const w = JSON.parse(process.argv[1]);
  const [start, loadEnd, drained] = process.argv.slice(2, 5).map(BigInt);
  const accepted = w.requests - w.non2xx;
  const out = {
    store: process.argv[9],
    // CPU per accepted delivery while the load ran (the workers ran events meanwhile).
    serve_cpu_us_per_accepted: Math.round(Number(process.argv[10]) / accepted),
    store_cpu_us_per_accepted: Math.round(Number(process.argv[11]) / accepted),
    connections: Number(process.argv[8]),
    accepted_per_s: Math.round(accepted / (w.duration_us / 1e6)),
    p50_ms: w.p50_us / 1000, p99_ms: w.p99_us / 1000,
    non2xx: w.non2xx, errors: w.connect_errors + w.read_errors + w.write_errors + w.timeouts,
    pending_when_load_ended: Number(process.argv[5]),
    completed: Number(process.argv[6]), dead_letters: Number(process.argv[7]),
    drain_s: Number(drained - loadEnd) / 1e9,
    end_to_end_per_s: Math.round(Number(process.argv[6]) / (Number(drained - start) / 1e9)),
  };
  console.log(JSON.stringify(out));
' "$wrk_json" "$start_ns" "$load_end_ns" "$drained_ns" "$pending_at_end" "$completed" "$dead" "$connections" "$store_kind" \
  "$(( (serve_cpu_1 - serve_cpu_0) * 1000000 / $(getconf CLK_TCK) ))" \
  "$(( (pg_cpu_1 - pg_cpu_0) * 1000000 / $(getconf CLK_TCK) ))"
