//! The daemon's composition root: what `pcapd serve` starts, reloads and stops.
//!
//! `run` is the sequence: load and check (`setup`), start the job core (`core`: the ledger,
//! the pool, dispatch, outputs, the job service), open the front doors, report ready; then
//! reload on SIGHUP (`reload`) until SIGTERM/SIGINT, and drain. `events` applies what the pool
//! reports through the ledger; `error` says why a start failed.

mod core;
mod error;
mod events;
mod memory;
mod reload;
pub mod run;
mod setup;

pub use run::{run, serve_main};
pub use setup::embedded_config;
