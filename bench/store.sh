#!/usr/bin/env bash
# Job store benchmark: a store of DONE finished jobs plus QUEUED queued ones (written directly
# by examples/storegen.rs), measured through the real daemon over TLS:
#
#  - start-up to ready: the first start (which builds the index from the records), a restart
#    after a clean stop, and a restart after SIGKILL (the crash repair);
#  - `list --limit 50`, the same with a tag filter, `list` of queued jobs, `status`, and a
#    deduplicated submission (`[Jobs] dedupe = true`; the capture matches a stored job), each
#    on one established connection (examples/loadgen.rs `calls` / `submits`): p50 and p99;
#  - the daemon's RSS with the store loaded, and its peak (VmHWM, which includes start-up);
#  - submit p99 at 64 clients on an empty store, fsync on (loadgen `submits`).
#
# The queued jobs must stay queued while they are measured: the pool's two workers run a
# `sleep` (backend = command), so two jobs run and the rest wait.
#
# PCAPD_BEFORE=path compares a pre-index build in the same run, on a store of BEFORE_DONE
# finished jobs (default 20000: at a million the full-scan build takes minutes per call)
# with the new build on that same store; the submit test runs with both builds.
#
# usage: bench/store.sh [DONE] [QUEUED] [SUBMITS]     (defaults 1000000 10000 2000)
# ROUNDS=n: rounds of the submit test (default 3, alternating the builds).
# REUSE=1: keep the large store for the next run and reuse the last one (its index deleted).
# PCAPD=path overrides the new build (default: target/release/pcapd, built here).
# Writes bench/out/store/store.md and the store section of docs/benchmarks.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$ROOT/bench/out/store
DONE=${1:-1000000}
QUEUED=${2:-10000}
SUBMITS=${3:-2000}
BEFORE_DONE=${BEFORE_DONE:-20000}
BEFORE_QUEUED=$(( BEFORE_DONE / 100 ))
mkdir -p "$OUT"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
ulimit -n 8192 2>/dev/null || true
command -v openssl >/dev/null || { apt-get update -q && apt-get install -y -q openssl; }

echo "# building pcapd, loadgen and storegen (release)" >&2
(cd "$ROOT" && cargo build --release --quiet --bin pcapd --example loadgen --example storegen)
PCAPD=${PCAPD:-$ROOT/target/release/pcapd}
LOADGEN=$ROOT/target/release/examples/loadgen
STOREGEN=$ROOT/target/release/examples/storegen
CAPTURE=$ROOT/share/pcapd/samples/dns.pcap

[ -f "$OUT/cert.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$OUT/key.pem" -out "$OUT/cert.pem" -days 30 -subj '/CN=127.0.0.1' \
  -addext 'subjectAltName=IP:127.0.0.1' 2>/dev/null
printf 'bench-%s\n' "$RANDOM$RANDOM" > "$OUT/password"
chmod 600 "$OUT/password" "$OUT/key.pem"

DPID=""
cleanup() { [ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

rss_mib() { awk -v k="$2" '$1 == k":" {printf "%.1f", $2/1024}' "/proc/$1/status"; }
now() { date +%s.%N; }
ms_since() { python3 -c "import sys; print(f'{(float(sys.argv[2])-float(sys.argv[1]))*1000:.0f}')" "$1" "$(now)"; }

# write_config STATE_DIR DEDUPE
write_config() {
  cat > "$1.cfg" <<CFG
[Global]
port = 0
bind = 127.0.0.1
pool = 2
ssl = true
sslcert = $OUT/cert.pem
sslkey = $OUT/key.pem
password_file = $OUT/password
state_dir = $1
backend = command
max_queue = 200000
max_connections = 4096

[Command]
command = sleep 600 # {pcaps}

[Worker]
grace = 1s

[Jobs]
dedupe = $2
CFG
}

# start BINARY STATE_DIR: starts the daemon; sets DPID, PORT and READY_MS (ms to ready).
start() {
  local t0
  : > "$2.out"
  t0=$(now)
  "$1" serve -c "$2.cfg" > "$2.out" 2>> "$2.err" &
  DPID=$!
  for _ in $(seq 30000); do
    grep -q 'listening on' "$2.out" && break
    kill -0 "$DPID" 2>/dev/null || { cat "$2.err" >&2; exit 1; }
    sleep 0.01
  done
  READY_MS=$(ms_since "$t0")
  PORT=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$2.out")
}

stop() { kill -TERM "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=""; }
crash() { kill -KILL "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=""; }

# calls N FUNC KWARGS: "p50 / p99" ms of FUNC on one connection.
calls() {
  "$LOADGEN" calls 127.0.0.1 "$PORT" "$OUT/cert.pem" "$OUT/password" "$1" "$2" "$3" |
    python3 -c "import json,sys; r=json.load(sys.stdin); print(f\"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}\")"
}

# dedupe N: "p50 / p99" ms of deduplicated submissions (fails if one was not deduplicated).
dedupe() {
  "$LOADGEN" submits 127.0.0.1 "$PORT" "$OUT/cert.pem" "$OUT/password" "$CAPTURE" "$1" 1 |
    python3 -c "
import json,sys
r=json.load(sys.stdin)
assert r['deduplicated'] == r['submits'], r
print(f\"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}\")"
}

# fill STATE_DIR DONE QUEUED: a fresh store; prints the seconds storegen took.
fill() {
  rm -rf "$1"; mkdir -p "$1"
  "$STOREGEN" "$1/jobs" "$2" "$3" "$CAPTURE" > "$1.gen"
  sync
  python3 -c "import json,sys; print(f\"{json.load(open(sys.argv[1]))['seconds']:.0f}\")" "$1.gen"
}

# store_row NAME BINARY STATE_DIR JOBS N: one table row for a filled store.
store_row() {
  local name=$1 bin=$2 state=$3 jobs=$4 n=$5 first restart crashed list tag queued status dd rss hwm some
  write_config "$state" true
  start "$bin" "$state"; first=$READY_MS
  some=$(find "$state/jobs" -maxdepth 1 -name '*-*' -print -quit | xargs basename)
  list=$(calls "$n" list '{"limit": 50}')
  tag=$(calls "$n" list '{"limit": 50, "tag": "sensor-7"}')
  queued=$(calls "$n" list '{"limit": 50, "state": "queued"}')
  status=$(calls "$(( n * 4 ))" status "{\"job_id\": \"$some\"}")
  dd=$(dedupe "$n")
  rss=$(rss_mib "$DPID" VmRSS); hwm=$(rss_mib "$DPID" VmHWM)
  stop
  start "$bin" "$state"; restart=$READY_MS
  crash
  start "$bin" "$state"; crashed=$READY_MS
  stop
  echo "| $name | $jobs | $first | $restart | $crashed | $list | $tag | $queued | $status | $dd | $rss | $hwm |"
}

# submit_row NAME BINARY: submit latency at 64 clients on an empty store.
submit_row() {
  local state=$OUT/submit-state r
  rm -rf "$state"; mkdir -p "$state"
  write_config "$state" false
  start "$2" "$state"
  r=$("$LOADGEN" submits 127.0.0.1 "$PORT" "$OUT/cert.pem" "$OUT/password" "$CAPTURE" "$SUBMITS" 64)
  crash  # a SIGTERM drain of thousands of queued jobs is not what is measured here
  python3 - "$1" "$r" <<'PY'
import json, sys
name, r = sys.argv[1], json.loads(sys.argv[2])
print(f"| {name} | {r['submits']} | {r['clients']} | {r['per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} |")
PY
}

HEADER="| build | jobs kept (+ queued) | first start ms | restart ms | restart after SIGKILL ms | list --limit 50 p50 / p99 ms | list, tag filter | list, state = queued | status | dedupe submit | RSS MiB | peak RSS MiB |
|---|---|---|---|---|---|---|---|---|---|---|---|"

{
echo "## Store of finished jobs: start-up, list, status, dedupe, memory"
echo
echo "examples/storegen.rs writes the records directly; pool = 2 (two jobs running, the rest queued); one TLS connection per measurement; $(nproc) cores, $(date -u +%Y-%m-%d), release build."
echo "First start: the index is built from the records (an upgrade, or a deleted index); restart: after a clean stop; after SIGKILL: the crash repair. Calls repeated N times on one connection (N = 50 at $DONE jobs, 5 with the pre-index build)."
echo
echo "$HEADER"
} | tee "$OUT/store.md"

if [ -n "${PCAPD_BEFORE:-}" ]; then
  echo "# small store: $BEFORE_DONE + $BEFORE_QUEUED jobs" >&2
  secs=$(fill "$OUT/small" "$BEFORE_DONE" "$BEFORE_QUEUED")
  echo "#   written in ${secs} s" >&2
  store_row "before (full scan)" "$PCAPD_BEFORE" "$OUT/small" "$BEFORE_DONE (+ $BEFORE_QUEUED)" 5 | tee -a "$OUT/store.md"
  rm -f "$OUT/small/jobs.index.sqlite"*
  store_row "after (index)" "$PCAPD" "$OUT/small" "$BEFORE_DONE (+ $BEFORE_QUEUED)" 50 | tee -a "$OUT/store.md"
  rm -rf "$OUT/small"
fi

echo "# large store: $DONE + $QUEUED jobs" >&2
if [ "${REUSE:-0}" = 1 ] && [ -d "$OUT/large/jobs" ] &&
   python3 -c "import json,sys; g=json.load(open(sys.argv[1])); sys.exit(not (g['done'] == int(sys.argv[2]) and g['queued'] == int(sys.argv[3])))" "$OUT/large.gen" "$DONE" "$QUEUED"; then
  # REUSE=1 (while working on the bench): the last run's store, its index deleted.
  rm -f "$OUT/large/jobs.index.sqlite"*
  echo "#   reusing $OUT/large" >&2
else
  secs=$(fill "$OUT/large" "$DONE" "$QUEUED")
  echo "#   written in ${secs} s" >&2
fi
store_row "after (index)" "$PCAPD" "$OUT/large" "$DONE (+ $QUEUED)" 50 | tee -a "$OUT/store.md"
# The store alone, in process, on the same store and index (the daemon is stopped).
PROBE=$("$STOREGEN" probe "$OUT/large/jobs" "$OUT/large/jobs.index.sqlite" "$CAPTURE" 200)
INDEX_MIB=$(du -cm "$OUT/large/jobs.index.sqlite"* | tail -1 | cut -f1)
[ "${REUSE:-0}" = 1 ] || rm -rf "$OUT/large"

{
echo
python3 - "$PROBE" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"The store alone at this size, in process (examples/storegen.rs probe, 200 runs each, p50 / p99 ms): dedupe lookup {r['dedupe_p50_ms']:.2f} / {r['dedupe_p99_ms']:.2f}, list of 50 {r['list50_p50_ms']:.2f} / {r['list50_p99_ms']:.2f}, load of one record {r['load_p50_ms']:.3f} / {r['load_p99_ms']:.3f}; opening the store with its index {r['open_ms']:.0f} ms.")
PY
echo
echo "Index file at $DONE jobs: $INDEX_MIB MiB. Targets (issue 19): list ≤ 50 ms, status ≤ 5 ms, dedupe lookup ≤ 5 ms, start-up ≤ 3 s, RSS ≤ 128 MiB at a million jobs."
echo
echo "## Submit latency: $SUBMITS submissions from 64 clients, fsync on"
echo
echo "Rows alternate between the builds, ${ROUNDS:-3} rounds; the machine's load average when this table was written: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "loadgen \`submits\`: each client submits $(basename "$CAPTURE") ($(stat -c %s "$CAPTURE") bytes) and does not wait for the job; the round trip ends when the job is durable and acknowledged. Empty store, pool = 2."
echo
echo "| build | submits | clients | submits/s | p50 ms | p99 ms | max ms |"
echo "|---|---|---|---|---|---|---|"
} | tee -a "$OUT/store.md"
# Alternated, ROUNDS times: on a shared or small machine one run of each says little.
for _ in $(seq "${ROUNDS:-3}"); do
  if [ -n "${PCAPD_BEFORE:-}" ]; then
    submit_row "before (one fsync of jobs/ per job)" "$PCAPD_BEFORE" | tee -a "$OUT/store.md"
  fi
  submit_row "after (group commit)" "$PCAPD" | tee -a "$OUT/store.md"
done
rm -rf "$OUT/submit-state"

report="<!-- store-bench:start (written by bench/store.sh; edits here are overwritten) -->
## Job store at a million jobs (\`bench/store.sh\`)

Measured on $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(date -u +%Y-%m-%d).
Rerun with \`PCAPD_BEFORE=/path/to/pre-index/pcapd bench/store.sh [DONE] [QUEUED] [SUBMITS]\` (this run: \`bench/store.sh $DONE $QUEUED $SUBMITS\`).

$(sed 's/^## /### /' "$OUT/store.md")
<!-- store-bench:end -->"
(cd "$ROOT" && write_doc_section store-bench "$report")
echo >&2 "# results in $OUT/store.md and docs/benchmarks.md"
