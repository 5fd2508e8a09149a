//! Fuzz target: the INI config parser and its typed checks on arbitrary text. Every input
//! must end in a `Config` or a list of errors, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pcapd::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text, Path::new("/fuzz/pcapd.cfg"));
    }
});
