#!/usr/bin/env bash
# bench/soak.sh: "a week of jobs in an hour". N small jobs (default 100,000) through the HTTP
# gateway with syslog forwarding on, and the daemon's memory along the way: its RSS, anonymous
# memory and threads when 10%, 50% and 100% of the jobs were accepted (10k, 50k and 100k by
# default), and once every job's lines reached the receiver. The promise: RSS at those points
# within 10% of each other. Submissions are paced (RATE jobs/s) a little below what the pool
# finishes, so the queue stays short and the figures show the daemon's own growth, not a
# backlog held in memory.
#
#  - pcapd (release build): pool 2, a command backend that writes a five-row log per job (the
#    soak measures the daemon, not an analyzer), [Http] without TLS on loopback, [Syslog] TCP
#    to examples/syslogsink.rs, [Metrics] (the counts below are read from /metrics), and
#    [Jobs] keep = 2m so retention keeps the store at a few minutes of jobs, as a long-running
#    daemon's would be.
#  - Load: examples/httpload.rs, C clients (default 16) paced at RATE jobs/s (default 40),
#    share/pcapd/samples/dns.pcap per job.
#  - Samples every 2 s: jobs accepted and finished (pcapd_jobs_accepted_total,
#    pcapd_jobs_finished_total), lines forwarded, pcapd's VmRSS, RssAnon and Threads.
#
# usage: bench/soak.sh
# knobs: JOBS=100000 C=16 RATE=40 BUILD=0 (use the binaries already built) PCAPD=target/release/pcapd
# Writes bench/out/soak/{samples.tsv,soak.md} and the soak section of docs/benchmarks.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
JOBS=${JOBS:-100000}
C=${C:-16}
RATE=${RATE:-40}
BUILD=${BUILD:-1}
PCAPD=${PCAPD:-$ROOT/target/release/pcapd}
EX=$ROOT/target/release/examples
OUT=$ROOT/bench/out/soak
RUN=$OUT/run
log() { echo "# $*" >&2; }

if [ "$BUILD" = 1 ]; then
  log "building (release)"
  (cd "$ROOT" && cargo build --release --quiet --bin pcapd --example httpload --example syslogsink)
fi
for tool in "$EX/httpload" "$EX/syslogsink" "$PCAPD"; do
  [ -x "$tool" ] || { echo "missing $tool (run without BUILD=0)" >&2; exit 1; }
done

rm -rf "$RUN"
mkdir -p "$RUN"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

"$EX/syslogsink" --bind 127.0.0.1 --port 0 --control-port 0 > "$RUN/sink.out" 2> "$RUN/sink.err" &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$RUN/sink.out" ] && break; sleep 0.1; done
SYSLOG_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$RUN/sink.out")

cat > "$RUN/analyzer.sh" <<'EOF'
printf '#fields\tts\tuid\tmsg\n' > "$1/soak.log"
for i in 1 2 3 4 5; do printf '%s.0\tC%s\trow %s\n' "$i" "$i" "$i" >> "$1/soak.log"; done
EOF
cat > "$RUN/pcapd.cfg" <<EOF
[Global]
port = 0
bind = 127.0.0.1
ssl = false
password = soak
pool = 2
backend = command
state_dir = $RUN/state
[Command]
command = sh $RUN/analyzer.sh {out} {pcaps}
[Http]
port = 0
ssl = false
[Syslog]
host = 127.0.0.1
port = $SYSLOG_PORT
proto = tcp
[Metrics]
port = 0
[Jobs]
keep = 2m
EOF
"$PCAPD" serve -c "$RUN/pcapd.cfg" > "$RUN/pcapd.out" 2> "$RUN/pcapd.err" &
PCAPD_PID=$!
PIDS+=("$PCAPD_PID")
for _ in $(seq 100); do grep -q "metrics listening" "$RUN/pcapd.out" 2>/dev/null && break; sleep 0.1; done
HTTP=$(sed -n 's/.*HTTP gateway listening on //p' "$RUN/pcapd.out")
METRICS=$(sed -n 's/.*metrics listening on //p' "$RUN/pcapd.out")
[ -n "$HTTP" ] && [ -n "$METRICS" ] || { echo "pcapd did not start: $(tail -5 "$RUN/pcapd.err")" >&2; exit 1; }

# One sample: seconds, accepted, finished, lines forwarded, RSS KiB, anonymous KiB, threads.
sample() {
  local text
  text=$(curl -sf "http://$METRICS/metrics") || return 1
  awk -v t="$1" -v pid="$PCAPD_PID" '
    /^pcapd_jobs_accepted_total / { acc = $2 }
    /^pcapd_jobs_finished_total\{/ { fin += $2 }
    /^pcapd_forward_lines_total / { fwd = $2 }
    END {
      while ((getline line < ("/proc/" pid "/status")) > 0) {
        split(line, f, /[ \t]+/)
        if (f[1] == "VmRSS:") rss = f[2]; if (f[1] == "RssAnon:") anon = f[2]; if (f[1] == "Threads:") thr = f[2]
      }
      printf "%d\t%d\t%d\t%d\t%d\t%d\t%d\n", t, acc, fin, fwd, rss, anon, thr
    }' <<< "$text"
}

log "soak: $JOBS jobs, $C clients, pcapd pid $PCAPD_PID"
printf 'seconds\taccepted\tfinished\tforwarded\trss_kib\tanon_kib\tthreads\n' > "$OUT/samples.tsv"
began=$(date +%s)
"$EX/httpload" --url "http://$HTTP/submit/pcap" --jobs "$JOBS" --concurrency "$C" \
  --rate "$RATE" --tag-prefix soak --authorization "Basic $(printf 'any:soak' | base64)" \
  "$ROOT/share/pcapd/samples/dns.pcap" > "$RUN/load.json" 2> "$RUN/load.err" &
LOAD=$!
PIDS+=("$LOAD")
# Lines the jobs forward: five rows each.
want_lines=$((JOBS * 5))
while :; do
  now=$(( $(date +%s) - began ))
  line=$(sample "$now") || { echo "pcapd stopped answering: $(tail -5 "$RUN/pcapd.err")" >&2; exit 1; }
  echo "$line" >> "$OUT/samples.tsv"
  fwd=$(cut -f4 <<< "$line")
  if ! kill -0 "$LOAD" 2>/dev/null && [ "$fwd" -ge "$want_lines" ]; then break; fi
  [ "$now" -lt 7200 ] || { echo "not done after 2 h" >&2; break; }
  sleep 2
done
wait "$LOAD" || true

python3 - "$OUT/samples.tsv" "$RUN/load.json" "$JOBS" "$C" > "$OUT/soak.md" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
load = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
jobs, c = int(sys.argv[3]), int(sys.argv[4])
def at(count):
    for r in rows:
        if int(r["finished"]) >= count:
            return r
    return rows[-1]
points = [(f"{jobs // 10:,} finished", at(jobs // 10)), (f"{jobs // 2:,} finished", at(jobs // 2)),
          (f"{jobs:,} finished", at(jobs)), ("all lines forwarded", rows[-1])]
mib = lambda kib: int(kib) / 1024
rss = [mib(r["rss_kib"]) for _, r in points]
spread = (max(rss) - min(rss)) / min(rss) * 100
print(f"{jobs:,} jobs through the HTTP gateway with syslog forwarding, {c} clients, paced, "
      f"{load['wall_s']:.0f} s of submissions ({load['submits_per_s']:.0f} jobs/s, p99 {load['p99_ms']:.0f} ms), "
      f"{load['errors']} errors, {int(rows[-1]['forwarded']):,} lines forwarded; pcapd RSS spread across the "
      f"points: {spread:.1f}% (promise: within 10%).")
print()
print("| point | seconds | accepted | finished | lines forwarded | RSS | anonymous | threads |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name, r in points:
    print(f"| {name} | {r['seconds']} | {int(r['accepted']):,} | {int(r['finished']):,} | {int(r['forwarded']):,} "
          f"| {mib(r['rss_kib']):.1f} MiB | {mib(r['anon_kib']):.1f} MiB | {r['threads']} |")
print()
print(f"Peak RSS over the run: {max(mib(r['rss_kib']) for r in rows):.1f} MiB.")
open(sys.argv[1] + ".spread", "w").write(f"{spread:.1f}\n")
PY
cat "$OUT/soak.md"
write_doc_section soak "<!-- soak:start (bench/soak.sh writes this section) -->
## Soak: a week of jobs in an hour (\`bench/soak.sh\`)

Run on $(date -u +%Y-%m-%d), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $("$PCAPD" --version).

$(cat "$OUT/soak.md")
<!-- soak:end -->"
# The promise is checked, not only printed: a spread over 10% fails the run.
spread=$(cat "$OUT/samples.tsv.spread")
if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 10.0 else 1)' "$spread"; then
  echo "# RSS spread ${spread}% (within 10%)" >&2
else
  echo "bench/soak.sh: RSS spread ${spread}% is over the 10% promised" >&2
  exit 1
fi
