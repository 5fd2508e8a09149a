//! Fuzz target: the whole builtin-analyzer pipeline (capture readers, decoders, fragment
//! reassembly, flow table, application analyzers, log rendering) on arbitrary bytes, with
//! checksum validation on and off. Any panic, overflow or runaway allocation is a bug; a
//! returned error is fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcapd::analyzer::{analyze_bytes, AnalyzeOptions, LogFormat};

fuzz_target!(|data: &[u8]| {
    for ignore_checksums in [false, true] {
        let opts = AnalyzeOptions { ignore_checksums, format: LogFormat::Tsv, only_logs: None, ..AnalyzeOptions::default() };
        let _ = analyze_bytes(data, &opts);
    }
});
