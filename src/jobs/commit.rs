//! Group commit of new jobs: the last fsync of a submission, the one of `jobs/` that makes
//! its rename durable, shared by the submissions that reach it together.
//!
//! A submission stages its job in a private temp directory (captures, `job.json`, `logs/`)
//! and calls [`GroupCommit::commit`], which, on the caller's thread, fsyncs the job's files
//! and then its directories; then the batch it joins marks its jobs in the index, renames
//! their directories into `jobs/`, fsyncs `jobs/` once and writes their rows in one
//! transaction. Only then does the caller return, so the promise is the one a lone
//! submission had (acknowledged = its captures and record survive a power cut), in the same
//! order (contents durable before the rename, the rename durable before the answer).
//!
//! Only the renames, the `jobs/` fsync and the index transactions are shared: the files and
//! directories of different jobs are fsynced by their own callers, in parallel, because each
//! fsync costs a
//! device cache flush and a single thread running them one after another is far slower than
//! concurrent callers whose fsyncs the file system's journal merges (a leader fsyncing a
//! whole batch alone managed about a tenth of the submissions a second at 64 clients).
//!
//! No thread and no timer: the first caller to find no batch running becomes the leader,
//! takes every submission waiting, runs the batch and wakes the others. Submissions arriving
//! meanwhile wait for the next leader, so an idle daemon adds no latency.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::error::StoreError;
use super::fsutil::fsync_dir;
use super::index::{IndexRow, JobIndex};

/// A new job written in its temp directory, waiting to be made durable and renamed.
#[derive(Debug)]
pub(crate) struct Staged {
    pub temp_dir: PathBuf,
    pub final_dir: PathBuf,
    /// Files whose contents must be durable first: the captures and `job.json`.
    pub files: Vec<PathBuf>,
    /// Then the directories whose entries must be: `pcaps/`, the job directory.
    pub dirs: Vec<PathBuf>,
    /// The job's index row, written once it is durable.
    pub row: IndexRow,
}

pub(crate) struct GroupCommit {
    /// The directory the jobs are renamed into: `jobs/`.
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
    /// Submissions whose contents are durable, waiting for the next batch, by ticket.
    waiting: Vec<(u64, Staged)>,
    next_ticket: u64,
    /// Whether a leader is running a batch now.
    leading: bool,
    /// Outcomes of finished batches, until their callers take them.
    outcomes: HashMap<u64, Result<(), Failure>>,
}

/// A failed commit, kept until its caller takes it (a [`StoreError`] is not `Clone`, and one
/// `jobs/` fsync failure fails a whole batch).
#[derive(Debug, Clone)]
struct Failure {
    path: PathBuf,
    kind: std::io::ErrorKind,
    message: String,
}

impl Failure {
    fn of(error: &StoreError) -> Failure {
        match error {
            StoreError::Io { path, source } => Failure {
                path: path.clone(),
                kind: source.kind(),
                message: source.to_string(),
            },
            other => Failure {
                path: PathBuf::new(),
                kind: std::io::ErrorKind::Other,
                message: other.to_string(),
            },
        }
    }

    fn into_error(self) -> StoreError {
        StoreError::Io {
            path: self.path,
            source: std::io::Error::new(self.kind, self.message),
        }
    }
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

    /// Makes `staged` durable and visible as `jobs/ID`; returns once it is. On an error the
    /// job may or may not have been renamed: the caller removes both directories.
    pub fn commit(&self, staged: Staged) -> Result<(), StoreError> {
        sync_contents(&staged)?;
        let mut batches = self.lock();
        let ticket = batches.next_ticket;
        batches.next_ticket += 1;
        batches.waiting.push((ticket, staged));
        loop {
            if let Some(outcome) = batches.outcomes.remove(&ticket) {
                return outcome.map_err(Failure::into_error);
            }
            if !batches.leading {
                batches.leading = true;
                let batch = std::mem::take(&mut batches.waiting);
                drop(batches);
                let outcomes = self.run(batch);
                batches = self.lock();
                batches.outcomes.extend(outcomes);
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

    /// One batch: the dirty marks, the renames, one fsync of `jobs/`, the index rows.
    fn run(&self, batch: Vec<(u64, Staged)>) -> Vec<(u64, Result<(), Failure>)> {
        if let Some(index) = self.index.as_deref() {
            // Before the renames: a crash between one and its row is repaired at the next
            // start.
            let ids: Vec<_> = batch.iter().map(|(_, staged)| &staged.row.job_id).collect();
            index.note_dirty(&ids);
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut renamed = Vec::with_capacity(batch.len());
        for (ticket, staged) in batch {
            match fs::rename(&staged.temp_dir, &staged.final_dir) {
                Ok(()) => renamed.push((ticket, staged.row)),
                Err(source) => outcomes.push((
                    ticket,
                    Err(Failure::of(&StoreError::Io {
                        path: staged.final_dir,
                        source,
                    })),
                )),
            }
        }
        if renamed.is_empty() {
            return outcomes;
        }
        match fsync_dir(&self.dir) {
            Ok(()) => {
                let (tickets, rows): (Vec<u64>, Vec<IndexRow>) = renamed.into_iter().unzip();
                if let Some(index) = self.index.as_deref() {
                    index.note_written(&rows);
                }
                outcomes.extend(tickets.into_iter().map(|ticket| (ticket, Ok(()))));
            }
            Err(error) => {
                let failure = Failure::of(&error);
                outcomes.extend(
                    renamed
                        .into_iter()
                        .map(|(ticket, _)| (ticket, Err(failure.clone()))),
                );
            }
        }
        outcomes
    }

    fn lock(&self) -> MutexGuard<'_, Batches> {
        // Only the queue and outcomes live here, never half-updated across a call that can
        // panic, so a poisoned lock is taken anyway.
        self.batches.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Everything of one job durable inside its temp directory.
fn sync_contents(staged: &Staged) -> Result<(), StoreError> {
    for file in &staged.files {
        // fsync works on a read-only handle; hard-linked captures are opened this way too.
        File::open(file)
            .and_then(|handle| handle.sync_all())
            .map_err(StoreError::io(file))?;
    }
    for dir in &staged.dirs {
        fsync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::fsutil::testdir::TestDir;
    use crate::jobs::model::{JobId, JobState};

    fn staged(root: &std::path::Path) -> Staged {
        let id = JobId::generate().unwrap();
        let temp_dir = root.join(format!(".tmp-{id}"));
        fs::create_dir(&temp_dir).unwrap();
        let file = temp_dir.join("job.json");
        fs::write(&file, b"{}").unwrap();
        Staged {
            final_dir: root.join(id.as_str()),
            files: vec![file],
            dirs: vec![temp_dir.clone()],
            temp_dir,
            row: IndexRow {
                job_id: id,
                state: JobState::Queued,
                tag: None,
                created_ms: 1,
                settled_ms: None,
                dedupe_key: 0,
                outputs_open: false,
            },
        }
    }

    #[test]
    fn concurrent_commits_all_land_and_return() {
        let dir = TestDir::new("group");
        let group = Arc::new(GroupCommit::new(dir.path().to_path_buf(), None));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (group, root) = (group.clone(), dir.path().to_path_buf());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let job = staged(&root);
                        let final_dir = job.final_dir.clone();
                        group.commit(job).unwrap();
                        assert!(final_dir.join("job.json").is_file());
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
        assert!(batches.outcomes.is_empty());
        assert_eq!(batches.next_ticket, 320);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 320);
    }

    #[test]
    fn a_failure_reaches_only_the_commits_it_concerns() {
        let dir = TestDir::new("group-fail");
        let group = GroupCommit::new(dir.path().to_path_buf(), None);
        let mut broken = staged(dir.path());
        broken.files.push(dir.path().join("gone.pcap"));
        let error = group.commit(broken).unwrap_err();
        assert_eq!(error.code().as_str(), "io");
        assert!(error.to_string().contains("gone.pcap"));
        group.commit(staged(dir.path())).unwrap();

        let group = GroupCommit::new(dir.path().join("missing"), None);
        let error = group.commit(staged(dir.path())).unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
    }
}
