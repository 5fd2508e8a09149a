//! pcapd: a daemon that runs PCAP analysis jobs on a fixed pool of analyzer processes.
pub mod analyzer;
pub mod config;
pub mod protocol;
pub mod server;
pub mod client;
pub mod systemd;
pub mod cli;
pub mod daemon;
