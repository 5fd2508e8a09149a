#!/usr/bin/env bash
# bench/cluster.sh: [Cluster] throughput and latency with 1, 2 and 3 hosts sharing one job
# queue on a real redis-server (AOF, appendfsync always) and one jobs_dir, pool 1 each, a
# command analyzer that sleeps SLEEP seconds and writes a log (so scaling shows on 2 cores);
# then the same with a host SIGKILLed mid-run: jobs acknowledged vs done, and how long the
# killed host's running job waited to be taken over. Writes its table into docs/benchmarks.md.
#
#   bench/cluster.sh                  # JOBS=60 SLEEP=0.5
#   JOBS=30 bench/cluster.sh          # quicker
#
# Needs redis-server (tests/setup.sh installs it) and a release build (made if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

JOBS=${JOBS:-60}
SLEEP=${SLEEP:-0.5}
CLAIM_AFTER=${CLAIM_AFTER:-3s}
HEARTBEAT=${HEARTBEAT:-1s}
PCAPD=${PCAPD:-target/release/pcapd}
command -v redis-server >/dev/null || { echo "redis-server is missing: run tests/setup.sh" >&2; exit 1; }
[ -x "$PCAPD" ] || cargo build --release --bin pcapd
PCAPD=$(realpath "$PCAPD")

work=$(mktemp -d /tmp/pcapd-cluster-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
mkdir -p "$work/redis"
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work/redis" --appendonly yes \
  --appendfsync always --save '' --daemonize no >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$redis_port) 2>/dev/null && break; sleep 0.05; done

cat > "$work/analyzer.sh" <<EOF
#!/bin/sh
sleep $SLEEP
printf '#fields\tx\n1\n' > "\$1/run.log"
EOF
printf 'bench capture\n' > "$work/capture.pcap"

# start_host RUN INDEX: a daemon of run RUN; prints its port.
start_host() {
  local run=$1 i=$2 dir="$work/$1/host$2"
  mkdir -p "$dir"
  cat > "$dir/pcapd.cfg" <<EOF
[Global]
port = 0
bind = 127.0.0.1
ssl = false
password = bench
pool = 1
backend = command
max_queue = 100000
state_dir = $dir/state
jobs_dir = $work/$run/jobs
[Command]
command = sh $work/analyzer.sh {out} {pcaps}
[Cluster]
redis = redis://127.0.0.1:$redis_port/
stream = bench:$run
node = $run-host$i
claim_after = $CLAIM_AFTER
heartbeat = $HEARTBEAT
EOF
  chmod 600 "$dir/pcapd.cfg"
  "$PCAPD" serve -c "$dir/pcapd.cfg" > "$dir/out" 2> "$dir/err" &
  echo $! > "$dir/pid"
  pids+=($!)
  for _ in $(seq 200); do grep -q "listening on" "$dir/out" 2>/dev/null && break; sleep 0.05; done
  awk '/listening on/ {n = split($NF, a, ":"); print a[n]; exit}' "$dir/out"
}

# run NAME HOSTS KILL: submits JOBS jobs round-robin, optionally SIGKILLs host 0 after a third
# of them; prints one JSON line of figures.
run() {
  local name=$1 hosts=$2 kill=$3 ports=() i
  mkdir -p "$work/$name/jobs"
  for i in $(seq 0 $((hosts - 1))); do ports+=("$(start_host "$name" "$i")"); done
  local killed_at=0 submitted=0 t0
  t0=$(date +%s.%N)
  for n in $(seq 0 $((JOBS - 1))); do
    local host=$((n % hosts))
    if [ "$kill" = 1 ] && [ "$host" = 0 ] && [ "$killed_at" != 0 ]; then host=1; fi
    if "$PCAPD" submit -c "$work/$name/host$host/pcapd.cfg" --port "${ports[$host]}" \
        "$work/capture.pcap" >/dev/null 2>"$work/submit.err"; then
      submitted=$((submitted + 1))
    fi
    if [ "$kill" = 1 ] && [ "$n" = $((JOBS / 3)) ]; then
      kill -9 "$(cat "$work/$name/host0/pid")"
      killed_at=$(date +%s.%N)
    fi
  done
  python3 - "$work/$name/jobs" "$JOBS" "$submitted" "$t0" "$killed_at" "$name" "$hosts" <<'PY'
import json, os, sys, time
from datetime import datetime
jobs_dir, want, submitted, t0, killed_at, name, hosts = sys.argv[1:]
want, submitted, t0, killed_at = int(want), int(submitted), float(t0), float(killed_at)
def ts(text): return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
deadline = time.time() + 300
while True:
    records = []
    for entry in os.listdir(jobs_dir):
        try:
            records.append(json.load(open(os.path.join(jobs_dir, entry, "job.json"))))
        except (OSError, ValueError):
            pass
    terminal = [r for r in records if r["state"] in ("done", "failed", "timed_out", "cancelled")]
    if len(terminal) >= submitted or time.time() > deadline:
        break
    time.sleep(0.2)
done = [r for r in terminal if r["state"] == "done"]
twice = sum(1 for r in records if sum(1 for h in r["history"] if h["state"] == "done") > 1)
lat = sorted(ts(r["finished_at"]) - ts(r["created_at"]) for r in done)
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0
last = max((ts(r["finished_at"]) for r in done), default=t0)
takeover = []
if killed_at:
    for r in records:
        inter = [ts(h["at"]) for h in r["history"] if h["state"] == "interrupted"]
        if inter:
            takeover.append(inter[0] - killed_at)
print(json.dumps({"run": name, "hosts": int(hosts), "acknowledged": submitted, "done": len(done),
                  "lost": submitted - len(terminal), "done_twice": twice,
                  "jobs_per_s": len(done) / (last - t0), "p50_ms": pick(0.5), "p99_ms": pick(0.99),
                  "takeover_s": max(takeover) if takeover else None}))
PY
  for i in $(seq 0 $((hosts - 1))); do kill "$(cat "$work/$name/host$i/pid")" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

results="$work/results.jsonl"
for hosts in 1 2 3; do run "hosts$hosts" "$hosts" 0 | tee -a "$results"; done
run "kill3" 3 1 | tee -a "$results"

report=$(python3 - "$results" "$JOBS" "$SLEEP" "$CLAIM_AFTER" "$HEARTBEAT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
jobs, sleep, claim, beat = sys.argv[2:]
base = rows[0]["jobs_per_s"]
out = ["<!-- cluster-bench:start (bench/cluster.sh writes this section) -->",
       "## `[Cluster]`: hosts sharing one queue on Redis Streams (`bench/cluster.sh`)", "",
       f"{jobs} jobs per run, pool 1 per host, a command analyzer that sleeps {sleep} s and writes a log; "
       f"a real redis-server with AOF (`appendfsync always`), one shared `jobs_dir`; claim_after {claim}, heartbeat {beat}. "
       "Submit-to-done is from the record's `created_at` to `finished_at`.", "",
       "| run | hosts | acknowledged | done | lost | done twice | jobs/s | speed-up | submit→done p50 ms | p99 ms | takeover s |",
       "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for r in rows:
    take = f'{r["takeover_s"]:.2f}' if r["takeover_s"] is not None else "–"
    label = "host 0 SIGKILLed after a third" if r["run"].startswith("kill") else "steady"
    out.append(f'| {label} | {r["hosts"]} | {r["acknowledged"]} | {r["done"]} | {r["lost"]} | {r["done_twice"]} | '
               f'{r["jobs_per_s"]:.2f} | {r["jobs_per_s"] / base:.2f}× | {r["p50_ms"]:.0f} | {r["p99_ms"]:.0f} | {take} |')
out.append("")
out.append("<!-- cluster-bench:end -->")
print("\n".join(out))
PY
)
echo "$report"
write_doc_section cluster-bench "$report"
