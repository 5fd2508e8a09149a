//! pcapd: a daemon that runs PCAP analysis jobs on a fixed pool of analyzer processes.
pub mod analyzer;
pub mod config;
pub mod synth;
