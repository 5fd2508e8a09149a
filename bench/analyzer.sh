#!/usr/bin/env bash
# Analyzer speed benchmark: pcapd's builtin analyzer against tshark on the same capture,
# in the same run, on the same machine.
#
#   bench/analyzer.sh            # 1 GiB capture, seed 1
#   SIZE=4G SEED=7 bench/analyzer.sh
#
# Steps: install tshark and GNU time if missing (apt-get, needs root), build release,
# generate a realistic capture once (cached in bench/out/, which is gitignored), warm the page
# cache, then time with /usr/bin/time -v:
#   1. pcapd analyze --logs conn -o DIR FILE     (conn.log only)
#   2. pcapd analyze -o DIR FILE                 (all logs)
#   3. tshark -r FILE -q -z conv,tcp -z conv,udp (tshark's conversation table: the anchor)
# and prints a Markdown table (MB/s wall and per CPU-second, packets/s per CPU-second, peak
# RSS, speedup vs tshark), which also replaces the analyzer section of docs/benchmarks.md.
# Exits non-zero if a measured command failed (e.g. `pcapd analyze` does not exist yet);
# the rows that did run are still reported.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
source bench/lib.sh
size=${SIZE:-1G}
seed=${SEED:-1}
out=bench/out
mkdir -p "$out"

need_apt=()
command -v tshark >/dev/null || need_apt+=(tshark)
[ -x /usr/bin/time ] || need_apt+=(time)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== installing ${need_apt[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== building (release)"
cargo build --release --bin pcapd --example gencap 2>&1 | grep -v -E '^\s*(Compiling|Finished)' || true
pcapd=${PCAPD:-target/release/pcapd}  # PCAPD=path overrides, e.g. to compare builds
gencap=target/release/examples/gencap

capture=$out/bench-$size-seed$seed.pcap
stats=$capture.stats
if [ ! -s "$capture" ] || [ ! -s "$stats" ]; then
    echo "== generating $capture (cached for later runs)"
    "$gencap" --kind mixed --size "$size" --seed "$seed" "$capture" 2> "$stats.tmp"
    mv "$stats.tmp" "$stats"
fi
cat "$stats"
bytes=$(stat -c %s "$capture")
packets=$(sed -n 's/.*: \([0-9]*\) packets,.*/\1/p' "$stats" | head -1)

echo "== warming the page cache"
cat "$capture" > /dev/null

# measure NAME CMD... : runs CMD under /usr/bin/time -v, records "name wall cpu rss status".
results=$out/results.txt
: > "$results"
failed=0
measure() {
    local name=$1
    shift
    local timing=$out/time-$name.txt log=$out/run-$name.log
    echo "== $name: $*"
    local status=0
    /usr/bin/time -v -o "$timing" "$@" > "$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        echo "   FAILED (exit $status); last lines of $log:"
        tail -n 5 "$log" | sed 's/^/   | /'
        failed=1
        echo "$name - - - failed" >> "$results"
        return
    fi
    awk -v name="$name" '
        /Elapsed \(wall clock\)/ { n = split($NF, p, ":"); wall = (n == 3) ? p[1]*3600 + p[2]*60 + p[3] : p[1]*60 + p[2] }
        /User time \(seconds\)/ { user = $NF }
        /System time \(seconds\)/ { sys = $NF }
        /Maximum resident set size/ { rss = $NF }
        END { printf "%s %.3f %.3f %d ok\n", name, wall, user + sys, rss }' "$timing" >> "$results"
    tail -n 1 "$results" | awk '{ printf "   wall %ss, cpu %ss, peak RSS %d MiB\n", $2, $3, $4 / 1024 }'
}

# A build without the subcommand may still exit 0 (e.g. a placeholder main), so require
# clap's usage text for `analyze`, and below, the logs it must write.
have_analyze=1
if ! "$pcapd" analyze --help 2>&1 | grep -q -i 'usage:.*analyze'; then
    have_analyze=0
    echo "!! '$pcapd analyze' is not available in this build: pcapd rows are skipped" >&2
    echo "pcapd-conn - - - missing" >> "$results"
    echo "pcapd-all - - - missing" >> "$results"
    failed=1
fi
if [ "$have_analyze" -eq 1 ]; then
    rm -rf "$out/logs-conn" "$out/logs-all"
    measure pcapd-conn "$pcapd" analyze --logs conn -o "$out/logs-conn" "$capture"
    measure pcapd-all "$pcapd" analyze -o "$out/logs-all" "$capture"
    for dir in logs-conn logs-all; do
        if [ ! -s "$out/$dir/conn.log" ]; then
            echo "!! pcapd analyze wrote no $out/$dir/conn.log: its timing is not a result" >&2
            sed -i "s/^pcapd-${dir#logs-} .* ok\$/pcapd-${dir#logs-} - - - failed/" "$results"
            failed=1
        fi
    done
    ls -l "$out/logs-all" 2>/dev/null | sed 's/^/   /' || true
fi
measure tshark tshark -r "$capture" -q -z conv,tcp -z conv,udp

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
cores=$(nproc)
tshark_version=$(tshark --version 2>/dev/null | head -1)
rustc_version=$(rustc --version 2>/dev/null || echo unknown)
today=$(date -u +%Y-%m-%d)

table=$(awk -v bytes="$bytes" -v packets="$packets" '
    BEGIN {
        label["pcapd-conn"] = "`pcapd analyze --logs conn` (conn.log only)"
        label["pcapd-all"] = "`pcapd analyze` (all logs)"
        label["tshark"] = "`tshark -q -z conv,tcp -z conv,udp`"
    }
    { name[NR] = $1; wall[NR] = $2; cpu[NR] = $3; rss[NR] = $4; status[NR] = $5
      if ($1 == "tshark" && $5 == "ok") tshark_wall = $2 }
    END {
        print "| command | wall s | CPU s | MB/s (wall) | MB/s per core | packets/s per core | peak RSS MiB | speedup vs tshark (wall) |"
        print "|---|---:|---:|---:|---:|---:|---:|---:|"
        for (i = 1; i <= NR; i++) {
            if (status[i] != "ok") {
                printf "| %s | %s | | | | | | |\n", label[name[i]], (status[i] == "missing" ? "not available: `pcapd analyze` missing in this build" : "failed")
                continue
            }
            if (wall[i] <= 0) wall[i] = 0.001
            speedup = (tshark_wall > 0 && wall[i] > 0) ? sprintf("%.1f×", tshark_wall / wall[i]) : "–"
            percore = cpu[i] > 0 ? sprintf("%.0f", bytes / 1e6 / cpu[i]) : "–"
            pps = cpu[i] > 0 ? sprintf("%.0f", packets / cpu[i]) : "–"
            printf "| %s | %.2f | %.2f | %.0f | %s | %s | %.0f | %s |\n", label[name[i]], wall[i], cpu[i], bytes / 1e6 / wall[i], percore, pps, rss[i] / 1024, speedup
        }
    }' "$results")

session_line=$(sed -n 's/^sessions: //p' "$stats")
report=$(cat <<REPORT
<!-- analyzer-bench:start (written by bench/analyzer.sh; edits here are overwritten) -->
## Analyzer throughput

Measured $today on $cores CPUs ($cpu_model), $tshark_version, $rustc_version.

Capture: \`$capture\`, $bytes bytes, $packets packets, generated by
\`gencap --kind mixed --size $size --seed $seed\` (sessions: $session_line).
The file is read once before timing, so every command reads from the page cache.
pcapd binary: \`$pcapd\`.

$table

MB/s are 10^6 bytes of capture file per second. "Per core" divides by CPU time (user +
system), so it does not depend on how many cores a command could use; speedup compares wall
time with tshark's in the same run. Peak RSS is \`/usr/bin/time -v\`'s maximum resident set.
Rerun with \`bench/analyzer.sh\` (\`SIZE=4G SEED=2 bench/analyzer.sh\` for another capture).
<!-- analyzer-bench:end -->
REPORT
)

echo
echo "$report"

write_doc_section analyzer-bench "$report"
echo
echo "== wrote the analyzer section of docs/benchmarks.md"
exit "$failed"
