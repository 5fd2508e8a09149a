#!/usr/bin/env bash
# Files benchmark (docs/files.md): what hashing, MIME sniffing, extraction and a YARA detector
# cost the builtin analyzer, and extraction against tshark's HTTP object export, on the
# HTTP-heavy mixed capture of bench/analyzer.sh (gencap --kind mixed, SIZE, default 512M).
#
#   bench/files.sh
#   SIZE=1G SEED=7 bench/files.sh
#   BASE=/tmp/pcapd-before bench/files.sh    # also time an older pcapd (same run)
#
# Each capture is read once before timing (page cache), then timed with /usr/bin/time -v:
#   pcapd analyze -C --logs conn,http      no files.log and no extraction: no hashing (the
#                                          MIME type is still sniffed, http.log lists it)
#   pcapd analyze -C                       all logs: files.log with MD5/SHA-1/SHA-256
#   pcapd analyze -C --hashes sha256       the same with SHA-256 only
#   pcapd analyze -C --extract '*'         every file written under extract_files/ (and the
#                                          same with --hashes sha256)
#   pcapd analyze -C -c yara.cfg           the same plus a YARA detector on every file
#   tshark -n -q -r FILE --export-objects http,DIR   (tshark's extraction: the anchor)
# and prints a Markdown table (CPU seconds, capture MB/s per CPU second, files per CPU
# second, peak RSS), which also replaces the files section of docs/benchmarks.md. Targets
# (issue 15): hashing and sniffing cost at most 30 % of the throughput without them;
# extraction at least 10x tshark's export throughput.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
source bench/lib.sh
size=${SIZE:-512M}
seed=${SEED:-1}
base=${BASE:-}
out=bench/out
mkdir -p "$out"

apt_install_missing tshark yara time
build_release

capture=$out/bench-$size-seed$seed.pcap
[ -s "$capture" ] || "$gencap" --kind mixed --size "$size" --seed "$seed" "$capture" 2> "$capture.stats" >&2
cap_bytes=$(stat -c %s "$capture")
echo "== $capture ($cap_bytes bytes); warming the page cache"
cat "$capture" > /dev/null

# A YARA detector on every extracted file; the rule looks for a string of the generator's
# HTML pages, so some files are hits.
work=$out/files-bench
rm -rf "$work"
mkdir -p "$work"
cat > "$work/rules.yar" <<'EOF'
rule html_page { strings: $a = "<html" nocase condition: $a }
EOF
printf '[Extract]\nmime = *\n[Detect]\ntimeout = 30s\n[Detector yara]\ncommand = yara %s {file}\nhit_output = true\n' \
    "$root/$work/rules.yar" > "$work/yara.cfg"

results=$work/results.txt
: > "$results"
failed=0
# measure NAME FILES_CMD CMD...: times CMD; FILES_CMD (shell text) counts the files it made.
measure() {
    local name=$1 count=$2
    shift 2
    local timing=$work/time-$name.txt log=$work/run-$name.log
    echo "== $name: $*"
    local status=0
    /usr/bin/time -v -o "$timing" "$@" > "$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        echo "   FAILED (exit $status); last lines of $log:"
        tail -n 5 "$log" | sed 's/^/   | /'
        failed=1
        echo "$name - - - failed -" >> "$results"
        return
    fi
    local files
    files=$(bash -c "$count" 2>/dev/null || echo 0)
    awk -v name="$name" -v files="$files" '
        /Elapsed \(wall clock\)/ { n = split($NF, p, ":"); wall = (n == 3) ? p[1]*3600 + p[2]*60 + p[3] : p[1]*60 + p[2] }
        /User time \(seconds\)/ { user = $NF }
        /System time \(seconds\)/ { sys = $NF }
        /Maximum resident set size/ { rss = $NF }
        END { printf "%s %.3f %.3f %d ok %s\n", name, wall, user + sys, rss, files }' "$timing" >> "$results"
    tail -n 1 "$results" | awk '{ printf "   wall %ss, cpu %ss, peak RSS %d MiB, %s files\n", $2, $3, $4 / 1024, $6 }'
}

rows() { echo "grep -vc '^#' $1 || true"; }
tree() { echo "find $1 -type f | wc -l"; }

measure no-hash "$(rows "$work/nohash/http.log")" \
    "$pcapd" analyze -C --logs conn,http -o "$work/nohash" "$capture"
measure hash "$(rows "$work/hash/files.log")" \
    "$pcapd" analyze -C -o "$work/hash" "$capture"
measure hash-sha256 "$(rows "$work/hash-sha256/files.log")" \
    "$pcapd" analyze -C --hashes sha256 -o "$work/hash-sha256" "$capture"
measure extract "$(tree "$work/extract/extract_files")" \
    "$pcapd" analyze -C --extract '*' -o "$work/extract" "$capture"
measure extract-sha256 "$(tree "$work/extract-sha256/extract_files")" \
    "$pcapd" analyze -C --hashes sha256 --extract '*' -o "$work/extract-sha256" "$capture"
measure yara "$(rows "$work/yara/detect.log")" \
    "$pcapd" analyze -C -c "$work/yara.cfg" -o "$work/yara" "$capture"
if [ -n "$base" ]; then
    measure base "$(rows "$work/base/files.log")" "$base" analyze -C -o "$work/base" "$capture"
fi
mkdir -p "$work/tshark"
measure tshark "$(tree "$work/tshark")" \
    tshark -n -q -r "$capture" --export-objects "http,$work/tshark"

table=$(awk -v bytes="$cap_bytes" '
    BEGIN {
        label["no-hash"] = "pcapd `--logs conn,http` (no hashing)"
        label["hash"] = "pcapd, all logs (MD5/SHA-1/SHA-256, files.log)"
        label["hash-sha256"] = "pcapd, all logs, `--hashes sha256`"
        label["extract"] = "pcapd, `--extract *`"
        label["extract-sha256"] = "pcapd, `--extract *`, `--hashes sha256`"
        label["yara"] = "pcapd, `--extract *` + YARA on every file"
        label["base"] = "before (`BASE`), all logs"
        label["tshark"] = "tshark `--export-objects http`"
    }
    { name[NR] = $1; cpu[NR] = $3; rss[NR] = $4; status[NR] = $5; files[NR] = $6
      if ($5 == "ok") by[$1] = $3 }
    END {
        print "| command | CPU s | MB/s per CPU s | files | files per CPU s | peak RSS MiB |"
        print "|---|---:|---:|---:|---:|---:|"
        for (i = 1; i <= NR; i++) {
            if (status[i] != "ok") { printf "| %s | failed | | | | |\n", label[name[i]]; continue }
            c = cpu[i] > 0 ? cpu[i] : 0.001
            printf "| %s | %.2f | %.0f | %s | %.0f | %.0f |\n", label[name[i]], c, bytes / 1e6 / c, files[i], files[i] / c, rss[i] / 1024
        }
        print ""
        if (by["no-hash"] > 0 && by["hash"] > 0)
            printf "- Hashing cost, MD5 + SHA-1 + SHA-256: %.0f %% of the throughput without it; SHA-256 alone: %.0f %% (target: at most 30 %%).\n", (1 - by["no-hash"] / by["hash"]) * 100, (1 - by["no-hash"] / by["hash-sha256"]) * 100
        if (by["tshark"] > 0 && by["extract"] > 0)
            printf "- Extraction: %.1fx tshark'"'"'s export throughput with the three digests, %.1fx with SHA-256 alone (target: at least 10x).\n", by["tshark"] / by["extract"], by["tshark"] / by["extract-sha256"]
        if (by["extract"] > 0 && by["yara"] > 0)
            printf "- YARA on every file adds %.2f CPU s (%.0f %%).\n", by["yara"] - by["extract"], (by["yara"] / by["extract"] - 1) * 100
    }' "$results")

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
report="<!-- files-bench:start (written by bench/files.sh; edits here are overwritten) -->
## Files: hashing, extraction, detectors (\`bench/files.sh\`)

$(date -u +%Y-%m-%d), $cpu_model, $(nproc) cores; $(tshark --version 2>/dev/null | head -1);
$(yara --version 2>/dev/null | sed 's/^/yara /'). Capture: \`gencap --kind mixed --size $size
--seed $seed\`, $cap_bytes bytes. CPU time is user + system of the whole command (for the
detector row, yara's processes included).

$table
<!-- files-bench:end -->"
echo
echo "$report"
write_doc_section files-bench "$report"
exit "$failed"
