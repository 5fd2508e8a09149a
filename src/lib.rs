//! pcapd: a daemon that runs PCAP analysis jobs on a fixed pool of analyzer processes.
//!
//! The library's public face is what the binary, the tests, the examples and the fuzz
//! targets use: the command line (`cli`), the client (`client`), the configuration
//! (`config`), the wire formats (`protocol`), TLS setup (`tls`), the job store (`jobs`), the
//! builtin analyzer (`analyzer`), and the detectors (`detect`). Everything else is the
//! daemon's inside; `docs/design.md` says how it fits together.
//!
//! - `daemon`: the composition root (start, reload, drain) and the pool-event task
//! - `server`, `http`: the two front doors (TLS protocol, HTTP gateway)
//! - `service`: commands, the job service, the intake, bui-monitor's functions
//! - `ledger`: every job record change; `dispatch`: local or cluster hand-over
//! - `jobs`: job records, their state machine, the on-disk store and its SQLite index
//! - `cluster`: the shared queue on Redis Streams; `output`: syslog forwarding and export
//! - `pool`: the supervised pool of children; `worker`, `backend`: the child and its analyzers
//! - `analyzer`: the builtin Zeek-compatible analyzer; `detect`: detectors on extracted files
//! - `disk`: free space against `min_free`
//! - leaves: `tls`, `time`, `durable` (atomic files), `backoff`, `addr_range`, `exit`,
//!   `systemd`, `shell` (operators' `sh` command lines)
//!
//! The traffic generator for samples, tests and benchmarks is a crate of its own
//! (`synth/`, `pcapd-synth`).
mod addr_range;
pub mod analyzer;
mod backend;
mod backoff;
pub mod cli;
pub mod client;
mod cluster;
pub mod config;
mod daemon;
pub mod detect;
mod disk;
mod dispatch;
mod durable;
mod exit;
mod http;
pub mod jobs;
mod ledger;
mod metrics;
mod output;
mod pool;
pub mod protocol;
mod server;
mod service;
mod shell;
mod systemd;
mod time;
pub mod tls;
mod worker;
