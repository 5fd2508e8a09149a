//! pcapd: a daemon that runs PCAP analysis jobs on a fixed pool of analyzer processes.
//!
//! - `config`: INI file → typed configuration, check-config, embedded defaults
//! - `protocol`: the bui-monitor-compatible wire format (frames, requests, replies)
//! - `server`: listener, TLS, authentication, the per-connection request loop
//! - `daemon`: the router, pool event handling, start/reload/drain
//! - `jobs`: job records, their state machine, the on-disk store and its SQLite index
//! - `pool`: the supervised pool of worker children
//! - `worker`, `backend`: the pool child and the analyzers it runs
//! - `analyzer`: the builtin Zeek-compatible analyzer
//! - `client`, `cli`: the client library and the command line
//! - `exit`: the process exit codes
//! - `addr_range`: address ranges (`auth_exempt`)
//! - `systemd`: sd_notify
//! - `synth`: deterministic traffic generator (samples, tests, benchmarks)
pub mod addr_range;
pub mod analyzer;
pub mod backend;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod exit;
pub mod http;
pub mod jobs;
pub mod output;
pub mod pool;
pub mod protocol;
pub mod server;
pub mod service;
pub mod synth;
pub mod systemd;
pub mod worker;
