//! The daemon: the job store, the worker pool and the network side tied together.
//!
//! `state` holds what every request shares ([`Daemon`]); `router` answers requests, with
//! `monitor` answering bui-monitor's functions and burp status queries;
//! `events` applies what the pool reports to the job store; `run` starts everything in
//! order (store recovery, pool ready, then the listener), handles signals and drains on
//! shutdown.

pub mod events;
pub mod monitor;
pub mod router;
pub mod run;
pub mod service;
pub mod state;

pub use run::{run, serve_main, DaemonError, Ready};
pub use state::Daemon;
