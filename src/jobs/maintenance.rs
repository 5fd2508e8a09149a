//! Store maintenance: recovery at start-up and retention of finished jobs.
//!
//! Recovery makes the disk the source of truth again after a crash: debris of unfinished
//! writes is deleted, `queued` jobs are handed back for the queue, and jobs found `running`
//! are marked `interrupted` and requeued once (a second interrupt fails them, so a capture
//! that crashes the daemon cannot do it forever). Retention removes terminal jobs only, by
//! age and then by the disk cap, oldest first. Removal renames the job directory to a temp
//! name first, so a crash half-way through leaves debris recovery cleans, not a half job.
//!
//! With the store's index, recovery reads only the live jobs' records (and cleans only their
//! directories and the ones the index repaired), and retention reads only the jobs it
//! removes: neither grows with the number of finished jobs kept.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::error::StoreError;
use super::fsutil::{fsync_dir, tree_size, TEMP_PREFIX};
use super::index::{IndexError, JobIndex};
use super::model::{JobId, JobRecord, JobState};
use super::store::JobStore;
use crate::time::Timestamp;

/// What recovery found and did.
#[derive(Debug, Default, PartialEq)]
pub struct Recovery {
    /// Jobs to put back in the queue, oldest submission first.
    pub requeue: Vec<JobId>,
    /// Jobs failed because they were interrupted a second time.
    pub failed: Vec<JobId>,
    /// Temporary files and directories removed.
    pub cleaned_temp: usize,
    /// Job records that could not be read or rewritten, with the reason; left untouched.
    pub unreadable: Vec<(PathBuf, String)>,
}

impl JobStore {
    /// Run once at start-up, before the dispatcher takes jobs.
    pub fn recover(&self, now: Timestamp) -> Result<Recovery, StoreError> {
        let _guard = self.lock_writes();
        let mut recovery = Recovery::default();
        let suspects = self.take_suspects();
        let live = match (self.index(), suspects) {
            (Some(index), Some(suspects)) => match index.live() {
                Ok(live) => Some((live, suspects)),
                Err(error) => {
                    index.give_up(&error);
                    None
                }
            },
            _ => None,
        };
        let scan = match live {
            Some((live, suspects)) => {
                let mut dirs: Vec<PathBuf> = live.iter().map(|id| self.job_dir(id)).collect();
                dirs.extend(suspects.iter().map(|id| self.job_dir(id)));
                self.remove_temp_entries(Some(dirs), &mut recovery)?;
                let mut scan = super::store::ScanResult::default();
                for id in live {
                    match self.load(&id) {
                        Ok(record) => scan.jobs.push(record),
                        Err(StoreError::NotFound(_)) => self.index_removed(&id),
                        Err(error) => scan.unreadable.push((self.job_dir(&id), error.to_string())),
                    }
                }
                scan
            }
            None => {
                self.remove_temp_entries(None, &mut recovery)?;
                self.scan()?
            }
        };
        recovery.unreadable.extend(scan.unreadable);
        let mut requeued: Vec<JobRecord> = Vec::new();
        for mut record in scan.jobs {
            match record.state {
                JobState::Queued => requeued.push(record),
                JobState::Running | JobState::Interrupted => {
                    let path = self.job_dir(&record.job_id);
                    let interrupted_before = record.requeues_after_interrupt > 0;
                    let settled = (|| {
                        if record.state == JobState::Running {
                            record.interrupt(now)?;
                        }
                        if interrupted_before {
                            record.fail_interrupted(now)?;
                        } else {
                            record.requeue(now)?;
                        }
                        self.write_record(&record)
                    })();
                    match settled {
                        Err(error) => recovery.unreadable.push((path, error.to_string())),
                        Ok(()) if interrupted_before => recovery.failed.push(record.job_id),
                        Ok(()) => requeued.push(record),
                    }
                }
                JobState::Done | JobState::Failed | JobState::TimedOut | JobState::Cancelled => {}
            }
        }
        requeued.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.job_id.cmp(&b.job_id))
        });
        recovery.requeue = requeued.into_iter().map(|record| record.job_id).collect();
        Ok(recovery)
    }

    /// Removes `.tmp-*` entries in `jobs/` (abandoned uploads, interrupted removals) and in
    /// job directories (interrupted record writes): `job_dirs`, or every one (`None`).
    fn remove_temp_entries(
        &self,
        job_dirs: Option<Vec<PathBuf>>,
        recovery: &mut Recovery,
    ) -> Result<(), StoreError> {
        let jobs_dir = self.jobs_dir();
        let mut dirs_to_clean = vec![jobs_dir.to_path_buf()];
        match job_dirs {
            Some(dirs) => dirs_to_clean.extend(dirs),
            None => {
                for entry in fs::read_dir(jobs_dir).map_err(StoreError::io(jobs_dir))? {
                    let entry = entry.map_err(StoreError::io(jobs_dir))?;
                    let name = entry.file_name();
                    if name.to_str().is_some_and(|name| JobId::parse(name).is_ok()) {
                        dirs_to_clean.push(entry.path());
                    }
                }
            }
        }
        for dir in dirs_to_clean {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue; // a job path that is not a directory is reported by the scan
            };
            for entry in entries {
                let entry = entry.map_err(StoreError::io(&dir))?;
                if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                    continue;
                }
                let path = entry.path();
                let removed = match entry.file_type() {
                    Ok(kind) if kind.is_dir() => fs::remove_dir_all(&path),
                    _ => fs::remove_file(&path),
                };
                match removed {
                    Ok(()) => recovery.cleaned_temp += 1,
                    Err(error) => recovery
                        .unreadable
                        .push((path, format!("cannot remove temp entry: {error}"))),
                }
            }
        }
        Ok(())
    }

    /// Removes terminal jobs finished more than `keep` ago (zero = keep forever), then the
    /// oldest terminal jobs while `jobs_dir` holds more than `max_disk` bytes (0 = no cap).
    /// Queued, running and unreadable jobs are never removed. Returns the removed ids.
    pub fn sweep(
        &self,
        keep: Duration,
        max_disk: u64,
        now: Timestamp,
    ) -> Result<Vec<JobId>, StoreError> {
        if let Some(index) = self.index() {
            match self.sweep_indexed(index, keep, max_disk, now) {
                Ok(removed) => return Ok(removed),
                Err(SweepError::Index(error)) => index.give_up(&error),
                Err(SweepError::Store(error)) => return Err(error),
            }
        }
        let mut finished: Vec<(Timestamp, JobId)> = self
            .scan()?
            .jobs
            .into_iter()
            .filter(|job| job.state.is_terminal())
            .map(|job| (job.finished_at.unwrap_or(job.created_at), job.job_id))
            .collect();
        finished.sort();

        let mut removed = Vec::new();
        let mut kept = Vec::new();
        for (finished_at, id) in finished {
            let expired = !keep.is_zero() && finished_at.saturating_add(keep) <= now;
            if expired && self.remove_terminal(&id)? {
                removed.push(id);
            } else {
                kept.push(id);
            }
        }

        if max_disk > 0 {
            let mut total = tree_size(self.jobs_dir())?;
            for id in kept {
                if total <= max_disk {
                    break;
                }
                let size = tree_size(&self.job_dir(&id))?;
                if self.remove_terminal(&id)? {
                    total = total.saturating_sub(size);
                    removed.push(id);
                }
            }
        }
        Ok(removed)
    }

    /// `sweep` through the index: terminal jobs in settle order, a page at a time, so memory
    /// and reads follow the jobs removed, not the jobs kept. The disk cap still measures
    /// `jobs_dir` (a walk of every file) when it is set.
    fn sweep_indexed(
        &self,
        index: &JobIndex,
        keep: Duration,
        max_disk: u64,
        now: Timestamp,
    ) -> Result<Vec<JobId>, SweepError> {
        const PAGE: usize = 512;
        let mut removed = Vec::new();
        if !keep.is_zero() {
            let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            let until = now.unix_millis().saturating_sub(keep_ms);
            let mut after = None;
            loop {
                let page = index.settled(after.as_ref(), until, PAGE)?;
                let Some(last) = page.last() else { break };
                after = Some(last.clone());
                for (_, id) in page {
                    if self.remove_terminal(&id)? {
                        removed.push(id);
                    }
                }
            }
        }
        if max_disk > 0 {
            let mut total = tree_size(self.jobs_dir())?;
            let mut after = None;
            'cap: while total > max_disk {
                let page = index.settled(after.as_ref(), i64::MAX, PAGE)?;
                let Some(last) = page.last() else { break };
                after = Some(last.clone());
                for (_, id) in page {
                    if total <= max_disk {
                        break 'cap;
                    }
                    let size = match tree_size(&self.job_dir(&id)) {
                        Ok(size) => size,
                        Err(_) if !self.job_dir(&id).exists() => continue,
                        Err(error) => return Err(error.into()),
                    };
                    if self.remove_terminal(&id)? {
                        total = total.saturating_sub(size);
                        removed.push(id);
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Removes a job if it is (still) terminal.
    fn remove_terminal(&self, id: &JobId) -> Result<bool, StoreError> {
        self.remove_if(id, |record| record.state.is_terminal())
    }

    /// Removes a queued job that was never acknowledged to its client (the pool refused it
    /// after it became durable). Returns false if the job had already moved on.
    pub fn discard_unacknowledged(&self, id: &JobId) -> Result<bool, StoreError> {
        self.remove_if(id, |record| {
            record.state == JobState::Queued && record.history.len() == 1
        })
    }

    /// Removes a job whose record satisfies `pred`. The rename happens under the write lock
    /// so a concurrent `update` cannot revive a job being deleted.
    fn remove_if(
        &self,
        id: &JobId,
        pred: impl FnOnce(&JobRecord) -> bool,
    ) -> Result<bool, StoreError> {
        let doomed = self.jobs_dir().join(format!("{TEMP_PREFIX}rm-{id}"));
        {
            let _guard = self.lock_writes();
            match self.load(id) {
                Ok(record) if pred(&record) => {}
                Ok(_) | Err(StoreError::NotFound(_)) => return Ok(false),
                Err(error) => return Err(error),
            }
            let job_dir = self.job_dir(id);
            self.index_removing(id);
            fs::rename(&job_dir, &doomed).map_err(StoreError::io(&job_dir))?;
            fsync_dir(self.jobs_dir())?;
            self.index_removed(id);
        }
        fs::remove_dir_all(&doomed).map_err(StoreError::io(&doomed))?;
        Ok(true)
    }
}

/// Why an indexed sweep stopped: the index (then the sweep reads the records instead) or
/// the store.
enum SweepError {
    Index(IndexError),
    Store(StoreError),
}

impl From<IndexError> for SweepError {
    fn from(error: IndexError) -> SweepError {
        SweepError::Index(error)
    }
}

impl From<StoreError> for SweepError {
    fn from(error: StoreError) -> SweepError {
        SweepError::Store(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::fsutil::testdir::TestDir;
    use crate::jobs::model::ErrorKind;
    use crate::jobs::store::tests::{indexed, put_job};
    use crate::jobs::store::ListFilter;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(millis)
    }

    fn finish(store: &JobStore, id: &JobId, finished_ms: i64) {
        store
            .update(id, |r| {
                r.start(at(finished_ms - 1), 1)?;
                r.finish_done(at(finished_ms), vec![], 0, vec![])
            })
            .unwrap();
    }

    #[test]
    fn recovery_requeues_interrupts_fails_and_cleans() {
        let dir = TestDir::new("recover");
        let store = indexed(&dir);
        let queued_late = put_job(&store, None, 3_000, b"q2");
        let queued_early = put_job(&store, None, 1_000, b"q1");
        let running = put_job(&store, None, 2_000, b"r");
        store
            .update(&running.job_id, |r| r.start(at(2_500), 10))
            .unwrap();
        let twice = put_job(&store, None, 500, b"t");
        store
            .update(&twice.job_id, |r| {
                r.start(at(600), 11)?;
                r.interrupt(at(700))?;
                r.requeue(at(700))?;
                r.start(at(800), 12)
            })
            .unwrap();
        // Crashed after writing `interrupted` but before requeueing it.
        let half_recovered = put_job(&store, None, 2_200, b"h");
        store
            .update(&half_recovered.job_id, |r| {
                r.start(at(2_300), 13)?;
                r.interrupt(at(2_400))
            })
            .unwrap();
        let done = put_job(&store, None, 100, b"d");
        finish(&store, &done.job_id, 200);
        let corrupt = put_job(&store, None, 50, b"c");
        fs::write(store.job_dir(&corrupt.job_id).join("job.json"), b"{").unwrap();

        // Debris: an abandoned upload, an interrupted removal, a half-written record.
        fs::create_dir_all(
            dir.path()
                .join(".tmp-0f0f0f0f-0000-4000-8000-000000000000/pcaps"),
        )
        .unwrap();
        fs::create_dir(dir.path().join(".tmp-rm-whatever")).unwrap();
        fs::write(
            store
                .job_dir(&queued_early.job_id)
                .join(".tmp-job.json-abcd"),
            b"{half",
        )
        .unwrap();

        let recovery = store.recover(at(10_000)).unwrap();
        assert_eq!(
            recovery.requeue,
            [
                queued_early.job_id.clone(),
                running.job_id.clone(),
                half_recovered.job_id.clone(),
                queued_late.job_id.clone()
            ]
        );
        assert_eq!(recovery.failed, std::slice::from_ref(&twice.job_id));
        assert_eq!(recovery.cleaned_temp, 3);
        assert_eq!(recovery.unreadable.len(), 1);
        assert_eq!(recovery.unreadable[0].0, store.job_dir(&corrupt.job_id));

        let requeued = store.load(&running.job_id).unwrap();
        assert_eq!(requeued.state, JobState::Queued);
        assert_eq!(requeued.requeues_after_interrupt, 1);
        let steps: Vec<JobState> = requeued.history.iter().map(|t| t.state).collect();
        assert_eq!(
            steps,
            [
                JobState::Queued,
                JobState::Running,
                JobState::Interrupted,
                JobState::Queued
            ]
        );
        let failed = store.load(&twice.job_id).unwrap();
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.error.map(|e| e.kind), Some(ErrorKind::Interrupted));
        assert_eq!(failed.finished_at, Some(at(10_000)));
        assert_eq!(store.load(&done.job_id).unwrap().state, JobState::Done);

        let leftovers: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // A second recovery is a no-op apart from requeueing what is queued.
        let again = store.recover(at(20_000)).unwrap();
        assert_eq!(again.requeue, recovery.requeue);
        assert!(again.failed.is_empty());
        assert_eq!(again.cleaned_temp, 0);
    }

    #[test]
    fn retention_by_age_spares_live_and_recent_jobs() {
        let dir = TestDir::new("sweep-age");
        let store = indexed(&dir);
        let old_done = put_job(&store, None, 1_000, b"a");
        finish(&store, &old_done.job_id, 2_000);
        let recent_done = put_job(&store, None, 1_000, b"b");
        finish(&store, &recent_done.job_id, 9_000);
        let old_queued = put_job(&store, None, 0, b"c");
        let old_running = put_job(&store, None, 0, b"d");
        store
            .update(&old_running.job_id, |r| r.start(at(1), 1))
            .unwrap();

        let removed = store.sweep(Duration::from_secs(5), 0, at(10_000)).unwrap();
        assert_eq!(removed, std::slice::from_ref(&old_done.job_id));
        assert!(!store.job_dir(&old_done.job_id).exists());
        let left: Vec<JobId> = store
            .list(&ListFilter::default())
            .unwrap()
            .into_iter()
            .map(|j| j.job_id)
            .collect();
        assert_eq!(left.len(), 3);
        assert!(left.contains(&recent_done.job_id));
        assert!(left.contains(&old_queued.job_id));
        assert!(left.contains(&old_running.job_id));

        // keep = 0 means forever.
        assert!(store
            .sweep(Duration::ZERO, 0, at(1_000_000_000))
            .unwrap()
            .is_empty());
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp-")), "{names:?}");
    }

    #[test]
    fn retention_by_disk_cap_removes_oldest_finished_first() {
        let dir = TestDir::new("sweep-disk");
        let store = indexed(&dir);
        let capture = vec![0u8; 10_000];
        let oldest = put_job(&store, None, 1, &capture);
        finish(&store, &oldest.job_id, 100);
        let middle = put_job(&store, None, 2, &capture);
        finish(&store, &middle.job_id, 200);
        let newest = put_job(&store, None, 3, &capture);
        finish(&store, &newest.job_id, 300);
        let queued = put_job(&store, None, 0, &capture);

        let total = tree_size(dir.path()).unwrap();
        let one_job = tree_size(&store.job_dir(&oldest.job_id)).unwrap();
        // Room for all but about one and a half jobs: the two oldest finished ones must go.
        let cap = total - one_job - one_job / 2;
        let removed = store.sweep(Duration::ZERO, cap, at(1_000)).unwrap();
        assert_eq!(removed, [oldest.job_id.clone(), middle.job_id.clone()]);
        assert!(tree_size(dir.path()).unwrap() <= cap);
        assert!(store.job_dir(&newest.job_id).exists());

        // A cap below what live jobs need removes every finished job but never a queued one.
        let removed = store.sweep(Duration::ZERO, 1, at(1_000)).unwrap();
        assert_eq!(removed, std::slice::from_ref(&newest.job_id));
        assert_eq!(store.load(&queued.job_id).unwrap().state, JobState::Queued);
    }
}
