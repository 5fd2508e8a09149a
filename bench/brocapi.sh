#!/usr/bin/env bash
# bench/brocapi.sh: pcapd (HTTP gateway, command backend, syslog forwarding) against a
# Brocapi-style pipeline (bench/brocapi/: Flask under gunicorn, 4 workers; RQ with Debian's
# redis-server and 2 RQ workers), in one run, on the same machine, with the same analyzer
# command and the same syslog receiver (issue 7, "Benchmark").
#
#  - Analyzer, both sides: `cputime ACCT pcapd analyze -o {out} {pcaps}` (examples/cputime.rs
#    records each run's CPU, so a pipeline's own CPU is its processes' CPU minus that).
#  - Syslog, both sides: examples/syslogsink.rs on one 127.0.0.1 port (TCP, LF framing,
#    RFC 3164, program bro25_LOG, HOSTNAME = the job's tag), counting lines per tag.
#  - Load: examples/httpload.rs, `POST /submit/pcap` with `file[]` and a unique `tag` per job,
#    C clients; small captures (share/pcapd/samples, 5 files round-robin) at C = 1, 16, 64 and
#    generated ~20 MB captures (3 files) at C = 4.
#  - Per row: jobs/s (jobs whose lines all arrived, from the first submit to the last line),
#    submit p50/p99, submit-to-last-syslog-line p50/p99, pipeline CPU per job (utime+stime of
#    the long-lived processes and of the children they reaped, from /proc, after minus before,
#    minus the analyzer's), the processes of the side's trees and their total PSS (max seen,
#    sampled every 0.25 s); and idle.
#  - Fault run: Redis killed (-9) and restarted mid-run (Brocapi side, RQ workers restarted when
#    they die, as supervisor would), pcapd killed (-9) and restarted mid-run (pcapd side):
#    acknowledged jobs vs jobs whose lines all arrived, after waiting for the receiver to go
#    quiet (pcapd resumes forwarding after a restart).
#
# usage: bench/brocapi.sh
# knobs (environment):
#   QUICK=1            small counts: 1.5 minutes for the Brocapi-style side, about 3 for both
#   SIDES="brocapi pcapd"   the sides to run (pcapd needs a build with [Http] and [Syslog])
#   N_C1 N_C16 N_C64 N_BIG N_FAULT   jobs per row (defaults 200 1000 2000 40 600; QUICK: 20 100 200 8 300)
#   BIG_SIZE=10M       gencap --size of the large captures (the 3 files come out at 20 MB on average)
#   STALL=30 FAULT_STALL=60   seconds without a new line after which the wait for a row's lines
#                      (the fault run's) gives up (QUICK: 10 and 20)
#   BIG_C=4 FAULT_C=16 clients of the large-capture row and of the fault run
#   FAULT_RATE=100     submissions per second in the fault run: paced, so that they go on after
#                      the restart, and above the Brocapi-style pipeline's ~45 jobs/s, so that
#                      a backlog is queued when the fault strikes
#   PCAPD=target/release/pcapd   the pcapd binary (daemon and analyzer)
#   BUILD=0            do not run cargo (use the binaries already built)
#   PUBLISH=0          do not write docs/benchmarks.md (it is written only when both sides ran)
# Writes bench/out/brocapi/{results.jsonl,brocapi.md} and the brocapi-bench section of
# docs/benchmarks.md (`PUBLISH_ONLY=1` re-publishes the last run).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
OUT=$ROOT/bench/out/brocapi
mkdir -p "$OUT"

publish_results() {
  local report
  report="<!-- brocapi-bench:start (written by bench/brocapi.sh; edits here are overwritten) -->
$(cat "$OUT/brocapi.md")
<!-- brocapi-bench:end -->"
  (cd "$ROOT" && write_doc_section brocapi-bench "$report")
}
if [ "${PUBLISH_ONLY:-0}" = 1 ]; then publish_results; exit 0; fi

if [ "${QUICK:-0}" = 1 ]; then
  N_C1=${N_C1:-20} N_C16=${N_C16:-100} N_C64=${N_C64:-200} N_BIG=${N_BIG:-8} N_FAULT=${N_FAULT:-300}
  STALL=${STALL:-10} FAULT_STALL=${FAULT_STALL:-20}
else
  N_C1=${N_C1:-200} N_C16=${N_C16:-1000} N_C64=${N_C64:-2000} N_BIG=${N_BIG:-40} N_FAULT=${N_FAULT:-600}
  STALL=${STALL:-30} FAULT_STALL=${FAULT_STALL:-60}
fi
SIDES=${SIDES:-brocapi pcapd}
BIG_SIZE=${BIG_SIZE:-10M}
BIG_C=${BIG_C:-4}
FAULT_C=${FAULT_C:-16}
FAULT_RATE=${FAULT_RATE:-100}
PCAPD=${PCAPD:-$ROOT/target/release/pcapd}
BUILD=${BUILD:-1}
PUBLISH=${PUBLISH:-1}
PASSWORD=benchpass
PCAPD_EXCLUDE="capture_loss stats loaded_scripts packet_filter reporter"
EX=$ROOT/target/release/examples
BT=(python3 "$HERE/brocapi/benchtool.py")
RUNID=$(date +%s)
RUN=$OUT/run
RESULTS=$OUT/results.jsonl
log() { echo "# $*" >&2; }

# --- what the run needs ----------------------------------------------------------------------

if [ "$BUILD" = 1 ]; then
  log "building (release)"
  targets=(--example httpload --example syslogsink --example cputime --example gencap)
  case " $SIDES " in *" pcapd "*) targets+=(--bin pcapd) ;; esac
  (cd "$ROOT" && cargo build --release --quiet "${targets[@]}")
fi
for tool in "$EX/httpload" "$EX/syslogsink" "$EX/cputime" "$EX/gencap" "$PCAPD"; do
  [ -x "$tool" ] || { echo "missing $tool (run without BUILD=0)" >&2; exit 1; }
done
if ! command -v redis-server >/dev/null; then
  log "installing Debian's redis-server"
  apt-get update -q && apt-get install -y -q redis-server
fi
VENV=$ROOT/target/bench-env
REQS=$HERE/brocapi/requirements.txt
if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$(sha256sum < "$REQS")" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV" 2>/dev/null || {
    apt-get update -q && apt-get install -y -q python3-venv && python3 -m venv "$VENV"
  }
  "$VENV/bin/pip" install -q -r "$REQS"
  sha256sum < "$REQS" > "$VENV/.requirements"
fi

rm -rf "$RUN"
mkdir -p "$RUN/bin" "$OUT/caps"
: > "$RESULTS"
# One analyzer binary for both sides and for the expected line counts.
cp "$PCAPD" "$RUN/bin/pcapd"
ANALYZER=$RUN/bin/pcapd
ACCT=$RUN/analyzer.acct
ANALYZE_CMD="$EX/cputime $ACCT $ANALYZER analyze -o {out} {pcaps}"

SMALL=("$ROOT"/share/pcapd/samples/{http.pcap,dns.pcap,tls.pcap,udp.pcap,mixed.pcapng})
BIG=()
for seed in 1 2 3; do
  f=$OUT/caps/mixed-$BIG_SIZE-seed$seed.pcap
  [ -s "$f" ] || "$EX/gencap" --kind mixed --size "$BIG_SIZE" --seed "$seed" "$f" 2>/dev/null
  BIG+=("$f")
done
mb() { local t=0 f; for f in "$@"; do t=$((t + $(stat -c %s "$f"))); done; echo $((t / $# / 1000000)); }

# A process that exited but is not reaped yet counts as gone.
alive() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# SIGTERM, then up to 10 s for each to go, then SIGKILL: only the pids given.
stop_pids() {
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for _ in $(seq 100); do alive "$p" || break; sleep 0.1; done
    alive "$p" && { log "pid $p ignored SIGTERM for 10 s: SIGKILL"; kill -KILL "$p" 2>/dev/null || true; }
    wait "$p" 2>/dev/null || true
  done
}

# The processes this shell started (each side's subshell has its own list).
PIDS=()
cleanup() { stop_pids "${PIDS[@]}" $(cat "${SIDE_DIR:-/nonexistent}/rq.pids" 2>/dev/null); }
# A pid that was reaped must not be signalled later: it may be another process's by then.
forget_pid() {
  local p kept=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}
trap cleanup EXIT

# The syslog receiver both sides forward to.
"$EX/syslogsink" --bind 127.0.0.1 --port 0 --control-port 0 > "$RUN/sink.out" 2> "$RUN/sink.err" &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$RUN/sink.out" ] && break; sleep 0.1; done
SYSLOG_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$RUN/sink.out")
CONTROL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$RUN/sink.out")

{
  echo "{\"kind\": \"meta\", \"date\": \"$(date -u +%Y-%m-%d)\", \"cpus\": $(nproc),"
  echo " \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
  echo " \"cpu\": \"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)\","
  echo " \"redis\": \"$(redis-server --version | sed 's/ sha=.*//')\","
  echo " \"python\": \"$("$VENV/bin/python" --version)\","
  echo " \"pkgs\": \"$("$VENV/bin/pip" freeze | grep -iE '^(flask|gunicorn|rq|redis)==' | tr '\n' ' ')\","
  echo " \"small\": \"$(for f in "${SMALL[@]}"; do printf '%s (%s B) ' "$(basename "$f")" "$(stat -c %s "$f")"; done)\","
  echo " \"big\": \"3 captures from gencap --kind mixed --size $BIG_SIZE --seed 1..3, $(mb "${BIG[@]}") MB each on average\","
  echo " \"pcapd\": \"$("$PCAPD" --version)\", \"counts\": \"N_C1=$N_C1 N_C16=$N_C16 N_C64=$N_C64 N_BIG=$N_BIG BIG_C=$BIG_C N_FAULT=$N_FAULT FAULT_C=$FAULT_C FAULT_RATE=$FAULT_RATE\", \"stall\": $STALL, \"fault_stall\": $FAULT_STALL, \"fault_c\": $FAULT_C, \"fault_rate\": $FAULT_RATE}"
} | python3 -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.read())))' >> "$RESULTS"

# --- the Brocapi-style side ------------------------------------------------------------------

redis_start() {
  local conf=()
  # Debian's own configuration (persistence, limits), with this run's port and directory.
  [ -r /etc/redis/redis.conf ] && conf=(/etc/redis/redis.conf)
  redis-server "${conf[@]}" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$SIDE_DIR/redis" \
    --daemonize no --supervised no --pidfile "$SIDE_DIR/redis.pid" \
    --logfile "$SIDE_DIR/redis.log" > /dev/null 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
  echo "redis-server did not start: $(tail -3 "$SIDE_DIR/redis.log")" >&2
  return 1
}

rq_start() { # $1 = worker number
  "$VENV/bin/rq" worker -u "$BROCAPI_REDIS_URL" --path "$HERE/brocapi" --name "bench-$RUNID-$1-$RANDOM" \
    brocapi >> "$SIDE_DIR/rq$1.log" 2>&1 &
  echo $! > "$SIDE_DIR/rq$1.pid"
  echo $! >> "$SIDE_DIR/rq.pids"
}

rq_pids() { cat "$SIDE_DIR"/rq[0-9].pid; }

brocapi_start() {
  SIDE_DIR=$RUN/brocapi
  mkdir -p "$SIDE_DIR/jobs" "$SIDE_DIR/redis"
  REDIS_PORT=$("${BT[@]}" free-port)
  redis_start
  export BROCAPI_JOBS_DIR=$SIDE_DIR/jobs BROCAPI_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
  export BROCAPI_COMMAND=$ANALYZE_CMD BROCAPI_SYSLOG_HOST=127.0.0.1 BROCAPI_SYSLOG_PORT=$SYSLOG_PORT
  export BROCAPI_SYSLOG_PROTO=tcp BROCAPI_SYSLOG_PREFIX=bro25_%s
  HTTP_PORT=$("${BT[@]}" free-port)
  "$VENV/bin/gunicorn" --workers 4 --bind "127.0.0.1:$HTTP_PORT" --chdir "$HERE/brocapi" \
    app:app > "$SIDE_DIR/gunicorn.log" 2>&1 &
  GUNICORN_PID=$!
  PIDS+=("$GUNICORN_PID")
  rq_start 1
  rq_start 2
  "${BT[@]}" wait-tcp "$HTTP_PORT" 30
  SUBMIT_URL=http://127.0.0.1:$HTTP_PORT/submit/pcap
  AUTH=()
  EXCLUDE=""
  TAG=b
}

brocapi_roots() { echo "$GUNICORN_PID $(rq_pids | tr '\n' ' ') $REDIS_PID"; }

brocapi_stop() { stop_pids $(brocapi_roots); }

# Supervisor's part in Brocapi's deployment: a dead RQ worker is started again after 1 s.
rq_supervise() {
  while :; do
    for i in 1 2; do
      if ! alive "$(cat "$SIDE_DIR/rq$i.pid")"; then
        sleep 1
        rq_start "$i"
        echo "rq worker $i restarted" >> "$SIDE_DIR/supervise.log"
      fi
    done
    sleep 0.2
  done
}

brocapi_fault() {
  log "fault: kill -9 redis-server ($REDIS_PID), restart it after 1 s"
  rq_supervise &
  SUPERVISE_PID=$!
  kill -9 "$REDIS_PID"
  wait "$REDIS_PID" 2>/dev/null || true
  forget_pid "$REDIS_PID"
  sleep 1
  redis_start
  local loaded
  loaded=$(grep -ohE 'Done loading RDB, keys loaded: [0-9]+' "$SIDE_DIR/redis.log" | tail -1) || true
  FAULT_NOTE="redis-server restarted on its last snapshot (Debian's save rules): ${loaded:-no snapshot, nothing loaded}"
}

brocapi_fault_end() {
  kill "$SUPERVISE_PID" 2>/dev/null || true
  wait "$SUPERVISE_PID" 2>/dev/null || true
  local restarted
  restarted=$(grep -c restarted "$SIDE_DIR/supervise.log" 2>/dev/null || true)
  FAULT_NOTE="$FAULT_NOTE; RQ workers restarted: ${restarted:-0}; RQ failed registry: $(redis-cli -p "$REDIS_PORT" zcard rq:failed:brocapi 2>/dev/null || echo '?')"
  FAULT_STATES=""
}

# --- the pcapd side --------------------------------------------------------------------------

pcapd_config() {
  cat > "$SIDE_DIR/pcapd.cfg" <<CFG
[Global]
port = 0
bind = 127.0.0.1
ssl = false
password = $PASSWORD
pool = 2
backend = command
jobs_dir = $SIDE_DIR/jobs
state_dir = $SIDE_DIR/state
max_queue = 100000

[Command]
command = $ANALYZE_CMD

[Http]
port = $HTTP_PORT
ssl = false

[Syslog]
host = 127.0.0.1
port = $SYSLOG_PORT
proto = tcp
format = rfc3164
framing = non-transparent
prefix = bro25_%s
CFG
  chmod 600 "$SIDE_DIR/pcapd.cfg"
}

pcapd_serve() {
  "$PCAPD" serve -c "$SIDE_DIR/pcapd.cfg" >> "$SIDE_DIR/pcapd.out" 2>> "$SIDE_DIR/pcapd.err" &
  PCAPD_PID=$!
  PIDS+=("$PCAPD_PID")
  for _ in $(seq 300); do
    if ! kill -0 "$PCAPD_PID" 2>/dev/null; then
      local rc=0
      wait "$PCAPD_PID" || rc=$?
      echo "pcapd serve exited with $rc: $(tail -3 "$SIDE_DIR/pcapd.err")" >&2
      [ "$rc" = 64 ] && echo "(exit 64: this build refuses the config; [Http] and [Syslog] need the gateway build)" >&2
      return 1
    fi
    "${BT[@]}" wait-http "http://127.0.0.1:$HTTP_PORT/healthz" 0.2 2>/dev/null && return 0
  done
  echo "pcapd's /healthz did not answer 200 within 60 s" >&2
  return 1
}

pcapd_start() {
  SIDE_DIR=$RUN/pcapd
  mkdir -p "$SIDE_DIR/jobs" "$SIDE_DIR/state"
  HTTP_PORT=$("${BT[@]}" free-port)
  pcapd_config
  "$PCAPD" check-config -c "$SIDE_DIR/pcapd.cfg" >&2 || return 1
  pcapd_serve || return 1
  SUBMIT_URL=http://127.0.0.1:$HTTP_PORT/submit/pcap
  AUTH=(--authorization "Basic $(printf 'bench:%s' "$PASSWORD" | base64)")
  EXCLUDE=$PCAPD_EXCLUDE
  TAG=p
}

pcapd_roots() { echo "$PCAPD_PID"; }

pcapd_stop() { stop_pids "$PCAPD_PID"; }

pcapd_fault() {
  local old survivors=""
  old=$(tree_pids "$PCAPD_PID")
  log "fault: kill -9 pcapd ($PCAPD_PID), restart it"
  kill -9 "$PCAPD_PID"
  wait "$PCAPD_PID" 2>/dev/null || true
  forget_pid "$PCAPD_PID"
  # Its workers must go by themselves once the daemon is gone.
  for _ in $(seq 100); do
    survivors=""
    for p in $old; do alive "$p" && survivors+=" $p"; done
    [ -z "$survivors" ] && break
    sleep 0.1
  done
  FAULT_NOTE="processes of the killed daemon still alive 10 s later: ${survivors:-none}"
  for p in $survivors; do kill -9 "$p" 2>/dev/null || true; done
  pcapd_serve
}

pcapd_fault_end() {
  FAULT_STATES=$("${BT[@]}" job-states "http://127.0.0.1:$HTTP_PORT" "${AUTH[1]}" "$RUN/fault-$SIDE/jobs.jsonl")
}

# --- rows ------------------------------------------------------------------------------------

tree_pids() { "${BT[@]}" tree "$@" | python3 -c 'import json,sys; print(" ".join(map(str, json.load(sys.stdin)["pids"])))'; }

# The side's processes once nothing runs: the same tree twice, 0.5 s apart.
stable_tree() {
  local a b
  b=$(tree_pids $("${SIDE}_roots"))
  for _ in $(seq 60); do
    sleep 0.5
    a=$b
    b=$(tree_pids $("${SIDE}_roots"))
    [ "$a" = "$b" ] && break
  done
  echo "$b"
}

# Waits until the side's trees hold only their long-lived processes (no job in flight).
settle() {
  local now
  sleep 1
  for _ in $(seq 100); do
    now=$(tree_pids $("${SIDE}_roots"))
    [ "$now" = "$LONG_LIVED" ] && return 0
    sleep 0.1
  done
  log "warning: the $SIDE processes did not settle ($now vs $LONG_LIVED)"
}

wait_lines() { # $1 = row dir, $2 = tag prefix, $3 = stall seconds
  "${BT[@]}" wait --control "$CONTROL" --jobs "$1/jobs.jsonl" --analyzer "$ANALYZER" \
    --exclude "$EXCLUDE" --cache "$RUN/expected.json" --prefix "$2" --stall "$3" \
    --timeout 900 --out "$1/stats.json"
}

row() { # $1 = row name, $2 = workload label, $3 = C, $4 = N, captures...
  local name=$1 label=$2 c=$3 n=$4 dir=$RUN/$1-$SIDE sampler offset
  shift 4
  mkdir -p "$dir"
  log "$SIDE: $label, C = $c, $n jobs"
  offset=$(stat -c %s "$ACCT" 2>/dev/null || echo 0)
  "${BT[@]}" cpu $LONG_LIVED > "$dir/cpu-before.json"
  "${BT[@]}" sample "$dir/samples.jsonl" 0.25 $("${SIDE}_roots") &
  sampler=$!
  "$EX/httpload" --url "$SUBMIT_URL" "${AUTH[@]}" --jobs "$n" -c "$c" \
    --tag-prefix "$TAG-$RUNID-$name" --out "$dir/jobs.jsonl" "$@" > "$dir/summary.json"
  wait_lines "$dir" "$TAG-$RUNID-$name-" "$STALL"
  settle
  "${BT[@]}" cpu $LONG_LIVED > "$dir/cpu-after.json"
  kill -TERM "$sampler"; wait "$sampler" 2>/dev/null || true
  "${BT[@]}" row --side "$SIDE_LABEL" --workload "$label" --c "$c" --jobs "$dir/jobs.jsonl" \
    --summary "$dir/summary.json" --stats "$dir/stats.json" --analyzer "$ANALYZER" \
    --exclude "$EXCLUDE" --cache "$RUN/expected.json" --cpu-before "$dir/cpu-before.json" \
    --cpu-after "$dir/cpu-after.json" --acct "$ACCT" --acct-offset "$offset" \
    --samples "$dir/samples.jsonl" --out "$RUN/rows.jsonl" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); r["kind"]="row"; print(json.dumps(r))' >> "$RESULTS"
  tail -1 "$RESULTS" >&2
}

idle() { # $1 = what
  "${BT[@]}" tree $("${SIDE}_roots") | python3 -c '
import json, sys
r = json.load(sys.stdin); del r["pids"]
r.update(kind="idle", side=sys.argv[1], what=sys.argv[2]); print(json.dumps(r))' "$SIDE_LABEL" "$1" >> "$RESULTS"
}

acked() { local n; n=$(grep -c '"ok":true' "$1" 2>/dev/null) || true; echo "${n:-0}"; }

fault() {
  local dir=$RUN/fault-$SIDE lg half=$((N_FAULT / 2))
  mkdir -p "$dir"
  log "$SIDE: fault run, C = $FAULT_C, $N_FAULT jobs"
  "${BT[@]}" stats "$CONTROL" "$TAG-$RUNID-" "$dir/stats-before.json"
  "$EX/httpload" --url "$SUBMIT_URL" "${AUTH[@]}" --jobs "$N_FAULT" -c "$FAULT_C" \
    --rate "$FAULT_RATE" --retry-delay-ms 200 --tag-prefix "$TAG-$RUNID-fault" --out "$dir/jobs.jsonl" \
    "${SMALL[@]}" > "$dir/summary.json" &
  lg=$!
  while [ "$(acked "$dir/jobs.jsonl")" -lt "$half" ]; do
    alive "$lg" || break
    sleep 0.02
  done
  FAULT_NOTE="" FAULT_STATES=""
  date +%s.%N > "$dir/fault.time"
  "${SIDE}_fault"
  wait "$lg" || true
  wait_lines "$dir" "$TAG-$RUNID-fault-" "$FAULT_STALL"
  # Every tag of the side, so that earlier jobs that were run or forwarded again show up
  # (once nothing has arrived for any of them for 10 s).
  "${BT[@]}" quiet "$CONTROL" "$TAG-$RUNID-" 10 300
  "${BT[@]}" stats "$CONTROL" "$TAG-$RUNID-" "$dir/stats-after.json"
  "${SIDE}_fault_end"
  "${BT[@]}" fault --side "$SIDE_LABEL" --fault "$FAULT_LABEL" --jobs "$dir/jobs.jsonl" \
    --stats-before "$dir/stats-before.json" --stats "$dir/stats-after.json" --analyzer "$ANALYZER" \
    --exclude "$EXCLUDE" --cache "$RUN/expected.json" --earlier-prefix "$TAG-$RUNID-" \
    --fault-prefix "$TAG-$RUNID-fault-" --fault-time "$dir/fault.time" --states "$FAULT_STATES" --note "$FAULT_NOTE" \
    --out "$RUN/faults.jsonl" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); r["kind"]="fault"; print(json.dumps(r))' >> "$RESULTS"
  tail -1 "$RESULTS" >&2
}

run_side() {
  SIDE=$1
  PIDS=()
  trap cleanup EXIT
  case $SIDE in
    brocapi) SIDE_LABEL="Brocapi-style" FAULT_LABEL="kill -9 redis-server, restart" ;;
    pcapd) SIDE_LABEL="pcapd" FAULT_LABEL="kill -9 pcapd, restart" ;;
    *) echo "unknown side $SIDE" >&2; return 1 ;;
  esac
  log "starting the $SIDE side"
  "${SIDE}_start" || return 1
  # Warm-up: every small capture once; this also proves the whole path (upload, analyzer,
  # forwarding) before anything is measured.
  local warm=$RUN/warm-$SIDE
  mkdir -p "$warm"
  "$EX/httpload" --url "$SUBMIT_URL" "${AUTH[@]}" --jobs ${#SMALL[@]} -c 1 \
    --tag-prefix "$TAG-$RUNID-warm" --out "$warm/jobs.jsonl" "${SMALL[@]}" > "$warm/summary.json"
  if [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ok"])' "$warm/summary.json")" != ${#SMALL[@]} ]; then
    echo "$SIDE: warm-up submissions failed: $(cat "$warm/summary.json")" >&2
    "${SIDE}_stop"; return 1
  fi
  wait_lines "$warm" "$TAG-$RUNID-warm-" 15
  LONG_LIVED=$(stable_tree)
  idle "after start and 5 warm-up jobs"
  row s1 "small" 1 "$N_C1" "${SMALL[@]}"
  row s16 "small" 16 "$N_C16" "${SMALL[@]}"
  row s64 "small" 64 "$N_C64" "${SMALL[@]}"
  row big "$(mb "${BIG[@]}") MB" "$BIG_C" "$N_BIG" "${BIG[@]}"
  idle "after the rows"
  fault
  "${SIDE}_stop"
}

RAN=()
for side in $SIDES; do
  # A subshell per side, so that `set -e` holds inside it and its processes are its own.
  set +e
  (set -e; run_side "$side")
  rc=$?
  set -e
  if [ "$rc" = 0 ]; then RAN+=("$side"); else log "the $side side did not run to the end (exit $rc)"; fi
done

# --- the report ------------------------------------------------------------------------------

"${BT[@]}" report "$RESULTS" > "$OUT/brocapi.md"
cat "$OUT/brocapi.md"
if [ "$PUBLISH" = 1 ] && [ "${#RAN[@]}" = 2 ]; then
  publish_results
  log "results in $OUT/brocapi.md and docs/benchmarks.md"
else
  log "results in $OUT/brocapi.md (docs/benchmarks.md not written: sides run = ${RAN[*]:-none})"
fi
# Every side asked for must have run to the end.
[ "${#RAN[@]}" = "$(echo $SIDES | wc -w)" ]
