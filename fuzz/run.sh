#!/usr/bin/env bash
# Runs the fuzz targets (capture, request, config, child_lines) on their corpora in
# fuzz/corpus/TARGET, which are kept in the repository: each run starts where the last one
# ended, and whatever new coverage it finds is added there (minimise with
# `RUSTC_BOOTSTRAP=1 cargo fuzz cmin TARGET` before committing). A crash or hang leaves its
# input in fuzz/artifacts/TARGET/ and fails the run.
#
#   fuzz/run.sh                 # every target for 20 s (what .ci/run does)
#   SECONDS_EACH=600 fuzz/run.sh capture request   # a campaign: 10 minutes per target
#
# Seeds for empty corpora: the samples (capture), the sample config (config), requests from
# docs/protocol.md's shapes (request), worker and burp lines (child_lines). The capture target
# also reads the zeek-corpus captures from ../shared on every run (a read-only second corpus
# directory, linked into a temporary one), so they are never copied into fuzz/corpus.
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 enables them on stable.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${SECONDS_EACH:-20}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(capture request config child_lines)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

seed() {
    local target=$1 dir=corpus/$1
    mkdir -p "$dir"
    [ -n "$(ls -A "$dir")" ] && return 0
    case "$target" in
        capture)
            for f in ../share/pcapd/samples/*.pcap*; do
                if [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 65536 ]; then
                    cp "$f" "$dir/"
                fi
            done
            ;;
        config) cp ../share/pcapd/etc/pcapd.sample.cfg "$dir/sample.cfg" ;;
        request)
            printf '%s' '{"password":"p","func":"status","kwargs":{"job_id":"6f1e2d3c-0000-4000-8000-000000000000"}}' > "$dir/status"
            printf '%s' '{"password":"p","func":"submit","kwargs":{"files":[{"name":"a.pcap","size":24}],"tag":"t"}}' > "$dir/submit"
            printf '%s' '{"password":"p","query":"c:client1\n","timeout":5,"cache":false}' > "$dir/query"
            printf 'RE' > "$dir/probe"
            ;;
        child_lines)
            printf '%s\n' '{"ready":{"version":"1","analyzer":"builtin"}}' '{"job":"j","progress":{"bytes":1,"total":2}}' \
                '{"job":"j","done":{"logs":["conn.log"],"packets":1,"bytes":24,"warnings":[]}}' > "$dir/worker"
            printf '%s\n' '{"response-start":"x"}' '{"clients":[]}' '{"response-end":"x"}' '{"logline":"x"}' '{"warning":"w"}' > "$dir/burp"
            ;;
    esac
    return 0
}

# The zeek-corpus captures, linked (not copied) into one flat directory for libFuzzer.
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
for f in ../../shared/zeek-corpus/*/*.pcap*; do
    [ -f "$f" ] && ln -s "$(realpath "$f")" "$seeds/$(basename "$(dirname "$f")")-$(basename "$f")"
done

failed=0
for target in "${targets[@]}"; do
    extra=()
    [ "$target" = capture ] && extra=("$seeds")
    seed "$target"
    echo "== fuzz $target for ${seconds}s ($(ls corpus/"$target" | wc -l) inputs in its corpus)"
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" "${extra[@]}" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        2> "/tmp/pcapd-fuzz-$target.log"; then
        echo "!! $target: a crash or hang; see /tmp/pcapd-fuzz-$target.log and fuzz/artifacts/$target/"
        tail -n 30 "/tmp/pcapd-fuzz-$target.log"
        failed=1
    fi
    grep -a -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "/tmp/pcapd-fuzz-$target.log" | sed 's/^/   /' || true
done
exit "$failed"
