#!/usr/bin/env bash
# Daemon benchmark: pcapd against the real bui-monitor 1.1.1 (the anchor), in one run.
#
#  1. request path: the anchor's own benchmark client (client_bench.py --client lean, TLS, one
#     request per connection, as Burp-UI does) calls `monitor_version` on bui-monitor and on
#     pcapd, at several concurrencies: requests/s, p50/p99, server CPU and peak RSS.
#  2. jobs: 64 clients submit a small capture and wait for it, pool = 2, builtin analyzer:
#     jobs/s and p50/p99 submit-to-done latency (pcapd only: bui-monitor has no jobs).
#  3. idle: 1000 authenticated TLS connections held open: pcapd's RSS before and during.
#
# usage: bench/daemon.sh [N_REQUESTS] [N_JOBS]      (defaults 2000 and 2000)
# Writes the tables to stdout, to bench/out/daemon/daemon.md, and into the daemon section of
# docs/benchmarks.md (see publish_daemon_results below; `PUBLISH_ONLY=1` re-publishes the last run).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

# Puts bench/out/daemon/daemon.md into docs/benchmarks.md between the daemon-bench markers.
publish_daemon_results() {
  local report
  report="<!-- daemon-bench:start (written by bench/daemon.sh; edits here are overwritten) -->
## Daemon service

Measured on $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(date -u +%Y-%m-%d), release build.
Rerun with \`bench/daemon.sh [N_REQUESTS] [N_JOBS]\` (this run: \`bench/daemon.sh $N $JOBS\`).

$(sed 's/^## /### /' "$OUT/daemon.md")
<!-- daemon-bench:end -->"
  (cd "$ROOT" && write_doc_section daemon-bench "$report")
}
ROOT=$(cd "$HERE/.." && pwd)
ANCHOR=$(cd "$ROOT/../shared/anchors/buimonitor" && pwd)
OUT=$ROOT/bench/out/daemon
N=${1:-2000}
JOBS=${2:-2000}
mkdir -p "$OUT"
if [ "${PUBLISH_ONLY:-0}" = 1 ]; then source "$HERE/lib.sh"; publish_daemon_results; exit 0; fi
ulimit -n 8192 2>/dev/null || true
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

command -v openssl >/dev/null || { apt-get update -q && apt-get install -y -q openssl; }
command -v ss >/dev/null || { apt-get update -q && apt-get install -y -q iproute2; }

echo "# building pcapd (release)" >&2
(cd "$ROOT" && cargo build --release --quiet --bin pcapd --example loadgen)
PCAPD=$ROOT/target/release/pcapd
LOADGEN=$ROOT/target/release/examples/loadgen

echo "# setting up the anchor venv" >&2
export BUIMON_WORK=$OUT/anchor
SETUP_ONLY=1 SSL=1 bash "$ANCHOR/run_anchor.sh" >/dev/null
PY=$BUIMON_WORK/venv/bin/python

# Shared TLS material and password for both servers.
[ -f "$OUT/cert.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$OUT/key.pem" -out "$OUT/cert.pem" -days 30 -subj '/CN=127.0.0.1' \
  -addext 'subjectAltName=IP:127.0.0.1' 2>/dev/null
PASSWORD=bench-$RANDOM$RANDOM
printf '%s\n' "$PASSWORD" > "$OUT/password"; chmod 600 "$OUT/password" "$OUT/key.pem"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
CLK=$(getconf CLK_TCK)

start_pcapd() { # $1 = pool
  rm -rf "$OUT/state"; mkdir -p "$OUT/state"
  cat > "$OUT/pcapd.cfg" <<CFG
[Global]
port = 0
bind = 127.0.0.1
pool = $1
ssl = true
sslcert = $OUT/cert.pem
sslkey = $OUT/key.pem
password_file = $OUT/password
state_dir = $OUT/state
max_queue = 10000
max_connections = 4096
CFG
  "$PCAPD" serve -c "$OUT/pcapd.cfg" > "$OUT/pcapd.out" 2> "$OUT/pcapd.err" &
  PPID_=$!; PIDS+=("$PPID_")
  for _ in $(seq 300); do grep -q 'listening on' "$OUT/pcapd.out" && break; sleep 0.1; done
  PPORT=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$OUT/pcapd.out")
  [ -n "$PPORT" ] || { cat "$OUT/pcapd.err"; exit 1; }
}

start_anchor() {
  APORT=$(( 20000 + RANDOM % 20000 ))
  cat > "$OUT/buimonitor.cfg" <<CFG
[Global]
port = $APORT
bind = 127.0.0.1
pool = 2
ssl = true
sslcert = $OUT/cert.pem
sslkey = $OUT/key.pem
password = $PASSWORD

[Burp]
burpbin = $ANCHOR/fake_burp.py
bconfcli = $BUIMON_WORK/burp-client.conf
timeout = 15
CFG
  touch "$BUIMON_WORK/burp-client.conf"
  setsid "$BUIMON_WORK/venv/bin/bui-monitor" -c "$OUT/buimonitor.cfg" -l "$OUT/monitor.log" > "$OUT/monitor.out" 2>&1 &
  APID=$!; PIDS+=("$APID")
  for _ in $(seq 100); do ss -ltn "sport = :$APORT" | grep -q LISTEN && break; sleep 0.1; done
  sleep 0.5
}

request_row() { # name pid port C
  local t0 s0 t1 s1 out cpu
  t0=$(cpu_ticks "$2"); s0=$(date +%s.%N)
  out=$("$PY" -W ignore "$ANCHOR/client_bench.py" --port "$3" --ssl --password "$PASSWORD" bench -n "$N" -c "$4" --func monitor_version --client lean)
  t1=$(cpu_ticks "$2"); s1=$(date +%s.%N)
  cpu=$(python3 -c "print(f'{($t1-$t0)/$CLK/($s1-$s0)*100:.0f}%')")
  python3 - "$1" "$out" "$cpu" "$(hwm_kb "$2")" <<'PY'
import json, sys
name, r, cpu, hwm = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
err = sum(r["errors"].values())
print(f"| {name} | {r['c']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {cpu} | {hwm/1024:.1f} MiB | {err} |")
PY
}

{
echo "## Request path: bui-monitor 1.1.1 vs pcapd (same client, same machine, same run)"
echo
echo "client_bench.py --client lean --ssl bench -n $N --func monitor_version; one TLS connection per request; $(nproc) cores, $(date -u +%Y-%m-%d)."
echo
echo "| server | clients | req/s | p50 ms | p99 ms | server CPU | server peak RSS | errors |"
echo "|---|---|---|---|---|---|---|---|"
} | tee "$OUT/daemon.md"

start_anchor
start_pcapd 2
for C in 1 8 32; do
  request_row "bui-monitor" "$APID" "$APORT" "$C" | tee -a "$OUT/daemon.md"
  request_row "pcapd" "$PPID_" "$PPORT" "$C" | tee -a "$OUT/daemon.md"
done
kill -TERM "$APID" 2>/dev/null || true

{
echo
echo "## Jobs: 64 clients, pool = 2, builtin analyzer, $(basename "$ROOT/share/pcapd/samples/dns.pcap") ($(stat -c %s "$ROOT/share/pcapd/samples/dns.pcap") bytes) per job"
echo
echo "| jobs | clients | jobs/s | p50 submit→done ms | p99 ms | max ms | failed | daemon processes (max seen) |"
echo "|---|---|---|---|---|---|---|---|"
} | tee -a "$OUT/daemon.md"
( maxp=0; while kill -0 "$PPID_" 2>/dev/null; do n=$(( $(pgrep -P "$PPID_" | wc -l) + 1 )); [ "$n" -gt "$maxp" ] && maxp=$n && echo "$maxp" > "$OUT/maxprocs"; sleep 0.05; done ) &
WATCH=$!
J=$("$LOADGEN" jobs 127.0.0.1 "$PPORT" "$OUT/cert.pem" "$OUT/password" "$ROOT/share/pcapd/samples/dns.pcap" "$JOBS" 64)
kill "$WATCH" 2>/dev/null || true
python3 - "$J" "$(cat "$OUT/maxprocs")" <<'PY' | tee -a "$OUT/daemon.md"
import json, sys
r = json.loads(sys.argv[1])
print(f"| {r['jobs']} | {r['clients']} | {r['jobs_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['failed']} | {sys.argv[2]} |")
PY

{
echo
echo "## Idle connections: 1000 authenticated TLS connections held open"
echo
echo "| daemon RSS before | with 1000 idle TLS connections | per connection | still usable after 10 s idle |"
echo "|---|---|---|---|"
} | tee -a "$OUT/daemon.md"
kill -TERM "$PPID_"; wait "$PPID_" 2>/dev/null || true
start_pcapd 2
sleep 1
BEFORE=$(rss_kb "$PPID_")
mkfifo "$OUT/idle.fifo" 2>/dev/null || true
"$LOADGEN" idle 127.0.0.1 "$PPORT" "$OUT/cert.pem" "$OUT/password" 1000 10 > "$OUT/idle.out" &
LG=$!
for _ in $(seq 600); do grep -q '"open"' "$OUT/idle.out" 2>/dev/null && break; sleep 0.1; done
sleep 2
DURING=$(rss_kb "$PPID_")
wait "$LG"
ALIVE=$(python3 -c "import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]['alive_after_hold'])" "$OUT/idle.out")
python3 - "$BEFORE" "$DURING" "$ALIVE" <<'PY' | tee -a "$OUT/daemon.md"
import sys
b, d, alive = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
print(f"| {b/1024:.1f} MiB | {d/1024:.1f} MiB | {(d-b)/1000:.1f} KiB | {alive}/1000 |")
PY
publish_daemon_results
echo >&2 "# results in $OUT/daemon.md and docs/benchmarks.md"
