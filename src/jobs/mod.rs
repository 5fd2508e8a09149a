//! The job store: the job model and state machine, one directory per job on disk, uploads,
//! recovery after a crash, retention and dedupe.
//!
//! Synchronous `std::fs` code, safe to share behind an `Arc` across threads; the async server
//! calls it through `spawn_blocking`. Modules: `model` (ids, states, the record and its pure
//! transitions, tags), `store` (layout, atomic record updates,
//! listing, logs), `upload` (pending jobs from streamed uploads or `spool_dir` paths),
//! `maintenance` (recovery, retention), `index` (the SQLite index that keeps those
//! independent of the number of jobs kept), `commit` (group commit of new jobs), `error`
//! (typed errors with wire codes), `fsutil` (atomic writes, directory fsync).

mod commit;
pub mod error;
mod fsutil;
pub mod index;
pub mod maintenance;
pub mod model;
pub mod store;
pub mod upload;

pub use crate::time::Timestamp;
pub use error::{PathRejection, StoreError};
pub use maintenance::Recovery;
pub use model::{
    is_row, validate_tag, ClusterState, ErrorKind, Export, ExtractedCounts, Forwarding, JobError,
    JobFile, JobId, JobRecord, JobState, LogInfo, OutputState, Progress, TagError, Transition,
    TransitionError,
};
pub use store::{Indexing, JobStore, ListFilter, WorkerAccess, MAX_LOG_READ};
pub use upload::{FileDecl, PendingJob, MAX_FILES_PER_JOB};

// The server shares one store across tasks and moves pending uploads between blocking calls.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    const fn movable<T: Send>() {}
    shareable::<JobStore>();
    movable::<PendingJob>();
    movable::<StoreError>();
};
