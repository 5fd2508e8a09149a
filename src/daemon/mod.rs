//! The daemon's composition root: what `pcapd serve` starts, reloads and stops.
//!
//! `run` opens the store, starts the pool, the ledger, dispatch (local or cluster), the
//! outputs and the job service, then the front doors; it reloads on SIGHUP and drains on
//! SIGTERM/SIGINT. `events` applies what the pool reports through the ledger.

mod events;
pub mod run;

pub use run::{embedded_config, load_config, run, serve_main, DaemonError, Ready};
