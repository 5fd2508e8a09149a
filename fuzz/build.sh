#!/usr/bin/env bash
# Builds every fuzz target (capture, request, config, child_lines), so CI notices when one
# stops compiling. cargo-fuzz needs nightly
# features; the only toolchain here is stable, so RUSTC_BOOTSTRAP=1 enables them.
# Run the fuzzer itself as described in docs/analyzer.md ("Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked
fi
RUSTC_BOOTSTRAP=1 cargo fuzz build
