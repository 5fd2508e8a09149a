//! The on-disk job store: one directory per job, the record rewritten atomically.
//!
//! ```text
//! jobs/ID/job.json        the record
//! jobs/ID/pcaps/N.pcap    captures under generated names (N.pcapng for pcapng)
//! jobs/ID/logs/           the analyzer's output
//! ```
//!
//! The store is synchronous `std::fs` code; the async server calls it through
//! `spawn_blocking` and shares one `JobStore` behind an `Arc`. Readers never lock: a record is
//! replaced by rename, so a reader sees a whole old or whole new record. Writers (`update`,
//! recovery, retention) serialize on one mutex so that two read-modify-write cycles on the
//! same job cannot lose each other's change. Uploads live in `upload.rs`, recovery and
//! retention in `maintenance.rs`.
//!
//! With an index (`index.rs`; single-host mode), `list`, dedupe, recovery, retention and the
//! output queue ask it which jobs to read, then read those records; every record write
//! keeps it in step (`write_record`, `remove_if`, and the group commit of new jobs). Without
//! one (cluster mode, or after an index failure) they read every record, as they always did.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{Map, Value};

use super::commit::GroupCommit;
use super::error::StoreError;
use super::fsutil::write_atomic;
use super::index::{dedupe_key, Catchup, Cursor, IndexRow, JobIndex, RowFilter, REBUILD_BATCH};
use super::model::{JobId, JobRecord, JobState, LogInfo};
use crate::time::Timestamp;

pub(crate) const RECORD_FILE: &str = "job.json";
pub(crate) const PCAPS_DIR: &str = "pcaps";
pub(crate) const LOGS_DIR: &str = "logs";

/// The most bytes one `read_log` returns, whatever the caller asks for.
pub const MAX_LOG_READ: u64 = 16 * 1024 * 1024;

/// Filters of the `list` request; all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub state: Option<JobState>,
    pub tag: Option<String>,
    pub limit: Option<usize>,
    /// RFC 3339; jobs created at or after it.
    pub since: Option<String>,
}

pub struct JobStore {
    /// Canonical, so paths handed to workers are absolute whatever their working directory.
    jobs_dir: PathBuf,
    write_lock: Mutex<()>,
    /// Workers run as another user (pcapd started as root with `[Worker] user`/`group`).
    worker: Option<WorkerAccess>,
    /// The index, when the store has one (see the module comment).
    index: Option<Arc<JobIndex>>,
    /// Shares the last fsync of new jobs between submissions (`commit.rs`).
    group: Arc<GroupCommit>,
    /// Job directories recovery must clean of temp files besides the live jobs': the ones
    /// the index repaired at open. `None`: every job directory (no index).
    suspects: Mutex<Option<Vec<JobId>>>,
}

/// Where the store keeps its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexing<'a> {
    /// No index: every `list`, dedupe and recovery reads all records (cluster mode, where
    /// `jobs_dir` is shared and a per-host SQLite file cannot see the other hosts' writes).
    Off,
    /// A SQLite index at this path, on a local file system.
    At(&'a Path),
}

/// The identity workers run as, when it is not pcapd's: each job's directory is given to its
/// group (the worker reads the captures and replaces `logs/` on a re-run) and `logs/` to
/// the user (the worker writes there). Nothing else in the store is theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerAccess {
    pub uid: u32,
    pub gid: u32,
}

impl JobStore {
    /// Opens (creating if needed) the store rooted at `jobs_dir`, without an index.
    pub fn open(jobs_dir: &Path) -> Result<JobStore, StoreError> {
        JobStore::open_for(jobs_dir, None, Indexing::Off)
    }

    /// Opens the store for workers running as `worker` (`jobs_dir` becomes traversable by
    /// its group: mode 0750, group = the worker's), with the index `indexing` says. An index
    /// that is missing, unreadable or behind is rebuilt or repaired from the records here;
    /// one that cannot be opened at all is logged and the store runs without it.
    pub fn open_for(
        jobs_dir: &Path,
        worker: Option<WorkerAccess>,
        indexing: Indexing<'_>,
    ) -> Result<JobStore, StoreError> {
        fs::create_dir_all(jobs_dir).map_err(StoreError::io(jobs_dir))?;
        let jobs_dir = fs::canonicalize(jobs_dir).map_err(StoreError::io(jobs_dir))?;
        if let Some(access) = worker {
            give_to_group(&jobs_dir, access, 0o750)?;
        }
        let opened = match indexing {
            Indexing::Off => None,
            Indexing::At(path) => match JobIndex::open(path, &jobs_dir) {
                Ok((index, catchup)) => Some((Arc::new(index), catchup)),
                Err(error) => {
                    tracing::error!(%error, "cannot open the job index; reading every record instead");
                    None
                }
            },
        };
        let index = opened.as_ref().map(|(index, _)| index.clone());
        let store = JobStore {
            group: Arc::new(GroupCommit::new(jobs_dir.clone(), index.clone())),
            jobs_dir,
            write_lock: Mutex::new(()),
            worker,
            index,
            suspects: Mutex::new(None),
        };
        if let Some((index, catchup)) = opened {
            store.catch_up(&index, catchup)?;
        }
        Ok(store)
    }

    /// Brings a freshly opened index up to the records (see `index.rs` for when each case
    /// happens).
    fn catch_up(&self, index: &JobIndex, catchup: Catchup) -> Result<(), StoreError> {
        let suspects = match catchup {
            Catchup::Nothing => Some(Vec::new()),
            Catchup::Repair(ids) => {
                for id in &ids {
                    match self.load(id) {
                        Ok(record) => index.note_written(&[IndexRow::of(&record)]),
                        // Gone, or unreadable: not listed (recovery reports the unreadable).
                        Err(_) => index.note_removed(&[id]),
                    }
                }
                tracing::info!(jobs = ids.len(), "job index repaired after a crash");
                Some(ids)
            }
            Catchup::Rebuild(reason) => {
                tracing::info!(reason, "rebuilding the job index from the records");
                let started = Instant::now();
                let mut rows = Vec::with_capacity(REBUILD_BATCH);
                let mut total = 0usize;
                let mut loaded = Ok(());
                self.for_each_record(|record| {
                    if let Ok(record) = record {
                        rows.push(IndexRow::of(&record));
                        if rows.len() == REBUILD_BATCH && loaded.is_ok() {
                            total += rows.len();
                            loaded = index.load(&std::mem::take(&mut rows));
                        }
                    }
                })?;
                total += rows.len();
                let built = loaded
                    .and_then(|()| index.load(&rows))
                    .and_then(|()| index.finish_rebuild());
                if let Err(error) = built {
                    index.give_up(&error);
                }
                tracing::info!(
                    jobs = total,
                    seconds = started.elapsed().as_secs_f64(),
                    "job index rebuilt"
                );
                // Recovery cleans the live jobs' directories; reading every job directory
                // again for debris of an interrupted record write would cost as much as the
                // rebuild, and such debris in a finished job's directory is inert (retention
                // removes it with the job).
                Some(Vec::new())
            }
        };
        *lock(&self.suspects) = suspects;
        Ok(())
    }

    /// Closes the index cleanly (the next start then trusts it without a repair). Called at
    /// shutdown, and on drop; a record written after it makes the next start rebuild.
    pub fn close_index(&self) {
        if let Some(index) = &self.index {
            index.close(&self.jobs_dir);
        }
    }

    /// The index, while it can be trusted.
    pub(crate) fn index(&self) -> Option<&JobIndex> {
        self.index.as_deref().filter(|index| index.is_usable())
    }

    pub(crate) fn group_commit(&self) -> Arc<GroupCommit> {
        self.group.clone()
    }

    /// Takes the job directories recovery must clean besides the live jobs'.
    pub(crate) fn take_suspects(&self) -> Option<Vec<JobId>> {
        let none_left = self.index.as_ref().map(|_| Vec::new());
        std::mem::replace(&mut *lock(&self.suspects), none_left)
    }

    pub(crate) fn worker_access(&self) -> Option<WorkerAccess> {
        self.worker
    }

    pub fn jobs_dir(&self) -> &Path {
        &self.jobs_dir
    }

    pub fn job_dir(&self, id: &JobId) -> PathBuf {
        // JobId's invariant (canonical UUID) makes this join a single safe component.
        self.jobs_dir.join(id.as_str())
    }

    pub fn logs_dir(&self, id: &JobId) -> PathBuf {
        self.job_dir(id).join(LOGS_DIR)
    }

    fn record_path(&self, id: &JobId) -> PathBuf {
        self.job_dir(id).join(RECORD_FILE)
    }

    /// Absolute paths of the job's captures, in submission order.
    pub fn pcap_paths(&self, record: &JobRecord) -> Vec<PathBuf> {
        let dir = self.job_dir(&record.job_id);
        record
            .files
            .iter()
            .map(|file| dir.join(&file.stored))
            .collect()
    }

    pub fn load(&self, id: &JobId) -> Result<JobRecord, StoreError> {
        let path = self.record_path(id);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(id.clone()))
            }
            Err(error) => return Err(StoreError::io(&path)(error)),
        };
        let record = parse_record(&path, &text)?;
        if &record.job_id != id {
            return Err(StoreError::Corrupt {
                path,
                reason: format!("record names job {}", record.job_id),
            });
        }
        Ok(record)
    }

    /// Read-modify-write of one record under the store's write lock. `change` sees the current
    /// record; if it returns an error nothing is written.
    pub fn update<E>(
        &self,
        id: &JobId,
        change: impl FnOnce(&mut JobRecord) -> Result<(), E>,
    ) -> Result<JobRecord, StoreError>
    where
        E: Into<StoreError>,
    {
        let _guard = self.lock_writes();
        let mut record = self.load(id)?;
        change(&mut record).map_err(Into::into)?;
        self.write_record(&record)?;
        Ok(record)
    }

    /// Like [`JobStore::update`], but `change` may decline (`Ok(false)`): then nothing is
    /// written. A cluster host that lost a job uses it to leave the new owner's record alone.
    pub fn update_if<E>(
        &self,
        id: &JobId,
        change: impl FnOnce(&mut JobRecord) -> Result<bool, E>,
    ) -> Result<Option<JobRecord>, StoreError>
    where
        E: Into<StoreError>,
    {
        let _guard = self.lock_writes();
        let mut record = self.load(id)?;
        if !change(&mut record).map_err(Into::into)? {
            return Ok(None);
        }
        self.write_record(&record)?;
        Ok(Some(record))
    }

    /// Atomically writes `record` to its job directory and its index row after it. Callers
    /// hold the write lock.
    pub(crate) fn write_record(&self, record: &JobRecord) -> Result<(), StoreError> {
        if let Some(index) = &self.index {
            index.note_dirty(&[&record.job_id]);
        }
        write_record_in(&self.job_dir(&record.job_id), record)?;
        if let Some(index) = &self.index {
            index.note_written(&[IndexRow::of(record)]);
        }
        Ok(())
    }

    /// Notes, in the index, jobs about to be removed (`remove_if`, before the rename).
    pub(crate) fn index_removing(&self, id: &JobId) {
        if let Some(index) = &self.index {
            index.note_dirty(&[id]);
        }
    }

    /// Notes, in the index, jobs removed.
    pub(crate) fn index_removed(&self, id: &JobId) {
        if let Some(index) = &self.index {
            index.note_removed(&[id]);
        }
    }

    pub(crate) fn lock_writes(&self) -> MutexGuard<'_, ()> {
        // The lock guards no in-memory data (the state is on disk), so a panic in another
        // holder leaves nothing inconsistent: take the lock anyway.
        self.write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every readable job, and the records that could not be read.
    pub(crate) fn scan(&self) -> Result<ScanResult, StoreError> {
        let mut scan = ScanResult::default();
        self.for_each_record(|loaded| match loaded {
            Ok(record) => scan.jobs.push(record),
            Err(unreadable) => scan.unreadable.push(unreadable),
        })?;
        Ok(scan)
    }

    /// Reads every job record in turn, without holding them all: `each` gets a record or
    /// the path of one that could not be read and why.
    pub(crate) fn for_each_record(
        &self,
        mut each: impl FnMut(Result<JobRecord, (PathBuf, String)>),
    ) -> Result<(), StoreError> {
        for entry in fs::read_dir(&self.jobs_dir).map_err(StoreError::io(&self.jobs_dir))? {
            let entry = entry.map_err(StoreError::io(&self.jobs_dir))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|name| JobId::parse(name).ok()) else {
                continue; // temp dirs and foreign files are not jobs
            };
            match self.load(&id) {
                Ok(record) => each(Ok(record)),
                // Removed between read_dir and load (retention, a failed commit): not a job.
                Err(StoreError::NotFound(_)) if !entry.path().exists() => {}
                Err(error) => each(Err((entry.path(), error.to_string()))),
            }
        }
        Ok(())
    }

    /// Loads the records of `ids`, in order, skipping the ones gone since (and logging the
    /// unreadable): what the index-driven answers read.
    fn load_listed(&self, ids: impl IntoIterator<Item = JobId>) -> Vec<JobRecord> {
        ids.into_iter()
            .filter_map(|id| match self.load(&id) {
                Ok(record) => Some(record),
                Err(StoreError::NotFound(_)) => None,
                Err(error) => {
                    tracing::warn!(%error, "skipping unreadable job record");
                    None
                }
            })
            .collect()
    }

    /// Jobs matching `filter`, newest first. Unreadable records are skipped and logged.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<JobRecord>, StoreError> {
        let since = match &filter.since {
            Some(text) => Some(
                Timestamp::parse(text).map_err(|error| StoreError::BadSince(error.to_string()))?,
            ),
            None => None,
        };
        if let Some(index) = self.index() {
            match self.list_indexed(index, filter, since) {
                Ok(jobs) => return Ok(jobs),
                Err(error) => index.give_up(&error),
            }
        }
        self.list_by_scan(filter, since)
    }

    /// `list` through the index: pages of ids in the answer's order, each record read and
    /// checked against the filter (a row the record contradicts is skipped), until `limit`.
    fn list_indexed(
        &self,
        index: &JobIndex,
        filter: &ListFilter,
        since: Option<Timestamp>,
    ) -> Result<Vec<JobRecord>, super::index::IndexError> {
        const PAGE: usize = 256;
        let rows = RowFilter {
            state: filter.state,
            tag: filter.tag.as_deref(),
            since_ms: since.map(Timestamp::unix_millis),
        };
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut jobs = Vec::new();
        let mut after: Option<Cursor> = None;
        while jobs.len() < limit {
            let page = index.page(&rows, after.as_ref(), (limit - jobs.len()).min(PAGE))?;
            let Some(last) = page.last() else { break };
            after = Some(last.clone());
            let records = self.load_listed(page.into_iter().map(|(_, id)| id));
            jobs.extend(
                records
                    .into_iter()
                    .filter(|job| matches_filter(job, filter, since)),
            );
        }
        jobs.truncate(limit);
        Ok(jobs)
    }

    /// `list` by reading every record: the store without an index.
    pub(crate) fn list_by_scan(
        &self,
        filter: &ListFilter,
        since: Option<Timestamp>,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let scan = self.scan()?;
        for (path, reason) in &scan.unreadable {
            tracing::warn!(path = %path.display(), %reason, "skipping unreadable job record");
        }
        let mut jobs: Vec<JobRecord> = scan
            .jobs
            .into_iter()
            .filter(|job| matches_filter(job, filter, since))
            .collect();
        jobs.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.job_id.cmp(&a.job_id))
        });
        if let Some(limit) = filter.limit {
            jobs.truncate(limit);
        }
        Ok(jobs)
    }

    /// A job that already covers these captures with these options: non-terminal or `done`,
    /// with identical SHA-256s in the same order. The newest such job wins.
    pub fn find_duplicate(
        &self,
        sha256s: &[String],
        options: &Map<String, Value>,
    ) -> Result<Option<JobRecord>, StoreError> {
        let is_duplicate = |job: &JobRecord| {
            (!job.state.is_terminal() || job.state == JobState::Done)
                && job.files.len() == sha256s.len()
                && job
                    .files
                    .iter()
                    .zip(sha256s)
                    .all(|(file, sha)| &file.sha256 == sha)
                && &job.options == options
        };
        if let Some(index) = self.index() {
            match index.duplicates(dedupe_key(sha256s, options)) {
                Ok(ids) => {
                    // Newest first; read one at a time, the first that matches wins.
                    return Ok(ids
                        .into_iter()
                        .find_map(|id| self.load_listed([id]).pop().filter(is_duplicate)));
                }
                Err(error) => index.give_up(&error),
            }
        }
        let candidates = self.list_by_scan(&ListFilter::default(), None)?;
        Ok(candidates.into_iter().find(is_duplicate))
    }

    /// Done jobs whose syslog forwarding or export is still open, in the order they
    /// finished (what the output task resumes after a restart).
    pub fn outputs_pending(&self) -> Result<Vec<JobId>, StoreError> {
        if let Some(index) = self.index() {
            match index.outputs_open() {
                Ok(ids) => return Ok(ids),
                Err(error) => index.give_up(&error),
            }
        }
        let mut records: Vec<JobRecord> = self
            .scan()?
            .jobs
            .into_iter()
            .filter(JobRecord::outputs_pending)
            .collect();
        records.sort_by_key(|r| r.finished_at);
        Ok(records.into_iter().map(|r| r.job_id).collect())
    }

    /// The path of log `name` of a job. `name` must be a plain file name of an existing
    /// regular file in the job's `logs/` (no separators, no `..`, no symlinks).
    pub fn log_path(&self, id: &JobId, name: &str) -> Result<PathBuf, StoreError> {
        // An extracted file is `extract_files/` and plain names below it (docs/files.md).
        let parts: Vec<&str> = match name.strip_prefix(EXTRACT_FILES_PREFIX) {
            Some(rest) => std::iter::once(EXTRACT_FILES_DIR)
                .chain(rest.split('/'))
                .collect(),
            None => vec![name],
        };
        let plain = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && !part.contains(['/', '\\', '\0'])
                && !part.starts_with(super::fsutil::TEMP_PREFIX)
        };
        if parts.len() > MAX_EXTRACT_DEPTH + 1 || !parts.iter().all(|part| plain(part)) {
            return Err(StoreError::BadLogName(name.to_owned()));
        }
        if !self.job_dir(id).is_dir() {
            return Err(StoreError::NotFound(id.clone()));
        }
        let not_found = || StoreError::LogNotFound {
            job_id: id.clone(),
            name: name.to_owned(),
        };
        let mut path = self.logs_dir(id);
        for (i, part) in parts.iter().enumerate() {
            path.push(part);
            // Never through a link: each directory and the file itself are what they seem.
            let last = i + 1 == parts.len();
            match fs::symlink_metadata(&path) {
                Ok(metadata) if last && metadata.is_file() => {}
                Ok(metadata) if !last && metadata.is_dir() => {}
                _ => return Err(not_found()),
            }
        }
        Ok(path)
    }

    /// The files under the job's `logs/extract_files/` (regular files, links not followed),
    /// named as [`JobStore::log_path`] takes them, sorted.
    pub fn extracted_files(&self, id: &JobId) -> Result<Vec<ExtractedInfo>, StoreError> {
        if !self.job_dir(id).is_dir() {
            return Err(StoreError::NotFound(id.clone()));
        }
        let mut files = Vec::new();
        let root = self.logs_dir(id).join(EXTRACT_FILES_DIR);
        walk_extracted(&root, EXTRACT_FILES_DIR, MAX_EXTRACT_DEPTH, &mut files)?;
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }

    /// The regular files in the job's `logs/`, by name, with byte and line counts. A last
    /// line without a newline counts as a line.
    pub fn scan_logs(&self, id: &JobId) -> Result<Vec<LogInfo>, StoreError> {
        let dir = self.logs_dir(id);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if self.job_dir(id).is_dir() {
                    return Ok(Vec::new());
                }
                return Err(StoreError::NotFound(id.clone()));
            }
            Err(error) => return Err(StoreError::io(&dir)(error)),
        };
        let mut logs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(StoreError::io(&dir))?;
            let path = entry.path();
            let metadata = fs::symlink_metadata(&path).map_err(StoreError::io(&path))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue; // a non-UTF-8 name cannot be asked for over JSON
            };
            if !metadata.is_file() || name.starts_with(super::fsutil::TEMP_PREFIX) {
                continue;
            }
            let (lines, rows) = count_lines(&path)?;
            logs.push(LogInfo {
                name,
                bytes: metadata.len(),
                lines,
                rows,
            });
        }
        logs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(logs)
    }

    /// Up to `length` bytes (capped at [`MAX_LOG_READ`]) of a log from `offset`; empty at the end.
    pub fn read_log(
        &self,
        id: &JobId,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let path = self.log_path(id, name)?;
        let mut file = File::open(&path).map_err(StoreError::io(&path))?;
        let size = file.metadata().map_err(StoreError::io(&path))?.len();
        // Past the end is the end, however far (a seek past 2^63 would be EINVAL).
        if offset >= size {
            return Ok(Vec::new());
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(StoreError::io(&path))?;
        let mut bytes = Vec::new();
        file.take(length.min(MAX_LOG_READ))
            .read_to_end(&mut bytes)
            .map_err(StoreError::io(&path))?;
        Ok(bytes)
    }
}

/// The directory of extracted files in a job's `logs/` (the analyzers' `extract_files/`).
pub const EXTRACT_FILES_DIR: &str = "extract_files";
const EXTRACT_FILES_PREFIX: &str = "extract_files/";
/// Directory levels below `extract_files/` looked at (`<type>/<subtype>/<file>`).
const MAX_EXTRACT_DEPTH: usize = 3;

/// One extracted file: its name (`extract_files/…`) and size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExtractedInfo {
    pub name: String,
    pub bytes: u64,
}

fn walk_extracted(
    dir: &Path,
    name: &str,
    depth: usize,
    out: &mut Vec<ExtractedInfo>,
) -> Result<(), StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(StoreError::io(dir)(error)),
    };
    for entry in entries {
        let entry = entry.map_err(StoreError::io(dir))?;
        let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = entry.path();
        let metadata = fs::symlink_metadata(&path).map_err(StoreError::io(&path))?;
        let child = format!("{name}/{file}");
        if metadata.is_file() {
            out.push(ExtractedInfo {
                name: child,
                bytes: metadata.len(),
            });
        } else if metadata.is_dir() && depth > 1 {
            walk_extracted(&path, &child, depth - 1, out)?;
        }
    }
    Ok(())
}

fn matches_filter(job: &JobRecord, filter: &ListFilter, since: Option<Timestamp>) -> bool {
    filter.state.is_none_or(|state| job.state == state)
        && filter
            .tag
            .as_deref()
            .is_none_or(|tag| job.tag.as_deref() == Some(tag))
        && since.is_none_or(|since| job.created_at >= since)
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for JobStore {
    fn drop(&mut self) {
        self.close_index();
    }
}

/// `path` to `access`'s group (owner unchanged) with `mode`.
pub(crate) fn give_to_group(
    path: &Path,
    access: WorkerAccess,
    mode: u32,
) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(path, None, Some(access.gid)).map_err(StoreError::io(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(StoreError::io(path))
}

#[derive(Debug, Default)]
pub(crate) struct ScanResult {
    pub jobs: Vec<JobRecord>,
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Serializes and atomically writes `record` into `job_dir/job.json`.
pub(crate) fn write_record_in(job_dir: &Path, record: &JobRecord) -> Result<(), StoreError> {
    let path = job_dir.join(RECORD_FILE);
    write_atomic(&path, &record_bytes(&path, record)?)
}

/// The text of `record` as stored at `path`.
pub(crate) fn record_bytes(path: &Path, record: &JobRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec_pretty(record).map_err(|error| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("cannot serialize: {error}"),
    })
}

/// Parses a record and checks what the store relies on: every stored capture name is
/// `pcaps/<n>.pcap` or `pcaps/<n>.pcapng`, so joining it to the job directory stays inside.
fn parse_record(path: &Path, text: &[u8]) -> Result<JobRecord, StoreError> {
    let record: JobRecord = serde_json::from_slice(text).map_err(|error| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    for file in &record.files {
        if !is_generated_capture_name(&file.stored) {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("stored capture name {:?} is not pcaps/N.pcap", file.stored),
            });
        }
    }
    Ok(record)
}

fn is_generated_capture_name(stored: &str) -> bool {
    let Some(file) = stored.strip_prefix("pcaps/") else {
        return false;
    };
    let stem = file
        .strip_suffix(".pcapng")
        .or_else(|| file.strip_suffix(".pcap"));
    stem.is_some_and(|stem| !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()))
}

/// Lines (a last one without its newline counts) and rows ([`is_row`]) of a log, in one read.
fn count_lines(path: &Path) -> Result<(u64, u64), StoreError> {
    let file = File::open(path).map_err(StoreError::io(path))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    let (mut lines, mut rows) = (0u64, 0u64);
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .map_err(StoreError::io(path))?
            == 0
        {
            break;
        }
        lines += 1;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        rows += u64::from(super::model::is_row(&line));
    }
    Ok((lines, rows))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jobs::fsutil::testdir::TestDir;
    use crate::jobs::model::{ErrorKind, JobError, JobFile};

    /// A store at `dir` with its index beside it.
    pub(crate) fn indexed(dir: &TestDir) -> JobStore {
        JobStore::open_for(dir.path(), None, Indexing::At(&dir.index_path())).unwrap()
    }

    /// Writes a queued job straight to disk (bypassing uploads) created at `created_ms`.
    pub(crate) fn put_job(
        store: &JobStore,
        tag: Option<&str>,
        created_ms: i64,
        pcap: &[u8],
    ) -> JobRecord {
        let id = JobId::generate().unwrap();
        let dir = store.job_dir(&id);
        fs::create_dir_all(dir.join(PCAPS_DIR)).unwrap();
        fs::create_dir_all(dir.join(LOGS_DIR)).unwrap();
        fs::write(dir.join("pcaps/0.pcap"), pcap).unwrap();
        let file = JobFile {
            name: "a.pcap".into(),
            stored: "pcaps/0.pcap".into(),
            size: pcap.len() as u64,
            sha256: format!("{:064x}", pcap.len()),
        };
        let record = JobRecord::new_queued(
            id,
            tag.map(str::to_owned),
            Map::new(),
            vec![file],
            Timestamp::from_unix_millis(created_ms),
        );
        store.write_record(&record).unwrap();
        record
    }

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(millis)
    }

    #[test]
    fn update_persists_and_refused_change_writes_nothing() {
        let dir = TestDir::new("update");
        let store = JobStore::open(&dir.path().join("jobs")).unwrap();
        let job = put_job(&store, None, 1_000, b"abc");

        let started = store
            .update(&job.job_id, |r| r.start(at(2_000), 77))
            .unwrap();
        assert_eq!(started.state, JobState::Running);
        assert_eq!(store.load(&job.job_id).unwrap(), started);

        let error = store
            .update(&job.job_id, |r| r.requeue(at(3_000)))
            .unwrap_err();
        assert_eq!(error.code().as_str(), "illegal_transition");
        assert_eq!(store.load(&job.job_id).unwrap(), started);

        let names: Vec<String> = fs::read_dir(store.job_dir(&job.job_id))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|name| !name.starts_with(".tmp-")),
            "temp left: {names:?}"
        );
    }

    #[test]
    fn concurrent_updates_are_not_lost() {
        let dir = TestDir::new("concurrent");
        let store = Arc::new(indexed(&dir));
        let job = put_job(&store, None, 1_000, b"abc");
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let store = store.clone();
                let id = job.job_id.clone();
                std::thread::spawn(move || {
                    for round in 0..10 {
                        store
                            .update(&id, |r| {
                                r.warnings.push(format!("{thread}-{round}"));
                                Ok::<(), StoreError>(())
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(store.load(&job.job_id).unwrap().warnings.len(), 40);
    }

    #[test]
    fn load_reports_missing_and_corrupt_records() {
        let dir = TestDir::new("load");
        let store = indexed(&dir);
        let ghost = JobId::generate().unwrap();
        assert!(matches!(store.load(&ghost), Err(StoreError::NotFound(id)) if id == ghost));

        let job = put_job(&store, None, 1, b"x");
        fs::write(store.record_path(&job.job_id), b"{ not json").unwrap();
        let error = store.load(&job.job_id).unwrap_err();
        assert_eq!(error.code().as_str(), "corrupt");
        assert!(error.to_string().contains("job.json"));

        let mut escaping = put_job(&store, None, 1, b"x");
        escaping.files[0].stored = "../../etc/passwd".into();
        store.write_record(&escaping).unwrap();
        assert_eq!(
            store.load(&escaping.job_id).unwrap_err().code().as_str(),
            "corrupt"
        );
    }

    #[test]
    fn list_filters_and_orders_newest_first() {
        let dir = TestDir::new("list");
        let store = indexed(&dir);
        let old = put_job(&store, Some("alpha"), 1_000, b"1");
        let middle = put_job(&store, Some("beta"), 2_000, b"2");
        let new = put_job(&store, Some("alpha"), 3_000, b"3");
        store
            .update(&middle.job_id, |r| r.start(at(2_500), 1))
            .unwrap();
        fs::create_dir(dir.path().join(".tmp-leftover")).unwrap();

        let ids = |jobs: Vec<JobRecord>| jobs.into_iter().map(|j| j.job_id).collect::<Vec<_>>();
        let all = store.list(&ListFilter::default()).unwrap();
        assert_eq!(
            ids(all),
            [
                new.job_id.clone(),
                middle.job_id.clone(),
                old.job_id.clone()
            ]
        );

        let alpha = ListFilter {
            tag: Some("alpha".into()),
            ..ListFilter::default()
        };
        assert_eq!(
            ids(store.list(&alpha).unwrap()),
            [new.job_id.clone(), old.job_id.clone()]
        );

        let running = ListFilter {
            state: Some(JobState::Running),
            ..ListFilter::default()
        };
        assert_eq!(
            ids(store.list(&running).unwrap()),
            std::slice::from_ref(&middle.job_id)
        );

        let recent = ListFilter {
            since: Some(at(2_000).to_string()),
            limit: Some(1),
            ..ListFilter::default()
        };
        assert_eq!(
            ids(store.list(&recent).unwrap()),
            std::slice::from_ref(&new.job_id)
        );

        let bad = ListFilter {
            since: Some("last tuesday".into()),
            ..ListFilter::default()
        };
        assert_eq!(store.list(&bad).unwrap_err().code().as_str(), "bad_request");
    }

    #[test]
    fn list_skips_corrupt_records() {
        let dir = TestDir::new("list-corrupt");
        let store = indexed(&dir);
        let good = put_job(&store, None, 1, b"x");
        let bad = put_job(&store, None, 2, b"x");
        fs::write(store.record_path(&bad.job_id), b"[]").unwrap();
        let listed = store.list(&ListFilter::default()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].job_id, good.job_id);
    }

    #[test]
    fn duplicates_need_same_hashes_order_options_and_a_live_or_done_state() {
        let dir = TestDir::new("dedupe");
        let store = indexed(&dir);
        let job = put_job(&store, None, 1, b"abcd");
        let hashes = job.sha256s();
        let none = Map::new();
        let found = store.find_duplicate(&hashes, &none).unwrap();
        assert_eq!(found.map(|j| j.job_id), Some(job.job_id.clone()));

        let mut other_options = Map::new();
        other_options.insert("format".into(), Value::from("json"));
        assert!(store
            .find_duplicate(&hashes, &other_options)
            .unwrap()
            .is_none());
        assert!(store
            .find_duplicate(&[hashes[0].clone(), hashes[0].clone()], &none)
            .unwrap()
            .is_none());

        store
            .update(&job.job_id, |r| {
                r.start(at(2), 1)?;
                r.finish_failed(at(3), JobError::new(ErrorKind::Analyzer, "boom"))
            })
            .unwrap();
        assert!(store.find_duplicate(&hashes, &none).unwrap().is_none());
    }

    #[test]
    fn log_path_rejects_traversal_and_missing_logs() {
        let dir = TestDir::new("logpath");
        let store = indexed(&dir);
        let job = put_job(&store, None, 1, b"x");
        fs::write(store.logs_dir(&job.job_id).join("conn.log"), b"a\nb\n").unwrap();
        fs::write(dir.path().join("secret.log"), b"secret").unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("secret.log"),
            store.logs_dir(&job.job_id).join("link.log"),
        )
        .unwrap();

        assert!(store.log_path(&job.job_id, "conn.log").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "../job.json",
            "../../secret.log",
            "a/b",
            "x\\y",
        ] {
            assert_eq!(
                store
                    .log_path(&job.job_id, bad)
                    .unwrap_err()
                    .code()
                    .as_str(),
                "bad_request",
                "{bad:?}"
            );
        }
        let missing = store.log_path(&job.job_id, "dns.log").unwrap_err();
        assert!(matches!(missing, StoreError::LogNotFound { .. }));
        let link = store.log_path(&job.job_id, "link.log").unwrap_err();
        assert!(matches!(link, StoreError::LogNotFound { .. }));
        let ghost = JobId::generate().unwrap();
        assert!(matches!(
            store.log_path(&ghost, "conn.log"),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn scan_logs_counts_bytes_and_lines_and_read_log_is_bounded() {
        let dir = TestDir::new("logs");
        let store = indexed(&dir);
        let job = put_job(&store, None, 1, b"x");
        let logs = store.logs_dir(&job.job_id);
        fs::write(logs.join("conn.log"), b"one\ntwo\nthree\n").unwrap();
        fs::write(logs.join("dns.log"), b"a\nno newline").unwrap();
        fs::write(logs.join("empty.log"), b"").unwrap();
        fs::create_dir(logs.join("subdir")).unwrap();

        let scanned = store.scan_logs(&job.job_id).unwrap();
        let summary: Vec<(&str, u64, u64)> = scanned
            .iter()
            .map(|log| (log.name.as_str(), log.bytes, log.lines))
            .collect();
        assert_eq!(
            summary,
            [("conn.log", 14, 3), ("dns.log", 12, 2), ("empty.log", 0, 0)]
        );

        assert_eq!(
            store.read_log(&job.job_id, "conn.log", 4, 3).unwrap(),
            b"two"
        );
        assert_eq!(
            store.read_log(&job.job_id, "conn.log", 8, 1_000).unwrap(),
            b"three\n"
        );
        assert!(store
            .read_log(&job.job_id, "conn.log", 14, 10)
            .unwrap()
            .is_empty());
        assert!(store
            .read_log(&job.job_id, "conn.log", 1_000, 10)
            .unwrap()
            .is_empty());
        // Past 2^63 a seek fails; it is still just past the end.
        assert!(store
            .read_log(&job.job_id, "conn.log", 1 << 63, 10)
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .read_log(&job.job_id, "../job.json", 0, 10)
                .unwrap_err()
                .code()
                .as_str(),
            "bad_request"
        );
    }

    #[test]
    fn pcap_paths_are_absolute_inside_the_job() {
        let dir = TestDir::new("pcaps");
        let store = JobStore::open(&dir.path().join("nested/jobs")).unwrap();
        let job = put_job(&store, None, 1, b"abc");
        let paths = store.pcap_paths(&job);
        assert_eq!(paths.len(), 1);
        assert!(paths[0].is_absolute());
        assert!(paths[0].starts_with(store.job_dir(&job.job_id)));
        assert_eq!(fs::read(&paths[0]).unwrap(), b"abc");
    }
}
