#!/usr/bin/env bash
# Neutrality check for analyzer changes: runs two pcapd binaries on the same captures and
# diffs every log they write (TSV and JSON, with and without -C), ignoring only the #open and
# #close time stamps. A change that is meant to be neutral (speed, code layout) must print
# "identical" for every capture.
#
#   bench/same-logs.sh BASE_BIN [NEW_BIN]      # NEW_BIN defaults to target/release/pcapd
#
# BASE_BIN is the pcapd built before the change, e.g.:
#   git stash; cargo build --release; cp target/release/pcapd /tmp/pcapd-base; git stash pop
#
# Captures: ../shared/zeek-corpus/*/*.pcap*, share/pcapd/samples/*, and every capture in
# bench/out/ (the analyzer benchmark's: bench/analyzer.sh and bench/smallflows.py make them).
# Variants: -C, no flag, JSON, and subsets of logs (`--logs conn`: analyzers whose logs are
# not kept are dropped once conn.log needs nothing more from them, which must not show).
# Exits 1 on the first capture whose logs differ (the diff is printed), 0 if all are equal.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
base=${1:?usage: bench/same-logs.sh BASE_BIN [NEW_BIN]}
new=${2:-target/release/pcapd}
for bin in "$base" "$new"; do
    [ -x "$bin" ] || { echo "same-logs: $bin is not an executable" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

captures=()
for f in ../shared/zeek-corpus/*/*.pcap ../shared/zeek-corpus/*/*.pcapng share/pcapd/samples/*.pcap \
    share/pcapd/samples/*.pcapng bench/out/*.pcap bench/out/*.pcapng; do
    [ -f "$f" ] && captures+=("$f")
done
[ ${#captures[@]} -gt 0 ] || { echo "same-logs: no captures found" >&2; exit 2; }

# The small captures get every variant; big benchmark captures (> 64 MiB) only TSV with -C,
# all logs and conn.log alone, as the benchmark runs them.
checked=0
for cap in "${captures[@]}"; do
    variants=("-C" "" "-C --json-logs" "-C --logs conn" "--logs conn,weird")
    if [ "$(stat -c %s "$cap")" -gt $((64 * 1024 * 1024)) ]; then
        variants=("-C" "-C --logs conn")
    fi
    for v in "${variants[@]}"; do
        rm -rf "$work/a" "$work/b"
        # shellcheck disable=SC2086 # $v holds flags
        "$base" analyze $v -o "$work/a" "$cap" > "$work/a.out" 2>&1 || true
        # shellcheck disable=SC2086
        "$new" analyze $v -o "$work/b" "$cap" > "$work/b.out" 2>&1 || true
        for d in a b; do
            [ -d "$work/$d" ] || mkdir -p "$work/$d"
            # Time stamps of the run itself are the only expected difference.
            find "$work/$d" -name '*.log' -exec sed -i -E '/^#(open|close)\t/d' {} +
        done
        if ! diff -r "$work/a" "$work/b" > "$work/diff" || ! diff -q "$work/a.out" "$work/b.out" > /dev/null; then
            echo "DIFFERENT: $cap (flags: ${v:-none})"
            head -n 40 "$work/diff"
            diff "$work/a.out" "$work/b.out" | head -n 10 || true
            exit 1
        fi
        checked=$((checked + 1))
    done
done
echo "identical: ${#captures[@]} captures, $checked runs, every log byte for byte (#open/#close aside)"
