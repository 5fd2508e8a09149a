#!/usr/bin/env bash
# Analyzer speed benchmark: pcapd's builtin analyzer against tshark on the same captures, in
# the same run, on the same machine, over several workloads:
#
#   mixed   gencap --kind mixed (HTTP/TLS-heavy office uplink, big transfers)     SIZE, default 1G
#   http    gencap --kind http: HTTP only, bodies up to 256 KiB                    HTTP_SIZE, default 300M
#   tls     gencap --kind tls: TLS handshakes and application data               TLS_SIZE, default 300M
#   dns     bench/smallflows.py dns: DNS over UDP, about one flow per query         2,000,000 packets
#   scan    bench/smallflows.py scan: SYN scan, SYN/RST and unanswered SYNs          2,250,000 packets
#   beacon  bench/smallflows.py beacon: many short TCP connections with tiny bodies 1,500,000 packets
#   mail    gencap --kind mail: SMTP (MIME attachments, STARTTLS for some), FTP     MAIL_SIZE, default 300M
#           with its data connections, SSH logins and scp/sftp, some DNS
#
#   bench/analyzer.sh                                 # every workload
#   bench/analyzer.sh FILE...                         # your own captures instead (table printed,
#                                                     # docs/benchmarks.md left alone)
#   WORKLOADS="dns scan" bench/analyzer.sh            # some of them
#   BASE=/tmp/pcapd-before bench/analyzer.sh          # also time an older pcapd build (same run)
#   SIZE=4G SEED=7 bench/analyzer.sh                  # another mixed capture
#   WORKLOADS=mail MAIL_SIZE=200M bench/analyzer.sh   # the mail mix alone, smaller
#
# The smallflows captures are written by a separate Python generator, not by pcapd's own
# synthesizer, so the figures do not rest on one generator. Captures are cached in bench/out/
# (gitignored). Each capture is read once before timing (page cache), then timed with
# /usr/bin/time -v (the seed is SEED, default 1, for every generated capture):
#   pcapd analyze -C --logs conn -o DIR FILE     (conn.log only)
#   pcapd analyze -C -o DIR FILE                 (all logs)
#   pcapd analyze -C --hashes none -o DIR FILE   (all logs without the file digests)
#   tshark -n -q -r FILE -z conv,tcp -z conv,udp (tshark's conversation table: the anchor)
# and prints a Markdown table (CPU seconds, MB/s, packets/s and new connections/s per
# CPU-second, CPU µs per connection, peak RSS, CPU ratio to tshark), which also replaces the
# analyzer section of docs/benchmarks.md (not for FILE arguments); when WORKLOADS names only
# some workloads, their rows replace theirs and the other workloads' rows are kept. Besides
# conn.log, a workload may require logs of its protocols (mail: smtp, ftp, ssh) from the
# all-logs run. Exits non-zero if a measured command failed or a required log is missing; the
# rows that ran are kept.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
source bench/lib.sh
size=${SIZE:-1G}
seed=${SEED:-1}
all_workloads="mixed http tls dns scan beacon mail"
workloads=${WORKLOADS:-$all_workloads}
http_size=${HTTP_SIZE:-300M}
tls_size=${TLS_SIZE:-300M}
mail_size=${MAIL_SIZE:-300M}
# Logs the all-logs run must write for a workload's timing to count (besides conn.log).
declare -A required_logs=([mail]="smtp ftp ssh")
# A user's captures: each file is a workload of its own, named by its position.
declare -A user_file
user_files=$#
if [ $# -gt 0 ]; then
    workloads=""
    n=0
    for f in "$@"; do
        [ -r "$f" ] || { echo "bench/analyzer.sh: cannot read $f" >&2; exit 2; }
        n=$((n + 1))
        user_file[file$n]=$f
        workloads="$workloads file$n"
    done
fi
base=${BASE:-}
out=bench/out
mkdir -p "$out"

apt_install_missing tshark time python3
build_release

# capture_for WORKLOAD: makes the workload's capture once and prints its path.
capture_for() {
    local w=$1 f
    if [ -n "${user_file[$w]:-}" ]; then
        echo "${user_file[$w]}"
        return
    fi
    case "$w" in
        mixed)
            f=$out/bench-$size-seed$seed.pcap
            [ -s "$f" ] || "$gencap" --kind mixed --size "$size" --seed "$seed" "$f" 2> "$f.stats" >&2
            ;;
        http)
            f=$out/http-$http_size-seed$seed.pcap
            [ -s "$f" ] || "$gencap" --kind http --size "$http_size" --seed "$seed" "$f" 2> "$f.stats" >&2
            ;;
        tls)
            f=$out/tls-$tls_size-seed$seed.pcap
            [ -s "$f" ] || "$gencap" --kind tls --size "$tls_size" --seed "$seed" "$f" 2> "$f.stats" >&2
            ;;
        mail)
            f=$out/mail-$mail_size-seed$seed.pcap
            [ -s "$f" ] || "$gencap" --kind mail --size "$mail_size" --seed "$seed" "$f" 2> "$f.stats" >&2
            ;;
        dns) f=$out/dns.pcap; [ -s "$f" ] || python3 bench/smallflows.py dns --packets 2000000 --seed "$seed" "$f" ;;
        scan) f=$out/scan.pcap; [ -s "$f" ] || python3 bench/smallflows.py scan --packets 2250000 --seed "$seed" "$f" ;;
        beacon) f=$out/beacon.pcap; [ -s "$f" ] || python3 bench/smallflows.py beacon --packets 1500000 --seed "$seed" "$f" ;;
        *) echo "unknown workload $w (${all_workloads// /, })" >&2; return 1 ;;
    esac
    echo "$f"
}

results=$out/results.txt
: > "$results"
failed=0
# measure WORKLOAD NAME CMD... : runs CMD under /usr/bin/time -v and records
# "workload name wall cpu rss_kib status connections".
measure() {
    local workload=$1 name=$2
    shift 2
    local timing=$out/time-$workload-$name.txt log=$out/run-$workload-$name.log
    echo "== $workload / $name: $*"
    local status=0
    /usr/bin/time -v -o "$timing" "$@" > "$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        echo "   FAILED (exit $status); last lines of $log:"
        tail -n 5 "$log" | sed 's/^/   | /'
        failed=1
        echo "$workload $name - - - failed -" >> "$results"
        return
    fi
    local conns
    conns=$(sed -n 's/.* \([0-9]*\) connections.*/\1/p' "$log" | head -1)
    awk -v w="$workload" -v name="$name" -v conns="${conns:--}" '
        /Elapsed \(wall clock\)/ { n = split($NF, p, ":"); wall = (n == 3) ? p[1]*3600 + p[2]*60 + p[3] : p[1]*60 + p[2] }
        /User time \(seconds\)/ { user = $NF }
        /System time \(seconds\)/ { sys = $NF }
        /Maximum resident set size/ { rss = $NF }
        END { printf "%s %s %.3f %.3f %d ok %s\n", w, name, wall, user + sys, rss, conns }' "$timing" >> "$results"
    tail -n 1 "$results" | awk '{ printf "   wall %ss, cpu %ss, peak RSS %d MiB\n", $3, $4, $5 / 1024 }'
}

declare -A cap_bytes cap_packets
for w in $workloads; do
    capture=$(capture_for "$w")
    cap_bytes[$w]=$(stat -c %s "$capture")
    echo "== $w: $capture (${cap_bytes[$w]} bytes); warming the page cache"
    cat "$capture" > /dev/null
    rm -rf "$out/logs-$w-"*
    measure "$w" pcapd-conn "$pcapd" analyze -C --logs conn -o "$out/logs-$w-conn" "$capture"
    measure "$w" pcapd-all "$pcapd" analyze -C -o "$out/logs-$w-all" "$capture"
    # The same without the three file digests (MD5 alone runs at about 650 MB/s), so that
    # what the digests cost on body-heavy mixes is visible beside the rest.
    measure "$w" pcapd-nohash "$pcapd" analyze -C --hashes none -o "$out/logs-$w-nohash" "$capture"
    if [ -n "$base" ]; then
        measure "$w" base-conn "$base" analyze -C --logs conn -o "$out/logs-$w-base-conn" "$capture"
        measure "$w" base-all "$base" analyze -C -o "$out/logs-$w-base-all" "$capture"
    fi
    measure "$w" tshark tshark -n -q -r "$capture" -z conv,tcp -z conv,udp
    cap_packets[$w]=$(sed -n 's/^\([0-9]*\) packets,.*/\1/p' "$out/run-$w-pcapd-conn.log" | head -1)
    [ -s "$out/logs-$w-conn/conn.log" ] || { echo "!! no conn.log for $w: its timing is not a result" >&2; failed=1; }
    for log in ${required_logs[$w]:-}; do
        [ -s "$out/logs-$w-all/$log.log" ] || { echo "!! no $log.log for $w: the all-logs timing leaves out its protocol" >&2; failed=1; }
    done
done

sizes=""
for w in $workloads; do sizes="$sizes $w=${cap_bytes[$w]}:${cap_packets[$w]:-0}"; done

table=$(awk -v sizes="$sizes" '
    BEGIN {
        n = split(sizes, parts, " ")
        for (i = 1; i <= n; i++) { split(parts[i], kv, "="); split(kv[2], bp, ":"); bytes[kv[1]] = bp[1]; pkts[kv[1]] = bp[2] }
        label["pcapd-conn"] = "pcapd `--logs conn`"; label["pcapd-all"] = "pcapd, all logs"
        label["pcapd-nohash"] = "pcapd, all logs, `--hashes none`"
        label["base-conn"] = "before (`BASE`), `--logs conn`"; label["base-all"] = "before (`BASE`), all logs"
        label["tshark"] = "tshark conv,tcp conv,udp"
    }
    { w[NR] = $1; name[NR] = $2; cpu[NR] = $4; rss[NR] = $5; status[NR] = $6; conns[NR] = $7
      if ($2 == "tshark" && $6 == "ok") tshark_cpu[$1] = $4
      if ($2 == "pcapd-conn" && $7 != "-") flows[$1] = $7 }
    END {
        print "| capture | command | CPU s | MB/s per core | packets/s per core | connections/s per core | CPU µs per connection | peak RSS MiB | tshark CPU ÷ this |"
        print "|---|---|---:|---:|---:|---:|---:|---:|---:|"
        for (i = 1; i <= NR; i++) {
            if (status[i] != "ok") { printf "| %s | %s | failed | | | | | | |\n", w[i], label[name[i]]; continue }
            c = cpu[i] > 0 ? cpu[i] : 0.001
            per_flow = flows[w[i]] > 0 ? sprintf("%.2f", c * 1e6 / flows[w[i]]) : "–"
            flow_rate = flows[w[i]] > 0 ? sprintf("%.0f", flows[w[i]] / c) : "–"
            ratio = tshark_cpu[w[i]] > 0 ? sprintf("%.1f×", tshark_cpu[w[i]] / c) : "–"
            printf "| %s | %s | %.2f | %.0f | %.0f | %s | %s | %.0f | %s |\n", w[i], label[name[i]], c, bytes[w[i]] / 1e6 / c, pkts[w[i]] / c, flow_rate, per_flow, rss[i] / 1024, ratio
        }
    }' "$results")

# A run of some workloads keeps the other workloads' rows and capture lines from the current
# section, in the usual workload order, and says when those were measured.
kept_note=""
if [ "$user_files" -eq 0 ] && [ -f docs/benchmarks.md ]; then
    old_section=$(sed -n '/<!-- analyzer-bench:start/,/<!-- analyzer-bench:end/p' docs/benchmarks.md)
    kept=()
    merged=$(head -n 2 <<< "$table")
    for w in $all_workloads; do
        if [[ " $workloads " == *" $w "* ]]; then
            rows=$(grep -F "| $w |" <<< "$table" || true)
        else
            rows=$(grep -F "| $w |" <<< "$old_section" || true)
            [ -z "$rows" ] || kept+=("$w")
        fi
        [ -z "$rows" ] || merged="$merged
$rows"
    done
    table=$merged
    if [ ${#kept[@]} -gt 0 ]; then
        old_date=$(sed -n 's/^Measured \([0-9-]*\) .*/\1/p' <<< "$old_section" | head -1)
        old_binary=$(sed -n 's/^pcapd binary: \(.*\)\.$/\1/p' <<< "$old_section" | head -1)
        kept_note="Rows of ${kept[*]} are kept from the earlier run (${old_date:-date unknown}${old_binary:+, pcapd binary: $old_binary}); this run measured $workloads."
        for w in "${kept[@]}"; do
            line=$(grep -F -- "- \`$w\`:" <<< "$old_section" || true)
            [ -z "$line" ] || kept_captures="${kept_captures:-}
$line"
        done
    fi
fi

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
cores=$(nproc)
tshark_version=$(tshark --version 2>/dev/null | head -1)
rustc_version=$(rustc --version 2>/dev/null || echo unknown)
today=$(date -u +%Y-%m-%d)
captures_text="${kept_captures:-}"
for w in $workloads; do
    captures_text="$captures_text
- \`$w\`: ${user_file[$w]:+\`${user_file[$w]}\`, }${cap_bytes[$w]} bytes, ${cap_packets[$w]:-?} packets"
done

captures_intro="Captures (\`mixed\`, \`http\`, \`tls\`, \`mail\`: \`gencap --kind KIND --seed $seed\` with
\`--size\` $size, $http_size, $tls_size and $mail_size; \`dns\`, \`scan\`, \`beacon\`:
\`bench/smallflows.py --seed $seed\`, a generator independent of pcapd's own):"
[ "$user_files" -eq 0 ] || captures_intro="Captures given on the command line:"

report=$(cat <<REPORT
<!-- analyzer-bench:start (written by bench/analyzer.sh; edits here are overwritten) -->
## Analyzer throughput

Measured $today on $cores CPUs ($cpu_model), $tshark_version, $rustc_version.${kept_note:+
$kept_note}
pcapd binary: \`$pcapd\`${base:+; \`BASE\` = \`$base\` (the build before the change under test)}.

$captures_intro
$captures_text

$table

CPU is user + system time, so per-core figures do not depend on how many cores a command
could use; "connections/s" and "CPU µs per connection" use the connections pcapd logged
(every one is a new flow); the last column
is how many times more CPU tshark needed for the same capture in the same run. MB/s are 10^6
bytes of capture file. Every capture is read once before timing (page cache). Peak RSS is
\`/usr/bin/time -v\`'s maximum resident set. Rerun with \`bench/analyzer.sh\`.
<!-- analyzer-bench:end -->
REPORT
)

echo
echo "$report"

if [ "$user_files" -eq 0 ]; then
    write_doc_section analyzer-bench "$report"
    echo
    echo "== wrote the analyzer section of docs/benchmarks.md"
fi
exit "$failed"
