//! Group commit of new jobs: the last step of a submission, the fsync of `jobs/` that makes
//! its rename durable, shared by the submissions that arrive together.
//!
//! Each submission has made its captures and record durable inside its own temp directory
//! and renamed that directory into `jobs/`. It then calls [`GroupCommit::commit`], which
//! waits until one fsync of `jobs/` that started after its rename has finished (and the
//! index rows of the batch are written), and only then returns, so the promise is the same
//! as one fsync per job: acknowledged means the job survives a power cut.
//!
//! No thread and no timer: the first caller to find no fsync in flight becomes the leader,
//! takes every submission waiting, runs the fsync and the index transaction for all of them,
//! and wakes them. Submissions arriving meanwhile queue up for the next leader, so an idle
//! daemon pays no added latency and a busy one pays one fsync per batch instead of per job.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::error::StoreError;
use super::fsutil::fsync_dir;
use super::index::{IndexRow, JobIndex};
use super::model::JobId;

/// Failed batches remembered for their waiters (a waiter wakes soon after its batch ends;
/// this only bounds the memory of a disk that keeps failing).
const REMEMBERED_FAILURES: usize = 1024;

pub(crate) struct GroupCommit {
    /// The directory whose fsync makes the renames durable: `jobs/`.
    dir: PathBuf,
    index: Option<Arc<JobIndex>>,
    batches: Mutex<Batches>,
    finished: Condvar,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Batches {
    /// Index rows of the submissions waiting for the next fsync.
    waiting: Vec<IndexRow>,
    /// The number the next batch will have; every waiting submission belongs to it.
    next: u64,
    /// Batches up to this number (exclusive) have finished.
    done_below: u64,
    /// Whether a leader is running a batch now.
    leading: bool,
    /// Batches whose fsync failed, with the error's kind and text.
    failed: BTreeMap<u64, (std::io::ErrorKind, String)>,
}

impl GroupCommit {
    pub fn new(dir: PathBuf, index: Option<Arc<JobIndex>>) -> GroupCommit {
        GroupCommit {
            dir,
            index,
            batches: Mutex::new(Batches::default()),
            finished: Condvar::new(),
        }
    }

    /// Notes, before the rename, that the job's directory is about to appear, so that a
    /// crash between the rename and the index row is repaired at the next start.
    pub fn announce(&self, id: &JobId) {
        if let Some(index) = self.index.as_deref() {
            index.note_dirty(&[id]);
        }
    }

    /// Returns once `jobs/` has been fsynced after the caller's rename and `row` is in the
    /// index. An error means the rename may not be durable: the caller takes the job back.
    pub fn commit(&self, row: IndexRow) -> Result<(), StoreError> {
        let mut batches = self.lock();
        let mine = batches.next;
        batches.waiting.push(row);
        loop {
            if batches.done_below > mine {
                return match batches.failed.get(&mine) {
                    None => Ok(()),
                    Some((kind, message)) => Err(StoreError::Io {
                        path: self.dir.clone(),
                        source: std::io::Error::new(*kind, message.clone()),
                    }),
                };
            }
            if !batches.leading {
                batches.leading = true;
                let number = batches.next;
                batches.next += 1;
                let rows = std::mem::take(&mut batches.waiting);
                drop(batches);
                let synced = fsync_dir(&self.dir);
                if synced.is_ok() {
                    self.index_rows(&rows);
                }
                batches = self.lock();
                if let Err(StoreError::Io { source, .. }) = &synced {
                    batches
                        .failed
                        .insert(number, (source.kind(), source.to_string()));
                    while batches.failed.len() > REMEMBERED_FAILURES {
                        batches.failed.pop_first();
                    }
                }
                batches.done_below = number + 1;
                batches.leading = false;
                self.finished.notify_all();
                continue;
            }
            batches = self
                .finished
                .wait(batches)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn index_rows(&self, rows: &[IndexRow]) {
        if let Some(index) = self.index.as_deref() {
            index.note_written(rows);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Batches> {
        // Only counters and rows live here; a panicking leader cannot leave them half-set
        // in a way that loses a waiter's answer (it never panics between take and notify
        // short of an allocation failure), so take the lock anyway.
        self.batches.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::fsutil::testdir::TestDir;
    use crate::jobs::model::JobState;

    fn row() -> IndexRow {
        IndexRow {
            job_id: JobId::generate().unwrap(),
            state: JobState::Queued,
            tag: None,
            created_ms: 1,
            settled_ms: None,
            dedupe_key: String::new(),
            outputs_open: false,
        }
    }

    #[test]
    fn concurrent_commits_share_fsyncs_and_all_return() {
        let dir = TestDir::new("group");
        let group = Arc::new(GroupCommit::new(dir.path().to_path_buf(), None));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let group = group.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        group.commit(row()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let batches = group.lock();
        assert!(!batches.leading);
        assert!(batches.waiting.is_empty());
        // 320 commits; every one waited for a batch, and batches were shared or not, but
        // never more batches than commits.
        assert!(batches.done_below >= 1 && batches.done_below <= 320);
        assert_eq!(batches.done_below, batches.next);
    }

    #[test]
    fn a_failed_fsync_fails_every_commit_of_its_batch() {
        let dir = TestDir::new("group-fail");
        let group = GroupCommit::new(dir.path().join("missing"), None);
        let error = group.commit(row()).unwrap_err();
        assert_eq!(error.code().as_str(), "io");
        assert!(error.to_string().contains("missing"));
        std::fs::create_dir(dir.path().join("missing")).unwrap();
        group.commit(row()).unwrap();
    }
}
