//! [`DiskWatch`]: the free space of `jobs_dir`'s file system against `[Global] min_free`.
//!
//! Below the watermark (Elasticsearch's and Kafka's model) new uploads are refused at once
//! (`disk_full`) and the pool starts no queued job, so the jobs already running keep room for
//! their logs and, above all, for their terminal records; both resume by themselves once
//! space returns (checked every second, and at each submission). A job whose analysis failed
//! while the disk was low ends `failed` with kind `disk_full`.
//!
//! For the last bytes there is a reserve: a file of [`RESERVE_BYTES`] on `jobs_dir`'s file
//! system (beside `jobs_dir` when its parent is on the same one, so `jobs_dir` holds only
//! jobs; else inside it), created while space allows. When a record write still hits ENOSPC (a job's logs filled the disk
//! to the last block), the reserve is released and the write tried again, so a job never
//! stays `running` because its end could not be recorded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::LiveConfig;
use crate::pool::{PauseReason, PoolHandle};

/// Size of the reserve file.
pub const RESERVE_BYTES: u64 = 1 << 20;
/// Its name (not a job id, so the store ignores it inside `jobs_dir`).
const RESERVE_NAME: &str = ".pcapd-reserve";
/// How often the watch looks without being asked.
const EVERY: Duration = Duration::from_secs(1);

/// The file system's space as the watch last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DiskStatus {
    /// Bytes available to pcapd.
    pub free: u64,
    /// Size of the file system.
    pub total: u64,
    /// `min_free` in bytes on this file system.
    pub min_free: u64,
    /// Below `min_free`: uploads refused, no job starts.
    pub low: bool,
}

pub struct DiskWatch {
    jobs_dir: PathBuf,
    reserve: PathBuf,
    config: Arc<LiveConfig>,
    pool: PoolHandle,
    low: AtomicBool,
}

impl DiskWatch {
    pub fn new(jobs_dir: &Path, config: Arc<LiveConfig>, pool: PoolHandle) -> DiskWatch {
        DiskWatch {
            jobs_dir: jobs_dir.to_owned(),
            reserve: reserve_path(jobs_dir),
            config,
            pool,
            low: AtomicBool::new(false),
        }
    }

    /// Looks at the file system now (one `statvfs`, cheap enough for every submission) and
    /// acts on a change: pauses or resumes dispatch, logs. A file system that cannot be asked
    /// counts as not low (the store's own errors then say what is wrong).
    pub fn check(&self) -> Option<DiskStatus> {
        let stat = match nix::sys::statvfs::statvfs(&self.jobs_dir) {
            Ok(stat) => stat,
            Err(e) => {
                tracing::warn!(dir = %self.jobs_dir.display(), error = %e, "cannot read the free space of jobs_dir");
                return None;
            }
        };
        let block = stat.fragment_size();
        let free = stat.blocks_available().saturating_mul(block);
        let total = stat.blocks().saturating_mul(block);
        let min_free = self.config.get().global.min_free.bytes_of(total);
        let was_low = self.low.load(Ordering::Relaxed);
        // Hysteresis: leaving the low state needs room for the reserve as well, so that
        // recreating it does not flip the state straight back.
        let low = if was_low {
            free < min_free.saturating_add(RESERVE_BYTES)
        } else {
            free < min_free
        };
        if low != was_low {
            self.low.store(low, Ordering::Relaxed);
            if low {
                tracing::error!(
                    free, min_free, total,
                    "jobs_dir's file system is below min_free: uploads are refused and no job starts until space returns"
                );
                self.pool.pause_dispatch(PauseReason::DiskLow);
            } else {
                tracing::info!(
                    free,
                    min_free,
                    "space is back above min_free: taking uploads and starting jobs again"
                );
                self.pool.resume_dispatch(PauseReason::DiskLow);
            }
        }
        Some(DiskStatus {
            free,
            total,
            min_free,
            low,
        })
    }

    /// Whether the file system was below `min_free` at the last look.
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::Relaxed)
    }

    /// Creates the reserve if it is missing (written out, not sparse: it must hold blocks).
    fn keep_reserve(&self) {
        let path = &self.reserve;
        if std::fs::metadata(path).is_ok_and(|m| m.len() == RESERVE_BYTES) {
            return;
        }
        let zeros = vec![0u8; RESERVE_BYTES as usize];
        if let Err(e) = crate::durable::write_atomic(path, &zeros, Some(0o600)) {
            tracing::warn!(error = %e, "cannot create the disk reserve");
        }
    }

    /// Gives the reserve's blocks back to the file system; `true` if there was one.
    pub fn release_reserve(&self) -> bool {
        match std::fs::remove_file(&self.reserve) {
            Ok(()) => {
                tracing::warn!(
                    bytes = RESERVE_BYTES,
                    "the disk is full: released the reserve to record job results"
                );
                true
            }
            Err(_) => false,
        }
    }

    /// Looks every second until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let watch = self.clone();
            crate::ledger::blocking(move || {
                if watch.check().is_some_and(|status| !status.low) {
                    watch.keep_reserve();
                }
            })
            .await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
    }
}

/// Where the reserve goes: beside `jobs_dir` on the same file system, else inside it.
fn reserve_path(jobs_dir: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let device = |path: &Path| std::fs::metadata(path).ok().map(|m| m.dev());
    match jobs_dir.parent() {
        Some(parent) if device(parent).is_some() && device(parent) == device(jobs_dir) => {
            parent.join(RESERVE_NAME)
        }
        _ => jobs_dir.join(RESERVE_NAME),
    }
}

/// Whether an I/O error is the file system being full.
pub fn is_no_space(error: &std::io::Error) -> bool {
    error.raw_os_error() == Some(libc::ENOSPC) || error.raw_os_error() == Some(libc::EDQUOT)
}
