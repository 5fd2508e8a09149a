#!/usr/bin/env bash
# Regenerates share/pcapd/samples/ with the deterministic traffic generator (examples/gencap.rs).
# The same commands always produce byte-identical files. Optional check: with tshark
# installed, each capture must parse without expert errors (malformed packets).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example gencap
gencap=target/release/examples/gencap
dir=share/pcapd/samples

"$gencap" --kind sample-http --seed 2 "$dir/http.pcap"
"$gencap" --kind sample-dns --seed 3 "$dir/dns.pcap"
"$gencap" --kind sample-tls --seed 1 "$dir/tls.pcap"
"$gencap" --kind sample-udp --seed 5 "$dir/udp.pcap"
"$gencap" --kind mixed --seed 12 --size 256K --max-body 16K --concurrency 16 --format pcapng "$dir/mixed.pcapng"

if command -v tshark >/dev/null; then
    status=0
    for capture in "$dir"/*.pcap "$dir"/*.pcapng; do
        errors=$(tshark -r "$capture" -q -z expert,error 2>/dev/null | grep -c -i -E 'malformed|error' || true)
        if [ "$errors" -ne 0 ]; then
            echo "tshark reports errors in $capture:" >&2
            tshark -r "$capture" -q -z expert,error >&2
            status=1
        else
            echo "tshark: $capture parses cleanly"
        fi
    done
    exit "$status"
fi
