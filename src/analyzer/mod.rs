//! The builtin analyzer: reads pcap/pcapng captures and writes Zeek-compatible logs.
//!
//! Modules: `log` (typed log records), `app` (DNS/HTTP/TLS analyzers).

pub mod app;
pub mod log;
